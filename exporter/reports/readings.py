"""The report's queries over the readings a bench run took of its own collectors: one at the end of the
warm-up, one after the run, and those taken meanwhile (:class:`exporter.load.platform.PlatformWatch`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from exporter.load.platform_figures import Reading
from exporter.reports.query import HistogramsFromIncreases, Labels, Vector, key_of
from exporter.slo.slos import Matcher

RUN = "perf-exporter collectors during the run"

_OVER_TIME: dict[str, Callable[[list[float]], float]] = {
    "max_over_time": max, "min_over_time": min, "last_over_time": lambda v: v[-1],
    "avg_over_time": lambda v: sum(v) / len(v)}
_AGG: dict[str, Callable[[list[float]], float]] = {"max": max, "min": min, "sum": sum}


class ReadingsQuery(HistogramsFromIncreases):
    """:class:`exporter.reports.query.Query` over a run's readings: the period is from ``start`` to ``end``;
    gauges are read in ``during`` and ``end``."""

    def __init__(self, start: Reading, end: Reading, during: Sequence[Reading] = ()) -> None:
        self.start = start
        self.end = end
        self.samples = [*during, end]

    def increase(self, family: str, names: Iterable[str], matchers: Sequence[Matcher] = ()) -> Vector:
        names = tuple(names)
        out: Vector = {}
        for (name, labels), value in self.end.items():
            if name != family or not all(m.matches(dict(labels)) for m in matchers):
                continue
            grew = max(0.0, value - self.start.get((name, labels), 0.0))
            key = key_of(dict(labels), names)
            out[key] = out.get(key, 0.0) + grew
        return out

    def _series(self, family: str) -> dict[Labels, list[float]]:
        series: dict[Labels, list[float]] = {}
        for reading in self.samples:
            for (name, labels), value in reading.items():
                if name == family:
                    series.setdefault(labels, []).append(value)
        return series

    def over_time(self, fn: str, family: str, names: Iterable[str], agg: str = "max") -> Vector:
        names = tuple(names)
        grouped: dict[Labels, list[float]] = {}
        for labels, values in self._series(family).items():
            grouped.setdefault(key_of(dict(labels), names), []).append(_OVER_TIME[fn](values))
        return {key: _AGG[agg](values) for key, values in grouped.items()}

    def peak_sum(self, family: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        out: Vector = {}
        for reading in self.samples:
            sums: Vector = {}
            for (name, labels), value in reading.items():
                if name == family:
                    key = key_of(dict(labels), names)
                    sums[key] = sums.get(key, 0.0) + value
            for key, value in sums.items():
                out[key] = max(value, out.get(key, value))
        return out

    def source(self, expr: str) -> str:
        return f"{RUN}: {expr.replace('[W]', '')}"
