"""What a report asks of the exporter's series over a period, whoever keeps them: Prometheus over a window
(:mod:`exporter.reports.prometheus`) or the readings a bench run took of its own collectors
(:mod:`exporter.reports.readings`). :mod:`exporter.reports.collected` builds the report's facts from either."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from exporter.load.platform_figures import histogram_quantile
from exporter.slo.slos import Matcher

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]


def key_of(labels: Mapping[str, str], names: Iterable[str]) -> Labels:
    return tuple((n, labels.get(n, "")) for n in names)


def label(key: Labels, name: str) -> str:
    return dict(key).get(name, "")


@dataclass
class Histogram:
    """Bucket counts, count and sum of one label set over a period."""

    buckets: list[tuple[float, float]]
    count: float
    total: float

    def quantile(self, q: float) -> float | None:
        return histogram_quantile(q, self.buckets) if self.count > 0 else None

    def share_within(self, bound: float) -> float | None:
        """Share of observations at or below ``bound`` (exact when ``bound`` is a bucket bound)."""
        if self.count <= 0:
            return None
        for le, count in self.buckets:
            if math.isclose(le, bound) or le > bound:
                return min(1.0, count / self.count)
        return 1.0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None


def merged(histograms: Iterable[Histogram]) -> Histogram:
    bounds: dict[float, float] = {}
    count = total = 0.0
    for h in histograms:
        for le, c in h.buckets:
            bounds[le] = bounds.get(le, 0.0) + c
        count += h.count
        total += h.total
    return Histogram(sorted(bounds.items()), count, total)


def histograms_of(buckets: Vector, counts: Vector, sums: Vector, names: tuple[str, ...]) -> dict[Labels, Histogram]:
    """Histograms from the increases of a family's ``_bucket`` (by ``names`` and ``le``), ``_count`` and ``_sum``."""
    grouped: dict[Labels, list[tuple[float, float]]] = {}
    for key, value in buckets.items():
        labels = dict(key)
        le = labels.pop("le")
        grouped.setdefault(key_of(labels, names), []).append((math.inf if le == "+Inf" else float(le), value))
    return {k: Histogram(sorted(grouped.get(k, [])), counts.get(k, 0.0), sums.get(k, 0.0)) for k in counts}


class HistogramsFromIncreases:
    """:meth:`Query.histograms` from the increases of a family's ``_bucket``, ``_count`` and ``_sum``."""

    def increase(self, family: str, names: Iterable[str], matchers: Sequence[Matcher] = ()) -> Vector:
        raise NotImplementedError

    @cached_property
    def _histograms(self) -> dict[tuple[str, tuple[str, ...], tuple[Matcher, ...]], dict[Labels, Histogram]]:
        return {}

    def histograms(self, family: str, names: Iterable[str],
                   matchers: Sequence[Matcher] = ()) -> dict[Labels, Histogram]:
        """Queried once per instance and arguments: the areas ask again for some that :mod:`collected` read."""
        names = tuple(names)
        key = (family, names, tuple(matchers))
        if key not in self._histograms:
            self._histograms[key] = histograms_of(self.increase(f"{family}_bucket", (*names, "le"), matchers),
                                                  self.increase(f"{family}_count", names, matchers),
                                                  self.increase(f"{family}_sum", names, matchers), names)
        return self._histograms[key]


class Query(Protocol):
    """The exporter's series over one period, summed by the label ``names`` asked for."""

    def increase(self, family: str, names: Iterable[str], matchers: Sequence[Matcher] = ()) -> Vector:
        """How much each counter (or ``_bucket``/``_count``/``_sum`` series) grew over the period; only the series
        ``matchers`` select."""

    def over_time(self, fn: str, family: str, names: Iterable[str], agg: str = "max") -> Vector:
        """``fn`` (max_over_time, min_over_time, avg_over_time, last_over_time) of each gauge, then ``agg``."""

    def peak_sum(self, family: str, names: Iterable[str]) -> Vector:
        """The highest value, at any one moment of the period, of the gauges' sum by ``names``."""

    def histograms(self, family: str, names: Iterable[str],
                   matchers: Sequence[Matcher] = ()) -> dict[Labels, Histogram]:
        """Each histogram's buckets, count and sum over the period."""

    def source(self, expr: str) -> str:
        """How a figure computed with ``expr`` names its source (``[W]`` stands for the period)."""
