"""Report source (a): Prometheus's HTTP API over a window.

Window figures come from ``increase(...[window])`` of the exporter's counters and histogram buckets, evaluated at
the window's end, so a percentile is over every probe request of the window (not an average of 5-minute
percentiles), and a latency target, which is always a bucket bound, is decided exactly by the share of requests
within it. The databases, caches, traces and routes are built by :mod:`exporter.reports.collected`, as for a
bench run. The plots over the window draw every line of a plot from one rate window, which the plot states
(:func:`rate_range`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from exporter import metrics
from exporter.reports import collected
from exporter.reports.attribution import route_of
from exporter.reports.facts import Endpoint, Facts, Queue, SerialGroup, Targets
from exporter.reports.infrastructure import infrastructure_section
from exporter.reports.jaeger_sample import with_samples
from exporter.reports.model import (
    APPROXIMATE,
    BUCKETED,
    ESTIMATE,
    EXACT,
    AreaSummary,
    Figure,
    Observed,
    Plot,
    ReportError,
    Series,
    Window,
    missing,
)
from exporter.reports.query import Histogram, Labels, Vector, histograms_of, key_of, label, merged


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)  # shared by the plots' thread: httpx clients are thread-safe
        self.queries = 0

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        self.queries += 1
        try:
            response = self.client.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise ReportError(f"Prometheus at {self.url} is not reachable: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise ReportError(f"Prometheus at {self.url} answered {response.status_code} without JSON "
                              f"(is it a Prometheus?)") from None
        if body.get("status") != "success":
            raise ReportError(f"Prometheus rejected {params.get('query')!r}: {body.get('error', body)}")
        return body["data"]

    def vector(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        out = []
        for item in data.get("result", []):
            value = float(item["value"][1])
            if math.isfinite(value):
                out.append((item["metric"], value))
        return out

    def matrix(self, query: str, start: float, end: float, step: float) -> list[tuple[dict[str, str],
                                                                                       list[tuple[float, float]]]]:
        data = self._get("/api/v1/query_range", {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                 "step": f"{step:.3f}"})
        out = []
        for item in data.get("result", []):
            points = [(float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v))]
            out.append((item["metric"], points))
        return out

    def check(self) -> None:
        self._get("/api/v1/query", {"query": "1"})


class Window_:
    """:class:`exporter.reports.query.Query` over Prometheus: ``[W]`` ranges evaluated at the window's end. With
    ``offset_s``, the same over the period of ``range_s`` seconds that ends ``offset_s`` before the window's end (a
    baseline before the window)."""

    def __init__(self, client: PrometheusClient, window: Window, range_s: float | None = None,
                 offset_s: float = 0.0) -> None:
        self.client = client
        self.window = window
        self.range_s = max(1, round(range_s if range_s is not None else window.seconds))
        self.range = f"{self.range_s}s"
        self.offset = f" offset {round(offset_s)}s" if offset_s >= 1 else ""
        self.step = max(1.0, window.seconds / 150)

    def over(self, period: Window) -> Window_:
        """The same queries over another period that ends no later than the window (a baseline)."""
        return Window_(self.client, self.window, period.seconds, self.window.end - period.end)

    def by(self, expr: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        out: Vector = {}
        for labels, value in self.client.vector(expr, self.window.end):
            k = key_of(labels, names)
            out[k] = out.get(k, 0.0) + value
        return out

    def _by(self, names: tuple[str, ...]) -> str:
        return f" by ({', '.join(names)})" if names else ""

    def increase(self, family: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        return self.by(f"sum{self._by(names)} (increase({family}[{self.range}]{self.offset}))", names)

    def over_time(self, fn: str, family: str, names: Iterable[str], agg: str = "max") -> Vector:
        names = tuple(names)
        return self.by(f"{agg}{self._by(names)} ({fn}({family}[{self.range}]{self.offset}))", names)

    def peak_sum(self, family: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        sub = f"[{self.range}:{self.step:g}s]{self.offset}"
        return self.by(f"max{self._by(names)} (max_over_time((sum{self._by(names)} ({family})){sub}))", names)

    def histograms(self, family: str, names: Iterable[str]) -> dict[Labels, Histogram]:
        names = tuple(names)
        return histograms_of(self.increase(f"{family}_bucket", (*names, "le")), self.increase(f"{family}_count", names),
                             self.increase(f"{family}_sum", names), names)

    def source(self, expr: str) -> str:
        return f"prometheus: {expr.replace('[W]', f'[{self.range}]{self.offset}')}"


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


def _histogram_figures(h: Histogram | None, source: str, what: str) -> tuple[Figure, Figure, Figure]:
    if h is None or h.count <= 0:
        none = missing("ms", source, f"no {what} in the window")
        return none, none, none
    return (Figure(_ms(h.mean), "ms", source.replace("_bucket", "_sum / _count"), EXACT),
            Figure(_ms(h.quantile(0.95)), "ms", source, BUCKETED),
            Figure(_ms(h.quantile(0.99)), "ms", source, BUCKETED))


def collect(client: PrometheusClient, window: Window, targets: Targets,
            jaeger_urls: Mapping[str, str] | None = None,
            endpoint_requests: Mapping[tuple[str, str], tuple[str, str]] | None = None,
            baseline: Window | None = None) -> Observed:
    """Every figure of a report over ``window`` from Prometheus. ``jaeger_urls``: Jaeger target name -> its
    query URL, to read sample traces of the serial groups; ``endpoint_requests``: (api target, endpoint) ->
    (method, path), to find the route its traces take; ``baseline``: the period attribution compares the window
    with (None: none)."""
    if window.seconds <= 0:
        raise ReportError("the window is empty: --from must be before --to")
    if baseline is not None and (baseline.seconds < 1 or baseline.end > window.end):
        raise ReportError("the baseline must be a period of a second or more that ends before the window's end")
    client.check()
    q = Window_(client, window)
    base = q.over(baseline) if baseline is not None else None
    # the plots' range queries run beside the window's instant queries: Prometheus answers both at once
    pool = ThreadPoolExecutor(max_workers=1)
    plots_future = pool.submit(_plots, client, q, targets)
    notes: list[str] = []
    sources: dict[str, str] = {}
    routes = collected.routes(q, base, sources)

    # -- API ---------------------------------------------------------------------------------------------------
    http = metrics.HTTP_REQUEST_DURATION.name
    ep_names = ("target", "endpoint")
    api_h = q.histograms(http, ep_names)
    outcomes = q.increase(metrics.HTTP_REQUESTS.name, (*ep_names, "outcome"))
    phases = q.over_time("avg_over_time", metrics.HTTP_PHASE_DURATION.name, (*ep_names, "phase"), "max")
    probe_traces = q.over_time("avg_over_time", metrics.TRACE_PROBE_DURATION.name, ("probe_target", "probe"), "max")
    probe_services = q.over_time("max_over_time", metrics.TRACE_PROBE_SERVICES.name, ("probe_target", "probe"))
    sizes = q.over_time("avg_over_time", metrics.HTTP_RESPONSE_SIZE.name, ep_names)
    operations = [(r.service, r.operation) for r in routes]
    base_h = base.histograms(http, ep_names) if base else {}
    base_phases = (base.over_time("avg_over_time", metrics.HTTP_PHASE_DURATION.name, (*ep_names, "phase"), "max")
                   if base else {})
    phase_expr = f"avg_over_time({metrics.HTTP_PHASE_DURATION.name}[W])"
    sources.update(
        api_latency=q.source(f"increase({http}_bucket[W]) by target, endpoint"),
        api_errors=q.source(f"increase({metrics.HTTP_REQUESTS.name}[W]) by outcome"),
        phases=q.source(phase_expr) + (f"; the baseline's: {base.source(phase_expr)}" if base else ""),
        probe_traces=q.source(f"avg_over_time({metrics.TRACE_PROBE_DURATION.name}[W])"),
        response_size=q.source(f"avg_over_time({metrics.HTTP_RESPONSE_SIZE.name}[W])"))
    endpoints = []
    per_outcome: dict[Labels, dict[str, float]] = {}
    for key, value in outcomes.items():
        labels = dict(key)
        outcome = labels.pop("outcome")
        per_outcome.setdefault(key_of(labels, ep_names), {})[outcome] = value
    for key in sorted(set(api_h) | set(per_outcome)):
        h = api_h.get(key)
        counts = per_outcome.get(key, {})
        name = label(key, "endpoint")
        requests = sum(counts.values()) if counts else (h.count if h else 0.0)
        if requests <= 0:
            continue
        target = label(key, "target")
        phase = {dict(k)["phase"]: v for k, v in phases.items()
                 if label(k, "target") == target and label(k, "endpoint") == name}
        trace_key = (("probe_target", target), ("probe", name))
        method_path = (endpoint_requests or {}).get((target, name))
        bh = base_h.get(key)
        endpoints.append(Endpoint(
            target=target, name=name, requests=requests,
            failed=sum(v for o, v in counts.items() if o != "success"),
            server_errors=counts.get("http_5xx", 0.0), timeouts=counts.get("timeout", 0.0),
            connect_errors=counts.get("connect_error", 0.0),
            mean_s=h.mean if h else None, p95_s=h.quantile(0.95) if h else None,
            p99_s=h.quantile(0.99) if h else None,
            share_over_p95_target=(1 - (h.share_within(targets.p95_for(name)) or 0.0)) if h and h.count else None,
            phases_s=phase, trace_s=probe_traces.get(trace_key), trace_services=probe_services.get(trace_key),
            route=route_of(*method_path, operations) if method_path else None, response_bytes=sizes.get(key),
            baseline_p95_s=bh.quantile(0.95) if bh is not None and bh.count > 0 else None,
            baseline_phases_s={dict(k)["phase"]: v for k, v in base_phases.items()
                               if label(k, "target") == target and label(k, "endpoint") == name}
            if bh is not None and bh.count > 0 else None))
    overrides = set(targets.endpoint_p95)
    overall_p95 = merged(h for k, h in api_h.items() if label(k, "endpoint") not in overrides)
    overall = merged(api_h.values())
    total_requests = sum(e.requests for e in endpoints)
    failed = sum(e.failed for e in endpoints)
    api_src = q.source(f"sum by (le) (increase({http}_bucket[W]))")
    mean, p95, p99 = _histogram_figures(overall, api_src, "probe requests")
    _, p95_row, _ = _histogram_figures(overall_p95, api_src + (
        f" (endpoints with their own target left out: {', '.join(sorted(overrides))})" if overrides else ""),
        "probe requests")
    err_src = q.source(f"sum(increase({metrics.HTTP_REQUESTS.name}{{outcome!=\"success\"}}[W])) / "
                       f"sum(increase({metrics.HTTP_REQUESTS.name}[W]))")
    error_rate = (Figure(failed / total_requests, "ratio", err_src) if total_requests
                  else missing("ratio", err_src, f"no series {metrics.HTTP_REQUESTS.name} in the window"))
    areas = {"api": AreaSummary("api", Figure(total_requests, "count", sources["api_errors"]), mean, p95, p99,
                                error_rate, "probe requests", "probe requests that failed (4xx, 5xx, timeout, "
                                "connection error, unexpected status, failed assertion)")}
    rows: dict[str, Figure] = {"api_latency_p95": p95_row, "api_latency_p99": p99, "error_rate": error_rate}
    shares: dict[str, float | None] = {
        "api_latency_p95": overall_p95.share_within(targets.api_latency_p95),
        "api_latency_p99": overall.share_within(targets.api_latency_p99)}

    # -- database ----------------------------------------------------------------------------------------------
    databases = collected.databases(q, sources)
    pg_h = q.histograms(metrics.PG_QUERY_DURATION.name, ("target",))
    commits = q.increase(metrics.PG_DB_COMMITS.name, ("target",))
    rollbacks = q.increase(metrics.PG_DB_ROLLBACKS.name, ("target",))
    for d in databases:
        notes.append(f"database {d.target}: max_connections is not exported, so 'connections near max_connections' "
                     "is not checked")
    db_calls = sum(sum(s.calls for s in d.statements) for d in databases)
    db_seconds = sum(sum(s.seconds for s in d.statements) for d in databases)
    first = databases[0] if databases else None
    if first is not None and first.p95 is not None:
        p = first.p95
        precision = ESTIMATE if p.method == "statements-estimate" else APPROXIMATE
        note = {"statements-estimate": "highest interval estimate; the window's P95 lies within the bounds "
                                       "(lowest lower bound .. highest upper bound of its intervals)",
                "statements-approximate": "approximate: each statement's calls placed at its interval mean"}[p.method]
        db_p95 = Figure(_ms(p.value), "ms", p.source, precision, note, _ms(p.lower), _ms(p.upper),
                        _ms(p.highest_lower))
    else:
        db_p95 = missing("ms", q.source(metrics.PG_QUERY_DURATION.name),
                         f"no series {metrics.PG_QUERY_DURATION.name} or {metrics.PG_QUERY_P95.name} in the window")
    hist_all = merged(pg_h.values())
    tx = sum(commits.values()) + sum(rollbacks.values())
    areas["database"] = AreaSummary(
        "database", Figure(db_calls, "count", sources["statements"]),
        Figure(_ms(db_seconds / db_calls) if db_calls else None, "ms", sources["statements"], EXACT,
               "" if db_calls else "no statement calls in the window"),
        db_p95,
        Figure(_ms(hist_all.quantile(0.99)), "ms", q.source(f"increase({metrics.PG_QUERY_DURATION.name}_bucket[W])"),
               APPROXIMATE, "statement means placed in buckets"),
        Figure(sum(rollbacks.values()) / tx if tx else None, "ratio",
               q.source(f"increase({metrics.PG_DB_ROLLBACKS.name}[W]) / (commits + rollbacks)"), EXACT,
               "" if tx else "no transactions in the window"),
        "statement calls (pg_stat_statements)", "transactions rolled back")
    rows["db_query_p95"] = db_p95
    if first is not None and first.synthetic_p95 is not None:
        notes.append(f"database {first.target}: synthetic queries' P95 {_ms(first.synthetic_p95.value)} ms (exact "
                     "timing of the configured queries only)")

    # -- cache -------------------------------------------------------------------------------------------------
    caches = collected.caches(q, sources, _queues(client, q))
    cache_ttls = collected.cache_ttls(q, sources)
    hits = sum(c.hits or 0.0 for c in caches)
    lookups = hits + sum(c.misses or 0.0 for c in caches)
    hit_src = q.source(f"sum(increase({metrics.REDIS_HITS.name}[W])) / (hits + misses)")
    hit_rate = (Figure(hits / lookups, "ratio", hit_src) if lookups
                else missing("ratio", hit_src, f"no series {metrics.REDIS_HITS.name} with lookups in the window"))
    ping = merged(q.histograms(metrics.REDIS_PING.name, ("target",)).values())
    pmean, pp95, pp99 = _histogram_figures(ping, q.source(f"increase({metrics.REDIS_PING.name}_bucket[W])"),
                                           "PING round trips")
    areas["cache"] = AreaSummary("cache", Figure(lookups, "count", sources["cache_hits"]), pmean, pp95, pp99,
                                 missing("ratio", "redis INFO", "Redis counts no failed lookups"),
                                 "key lookups (hits + misses)", "not measured (response times are PING round "
                                 "trips)")
    rows["cache_hit_rate"] = hit_rate

    # -- tracing -----------------------------------------------------------------------------------------------
    urls = jaeger_urls or {}

    def sampled(groups: tuple[SerialGroup, ...], target: str) -> tuple[SerialGroup, ...]:
        return with_samples(groups, urls.get(target), window.start, window.end)

    tracing = collected.tracing(q, sources, targets, sampled)
    trace_all = merged(q.histograms(metrics.TRACE_DURATION.name, ("target",)).values())
    tmean, tp95, tp99 = _histogram_figures(trace_all, sources["trace_p95"], "traces")
    n_spans = sum(q.increase(f"{metrics.TRACE_SPANS.name}_sum", ("target",)).values())
    n_errors = sum(sum(t.errors.values()) for t in tracing)
    areas["tracing"] = AreaSummary(
        "tracing", Figure(trace_all.count, "count", sources["trace_p95"]), tmean, tp95, tp99,
        Figure(n_errors / n_spans if n_spans else None, "ratio", sources["trace_errors"] + " / spans", EXACT,
               "" if n_spans else "no spans in the window"), "traces analysed", "spans tagged error")
    rows["trace_p95"] = tp95
    shares["trace_p95"] = trace_all.share_within(targets.trace_p95)

    facts = Facts(window.seconds, targets, tuple(endpoints), databases, caches, tracing, sources, routes, cache_ttls,
                  f"{baseline.as_json()['start']} to {baseline.as_json()['end']}" if baseline else "")
    try:
        plots = plots_future.result()
    finally:
        pool.shutdown()
    infrastructure = infrastructure_section(lambda expr: client.vector(expr, window.end), window)
    return Observed(facts, window, "prometheus", client.url, areas, rows, shares, plots, [], notes,
                    {"infrastructure": infrastructure})


def _queues(client: PrometheusClient, q: Window_) -> dict[str, tuple[Queue, ...]]:
    """Each Redis target's queues: first, last and highest length over the window, and their trend."""
    out: dict[str, list[Queue]] = {}
    for labels, points in client.matrix(f"max by (target, queue) ({metrics.REDIS_QUEUE_LENGTH.name})",
                                        q.window.start, q.window.end, q.step):
        if points:
            values = [v for _, v in points]
            out.setdefault(labels.get("target", ""), []).append(
                Queue(labels.get("queue", ""), values[0], values[-1], max(values), _slope(points)))
    return {t: tuple(queues) for t, queues in out.items()}


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def rate_range(client: PrometheusClient, q: Window_) -> int:
    """Seconds of the rate every plot line uses: a tenth of the window, at least two and a half of the daemon's
    scrape intervals (found from its own samples in the window) so that each point has samples, at most 5
    minutes."""
    counted = q.by(f"max(count_over_time({metrics.BUILD_INFO.name}[{q.range}]))", ())
    samples = next(iter(counted.values()), 0.0)
    scrape = q.window.seconds / samples if samples >= 2 else 15.0
    return round(min(300.0, max(q.window.seconds / 10, 2.5 * scrape, 2 * q.step)))


