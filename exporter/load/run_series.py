"""A distributed run's k6 samples, read back from Prometheus: every series its instances sent (tagged
``testid=<run id>``), each as its cumulative values over the run.

k6's remote-write output sends counters and native histograms cumulative from the start of each k6 process, and
sends a series only while it gets new samples: a stage's series stop when the stage ends, a rare status code's
series may have a single sample. So a series' total is its *last* value, not an ``increase()`` over a window
(which leaves out everything before a series' first sample and extrapolates the rest). The series are read with
one range query at a step within Prometheus' lookback (each series' last sample is then seen at the next step)
and carried forward past their end.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.load.native_histogram import NativeHistogram, from_api
from exporter.reports.prometheus import PrometheusClient

Value = float | NativeHistogram

# what judging reads: counters over every phase (an instance's requests, its dropped iterations), the request
# Trends of the measured phase (duration and its phases, as native histograms)
COUNTERS = ("k6_http_reqs_total", "k6_iterations_total", "k6_dropped_iterations_total")
TRENDS = ("k6_http_req_duration_seconds", "k6_http_req_connecting_seconds", "k6_http_req_tls_handshaking_seconds",
          "k6_http_req_sending_seconds", "k6_http_req_waiting_seconds", "k6_http_req_receiving_seconds",
          "k6_data_received_total")
MAX_POINTS = 240  # range query points per series: the timeline's resolution


@dataclass(frozen=True)
class Series:
    """One series: its labels (without ``__name__``) and its cumulative value at each step, ascending."""

    labels: Mapping[str, str]
    times: tuple[float, ...]
    values: tuple[Value, ...]

    @property
    def final(self) -> Value:
        return self.values[-1]

    def at(self, t: float) -> Value | None:
        """The value as of ``t``: the last step at or before it (carried forward past the series' end)."""
        i = bisect.bisect_right(self.times, t)
        return self.values[i - 1] if i else None


@dataclass(frozen=True)
class RunSeries:
    """Every series of one run by family (``k6_http_reqs_total``...), and the steps they were read at."""

    families: Mapping[str, list[Series]] = field(default_factory=dict)
    times: tuple[float, ...] = ()

    def family(self, name: str) -> list[Series]:
        return list(self.families.get(name, []))

    @property
    def empty(self) -> bool:
        return not any(self.families.values())


def step_for(seconds: float, lookback: float) -> float:
    """The range query's step: fine enough for the timeline, never more than half the lookback."""
    return max(1.0, min(lookback / 2, round(seconds / MAX_POINTS)))


def _series(item: Mapping[str, object]) -> tuple[str, Series]:
    metric = dict(item.get("metric") or {})  # type: ignore[call-overload]
    name = str(metric.pop("__name__", ""))
    points: list[tuple[float, Value]] = []
    for t, v in item.get("values") or []:  # type: ignore[attr-defined]
        points.append((float(t), float(v)))
    for t, h in item.get("histograms") or []:  # type: ignore[attr-defined]
        points.append((float(t), from_api(h)))
    points.sort(key=lambda p: p[0])
    return name, Series(metric, tuple(t for t, _ in points), tuple(v for _, v in points))


def _matcher(names: Sequence[str]) -> str:
    return "|".join(names)


def read_run_series(client: PrometheusClient, run_id: str, start: float, end: float, lookback: float = 300.0,
                    custom: Sequence[str] = ()) -> RunSeries:
    """The run's series between ``start`` and ``end`` (unix seconds): :data:`COUNTERS` over every phase, the
    :data:`TRENDS` and the script's ``custom`` metrics (as k6 names them: ``k6_<name>_seconds``, ``k6_<name>``,
    ``k6_<name>_total``) of the measured phase."""
    step = step_for(end - start, lookback)
    start = end - step * math.ceil((end - start) / step)  # the last step at the end: the run's last samples in it
    run = run_id.replace("\\", "\\\\").replace('"', '\\"')
    measured = [*TRENDS, *(f"k6_{n}{suffix}" for n in custom for suffix in ("_seconds", "", "_total"))]
    queries = [f'{{__name__=~"{_matcher(COUNTERS)}", testid="{run}"}}',
               f'{{__name__=~"{_matcher(measured)}", testid="{run}", phase="measure"}}']
    families: dict[str, list[Series]] = {}
    for query in queries:
        for item in client.range_result(query, start, end, step):
            name, series = _series(item)
            if series.times:
                families.setdefault(name, []).append(series)
    steps = round((end - start) / step)
    return RunSeries(families, tuple(start + i * step for i in range(steps + 1)))
