"""Report source (a): Prometheus's HTTP API over a window.

Window figures come from ``increase(...[window])`` of the exporter's counters and histogram buckets, evaluated at
the window's end, so a percentile is over every probe request of the window (not an average of 5-minute
percentiles), and a latency target, which is always a bucket bound, is decided exactly by the share of requests
within it. The plots over the window use our recording rules (``rules/*.rules.yml``, names from
:mod:`exporter.slo.rules`) where Prometheus has them, else the same expression inline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from exporter import metrics
from exporter.analysis.load_platform import histogram_quantile
from exporter.analysis.recommendations_facts import (
    Cache,
    Database,
    Endpoint,
    Facts,
    KeyPattern,
    QueryP95,
    Queue,
    SerialGroup,
    SpanTime,
    Statement,
    Table,
    Targets,
    Tracing,
)
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

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]


def _key(labels: Mapping[str, str], names: Iterable[str]) -> Labels:
    return tuple((n, labels.get(n, "")) for n in names)


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


@dataclass
class Histogram:
    """Window bucket counts, count and sum of one label set."""

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


class Window_:
    """Queries over one window: ``[W]`` ranges evaluated at the window's end."""

    def __init__(self, client: PrometheusClient, window: Window) -> None:
        self.client = client
        self.window = window
        self.range = f"{max(1, round(window.seconds))}s"
        self.step = max(1.0, window.seconds / 150)

    def by(self, expr: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        out: Vector = {}
        for labels, value in self.client.vector(expr, self.window.end):
            k = _key(labels, names)
            out[k] = out.get(k, 0.0) + value
        return out

    def increase(self, family: str, names: Iterable[str], matcher: str = "") -> Vector:
        names = tuple(names)
        by = f" by ({', '.join(names)})" if names else ""
        return self.by(f"sum{by} (increase({family}{matcher}[{self.range}]))", names)

    def over_time(self, fn: str, family: str, names: Iterable[str], agg: str = "max") -> Vector:
        names = tuple(names)
        by = f" by ({', '.join(names)})" if names else ""
        return self.by(f"{agg}{by} ({fn}({family}[{self.range}]))", names)

    def histograms(self, family: str, names: Iterable[str]) -> dict[Labels, Histogram]:
        names = tuple(names)
        buckets = self.increase(f"{family}_bucket", (*names, "le"))
        counts = self.increase(f"{family}_count", names)
        sums = self.increase(f"{family}_sum", names)
        grouped: dict[Labels, list[tuple[float, float]]] = {}
        for key, value in buckets.items():
            labels = dict(key)
            le = labels.pop("le")
            grouped.setdefault(_key(labels, names), []).append((math.inf if le == "+Inf" else float(le), value))
        return {k: Histogram(sorted(grouped.get(k, [])), counts.get(k, 0.0), sums.get(k, 0.0)) for k in counts}


def _label(key: Labels, name: str) -> str:
    return dict(key).get(name, "")


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


def _src(expr: str, window: str) -> str:
    return f"prometheus: {expr.replace('[W]', f'[{window}]')}"


def _histogram_figures(h: Histogram | None, source: str, what: str) -> tuple[Figure, Figure, Figure]:
    if h is None or h.count <= 0:
        none = missing("ms", source, f"no {what} in the window")
        return none, none, none
    return (Figure(_ms(h.mean), "ms", source.replace("_bucket", "_sum / _count"), EXACT),
            Figure(_ms(h.quantile(0.95)), "ms", source, BUCKETED),
            Figure(_ms(h.quantile(0.99)), "ms", source, BUCKETED))


def collect(client: PrometheusClient, window: Window, targets: Targets,
            rule_names: Mapping[str, str] | None = None, jaeger_urls: Mapping[str, str] | None = None) -> Observed:
    """Every figure of a report over ``window`` from Prometheus. ``rule_names``: plot key -> recording rule;
    ``jaeger_urls``: Jaeger target name -> its query URL, to read sample traces of the serial groups."""
    if window.seconds <= 0:
        raise ReportError("the window is empty: --from must be before --to")
    client.check()
    q = Window_(client, window)
    # the plots' range queries run beside the window's instant queries: Prometheus answers both at once
    pool = ThreadPoolExecutor(max_workers=1)
    plots_future = pool.submit(_plots, client, q, targets, rule_names or {})
    W = q.range
    notes: list[str] = []
    sources: dict[str, str] = {}

    # -- API ---------------------------------------------------------------------------------------------------
    http = metrics.HTTP_REQUEST_DURATION.name
    ep_names = ("target", "endpoint")
    api_h = q.histograms(http, ep_names)
    outcomes = q.increase(metrics.HTTP_REQUESTS.name, (*ep_names, "outcome"))
    phases = q.over_time("avg_over_time", metrics.HTTP_PHASE_DURATION.name, (*ep_names, "phase"), "max")
    probe_traces = q.over_time("avg_over_time", metrics.TRACE_PROBE_DURATION.name, ("probe_target", "probe"), "max")
    probe_services = q.over_time("max_over_time", metrics.TRACE_PROBE_SERVICES.name, ("probe_target", "probe"))
    sources.update(
        api_latency=_src(f"increase({http}_bucket[W]) by target, endpoint", W),
        api_errors=_src(f"increase({metrics.HTTP_REQUESTS.name}[W]) by outcome", W),
        phases=_src(f"avg_over_time({metrics.HTTP_PHASE_DURATION.name}[W])", W),
        probe_traces=_src(f"avg_over_time({metrics.TRACE_PROBE_DURATION.name}[W])", W))
    endpoints = []
    per_outcome: dict[Labels, dict[str, float]] = {}
    for key, value in outcomes.items():
        labels = dict(key)
        outcome = labels.pop("outcome")
        per_outcome.setdefault(_key(labels, ep_names), {})[outcome] = value
    for key in sorted(set(api_h) | set(per_outcome)):
        h = api_h.get(key)
        counts = per_outcome.get(key, {})
        name = _label(key, "endpoint")
        requests = sum(counts.values()) if counts else (h.count if h else 0.0)
        if requests <= 0:
            continue
        target = _label(key, "target")
        phase = {dict(k)["phase"]: v for k, v in phases.items()
                 if _label(k, "target") == target and _label(k, "endpoint") == name}
        trace_key = (("probe_target", target), ("probe", name))
        endpoints.append(Endpoint(
            target=target, name=name, requests=requests,
            failed=sum(v for o, v in counts.items() if o != "success"),
            server_errors=counts.get("http_5xx", 0.0), timeouts=counts.get("timeout", 0.0),
            connect_errors=counts.get("connect_error", 0.0),
            mean_s=h.mean if h else None, p95_s=h.quantile(0.95) if h else None,
            p99_s=h.quantile(0.99) if h else None,
            share_over_p95_target=(1 - (h.share_within(targets.p95_for(name)) or 0.0)) if h and h.count else None,
            phases_s=phase, trace_s=probe_traces.get(trace_key), trace_services=probe_services.get(trace_key)))
    overrides = set(targets.endpoint_p95)
    overall_p95 = merged(h for k, h in api_h.items() if _label(k, "endpoint") not in overrides)
    overall = merged(api_h.values())
    total_requests = sum(e.requests for e in endpoints)
    failed = sum(e.failed for e in endpoints)
    api_src = _src(f"sum by (le) (increase({http}_bucket[W]))", W)
    mean, p95, p99 = _histogram_figures(overall, api_src, "probe requests")
    _, p95_row, _ = _histogram_figures(overall_p95, api_src + (
        f" (endpoints with their own target left out: {', '.join(sorted(overrides))})" if overrides else ""),
        "probe requests")
    err_src = _src(f"sum(increase({metrics.HTTP_REQUESTS.name}{{outcome!=\"success\"}}[W])) / "
                   f"sum(increase({metrics.HTTP_REQUESTS.name}[W]))", W)
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
    stmt = ("target", "datname", "queryid")
    calls = q.increase(metrics.PG_STATEMENT_CALLS.name, stmt)
    seconds = q.increase(metrics.PG_STATEMENT_EXEC.name, stmt)
    texts = {(_label(k, "target"), _label(k, "queryid")): _label(k, "query")
             for k in q.over_time("last_over_time", metrics.PG_STATEMENT_INFO.name, ("target", "queryid", "query"))}
    tbl = ("target", "datname", "schema", "table")
    seq = q.increase(metrics.PG_TABLE_SEQ_SCANS.name, tbl)
    seq_rows = q.increase(metrics.PG_TABLE_SEQ_TUPLES.name, tbl)
    idx = q.increase(metrics.PG_TABLE_IDX_SCANS.name, tbl)
    live = q.over_time("last_over_time", metrics.PG_TABLE_LIVE.name, tbl)
    dead = q.over_time("last_over_time", metrics.PG_TABLE_DEAD.name, tbl)
    probe_scans = q.over_time("max_over_time", metrics.PG_PROBE_SEQ_SCAN.name, ("target", "probe", "table"))
    p95_est = q.over_time("max_over_time", metrics.PG_QUERY_P95.name, ("target",))
    p95_up = q.over_time("max_over_time", metrics.PG_QUERY_P95_UPPER.name, ("target",))
    p95_low = q.over_time("min_over_time", metrics.PG_QUERY_P95_LOWER.name, ("target",), "min")
    p95_low_peak = q.over_time("max_over_time", metrics.PG_QUERY_P95_LOWER.name, ("target",))
    pg_h = q.histograms(metrics.PG_QUERY_DURATION.name, ("target",))
    probe_h = q.histograms(metrics.PG_PROBE_DURATION.name, ("target",))
    blocks_hit = q.increase(metrics.PG_DB_BLOCKS_HIT.name, ("target",))
    blocks_read = q.increase(metrics.PG_DB_BLOCKS_READ.name, ("target",))
    commits = q.increase(metrics.PG_DB_COMMITS.name, ("target",))
    rollbacks = q.increase(metrics.PG_DB_ROLLBACKS.name, ("target",))
    deadlocks = q.increase(metrics.PG_DB_DEADLOCKS.name, ("target",))
    sub = f"[{W}:{q.step:g}s]"
    conns = q.by(f"max by (target) (max_over_time((sum by (target) ({metrics.PG_CONNECTIONS.name})){sub}))",
                 ("target",))
    oldest_q = q.over_time("max_over_time", metrics.PG_OLDEST_QUERY_AGE.name, ("target",))
    oldest_x = q.over_time("max_over_time", metrics.PG_OLDEST_XACT_AGE.name, ("target",))
    idle = q.by(f"max by (target) (max_over_time((sum by (target) ({metrics.PG_IDLE_IN_XACT.name})){sub}))",
                ("target",))
    waiting = q.by(f"max by (target) (max_over_time((sum by (target) ({metrics.PG_LOCK_WAITING.name})){sub}))",
                   ("target",))
    sources.update(
        statements=_src(f"increase({metrics.PG_STATEMENT_EXEC.name}[W]), increase({metrics.PG_STATEMENT_CALLS.name}"
                        f"[W]) by queryid; text from {metrics.PG_STATEMENT_INFO.name}", W),
        tables=_src(f"increase({metrics.PG_TABLE_SEQ_SCANS.name}[W]), {metrics.PG_PROBE_SEQ_SCAN.name} (EXPLAIN "
                    "of the synthetic queries)", W),
        database_checks=_src("pg_stat_database, pg_stat_activity and pg_locks series over [W]", W))
    db_targets = sorted({_label(k, "target") for k in (*calls, *pg_h, *probe_h, *blocks_hit, *conns)})
    databases = []
    for t in db_targets:
        statements = tuple(
            Statement(t, _label(k, "datname"), _label(k, "queryid"), texts.get((t, _label(k, "queryid"))), v,
                      seconds.get(k, 0.0))
            for k, v in calls.items() if _label(k, "target") == t and v > 0)
        tables = tuple(
            Table(t, _label(k, "datname"), _label(k, "schema"), _label(k, "table"), v, seq_rows.get(k, 0.0),
                  idx.get(k, 0.0), live.get(k), dead.get(k))
            for k, v in seq.items() if _label(k, "target") == t)
        scans = tuple((_label(k, "probe"), _label(k, "table")) for k, v in probe_scans.items()
                      if _label(k, "target") == t and v >= 1)
        key = (("target", t),)
        hist = pg_h.get(key)
        if key in p95_up or key in p95_low:
            p95_db: QueryP95 | None = QueryP95(
                p95_est.get(key), "statements-estimate", p95_low.get(key), p95_up.get(key),
                _src(f"max_over_time({metrics.PG_QUERY_P95.name}[W]); bounds min_over_time("
                     f"{metrics.PG_QUERY_P95_LOWER.name}[W]) .. max_over_time({metrics.PG_QUERY_P95_UPPER.name}"
                     "[W]) (pg_stat_statements' sums)", W))
        elif hist is not None and hist.count > 0:
            p95_db = QueryP95(hist.quantile(0.95), "statements-approximate", None, None,
                              _src(f"sum by (le) (increase({metrics.PG_QUERY_DURATION.name}_bucket[W])) (each "
                                   "statement's calls placed at its interval mean)", W))
        else:
            p95_db = None
        ph = probe_h.get(key)
        synthetic = (QueryP95(ph.quantile(0.95), "synthetic", None, None,
                              _src(f"sum by (le) (increase({metrics.PG_PROBE_DURATION.name}_bucket[W])) (the "
                                   "configured queries, timed exactly)", W)) if ph and ph.count > 0 else None)
        databases.append(Database(
            t, statements, tables, scans, p95_db, synthetic, blocks_hit.get(key),
            blocks_read.get(key), conns.get(key), None, oldest_q.get(key), oldest_x.get(key), idle.get(key),
            waiting.get(key), deadlocks.get(key)))
        notes.append(f"database {t}: max_connections is not exported, so 'connections near max_connections' is "
                     "not checked")
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
                        _ms(p95_low_peak.get((("target", first.target),))))
    else:
        db_p95 = missing("ms", _src(f"{metrics.PG_QUERY_DURATION.name}", W),
                         f"no series {metrics.PG_QUERY_DURATION.name} or {metrics.PG_QUERY_P95.name} in the window")
    hist_all = merged(pg_h.values())
    tx = sum(commits.values()) + sum(rollbacks.values())
    areas["database"] = AreaSummary(
        "database", Figure(db_calls, "count", sources["statements"]),
        Figure(_ms(db_seconds / db_calls) if db_calls else None, "ms", sources["statements"], EXACT,
               "" if db_calls else "no statement calls in the window"),
        db_p95,
        Figure(_ms(hist_all.quantile(0.99)), "ms", _src(f"increase({metrics.PG_QUERY_DURATION.name}_bucket[W])", W),
               APPROXIMATE, "statement means placed in buckets"),
        Figure(sum(rollbacks.values()) / tx if tx else None, "ratio",
               _src(f"increase({metrics.PG_DB_ROLLBACKS.name}[W]) / (commits + rollbacks)", W), EXACT,
               "" if tx else "no transactions in the window"),
        "statement calls (pg_stat_statements)", "transactions rolled back")
    rows["db_query_p95"] = db_p95
    if first is not None and first.synthetic_p95 is not None:
        notes.append(f"database {first.target}: synthetic queries' P95 {_ms(first.synthetic_p95.value)} ms (exact "
                     "timing of the configured queries only)")

    # -- cache -------------------------------------------------------------------------------------------------
    hits = q.increase(metrics.REDIS_HITS.name, ("target",))
    misses = q.increase(metrics.REDIS_MISSES.name, ("target",))
    evicted = q.increase(metrics.REDIS_EVICTED.name, ("target",))
    mem = q.over_time("max_over_time", metrics.REDIS_MEMORY_USED.name, ("target",))
    mem_max = q.over_time("last_over_time", metrics.REDIS_MEMORY_MAX.name, ("target",))
    pat = ("target", "pattern")
    sampled = q.over_time("last_over_time", metrics.REDIS_PATTERN_SAMPLED.name, pat)
    no_ttl = q.over_time("last_over_time", metrics.REDIS_PATTERN_NO_TTL.name, pat)
    pat_mem = q.over_time("last_over_time", metrics.REDIS_PATTERN_MEMORY.name, pat)
    ttl_h = q.histograms(metrics.REDIS_PATTERN_TTL.name, pat)
    queue_series = client.matrix(f"max by (target, queue) ({metrics.REDIS_QUEUE_LENGTH.name})", window.start,
                                 window.end, q.step)
    ping_h = q.histograms(metrics.REDIS_PING.name, ("target",))
    sources.update(
        cache_hits=_src(f"increase({metrics.REDIS_HITS.name}[W]), increase({metrics.REDIS_MISSES.name}[W])", W),
        key_patterns=_src(f"last_over_time({metrics.REDIS_PATTERN_SAMPLED.name}[W]), "
                          f"{metrics.REDIS_PATTERN_NO_TTL.name}", W),
        cache_checks=_src("Redis INFO series (evicted keys, memory, queue lengths) over [W]", W))
    caches = []
    for t in sorted({_label(k, "target") for k in (*hits, *misses, *sampled)}):
        key = (("target", t),)
        patterns = tuple(KeyPattern(_label(k, "pattern"), v, no_ttl.get(k), pat_mem.get(k),
                                    (ttl_h[k].quantile(0.5) if k in ttl_h else None))
                         for k, v in sampled.items() if _label(k, "target") == t)
        queues = []
        for labels, points in queue_series:
            if labels.get("target") != t or not points:
                continue
            values = [v for _, v in points]
            queues.append(Queue(labels.get("queue", ""), values[0], values[-1], max(values), _slope(points)))
        caches.append(Cache(t, hits.get(key), misses.get(key), evicted.get(key), mem.get(key), mem_max.get(key)
                            or None, patterns, tuple(queues)))
    lookups = sum(hits.values()) + sum(misses.values())
    hit_src = _src(f"sum(increase({metrics.REDIS_HITS.name}[W])) / (hits + misses)", W)
    hit_rate = (Figure(sum(hits.values()) / lookups, "ratio", hit_src) if lookups
                else missing("ratio", hit_src, f"no series {metrics.REDIS_HITS.name} with lookups in the window"))
    ping = merged(ping_h.values())
    pmean, pp95, pp99 = _histogram_figures(ping, _src(f"increase({metrics.REDIS_PING.name}_bucket[W])", W),
                                           "PING round trips")
    areas["cache"] = AreaSummary("cache", Figure(lookups, "count", sources["cache_hits"]), pmean, pp95, pp99,
                                 missing("ratio", "redis INFO", "Redis counts no failed lookups"),
                                 "key lookups (hits + misses)", "not measured (response times are PING round "
                                 "trips)")
    rows["cache_hit_rate"] = hit_rate

    # -- tracing -----------------------------------------------------------------------------------------------
    trace_h = q.histograms(metrics.TRACE_DURATION.name, ("target",))
    crit = q.increase(metrics.TRACE_CRITICAL_PATH.name, ("target", "service"))
    serial_n = q.increase(metrics.TRACE_SERIAL_CHILDREN.name, ("target", "service", "operation"))
    serial_s = q.increase(metrics.TRACE_SERIAL_SAVING.name, ("target", "service", "operation"))
    span_n = q.increase(f"{metrics.TRACE_SPAN_DURATION.name}_count", ("target", "service", "operation"))
    span_s = q.increase(f"{metrics.TRACE_SPAN_DURATION.name}_sum", ("target", "service", "operation"))
    errors = q.increase(metrics.TRACE_ERRORS.name, ("target", "service"))
    spans_total = q.increase(f"{metrics.TRACE_SPANS.name}_sum", ("target",))
    sources.update(
        trace_p95=_src(f"sum by (le) (increase({metrics.TRACE_DURATION.name}_bucket[W]))", W),
        critical_path=_src(f"increase({metrics.TRACE_CRITICAL_PATH.name}[W]) by service", W),
        serial=_src(f"increase({metrics.TRACE_SERIAL_SAVING.name}[W]) by service, operation", W)
        + "; children from a sample trace of Jaeger's /api/traces",
        trace_errors=_src(f"increase({metrics.TRACE_ERRORS.name}[W]) by service", W))
    tracing = []
    for key, h in sorted(trace_h.items()):
        t = _label(key, "target")
        if h.count <= 0:
            continue
        groups = tuple(SerialGroup(_label(k, "service"), _label(k, "operation"), v, serial_s.get(k, 0.0))
                       for k, v in serial_n.items() if _label(k, "target") == t and v > 0)
        groups = with_samples(groups, (jaeger_urls or {}).get(t), window.start, window.end)
        tracing.append(Tracing(
            t, h.count, h.quantile(0.95), 1 - (h.share_within(targets.trace_p95) or 0.0),
            {_label(k, "service"): v for k, v in crit.items() if _label(k, "target") == t and v > 0}, groups,
            tuple(SpanTime(_label(k, "service"), _label(k, "operation"), span_s.get(k, 0.0) / v, v)
                  for k, v in span_n.items() if _label(k, "target") == t and v > 0),
            {_label(k, "service"): v for k, v in errors.items() if _label(k, "target") == t}))
    trace_all = merged(trace_h.values())
    tmean, tp95, tp99 = _histogram_figures(trace_all, sources["trace_p95"], "traces")
    n_spans = sum(spans_total.values())
    n_errors = sum(errors.values())
    areas["tracing"] = AreaSummary(
        "tracing", Figure(trace_all.count, "count", sources["trace_p95"]), tmean, tp95, tp99,
        Figure(n_errors / n_spans if n_spans else None, "ratio", sources["trace_errors"] + " / spans", EXACT,
               "" if n_spans else "no spans in the window"), "traces analysed", "spans tagged error")
    rows["trace_p95"] = tp95
    shares["trace_p95"] = trace_all.share_within(targets.trace_p95)

    facts = Facts(window.seconds, targets, tuple(endpoints), tuple(databases), tuple(caches), tuple(tracing),
                  sources)
    try:
        plots = plots_future.result()
    finally:
        pool.shutdown()
    infrastructure = infrastructure_section(lambda expr: client.vector(expr, window.end), window)
    return Observed(facts, window, "prometheus", client.url, areas, rows, shares, plots, [], notes,
                    {"infrastructure": infrastructure})


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def _plots(client: PrometheusClient, q: Window_, targets: Targets, rules: Mapping[str, str]) -> list[Plot]:
    """Time series over the window: the recording rule if Prometheus has it, else the expression inline."""
    w = q.window
    rate = f"{max(60, round(4 * q.step))}s"
    http = metrics.HTTP_REQUEST_DURATION.name

    def series(key: str, fallback: str, name: str, scale: float = 1.0) -> Series | None:
        for expr in ([f"max({rules[key]})"] if key in rules else []) + [fallback]:
            found = client.matrix(expr, w.start, w.end, q.step)
            points = [(t, v * scale) for _, pts in found for t, v in pts]
            if points:
                merged_points: dict[float, float] = {}
                for t, v in points:
                    merged_points[t] = max(v, merged_points.get(t, v))
                return Series(name, sorted(merged_points.items()), f"prometheus: {expr}")
        return None

    def quantile_expr(family: str, q_: float) -> str:
        return f"histogram_quantile({q_}, sum by (le) (rate({family}_bucket[{rate}])))"

    plots = []
    lat = [s for s in (series("api_p95", quantile_expr(http, 0.95), "P95", 1000),
                       series("api_p99", quantile_expr(http, 0.99), "P99", 1000),
                       series("api_p50", quantile_expr(http, 0.5), "P50", 1000)) if s]
    plots.append(Plot("api_latency", "API latency percentiles", "ms", lat,
                      [("P95 target", targets.api_latency_p95 * 1000), ("P99 target", targets.api_latency_p99 * 1000)],
                      note="" if lat else "no probe requests in the window"))
    req = metrics.HTTP_REQUESTS.name
    err = series("error_rate", f"sum(rate({req}{{outcome!=\"success\"}}[{rate}])) / sum(rate({req}[{rate}]))",
                 "error rate")
    hit = series("hit_rate", f"sum(rate({metrics.REDIS_HITS.name}[{rate}])) / (sum(rate({metrics.REDIS_HITS.name}"
                 f"[{rate}])) + sum(rate({metrics.REDIS_MISSES.name}[{rate}])))", "cache hit rate")
    plots.append(Plot("error_rate", "Error rate", "ratio", [err] if err else [],
                      [("error rate target", targets.error_rate)], note="" if err else "no probe requests"))
    plots.append(Plot("cache_hit_rate", "Cache hit rate", "ratio", [hit] if hit else [],
                      [("hit rate target", targets.cache_hit_rate)], note="" if hit else "no cache lookups"))
    others = [s for s in (series("db_p95", quantile_expr(metrics.PG_QUERY_DURATION.name, 0.95), "database P95", 1000),
                          series("trace_p95", quantile_expr(metrics.TRACE_DURATION.name, 0.95), "trace P95", 1000))
              if s]
    plots.append(Plot("platform_latency", "Database and trace P95", "ms", others,
                      [("DB target", targets.db_query_p95 * 1000), ("trace target", targets.trace_p95 * 1000)],
                      note="" if others else "no database or trace data"))
    return plots
