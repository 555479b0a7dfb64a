"""Figures of an area's guide summary from a histogram over a period: mean, P95 and P99 in milliseconds."""

from __future__ import annotations

from exporter.reports.model import BUCKETED, EXACT, Figure, missing
from exporter.reports.query import Histogram


def ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


def histogram_figures(h: Histogram | None, source: str, what: str) -> tuple[Figure, Figure, Figure]:
    """Mean, P95 and P99 of ``h``; each says why when it has no observation."""
    if h is None or h.count <= 0:
        none = missing("ms", source, f"no {what} in the window")
        return none, none, none
    return (Figure(ms(h.mean), "ms", source.replace("_bucket", "_sum / _count"), EXACT),
            Figure(ms(h.quantile(0.95)), "ms", source, BUCKETED),
            Figure(ms(h.quantile(0.99)), "ms", source, BUCKETED))
