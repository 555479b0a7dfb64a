"""An area reported from its SLOs' indicators alone: each target's figure counted the way its SLO counts good
and bad events (a latency SLO's histogram, an outcome counter's bad outcomes, hits and misses), and the area's
summary from the same series. What a collector registered with an SLO area and no report module of its own
gets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.reports.areas import AreaContext, AreaPart
from exporter.reports.histogram_figures import histogram_figures, ms
from exporter.reports.model import BUCKETED, EXACT, AreaSummary, Figure, missing
from exporter.reports.query import Query, merged
from exporter.slo.slos import HitMissIndicator, LatencyIndicator, OutcomeIndicator, selector

if TYPE_CHECKING:
    from exporter.jobs import SloArea
    from exporter.slo.slos import Slo


def _ratio(bad: float, total: float, floor: bool, source: str, what: str) -> Figure:
    if total <= 0:
        return missing("ratio", source, f"no {what} in the window")
    return Figure((total - bad) / total if floor else bad / total, "ratio", source, EXACT)


def row(q: Query, slo: Slo, what: str) -> tuple[Figure, float | None]:
    """The figure one SLO's row judges, and for a latency SLO the share of events within its threshold."""
    ind = slo.indicator
    if isinstance(ind, LatencyIndicator):
        family = ind.family.name
        h = merged(q.histograms(family, (), ind.matchers).values())
        source = q.source(f"increase({family}_bucket{selector(*ind.matchers)}[W])")
        if h.count <= 0 or slo.quantile is None:
            return missing("ms", source, f"no {what} in the window"), None
        return Figure(ms(h.quantile(slo.quantile)), "ms", source, BUCKETED), h.share_within(ind.threshold)
    if isinstance(ind, OutcomeIndicator):
        bad = sum(q.increase(ind.family.name, (), ind.bad_matchers).values())
        total = sum(q.increase(ind.family.name, (), ind.matchers).values())
        return _ratio(bad, total, False, q.source(f"{ind.bad('W', 'increase')} / {ind.total('W', 'increase')}"),
                      what), None
    if isinstance(ind, HitMissIndicator):
        hits = sum(q.increase(ind.hits.name, ()).values())
        misses = sum(q.increase(ind.misses.name, ()).values())
        return _ratio(misses, hits + misses, slo.floor,
                      q.source(f"{ind.good('W', 'increase')} / {ind.total('W', 'increase')}"), what), None
    return missing("ratio", "none", f"no report for a {type(ind).__name__}"), None


def observe(area: SloArea, slos: list[Slo], ctx: AreaContext) -> AreaPart:
    q = ctx.q
    none = f"no latency SLO of {area.name} counts {area.events}"
    summary = AreaSummary(area.name, missing("count", "none", none), missing("ms", "none", none),
                          missing("ms", "none", none), missing("ms", "none", none),
                          missing("ratio", "none", f"no SLO of {area.name} counts failures"), area.events,
                          "not measured")
    part = AreaPart(summary)
    latency = next((s.indicator for s in slos if isinstance(s.indicator, LatencyIndicator)), None)
    errors = next((s for s in slos if isinstance(s.indicator, OutcomeIndicator)), None)
    for slo in slos:
        if slo.endpoint is None:
            part.rows[slo.key], share = row(q, slo, area.events)
            if share is not None:
                part.shares[slo.key] = share
    if latency is not None:
        family = latency.family.name
        h = merged(q.histograms(family, ()).values())
        source = q.source(f"increase({family}_bucket[W])")
        mean, p95, p99 = histogram_figures(h, source, area.events)
        error_rate = part.rows[errors.key] if errors is not None else missing(
            "ratio", source, f"no SLO of {area.name} counts failures")
        part.summary = AreaSummary(area.name, Figure(h.count, "count", source), mean, p95, p99, error_rate,
                                   area.events, f"{area.events} that failed" if errors else "not measured")
    return part
