"""The cache area: each Redis target's hits, misses, evictions, key patterns and queues
(:func:`collected.caches`), the TTLs the traces' cache writes set, the hit rate and the PING round trips."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.reports import collected
from exporter.reports.areas import AreaContext, AreaPart
from exporter.reports.histogram_figures import histogram_figures
from exporter.reports.model import AreaSummary, Figure, missing
from exporter.reports.query import merged

if TYPE_CHECKING:
    from exporter.jobs import SloArea
    from exporter.reports.model import Report
    from exporter.slo.slos import Slo


def observe(area: SloArea, slos: list[Slo], ctx: AreaContext) -> AreaPart:
    q = ctx.q
    caches = collected.caches(q, ctx.sources, ctx.queues() if ctx.queues else {})
    cache_ttls = collected.cache_ttls(q, ctx.sources)
    hits = sum(c.hits or 0.0 for c in caches)
    lookups = hits + sum(c.misses or 0.0 for c in caches)
    hit_src = q.source(f"sum(increase({metrics.REDIS_HITS.name}[W])) / (hits + misses)")
    hit_rate = (Figure(hits / lookups, "ratio", hit_src) if lookups
                else missing("ratio", hit_src, f"no series {metrics.REDIS_HITS.name} with lookups in the window"))
    ping = merged(q.histograms(metrics.REDIS_PING.name, ("target",)).values())
    mean, p95, p99 = histogram_figures(ping, q.source(f"increase({metrics.REDIS_PING.name}_bucket[W])"),
                                       "PING round trips")
    summary = AreaSummary("cache", Figure(lookups, "count", ctx.sources["cache_hits"]), mean, p95, p99,
                          missing("ratio", "redis INFO", "Redis counts no failed lookups"),
                          "key lookups (hits + misses)", "not measured (response times are PING round trips)")
    return AreaPart(summary, {"cache_hit_rate": hit_rate}, facts={"caches": caches, "cache_ttls": cache_ttls})


def details(report: Report) -> dict[str, Any]:
    return {"caches": [{"target": c.target, "hitRate": c.hit_rate, "hits": c.hits, "misses": c.misses,
                        "evicted": c.evicted,
                        "patterns": [{"pattern": p.pattern, "sampledKeys": p.sampled,
                                      "withoutTtlShare": p.without_ttl, "medianTtlSeconds": p.median_ttl_s}
                                     for p in c.patterns],
                        "queues": [{"queue": q.name, "first": q.first, "last": q.last, "highest": q.highest,
                                    "slopePerSecond": round(q.slope_per_s, 4)} for q in c.queues]}
                       for c in report.observed.facts.caches]}
