"""The tracing area: each Jaeger target's traces, critical paths, serial siblings and error spans
(:func:`collected.tracing`), the trace P95 as its target judges it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.reports import collected
from exporter.reports.areas import AreaContext, AreaPart
from exporter.reports.histogram_figures import histogram_figures
from exporter.reports.model import EXACT, AreaSummary, Figure
from exporter.reports.query import merged
from exporter.reports.recommendations import critical_path_shares

if TYPE_CHECKING:
    from exporter.jobs import SloArea
    from exporter.reports.model import Report
    from exporter.slo.slos import Slo


def observe(area: SloArea, slos: list[Slo], ctx: AreaContext) -> AreaPart:
    q = ctx.q
    tracing = collected.tracing(q, ctx.sources, ctx.targets, ctx.sampler)
    trace_all = merged(q.histograms(metrics.TRACE_DURATION.name, ("target",)).values())
    mean, p95, p99 = histogram_figures(trace_all, ctx.sources["trace_p95"], "traces")
    n_spans = sum(q.increase(f"{metrics.TRACE_SPANS.name}_sum", ("target",)).values())
    n_errors = sum(sum(t.errors.values()) for t in tracing)
    summary = AreaSummary(
        "tracing", Figure(trace_all.count, "count", ctx.sources["trace_p95"]), mean, p95, p99,
        Figure(n_errors / n_spans if n_spans else None, "ratio", ctx.sources["trace_errors"] + " / spans", EXACT,
               "" if n_spans else "no spans in the window"), "traces analysed", "spans tagged error")
    return AreaPart(summary, {"trace_p95": p95}, {"trace_p95": trace_all.share_within(ctx.targets.trace_p95)},
                    facts={"tracing": tracing})


def details(report: Report) -> dict[str, Any]:
    facts = report.observed.facts
    return {"criticalPathShare": {s: round(v, 4) for s, v in critical_path_shares(facts.tracing)},
            "serialSiblings": [{"service": g.service, "operation": g.operation, "children": g.children,
                                "savingMs": round(g.saving_s * 1000, 3)} for t in facts.tracing for g in t.serial]}
