"""The API area: every probed endpoint's requests, outcomes, latency, phases and answer sizes over the period
(and its baseline's P95 and phases), the API's P95, P99 and error rate as the targets judge them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.reports.areas import AreaContext, AreaPart
from exporter.reports.attribution import route_of
from exporter.reports.facts import Endpoint
from exporter.reports.histogram_figures import histogram_figures, ms
from exporter.reports.model import BUCKETED, EXACT, AreaSummary, Figure, missing
from exporter.reports.query import Histogram, Labels, Vector, key_of, label, merged
from exporter.slo.slos import BAD_OUTCOME, OutcomeIndicator

if TYPE_CHECKING:
    from exporter.jobs import SloArea
    from exporter.reports.model import Report
    from exporter.slo.slos import Slo

NAMES = ("target", "endpoint")


def _by_endpoint(vector: Vector, name: str) -> dict[Labels, dict[str, float]]:
    """Per endpoint (its key by ``NAMES``): the label ``name``'s value -> the series' value."""
    out: dict[Labels, dict[str, float]] = {}
    for key, value in vector.items():
        labels = dict(key)
        inner = labels.pop(name)
        out.setdefault(key_of(labels, NAMES), {})[inner] = value
    return out


def _endpoints(ctx: AreaContext, api_h: dict[Labels, Histogram]) -> list[Endpoint]:
    q, base = ctx.q, ctx.base
    outcomes = q.increase(metrics.HTTP_REQUESTS.name, (*NAMES, "outcome"))
    phases = q.over_time("avg_over_time", metrics.HTTP_PHASE_DURATION.name, (*NAMES, "phase"), "max")
    probe_traces = q.over_time("avg_over_time", metrics.TRACE_PROBE_DURATION.name, ("probe_target", "probe"), "max")
    sizes = q.over_time("avg_over_time", metrics.HTTP_RESPONSE_SIZE.name, NAMES)
    operations = [(r.service, r.operation) for r in ctx.routes]
    http = metrics.HTTP_REQUEST_DURATION.name
    base_h = base.histograms(http, NAMES) if base else {}
    base_phases = (base.over_time("avg_over_time", metrics.HTTP_PHASE_DURATION.name, (*NAMES, "phase"), "max")
                   if base else {})
    phase_expr = f"avg_over_time({metrics.HTTP_PHASE_DURATION.name}[W])"
    ctx.sources.update(
        api_latency=q.source(f"increase({http}_bucket[W]) by target, endpoint"),
        api_errors=q.source(f"increase({metrics.HTTP_REQUESTS.name}[W]) by outcome"),
        phases=q.source(phase_expr) + (f"; the baseline's: {base.source(phase_expr)}" if base else ""),
        probe_traces=q.source(f"avg_over_time({metrics.TRACE_PROBE_DURATION.name}[W])"),
        response_size=q.source(f"avg_over_time({metrics.HTTP_RESPONSE_SIZE.name}[W])"))
    per_outcome = _by_endpoint(outcomes, "outcome")
    per_phase = _by_endpoint(phases, "phase")
    base_per_phase = _by_endpoint(base_phases, "phase")
    endpoints = []
    for key in sorted(set(api_h) | set(per_outcome)):
        h = api_h.get(key)
        counts = per_outcome.get(key, {})
        name = label(key, "endpoint")
        requests = sum(counts.values()) if counts else (h.count if h else 0.0)
        if requests <= 0:
            continue
        target = label(key, "target")
        trace_key = (("probe_target", target), ("probe", name))
        method_path = ctx.endpoint_requests.get((target, name))
        bh = base_h.get(key)
        endpoints.append(Endpoint(
            target=target, name=name, requests=requests,
            failed=sum(v for o, v in counts.items() if BAD_OUTCOME.matches({"outcome": o})),
            server_errors=counts.get("http_5xx", 0.0), timeouts=counts.get("timeout", 0.0),
            connect_errors=counts.get("connect_error", 0.0),
            mean_s=h.mean if h else None, p95_s=h.quantile(0.95) if h else None,
            p99_s=h.quantile(0.99) if h else None,
            phases_s=per_phase.get(key, {}), trace_s=probe_traces.get(trace_key),
            route=route_of(*method_path, operations) if method_path else None, response_bytes=sizes.get(key),
            baseline_p95_s=bh.quantile(0.95) if bh is not None and bh.count > 0 else None,
            baseline_phases_s=base_per_phase.get(key, {}) if bh is not None and bh.count > 0 else None))
    return endpoints


def observe(area: SloArea, slos: list[Slo], ctx: AreaContext) -> AreaPart:
    q, targets = ctx.q, ctx.targets
    http = metrics.HTTP_REQUEST_DURATION.name
    api_h = q.histograms(http, NAMES)
    endpoints = _endpoints(ctx, api_h)
    overrides = set(targets.endpoint_p95)
    overall_p95 = merged(h for k, h in api_h.items() if label(k, "endpoint") not in overrides)
    overall = merged(api_h.values())
    total_requests = sum(e.requests for e in endpoints)
    failed = sum(e.failed for e in endpoints)
    api_src = q.source(f"sum by (le) (increase({http}_bucket[W]))")
    mean, p95, p99 = histogram_figures(overall, api_src, "probe requests")
    _, p95_row, _ = histogram_figures(overall_p95, api_src + (
        f" (endpoints with their own target left out: {', '.join(sorted(overrides))})" if overrides else ""),
        "probe requests")
    errors = OutcomeIndicator(by=())
    err_src = q.source(f"{errors.bad('W', 'increase')} / {errors.total('W', 'increase')}")
    error_rate = (Figure(failed / total_requests, "ratio", err_src) if total_requests
                  else missing("ratio", err_src, f"no series {metrics.HTTP_REQUESTS.name} in the window"))
    summary = AreaSummary("api", Figure(total_requests, "count", ctx.sources["api_errors"]), mean, p95, p99,
                          error_rate, "probe requests", "probe requests that failed (4xx, 5xx, timeout, connection "
                          "error, unexpected status, failed assertion)")
    return AreaPart(summary, {"api_latency_p95": p95_row, "api_latency_p99": p99, "error_rate": error_rate},
                    {"api_latency_p95": overall_p95.share_within(targets.api_latency_p95),
                     "api_latency_p99": overall.share_within(targets.api_latency_p99)},
                    facts={"endpoints": tuple(endpoints)})


def details(report: Report) -> dict[str, Any]:
    facts = report.observed.facts
    return {"endpoints": [
        {"target": e.target, "endpoint": e.name, "requests": round(e.requests, 3), "failed": round(e.failed, 3),
         "avgMs": ms(e.mean_s), "p95Ms": ms(e.p95_s), "p99Ms": ms(e.p99_s),
         "p95TargetMs": facts.targets.p95_for(e.name) * 1000,
         "phasesMs": {k: round(v * 1000, 3) for k, v in e.phases_s.items()},
         "traceMs": ms(e.trace_s),
         "percentilePrecision": EXACT if report.observed.source_kind == "run" else BUCKETED}
        for e in facts.endpoints]}
