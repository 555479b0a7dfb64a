"""What each attributed part of a problem is, in the guide's words: its cause, the fix, and the exact command.

:mod:`exporter.reports.attribution` says how much of an excess each part explains; this module says what the
part *is*. A database part is told apart by what PostgreSQL saw of its statement: one query per item (many calls
per request, each quick), waiting on a lock (sessions seen waiting while running it; little read per call), or
reading whole tables (a table it names was scanned sequentially). Cache and error causes come from what the
traces' cache reads and error spans did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from exporter.collectors.jaeger.breakdown import (
    CACHE,
    DB,
    HIT,
    MISS_FILLED,
    MISS_UNFILLED,
    POOL,
    SELF,
    SERIAL,
    normalize_statement,
)
from exporter.reports.attribution import (
    NETWORK,
    NO_TRACES,
    OUTSIDE,
    TRANSFER,
    Part,
    Route,
)
from exporter.reports.facts import Cache, CacheTtl, Database, Endpoint, Facts, Statement, Table

# Cause kinds.
SERVICE_TIME = "service-time"
SCANNING_STATEMENT = "scanning-statement"
LOCK_WAIT = "lock-wait"
N_PLUS_ONE = "n-plus-one"
SLOW_STATEMENT = "slow-statement"
CACHE_CALLS = "cache-calls"
CONNECTION_POOL = "connection-pool"
SERIAL_CALLS = "serial-calls"
PAYLOAD = "payload"
NETWORK_LATENCY = "network-latency"
UNEXPLAINED = "unexplained"
CACHE_NOT_FILLED = "cache-not-filled"
CACHE_EXPIRY = "cache-expiry"
CACHE_EVICTION = "cache-eviction"
CACHE_COLD = "cache-cold"
SERVICE_ERRORS = "service-errors"
CONNECTIVITY = "connectivity"

N_PLUS_ONE_CALLS = 10.0  # calls of one statement per request from which it is one query per item
LOCK_BLOCKS_PER_CALL = 100.0  # a statement waiting on locks reads little: fewer shared blocks than this per call
LARGE_PAYLOAD_BYTES = 100_000.0


@dataclass(frozen=True)
class Evidence:
    signal: str  # api, traces, database, cache, network
    text: str
    source: str

    def as_json(self) -> dict[str, str]:
        return {"signal": self.signal, "text": self.text, "source": self.source}


@dataclass(frozen=True)
class Cause:
    """A cause found, with what to do about it. ``key`` identifies it across symptoms: one statement slowing two
    endpoints and the database's P95 is one cause."""

    kind: str
    subject: str  # what it is about: a service, a statement's key, a key pattern, an endpoint
    title: str  # the cause, in a few words
    fix: str  # what to do, in the guide's words
    where: str
    command: str | None = None  # the exact SQL or command, when there is one
    evidence: tuple[Evidence, ...] = ()
    statement: tuple[str, str, str] | None = None  # (target, datname, queryid)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)

    @property
    def unexplained(self) -> bool:
        return self.kind == UNEXPLAINED


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    value = seconds * 1000
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def pct(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    value = ratio * 100
    return f"{value:.1f} %" if value >= 1 or value == 0 else f"{value:.2f} %"


def short(text: str | None, limit: int = 120) -> str:
    if not text:
        return "(text not exported)"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def statement_name(s: Statement) -> str:
    """Tells two statements with the same text apart: database, role and query id."""
    return f"{s.datname or '?'}/{s.user or '?'} queryid {s.queryid}"


# ---------------------------------------------------------------------------------------------------------------
# Statements


@lru_cache(maxsize=8192)  # statement_of compares each text with every statement's (pg_stat_statements keeps 5000)
def _comparable(text: str | None) -> str:
    if not text:
        return ""
    flat = text.rstrip()
    cut = flat.endswith("...")  # the collector shortens long texts with "..."
    shape = normalize_statement(flat[:-3] if cut else flat)
    return shape


def statement_of(text: str | None, databases: Sequence[Database]) -> tuple[Statement, Database] | None:
    """The pg_stat_statements entry whose text is ``text`` (a span's normalised statement): the same shape, or
    one a prefix of the other when either was cut short; the one with the most calls when several match."""
    wanted = _comparable(text)
    if not wanted:
        return None
    found: list[tuple[Statement, Database]] = []
    for db in databases:
        for s in db.statements:
            have = _comparable(s.text)
            if have and (have == wanted or (min(len(have), len(wanted)) >= 40
                                            and (have.startswith(wanted) or wanted.startswith(have)))):
                found.append((s, db))
    return max(found, key=lambda x: x[0].calls) if found else None


def scanned_tables(statement: Statement, database: Database | None) -> list[Table]:
    """Tables the statement names that were read by sequential scans in the window (or whose synthetic query's
    plan has a Seq Scan), most rows read first."""
    from exporter.reports.facts import statement_tables

    if database is None:
        return []
    named = statement_tables(statement.text)
    probed = {table.lower() for _, table in database.probe_seq_scans}
    out = []
    for table in database.tables:
        if not any(n in (table.qualified.lower(), table.name.lower()) for n in named):
            continue
        if table.seq_scans > 0 or table.name.lower() in probed or table.qualified.lower() in probed:
            out.append(table)
    return sorted(out, key=lambda t: -t.seq_rows_read)


def filter_column(text: str | None) -> str | None:
    """The first column a statement filters on (``WHERE o.rider_id = $1`` -> ``rider_id``)."""
    import re

    match = re.search(r"\bwhere\s+(?:\w+\.)?(\w+)\s*(?:=|<|>|in\b|like\b)", text or "", re.IGNORECASE)
    return match.group(1) if match else None


def index_advice(statement: Statement, table: Table | None) -> tuple[str, str | None]:
    """The guide's solution for a scanning statement: index the filtered column, with the SQL."""
    column = filter_column(statement.text)
    if table is not None and column:
        return (f"add an index on {table.qualified}({column}), the column it filters on",
                f"CREATE INDEX CONCURRENTLY ON {table.qualified} ({column});")
    if table is not None:
        return f"add indexes on the filter/join columns of {table.qualified}", None
    return "review the statement's plan (EXPLAIN ANALYZE) and add indexes on its filter/join columns", None


BLOCKING_SQL = ("SELECT pid, pg_blocking_pids(pid) AS blocked_by, state, now() - xact_start AS in_transaction, "
                "query FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0 OR pid IN (SELECT "
                "unnest(pg_blocking_pids(pid)) FROM pg_stat_activity);")


def statement_cause(statement: Statement, db: Database, facts: Facts, calls_per_request: float | None = None,
                    seconds_per_request: float | None = None) -> Cause:
    """What makes a statement cost what it does: one query per item, a lock wait, a table scan, or unknown."""
    src = facts.source("statements")
    name = statement_name(statement)
    per_call = statement.mean_s
    blocks = statement.per_call(statement.blocks)
    rows = statement.per_call(statement.rows)
    measured = (f"{name}: {statement.calls:.0f} calls, mean {ms(per_call)}"
                + (f", {blocks:.0f} blocks and {rows:.1f} rows per call" if blocks is not None and rows is not None
                   else "") + f": {short(statement.text, 100)}")
    evidence = [Evidence("database", measured, src)]
    where = f"{db.target} -> {name}"
    if calls_per_request is not None and calls_per_request >= N_PLUS_ONE_CALLS:
        per = f"{calls_per_request:.0f} calls per request"
        evidence.insert(0, Evidence("traces", f"{per}, {ms(seconds_per_request)} per request in all",
                                    facts.source("trace_path")))
        return Cause(N_PLUS_ONE, "/".join(statement.key), f"one query per item: {short(statement.text, 70)} runs "
                     f"{per}", f"optimize the N+1 queries: read all the items in one query (one WHERE on the "
                     f"parent's key, or IN (...)) instead of {per}", where, None, tuple(evidence), statement.key)
    waited_here = statement.lock_waiting > 0
    waited_there = (db.lock_waiting or 0) > 0 and blocks is not None and blocks < LOCK_BLOCKS_PER_CALL
    if waited_here or waited_there:
        if waited_here:
            evidence.append(Evidence("database", f"up to {statement.lock_waiting:.0f} sessions seen waiting on a "
                                     "lock while running it", facts.source("lock_statements")))
        else:
            evidence.append(Evidence("database", f"up to {db.lock_waiting:.0f} sessions waited on locks in the "
                                     f"window, and it reads only {blocks:.0f} blocks per call: its time is waiting, "
                                     "not reading", facts.source("database_checks")))
        if db.idle_in_transaction:
            evidence.append(Evidence("database", f"up to {db.idle_in_transaction:.0f} sessions idle in transaction "
                                     "(holding their locks while doing nothing)", facts.source("database_checks")))
        return Cause(LOCK_WAIT, "/".join(statement.key), f"lock waits: {short(statement.text, 70)} waits for rows "
                     "another transaction holds", "find the transaction that holds the locks it waits for "
                     "(pg_blocking_pids) and shorten it: commit sooner, do no other work inside it", where,
                     BLOCKING_SQL, tuple(evidence), statement.key)
    tables = scanned_tables(statement, db)
    if tables:
        t = tables[0]
        evidence.append(Evidence("database", f"{t.qualified}: {t.seq_scans:.0f} sequential scans reading "
                                 f"{t.seq_rows_read:.0f} rows, {t.idx_scans:.0f} index scans in the window",
                                 facts.source("tables")))
        solution, command = index_advice(statement, t)
        check = next((c for c in db.index_checks if c.command == command), None)
        if check is not None:
            evidence.append(Evidence("database", f"hypopg, {check.command}: cost {check.cost_before:.0f} -> "
                                     f"{check.cost_after:.0f}{'' if check.used else ' (not used)'}",
                                     "hypopg: EXPLAIN of the statement's generic plan without and with a "
                                     "hypothetical index"))
            if check.used and check.cost_after < check.cost_before:
                solution += (f" (hypopg: the plan's cost falls from {check.cost_before:.0f} to "
                             f"{check.cost_after:.0f} with it)")
            else:
                solution = (f"the planner would not use {command} (hypopg: cost {check.cost_before:.0f} -> "
                            f"{check.cost_after:.0f}); review the statement itself (EXPLAIN ANALYZE)")
                command = None
        return Cause(SCANNING_STATEMENT, "/".join(statement.key), f"a slow statement scanning {t.qualified}: "
                     f"{short(statement.text, 70)}", solution, f"{where} -> table {t.qualified}", command,
                     tuple(evidence), statement.key)
    return Cause(SLOW_STATEMENT, "/".join(statement.key), f"a slow statement: {short(statement.text, 70)}",
                 "review its plan (EXPLAIN (ANALYZE, BUFFERS)) for scans, sorts and joins to index or rewrite",
                 where, f"EXPLAIN (ANALYZE, BUFFERS) {statement.text};" if statement.text and "$" not in
                 statement.text else None, tuple(evidence), statement.key)


# ---------------------------------------------------------------------------------------------------------------
# Parts of an endpoint's (or a route's) requests


def _change(part: Part) -> str:
    if part.then_s is None:
        return f"{ms(part.now_s)} per request"
    return f"{ms(part.now_s)} per request, was {ms(part.then_s)} in the baseline"


def part_cause(part: Part, facts: Facts, endpoint: Endpoint | None, route: Route | None) -> Cause:
    """The cause a part of the requests stands for (its service, statement, cache call, ...)."""
    key = part.key
    trace_src = facts.source("trace_path")
    route_name = route.name if route else "its route"
    evidence: tuple[Evidence, ...]
    if key.kind == SELF:
        evidence = (Evidence("traces", f"{key.service} {key.operation} (its own work, on the critical path of "
                             f"{route_name}): {_change(part)}", trace_src),)
        return Cause(SERVICE_TIME, key.service, f"{key.service}'s own work",
                     f"optimize the algorithms of {key.service}, starting with {key.operation}: profile it; the time "
                     "is in its own code, not in the calls it makes", key.service, None, evidence)
    if key.kind == DB:
        found = statement_of(part.text, facts.databases)
        if found is not None:
            statement, db = found
            return statement_cause(statement, db, facts, part.calls_now, part.now_s)
        text = part.text or key.operation
        evidence = (Evidence("traces", f"{key.service} runs {short(text, 90)}: {part.calls_now:.1f} calls, "
                             f"{_change(part)}", trace_src),)
        if part.calls_now >= N_PLUS_ONE_CALLS:
            return Cause(N_PLUS_ONE, f"{key.service}/{key.statement}", f"one query per item: {short(text, 70)} "
                         f"runs {part.calls_now:.0f} calls per request", "optimize the N+1 queries: read all the "
                         "items in one query instead of one per item", f"{key.service} -> {key.operation}", None,
                         evidence)
        return Cause(SLOW_STATEMENT, f"{key.service}/{key.statement}", f"a slow database call: {short(text, 70)}",
                     "review its plan (EXPLAIN (ANALYZE, BUFFERS)); pg_stat_statements has no entry to match it "
                     "(is the database profiled?)", f"{key.service} -> {key.operation}", None, evidence)
    if key.kind == CACHE:
        evidence = (Evidence("traces", f"{key.service} {key.operation}: {part.calls_now:.1f} calls, "
                             f"{_change(part)}", trace_src),)
        return Cause(CACHE_CALLS, f"{key.service}/{key.operation}", f"slow cache calls ({key.operation})",
                     "check the cache server's latency (redis-cli --latency, SLOWLOG GET, INFO latencystats) and "
                     "the network to it", f"{key.service} -> {key.operation}", "redis-cli SLOWLOG GET 10", evidence)
    if key.kind == POOL:
        seen = [Evidence("traces", f"{key.service} waits for a database connection ({key.operation}): "
                         f"{_change(part)}", trace_src)]
        for db in facts.databases:
            if db.connections is not None:
                seen.append(Evidence("database", f"{db.target}: at most {db.connections:.0f} backends in the "
                                         "window" + (f" of {db.max_connections:.0f}" if db.max_connections else ""),
                                         facts.source("database_checks")))
        return Cause(CONNECTION_POOL, key.service, f"waiting for a database connection in {key.service}",
                     f"add connection pooling that fits the load: raise {key.service}'s pool size, or hold a "
                     "connection only around its statements (PgBouncer in transaction mode)",
                     f"{key.service} -> connection pool", None, tuple(seen))
    if key.kind == SERIAL:
        evidence = (Evidence("traces", f"{key.service} {key.operation} calls other services one after another: "
                             f"{_change(part)} on the path that running them side by side would not take",
                             trace_src),)
        return Cause(SERIAL_CALLS, f"{key.service}/{key.operation}", f"serial calls in {key.service} "
                     f"{key.operation}", f"parallelize independent operations: run the remote calls of "
                     f"{key.service} {key.operation} side by side (saves about {ms(part.added_s or part.now_s)} per "
                     "request), if neither needs the other's result", f"{key.service} {key.operation}", None,
                     evidence)
    name = endpoint.name if endpoint else route_name
    if key.kind == TRANSFER:
        size = endpoint.response_bytes if endpoint else None
        sized = f" of {size / 1024:.0f} KB" if size else ""
        evidence = (Evidence("network", f"{name}: sending the request and receiving its answers{sized}: "
                             f"{_change(part)}", facts.source("phases")),)
        if size is not None and size >= LARGE_PAYLOAD_BYTES:
            return Cause(PAYLOAD, "", "large responses, slow to transfer", "reduce payload sizes: paginate or trim "
                         "the answers named below, and compress them (gzip)", "response bodies", None, evidence)
        return Cause(NETWORK_LATENCY, "", "slow transfers between the clients and the gateway",
                     "check the bandwidth between the clients and the gateway; add a CDN for static content",
                     "network", None, evidence)
    if key.kind == NETWORK:
        evidence = (Evidence("network", f"{name}: resolving, connecting and TLS: {_change(part)}",
                             facts.source("phases")),)
        return Cause(NETWORK_LATENCY, "", "network latency (connection set-up)",
                     "add a CDN for static content; move the clients closer to the gateway; reuse connections "
                     "(keep-alive)", "network", None, evidence)
    if key.kind == OUTSIDE:
        return Cause(UNEXPLAINED, name, "time outside the traces (before the gateway's span starts)",
                     "look at the gateway's queueing (accept queue, worker saturation) and the network between the "
                     "client and the gateway; traces start only when the gateway handles the request",
                     f"{name} -> outside the traces", None,
                     (Evidence("api", f"waiting for the first byte minus the traces' duration: {_change(part)}",
                               facts.source("phases")),))
    assert key.kind == NO_TRACES
    return Cause(UNEXPLAINED, name, "the server's time, with no trace of the route to split it",
                 f"look at Jaeger for {route_name}: no trace of it was analysed in the window (is the gateway "
                 "traced, and is a jaeger target configured for it?)", f"{name} -> server", None,
                 (Evidence("api", f"the server's time (waiting for the first byte): {_change(part)}",
                           facts.source("phases")),))


# ---------------------------------------------------------------------------------------------------------------
# Cache misses


def _pattern_of_operation(operation: str, patterns: Sequence[str]) -> str | None:
    """The configured key pattern a cache span's operation (``GET order:{id}``) reads, if one matches."""
    parts = operation.split(" ", 1)
    if len(parts) != 2:
        return None
    key = parts[1]
    for pattern in patterns:
        prefix = pattern.split("*", 1)[0]
        if prefix and key.startswith(prefix):
            return pattern
    return None


def cache_causes(cache: Cache, facts: Facts) -> list[tuple[Cause, float]]:
    """The causes of a cache's misses, each with its share of them: evictions under maxmemory (Redis's own
    count), then what the traces' reads show: misses nothing filled afterwards, misses filled again whose keys
    had expired (a short TTL), and misses of keys never cached before (cold)."""
    misses = cache.misses or 0.0
    if misses <= 0:
        return []
    src_reads = facts.source("cache_reads")
    reads: dict[tuple[str, str], dict[str, float]] = {}
    for route in facts.routes:
        for r in route.window.cache_reads:
            counts = reads.setdefault((r.service, r.operation), {})
            counts[r.result] = counts.get(r.result, 0.0) + r.count
    out: list[tuple[Cause, float]] = []
    evicted = cache.evicted or 0.0
    eviction_share = min(1.0, evicted / misses) if evicted > 0 else 0.0
    if eviction_share >= 0.05:
        out.append((Cause(CACHE_EVICTION, cache.target, f"evictions under maxmemory ({evicted:.0f} keys)",
                          "review the eviction policy and maxmemory (allkeys-lru for a pure cache), or add a Redis "
                          "cluster if the working set does not fit", f"cache {cache.target} -> evictions",
                          "redis-cli CONFIG GET maxmemory*",
                          (Evidence("cache", f"{evicted:.0f} keys evicted, {misses:.0f} misses in the window",
                                    facts.source("cache_hits")),)), eviction_share))
    rest = 1.0 - eviction_share
    traced_misses = {op: n.get(MISS_FILLED, 0.0) + n.get(MISS_UNFILLED, 0.0) for op, n in reads.items()}
    total_traced = sum(traced_misses.values())
    patterns = [p.pattern for p in cache.patterns]
    if total_traced <= 0:
        why = ("the traces show no cache read that missed" if reads else "the traces show no cache reads at all")
        out.append((Cause(UNEXPLAINED, f"cache {cache.target}", f"misses the traces do not show ({why})",
                          "find the callers of the missing keys: sample them (redis-cli --hotkeys / MONITOR for a "
                          "moment) and check that those services are traced", f"cache {cache.target}", None,
                          (Evidence("cache", f"{misses:.0f} misses in Redis; {why}", src_reads),)), rest))
        return out
    for (service, operation), n in sorted(traced_misses.items(), key=lambda kv: -kv[1]):
        if n <= 0:
            continue
        counts = reads[(service, operation)]
        pattern = _pattern_of_operation(operation, patterns) or operation.split(" ", 1)[-1]
        share_here = rest * n / total_traced
        unfilled = counts.get(MISS_UNFILLED, 0.0)
        filled = counts.get(MISS_FILLED, 0.0)
        hits = counts.get(HIT, 0.0)
        seen = (Evidence("traces", f"{service} {operation}: {hits:.0f} hits, {filled:.0f} misses written back "
                         f"after, {unfilled:.0f} misses nothing wrote back", src_reads),)
        where = f"cache {cache.target} -> {pattern}"
        if unfilled > 0:
            out.append((Cause(CACHE_NOT_FILLED, f"{cache.target}/{pattern}", f"{pattern} is not filled after a "
                              "miss: reads miss and nothing writes the key back",
                              f"implement caching (Redis) for {pattern}: write the value back after a miss "
                              "(cache-aside) or when it changes (write-through)", where, None, seen),
                        share_here * unfilled / n))
        if filled > 0:
            ttl = _ttl_of(facts.cache_ttls, service, operation, pattern)
            expired = cache.expired or 0.0
            if ttl is not None and expired > 0:
                evidence = (*seen, Evidence("cache", f"{pattern} is written with a TTL of {ttl:.0f} s; "
                                            f"{expired:.0f} keys expired in the window", facts.source("cache_ttl")))
                out.append((Cause(CACHE_EXPIRY, f"{cache.target}/{pattern}", f"{pattern} expires before it is read "
                                  f"again (TTL {ttl:.0f} s)", f"increase the TTL of {pattern} (stable data): it is "
                                  f"written with {ttl:.0f} s and read again after that", where, None, evidence),
                            share_here * filled / n))
            else:
                out.append((Cause(CACHE_COLD, f"{cache.target}/{pattern}", f"first reads of {pattern} keys not "
                                  "cached yet", f"implement write-through caching for {pattern} so that the first "
                                  "read after a write hits", where, None, seen), share_here * filled / n))
    return out


def _ttl_of(ttls: Sequence[CacheTtl], service: str, read: str, pattern: str) -> float | None:
    """The TTL the writes of the key a read (``GET order:{id}``) reads set: ``SET order:{id}``'s, else any write
    of the service to keys of the pattern."""
    write = f"SET {read.split(' ', 1)[-1]}"
    prefix = pattern.split("*", 1)[0].split("{", 1)[0]
    exact = [t.seconds for t in ttls if t.service == service and t.operation == write]
    if exact:
        return exact[0]
    return next((t.seconds for t in ttls if t.service == service and prefix and prefix in t.operation), None)


# ---------------------------------------------------------------------------------------------------------------
# Errors


def error_causes(failing: Sequence[Endpoint], facts: Facts) -> list[tuple[Cause, float]]:
    """Where the failures of the failing endpoints started, each with its share: the services whose error spans
    had no error below them (in the traces of the endpoints' routes); without such spans, what the probes saw
    (timeouts and connection errors, or 5xx answers)."""
    origins: dict[str, float] = {}
    routes = {(r.service, r.operation): r for r in facts.routes}
    for e in failing:
        route = routes.get(e.route) if e.route else None
        if route is None:
            continue
        for service, n in route.window.error_origins.items():
            origins[service] = origins.get(service, 0.0) + n
    out: list[tuple[Cause, float]] = []
    total = sum(origins.values())
    src = facts.source("error_origins")
    if total > 0:
        for service, n in sorted(origins.items(), key=lambda kv: -kv[1]):
            out.append((Cause(SERVICE_ERRORS, service, f"errors that start in {service}",
                              f"fix the application bugs in {service} (its error spans say where); add a circuit "
                              f"breaker around calls to it", service, None,
                              (Evidence("traces", f"{n:.0f} of the {total:.0f} errors in the failing endpoints' "
                                        f"traces started in {service}", src),)), n / total))
        return out
    timeouts = sum(e.timeouts for e in failing)
    connect = sum(e.connect_errors for e in failing)
    server = sum(e.server_errors for e in failing)
    failed = sum(e.failed for e in failing) or 1.0
    if timeouts + connect > 0:
        out.append((Cause(CONNECTIVITY, "gateway", "timeouts and connection errors reaching the gateway",
                          "implement retry logic with backoff and add circuit breakers; scale the infrastructure "
                          "if it is saturated", "gateway", None,
                          (Evidence("api", f"{timeouts:.0f} timeouts, {connect:.0f} connection errors",
                                    facts.source("api_errors")),)), (timeouts + connect) / failed))
    if server > 0:
        out.append((Cause(UNEXPLAINED, "server errors", "5xx answers with no error span in the traces",
                          "read the gateway's and its services' logs for these 5xx answers; their traces mark no "
                          "error span", "gateway", None,
                          (Evidence("api", f"{server:.0f} 5xx answers", facts.source("api_errors")),)),
                    server / failed))
    return out
