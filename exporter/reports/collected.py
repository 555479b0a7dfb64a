"""What the collectors measured over a period, as the recommendation rules' facts: the databases and their
statements, the caches, the traces, and each route's breakdown. The same code serves a Prometheus window and a
bench run's readings (:class:`exporter.reports.query.Query`); each figure's source says which."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from exporter import metrics
from exporter.reports.attribution import CacheReads, PathTime, Route, RoutePeriod
from exporter.reports.facts import (
    Cache,
    CacheTtl,
    Database,
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
from exporter.reports.query import Query, label

Sources = dict[str, str]
Sampler = Callable[[tuple[SerialGroup, ...], str], tuple[SerialGroup, ...]]  # serial groups, Jaeger target


def databases(q: Query, sources: Sources) -> tuple[Database, ...]:
    """Each PostgreSQL target: its statements (calls, time, rows, blocks, lock waits, text), the tables read by
    sequential scans, the query P95 with how it was measured, and the server-wide checks."""
    stmt = ("target", "datname", "user", "queryid")
    calls = q.increase(metrics.PG_STATEMENT_CALLS.name, stmt)
    seconds = q.increase(metrics.PG_STATEMENT_EXEC.name, stmt)
    rows = q.increase(metrics.PG_STATEMENT_ROWS.name, stmt)
    blocks = q.increase(metrics.PG_STATEMENT_BLOCKS_HIT.name, stmt)
    for k, v in q.increase(metrics.PG_STATEMENT_BLOCKS_READ.name, stmt).items():
        blocks[k] = blocks.get(k, 0.0) + v
    lock_stmt = q.over_time("max_over_time", metrics.PG_LOCK_WAITING_STATEMENTS.name,
                            ("target", "datname", "queryid"))
    texts = {(label(k, "target"), label(k, "queryid")): label(k, "query")
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
    deadlocks = q.increase(metrics.PG_DB_DEADLOCKS.name, ("target",))
    conns = q.peak_sum(metrics.PG_CONNECTIONS.name, ("target",))
    oldest_q = q.over_time("max_over_time", metrics.PG_OLDEST_QUERY_AGE.name, ("target",))
    oldest_x = q.over_time("max_over_time", metrics.PG_OLDEST_XACT_AGE.name, ("target",))
    idle = q.peak_sum(metrics.PG_IDLE_IN_XACT.name, ("target",))
    waiting = q.peak_sum(metrics.PG_LOCK_WAITING.name, ("target",))
    sources.update(
        statements=q.source(f"increase({metrics.PG_STATEMENT_EXEC.name}[W]), increase("
                            f"{metrics.PG_STATEMENT_CALLS.name}[W]), _rows_total, _shared_blocks_*_total by queryid; "
                            f"text from {metrics.PG_STATEMENT_INFO.name}"),
        tables=q.source(f"increase({metrics.PG_TABLE_SEQ_SCANS.name}[W]), {metrics.PG_PROBE_SEQ_SCAN.name} "
                        "(EXPLAIN of the synthetic queries)"),
        database_checks=q.source("pg_stat_database, pg_stat_activity and pg_locks series over [W]"),
        lock_statements=q.source(f"max_over_time({metrics.PG_LOCK_WAITING_STATEMENTS.name}[W]) by queryid"))
    out = []
    for t in sorted({label(k, "target") for k in (*calls, *pg_h, *probe_h, *blocks_hit, *conns)}):
        statements = tuple(
            Statement(t, label(k, "datname"), label(k, "queryid"), texts.get((t, label(k, "queryid"))), v,
                      seconds.get(k, 0.0), label(k, "user"), rows.get(k), blocks.get(k),
                      lock_stmt.get((("target", t), ("datname", label(k, "datname")),
                                     ("queryid", label(k, "queryid"))), 0.0))
            for k, v in calls.items() if label(k, "target") == t and v > 0)
        tables = tuple(
            Table(t, label(k, "datname"), label(k, "schema"), label(k, "table"), v, seq_rows.get(k, 0.0),
                  idx.get(k, 0.0), live.get(k), dead.get(k))
            for k, v in seq.items() if label(k, "target") == t)
        scans = tuple((label(k, "probe"), label(k, "table")) for k, v in probe_scans.items()
                      if label(k, "target") == t and v >= 1)
        key = (("target", t),)
        hist = pg_h.get(key)
        if key in p95_up or key in p95_low:
            p95: QueryP95 | None = QueryP95(
                p95_est.get(key), "statements-estimate", p95_low.get(key), p95_up.get(key),
                q.source(f"max_over_time({metrics.PG_QUERY_P95.name}[W]); bounds min_over_time("
                         f"{metrics.PG_QUERY_P95_LOWER.name}[W]) .. max_over_time({metrics.PG_QUERY_P95_UPPER.name}"
                         "[W]) (pg_stat_statements' sums)"), p95_low_peak.get(key))
        elif hist is not None and hist.count > 0:
            p95 = QueryP95(hist.quantile(0.95), "statements-approximate", None, None,
                           q.source(f"sum by (le) (increase({metrics.PG_QUERY_DURATION.name}_bucket[W])) (each "
                                    "statement's calls placed at its interval mean)"))
        else:
            p95 = None
        ph = probe_h.get(key)
        synthetic = (QueryP95(ph.quantile(0.95), "synthetic", None, None,
                              q.source(f"sum by (le) (increase({metrics.PG_PROBE_DURATION.name}_bucket[W])) (the "
                                       "configured queries, timed exactly)")) if ph and ph.count > 0 else None)
        out.append(Database(
            t, statements, tables, scans, p95, synthetic, blocks_hit.get(key), blocks_read.get(key),
            conns.get(key), None, oldest_q.get(key), oldest_x.get(key), idle.get(key), waiting.get(key),
            deadlocks.get(key)))
    return tuple(out)


def caches(q: Query, sources: Sources, queues: Mapping[str, tuple[Queue, ...]]) -> tuple[Cache, ...]:
    """Each Redis target: hits, misses, evictions, expiries, memory, the sampled key patterns; ``queues`` come
    from the source (their shape over time)."""
    hits = q.increase(metrics.REDIS_HITS.name, ("target",))
    misses = q.increase(metrics.REDIS_MISSES.name, ("target",))
    evicted = q.increase(metrics.REDIS_EVICTED.name, ("target",))
    expired = q.increase(metrics.REDIS_EXPIRED.name, ("target",))
    mem = q.over_time("max_over_time", metrics.REDIS_MEMORY_USED.name, ("target",))
    mem_max = q.over_time("last_over_time", metrics.REDIS_MEMORY_MAX.name, ("target",))
    pat = ("target", "pattern")
    sampled = q.over_time("last_over_time", metrics.REDIS_PATTERN_SAMPLED.name, pat)
    no_ttl = q.over_time("last_over_time", metrics.REDIS_PATTERN_NO_TTL.name, pat)
    pat_mem = q.over_time("last_over_time", metrics.REDIS_PATTERN_MEMORY.name, pat)
    ttl_h = q.histograms(metrics.REDIS_PATTERN_TTL.name, pat)
    sources.update(
        cache_hits=q.source(f"increase({metrics.REDIS_HITS.name}[W]), increase({metrics.REDIS_MISSES.name}[W])"),
        key_patterns=q.source(f"last_over_time({metrics.REDIS_PATTERN_SAMPLED.name}[W]), "
                              f"{metrics.REDIS_PATTERN_NO_TTL.name}"),
        cache_checks=q.source("Redis INFO series (evicted keys, memory, queue lengths) over [W]"))
    out = []
    for t in sorted({label(k, "target") for k in (*hits, *misses, *sampled)}):
        key = (("target", t),)
        patterns = tuple(KeyPattern(label(k, "pattern"), v, no_ttl.get(k), pat_mem.get(k),
                                    (ttl_h[k].quantile(0.5) if k in ttl_h else None))
                         for k, v in sampled.items() if label(k, "target") == t)
        out.append(Cache(t, hits.get(key), misses.get(key), evicted.get(key), mem.get(key), mem_max.get(key) or None,
                         patterns, queues.get(t, ()), expired.get(key)))
    return tuple(out)


def cache_ttls(q: Query, sources: Sources) -> tuple[CacheTtl, ...]:
    """The mean TTL each traced cache write operation set."""
    family = metrics.TRACE_CACHE_WRITE_TTL.name
    sums = q.increase(f"{family}_sum", ("service", "operation"))
    counts = q.increase(f"{family}_count", ("service", "operation"))
    sources["cache_ttl"] = q.source(f"increase({family}_sum[W]) / _count, and increase({metrics.REDIS_EXPIRED.name}"
                                    "[W])")
    return tuple(CacheTtl(label(k, "service"), label(k, "operation"), sums.get(k, 0.0) / n)
                 for k, n in sorted(counts.items()) if n > 0)


def tracing(q: Query, sources: Sources, targets: Targets, sampler: Sampler | None = None) -> tuple[Tracing, ...]:
    """Each Jaeger target: trace count and P95, the critical path by service, serial siblings (with a sample of
    their children when ``sampler`` reads one), the top operations and the error spans."""
    trace_h = q.histograms(metrics.TRACE_DURATION.name, ("target",))
    crit = q.increase(metrics.TRACE_CRITICAL_PATH.name, ("target", "service"))
    serial_n = q.increase(metrics.TRACE_SERIAL_CHILDREN.name, ("target", "service", "operation"))
    serial_s = q.increase(metrics.TRACE_SERIAL_SAVING.name, ("target", "service", "operation"))
    span_n = q.increase(f"{metrics.TRACE_SPAN_DURATION.name}_count", ("target", "service", "operation"))
    span_s = q.increase(f"{metrics.TRACE_SPAN_DURATION.name}_sum", ("target", "service", "operation"))
    errors = q.increase(metrics.TRACE_ERRORS.name, ("target", "service"))
    sources.update(
        trace_p95=q.source(f"sum by (le) (increase({metrics.TRACE_DURATION.name}_bucket[W]))"),
        critical_path=q.source(f"increase({metrics.TRACE_CRITICAL_PATH.name}[W]) by service"),
        serial=q.source(f"increase({metrics.TRACE_SERIAL_SAVING.name}[W]) by service, operation")
        + ("; children from a sample trace of Jaeger's /api/traces" if sampler else ""),
        trace_errors=q.source(f"increase({metrics.TRACE_ERRORS.name}[W]) by service"))
    out = []
    for key, h in sorted(trace_h.items()):
        t = label(key, "target")
        if h.count <= 0:
            continue
        groups = tuple(SerialGroup(label(k, "service"), label(k, "operation"), v, serial_s.get(k, 0.0))
                       for k, v in serial_n.items() if label(k, "target") == t and v > 0)
        if sampler is not None:
            groups = sampler(groups, t)
        out.append(Tracing(
            t, h.count, h.quantile(0.95), 1 - (h.share_within(targets.trace_p95) or 0.0),
            {label(k, "service"): v for k, v in crit.items() if label(k, "target") == t and v > 0}, groups,
            tuple(SpanTime(label(k, "service"), label(k, "operation"), span_s.get(k, 0.0) / v, v)
                  for k, v in span_n.items() if label(k, "target") == t and v > 0),
            {label(k, "service"): v for k, v in errors.items() if label(k, "target") == t}))
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# Routes: each root operation's traces, by component


RouteKey = tuple[str, str]  # (root service, root operation)


def _root(key: tuple[tuple[str, str], ...]) -> RouteKey:
    return (label(key, "root_service"), label(key, "root_operation"))


def route_periods(q: Query, texts: Mapping[str, str]) -> dict[RouteKey, tuple[list[str], RoutePeriod]]:
    """Per root operation: the Jaeger targets that analysed its traces in ``q``'s period, and what they found
    (summed over those targets). ``texts``: statement fingerprint -> normalised text."""
    analysed = q.increase(metrics.TRACE_ROOT_ANALYSED.name, metrics.TRACE_ROOT)
    seconds = q.increase(metrics.TRACE_PATH_SECONDS.name, metrics.TRACE_PATH_LABELS)
    calls = q.increase(metrics.TRACE_PATH_CALLS.name, metrics.TRACE_PATH_LABELS)
    reads = q.increase(metrics.TRACE_CACHE_READS.name, metrics.TRACE_CACHE_READS.labels)
    origins = q.increase(metrics.TRACE_ERROR_ORIGINS.name, metrics.TRACE_ERROR_ORIGINS.labels)
    traces: dict[RouteKey, float] = {}
    targets: dict[RouteKey, set[str]] = {}
    for key, n in analysed.items():
        traces[_root(key)] = traces.get(_root(key), 0.0) + n
        targets.setdefault(_root(key), set()).add(label(key, "target"))
    component = ("service", "kind", "operation", "statement")
    per_route: dict[RouteKey, dict[tuple[str, ...], list[float]]] = {}
    for table, index in ((seconds, 0), (calls, 1)):
        for key, value in table.items():
            c = tuple(label(key, n) for n in component)
            per_route.setdefault(_root(key), {}).setdefault(c, [0.0, 0.0])[index] += value
    cache_reads: dict[RouteKey, dict[tuple[str, str, str], float]] = {}
    for key, value in reads.items():
        read = (label(key, "service"), label(key, "operation"), label(key, "result"))
        counts = cache_reads.setdefault(_root(key), {})
        counts[read] = counts.get(read, 0.0) + value
    error_origins: dict[RouteKey, dict[str, float]] = {}
    for key, value in origins.items():
        by_service = error_origins.setdefault(_root(key), {})
        by_service[label(key, "service")] = by_service.get(label(key, "service"), 0.0) + value
    out: dict[RouteKey, tuple[list[str], RoutePeriod]] = {}
    for r, n in traces.items():
        if n <= 0:
            continue
        path = tuple(PathTime(service, kind, operation, sums[0] / n, sums[1] / n, statement,
                              texts.get(statement) if statement else None)
                     for (service, kind, operation, statement), sums in sorted(per_route.get(r, {}).items())
                     if sums[0] > 0 or sums[1] > 0)
        period = RoutePeriod(n, path, tuple(CacheReads(*read, count)
                                            for read, count in sorted(cache_reads.get(r, {}).items())),
                             error_origins.get(r, {}))
        out[r] = (sorted(targets.get(r, set())), period)
    return out


def routes(q: Query, base: Query | None, sources: Sources) -> tuple[Route, ...]:
    """The traces of each root operation over ``q``'s period, with ``base``'s (the baseline's) beside them."""
    texts: dict[str, str] = {}
    for period in (base, q):
        if period is not None:
            texts.update({label(k, "statement"): label(k, "query") for k in period.over_time(
                "last_over_time", metrics.TRACE_STATEMENT_INFO.name, ("statement", "query"))})
    now = route_periods(q, texts)
    then = route_periods(base, texts) if base is not None else {}
    names = ("service", "operation")
    p95_now = {(label(k, "service"), label(k, "operation")): h.quantile(0.95)
               for k, h in q.histograms(metrics.TRACE_DURATION.name, names).items()}
    p95_then = ({(label(k, "service"), label(k, "operation")): h.quantile(0.95)
                 for k, h in base.histograms(metrics.TRACE_DURATION.name, names).items()} if base else {})
    sources.update(
        trace_path=q.source(f"increase({metrics.TRACE_PATH_SECONDS.name}[W]) / increase("
                            f"{metrics.TRACE_ROOT_ANALYSED.name}[W]) by root operation and component")
        + (f"; the baseline's: {base.source('[W]')}" if base else ""),
        cache_reads=q.source(f"increase({metrics.TRACE_CACHE_READS.name}[W]) by result"),
        error_origins=q.source(f"increase({metrics.TRACE_ERROR_ORIGINS.name}[W]) by service"))
    return tuple(Route(",".join(targets), service, operation, period,
                       then[(service, operation)][1] if (service, operation) in then else None,
                       p95_now.get((service, operation)), p95_then.get((service, operation)))
                 for (service, operation), (targets, period) in sorted(now.items()))
