"""The guide's JSON files: one per area (``api.json``, ``database.json``, ``cache.json``, ``tracing.json``) with
``timestamp``, ``summary`` and ``recommendations`` exactly as the guide shows them, and
``performance-summary.json`` with its targets table (Metric | Target | Current | Status). Everything else (the
window, the source and precision of every figure, evidence, per-endpoint figures) goes beside those fields,
never in their place. ``schema/*.json`` describe both files."""

from __future__ import annotations

from typing import Any

from exporter.reports.model import AREAS, BUCKETED, EXACT, AreaSummary, Figure, Report, TargetRow
from exporter.reports.recommendations import PRIORITY_RULE, critical_path_shares, top_statements

SCHEMA_AREA = "https://perf-exporter.tripo04os/schema/area-report.json"
SCHEMA_SUMMARY = "https://perf-exporter.tripo04os/schema/performance-summary.json"


def error_rate_text(ratio: float | None) -> str | None:
    """``"0.2%"`` as the guide writes it (two decimals below 0.1 %)."""
    if ratio is None:
        return None
    value = ratio * 100
    return f"{value:.{1 if value == 0 or value >= 0.1 else 2}f}%"


def _ms(figure: Figure) -> float | None:
    return round(figure.value, 2) if figure.value is not None else None


def guide_summary(area: AreaSummary) -> dict[str, Any]:
    total = area.total.value
    return {"totalRequests": round(total) if total is not None else None,
            "avgResponseTime": _ms(area.mean), "p95ResponseTime": _ms(area.p95), "p99ResponseTime": _ms(area.p99),
            "errorRate": error_rate_text(area.error_rate.value)}


def summary_sources(area: AreaSummary) -> dict[str, Any]:
    return {"totalRequests": {**area.total.as_json(), "counts": area.total_of},
            "avgResponseTime": area.mean.as_json(), "p95ResponseTime": area.p95.as_json(),
            "p99ResponseTime": area.p99.as_json(),
            "errorRate": {**area.error_rate.as_json(), "counts": area.error_rate_of}}


def current_text(row: TargetRow) -> str:
    f = row.current
    if f.value is None:
        if f.lower is not None or f.upper is not None:
            return f"{f.lower}..{f.upper}ms"
        return "no data"
    if f.unit == "ms":
        return f"{f.value:.0f}ms" if f.value >= 10 else f"{f.value:.2f}ms"
    return error_rate_text(f.value) or "no data"


def row_json(row: TargetRow) -> dict[str, Any]:
    return {"Metric": row.metric, "Target": row.target, "Current": current_text(row), "Status": row.status,
            "key": row.key, "reason": row.reason, "current": row.current.as_json()}


def _area_extra(report: Report, area: str) -> dict[str, Any]:
    facts = report.observed.facts
    if area == "api":
        return {"endpoints": [
            {"target": e.target, "endpoint": e.name, "requests": round(e.requests, 3), "failed": round(e.failed, 3),
             "avgMs": _r(e.mean_s), "p95Ms": _r(e.p95_s), "p99Ms": _r(e.p99_s),
             "p95TargetMs": facts.targets.p95_for(e.name) * 1000,
             "phasesMs": {k: round(v * 1000, 3) for k, v in e.phases_s.items()},
             "traceMs": _r(e.trace_s),
             "percentilePrecision": EXACT if report.observed.source_kind == "run" else BUCKETED}
            for e in facts.endpoints]}
    if area == "database":
        return {"statements": [
            {"target": s.target, "datname": s.datname, "user": s.user, "queryid": s.queryid, "query": s.text,
             "calls": round(s.calls, 3), "totalMs": round(s.seconds * 1000, 3), "meanMs": _r(s.mean_s)}
            for s in top_statements(facts.databases, 10)],
            "queryP95": [{"target": d.target, "method": d.p95.method, "ms": _r(d.p95.value),
                          "lowerMs": _r(d.p95.lower), "upperMs": _r(d.p95.upper), "source": d.p95.source}
                         for d in facts.databases if d.p95 is not None],
            "syntheticP95": [{"target": d.target, "ms": _r(d.synthetic_p95.value), "source": d.synthetic_p95.source}
                             for d in facts.databases if d.synthetic_p95 is not None]}
    if area == "cache":
        return {"caches": [{"target": c.target, "hitRate": c.hit_rate, "hits": c.hits, "misses": c.misses,
                            "evicted": c.evicted,
                            "patterns": [{"pattern": p.pattern, "sampledKeys": p.sampled,
                                          "withoutTtlShare": p.without_ttl, "medianTtlSeconds": p.median_ttl_s}
                                         for p in c.patterns],
                            "queues": [{"queue": q.name, "first": q.first, "last": q.last, "highest": q.highest,
                                        "slopePerSecond": round(q.slope_per_s, 4)} for q in c.queues]}
                           for c in facts.caches]}
    return {"criticalPathShare": {s: round(v, 4) for s, v in critical_path_shares(facts.tracing)},
            "serialSiblings": [{"service": g.service, "operation": g.operation, "children": g.children,
                                "savingMs": round(g.saving_s * 1000, 3)} for t in facts.tracing for g in t.serial]}


def _r(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


def _common(report: Report) -> dict[str, Any]:
    o = report.observed
    return {"window": o.window.as_json(), "source": {"kind": o.source_kind, "where": o.source_where},
            "sources": dict(o.facts.sources), "priorityRule": PRIORITY_RULE, "notes": o.notes}


def area_file(report: Report, area: str) -> dict[str, Any]:
    summary = report.observed.areas[area]
    rows = {"api": ("api_latency_p95", "api_latency_p99", "error_rate"), "database": ("db_query_p95",),
            "cache": ("cache_hit_rate",), "tracing": ("trace_p95",)}[area]
    return {
        "$schema": SCHEMA_AREA,
        "timestamp": report.generated,
        "summary": guide_summary(summary),
        "recommendations": [r.as_json() for r in report.findings.for_area(area)],
        "area": area,
        "summarySources": summary_sources(summary),
        "targets": [row_json(r) for r in report.rows if r.key in rows],
        **_common(report),
        **_area_extra(report, area),
    }


def performance_summary(report: Report) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_SUMMARY,
        "timestamp": report.generated,
        "columns": ["Metric", "Target", "Current", "Status"],
        "targets": [row_json(r) for r in report.rows],
        "bottlenecks": [r.as_json() for r in report.findings.top(3)],
        "recommendations": [r.as_json() for r in report.findings.recommendations],
        "summaries": {area: guide_summary(report.observed.areas[area]) for area in AREAS
                      if area in report.observed.areas},
        "stages": report.observed.stages,
        **_common(report),
        **report.observed.extra,
    }


def json_files(report: Report) -> dict[str, dict[str, Any]]:
    out = {f"{area}.json": area_file(report, area) for area in AREAS if area in report.observed.areas}
    out["performance-summary.json"] = performance_summary(report)
    return out