def _plots(client: PrometheusClient, q: Window_, targets: Targets) -> list[Plot]:
    """Time series over the window; the lines of a plot share one rate window, stated with the plot."""
    w = q.window
    seconds = rate_range(client, q)
    rate = f"{seconds}s"
    note = (f"each point: the rate over the {seconds} s before it (every line of this plot); the tables use the "
            f"whole window ({w.seconds:.0f} s)")
    http = metrics.HTTP_REQUEST_DURATION.name

    def series(expr: str, name: str, scale: float = 1.0) -> Series | None:
        found = client.matrix(expr, w.start, w.end, q.step)
        points = [(t, v * scale) for _, pts in found for t, v in pts]
        if not points:
            return None
        merged_points: dict[float, float] = {}
        for t, v in points:
            merged_points[t] = max(v, merged_points.get(t, v))
        return Series(name, sorted(merged_points.items()), f"prometheus: {expr}")

    def quantile_expr(family: str, q_: float) -> str:
        return f"histogram_quantile({q_}, sum by (le) (rate({family}_bucket[{rate}])))"

    plots = []
    lat = [s for s in (series(quantile_expr(http, 0.95), "P95", 1000), series(quantile_expr(http, 0.99), "P99", 1000),
                       series(quantile_expr(http, 0.5), "P50", 1000)) if s]
    plots.append(Plot("api_latency", "API latency percentiles", "ms", lat,
                      [("P95 target", targets.api_latency_p95 * 1000), ("P99 target", targets.api_latency_p99 * 1000)],
                      note=note if lat else "no probe requests in the window"))
    req = metrics.HTTP_REQUESTS.name
    err = series(f"sum(rate({req}{{outcome!=\"success\"}}[{rate}])) / sum(rate({req}[{rate}]))", "error rate")
    hits, misses = metrics.REDIS_HITS.name, metrics.REDIS_MISSES.name
    hit = series(f"sum(rate({hits}[{rate}])) / (sum(rate({hits}[{rate}])) + sum(rate({misses}[{rate}])))",
                 "cache hit rate")
    plots.append(Plot("error_rate", "Error rate", "ratio", [err] if err else [],
                      [("error rate target", targets.error_rate)], note=note if err else "no probe requests"))
    plots.append(Plot("cache_hit_rate", "Cache hit rate", "ratio", [hit] if hit else [],
                      [("hit rate target", targets.cache_hit_rate)], note=note if hit else "no cache lookups"))
    others = [s for s in (series(quantile_expr(metrics.PG_QUERY_DURATION.name, 0.95), "database P95", 1000),
                          series(quantile_expr(metrics.TRACE_DURATION.name, 0.95), "trace P95", 1000)) if s]
    plots.append(Plot("platform_latency", "Database and trace P95", "ms", others,
                      [("DB target", targets.db_query_p95 * 1000), ("trace target", targets.trace_p95 * 1000)],
                      note=note if others else "no database or trace data"))
    return plots
