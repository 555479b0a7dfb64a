"""A bench run's time series, from the live figures k6's REST API gave once a second: cumulative counts and
statistics of the measured phase at each poll, which :mod:`exporter.load.window_thresholds` turns into
figures per window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from exporter.load.stats import number


class TimelinePoint(msgspec.Struct, frozen=True, rename="camel"):
    """Over the measured requests up to ``t`` seconds into the measured phase: their count, mean, P95, P99 and
    max (ms) and error rate."""

    t: float
    requests: float
    avg: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    error_rate: float | None = None


def timeline(samples: Iterable[Any], warmup: float) -> list[TimelinePoint]:
    """One point per poll after the warm-up."""
    points: list[TimelinePoint] = []
    for sample in samples:
        if sample.elapsed < warmup:
            continue
        duration = sample.metric("http_req_duration{phase:measure}")
        count = number(sample.metric("http_reqs{phase:measure}").get("count"))
        if not count:
            continue
        points.append(TimelinePoint(round(sample.elapsed - warmup, 3), count, number(duration.get("avg")),
                                    number(duration.get("p(95)")), number(duration.get("p(99)")),
                                    number(duration.get("max")),
                                    number(sample.metric("http_req_failed{phase:measure}").get("rate"))))
    return points
