"""The database area: each PostgreSQL target's statements, tables and checks (:func:`collected.databases`), the
query P95 as the collector estimated it (with its bounds), statement time and the rollback share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.reports import collected
from exporter.reports.areas import AreaContext, AreaPart
from exporter.reports.histogram_figures import ms
from exporter.reports.model import APPROXIMATE, ESTIMATE, EXACT, AreaSummary, Figure, missing
from exporter.reports.query import merged
from exporter.reports.recommendations import top_statements

if TYPE_CHECKING:
    from exporter.jobs import SloArea
    from exporter.reports.model import Report
    from exporter.slo.slos import Slo

NOTES = {"statements-estimate": "highest interval estimate; the window's P95 lies within the bounds (lowest lower "
                                "bound .. highest upper bound of its intervals)",
         "statements-approximate": "approximate: each statement's calls placed at its interval mean"}


def observe(area: SloArea, slos: list[Slo], ctx: AreaContext) -> AreaPart:
    q = ctx.q
    databases = collected.databases(q, ctx.sources)
    pg_h = q.histograms(metrics.PG_QUERY_DURATION.name, ("target",))
    commits = q.increase(metrics.PG_DB_COMMITS.name, ("target",))
    rollbacks = q.increase(metrics.PG_DB_ROLLBACKS.name, ("target",))
    notes = [f"database {d.target}: max_connections is not exported, so 'connections near max_connections' is not "
             "checked" for d in databases]
    db_calls = sum(sum(s.calls for s in d.statements) for d in databases)
    db_seconds = sum(sum(s.seconds for s in d.statements) for d in databases)
    first = databases[0] if databases else None
    if first is not None and first.p95 is not None:
        p = first.p95
        precision = ESTIMATE if p.method == "statements-estimate" else APPROXIMATE
        p95 = Figure(ms(p.value), "ms", p.source, precision, NOTES[p.method], ms(p.lower), ms(p.upper),
                     ms(p.highest_lower))
    else:
        p95 = missing("ms", q.source(metrics.PG_QUERY_DURATION.name),
                      f"no series {metrics.PG_QUERY_DURATION.name} or {metrics.PG_QUERY_P95.name} in the window")
    hist_all = merged(pg_h.values())
    tx = sum(commits.values()) + sum(rollbacks.values())
    summary = AreaSummary(
        "database", Figure(db_calls, "count", ctx.sources["statements"]),
        Figure(ms(db_seconds / db_calls) if db_calls else None, "ms", ctx.sources["statements"], EXACT,
               "" if db_calls else "no statement calls in the window"),
        p95,
        Figure(ms(hist_all.quantile(0.99)), "ms", q.source(f"increase({metrics.PG_QUERY_DURATION.name}_bucket[W])"),
               APPROXIMATE, "statement means placed in buckets"),
        Figure(sum(rollbacks.values()) / tx if tx else None, "ratio",
               q.source(f"increase({metrics.PG_DB_ROLLBACKS.name}[W]) / (commits + rollbacks)"), EXACT,
               "" if tx else "no transactions in the window"),
        "statement calls (pg_stat_statements)", "transactions rolled back")
    if first is not None and first.synthetic_p95 is not None:
        notes.append(f"database {first.target}: synthetic queries' P95 {ms(first.synthetic_p95.value)} ms (exact "
                     "timing of the configured queries only)")
    return AreaPart(summary, {"db_query_p95": p95}, {}, notes, {"databases": databases})


def details(report: Report) -> dict[str, Any]:
    facts = report.observed.facts
    return {"statements": [
        {"target": s.target, "datname": s.datname, "user": s.user, "queryid": s.queryid, "query": s.text,
         "calls": round(s.calls, 3), "totalMs": round(s.seconds * 1000, 3), "meanMs": ms(s.mean_s)}
        for s in top_statements(facts.databases, 10)],
        "queryP95": [{"target": d.target, "method": d.p95.method, "ms": ms(d.p95.value),
                      "lowerMs": ms(d.p95.lower), "upperMs": ms(d.p95.upper), "source": d.p95.source}
                     for d in facts.databases if d.p95 is not None],
        "syntheticP95": [{"target": d.target, "ms": ms(d.synthetic_p95.value), "source": d.synthetic_p95.source}
                         for d in facts.databases if d.synthetic_p95 is not None]}
