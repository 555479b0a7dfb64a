"""A bench run's time series, from the live figures k6's REST API gave once a second: cumulative counts and
statistics of the measured phase at each poll, which :mod:`exporter.load.window_thresholds` turns into
figures per window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def timeline(samples: Iterable[Any], warmup: float) -> list[dict[str, float | None]]:
    """One point per poll after the warm-up: ``t`` (seconds since the measured phase began) and, over the measured
    requests so far, ``requests``, ``avg``, ``p95``, ``p99``, ``max`` (ms) and ``errorRate``."""
    points: list[dict[str, float | None]] = []
    for sample in samples:
        if sample.elapsed < warmup:
            continue
        duration = sample.metric("http_req_duration{phase:measure}")
        count = _number(sample.metric("http_reqs{phase:measure}").get("count"))
        if not count:
            continue
        points.append({"t": round(sample.elapsed - warmup, 3), "requests": count,
                       "avg": _number(duration.get("avg")), "p95": _number(duration.get("p(95)")),
                       "p99": _number(duration.get("p(99)")), "max": _number(duration.get("max")),
                       "errorRate": _number(sample.metric("http_req_failed{phase:measure}").get("rate"))})
    return points
