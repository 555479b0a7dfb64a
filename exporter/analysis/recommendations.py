"""Recommendations that point at causes: one pure rule per common issue of the guide, and PgHero-style database
and Redis checks, each reading :class:`~exporter.analysis.recommendations_facts.Facts` of one window.

Priority comes from a stated score: ``score = excess x share``, where ``excess`` is how far past its target the
figure is (``observed / target - 1`` for a ceiling, ``1 - observed / target`` for a floor) and ``share`` the share
of the traffic it affects (requests, lookups, database time or traces). ``score >= 0.5`` is HIGH (the guide's
week 1), ``>= 0.1`` MEDIUM (week 2), anything else LOW. The checks (buffer cache, connections, queues, ...) have
no target of the guide's: they score against their own stated threshold and are capped at MEDIUM.

Each recommendation carries its evidence (with the source of every figure), the guide's diagnosis steps with
what each found, and the guide's solution for the cause found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.analysis.recommendations_facts import (
    ChildSpan,
    Database,
    Endpoint,
    Facts,
    SerialGroup,
    Statement,
    Table,
    Tracing,
    statement_tables,
)

HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"
HIGH_SCORE = 0.5
MEDIUM_SCORE = 0.1
PRIORITY_RULE = ("score = excess x share: excess is how far past the target (observed/target - 1, or "
                 "1 - observed/target for a floor), share the part of the traffic affected; "
                 f"HIGH >= {HIGH_SCORE}, MEDIUM >= {MEDIUM_SCORE}, else LOW; checks without a guide target are "
                 "capped at MEDIUM")

# Thresholds of the checks (PgHero's defaults where it has one).
BUFFER_HIT_MIN = 0.99
CONNECTIONS_MAX_SHARE = 0.8
LONG_QUERY_S = 60.0
LONG_XACT_S = 300.0
DEAD_TUPLES_MAX_SHARE = 0.2
DEAD_TUPLES_MIN = 1000.0
MEMORY_MAX_SHARE = 0.9
EVICTIONS_MAX_SHARE = 0.01
NO_TTL_MAX_SHARE = 0.5
QUEUE_MIN_GROWTH = 100.0


@dataclass(frozen=True)
class Evidence:
    signal: str  # api, traces, database, cache, network
    text: str
    source: str

    def as_json(self) -> dict[str, str]:
        return {"signal": self.signal, "text": self.text, "source": self.source}


@dataclass(frozen=True)
class Step:
    """One of the guide's diagnosis steps for the issue, and what it found in this window."""

    step: str
    found: str

    def as_json(self) -> dict[str, str]:
        return {"step": self.step, "found": self.found}


@dataclass(frozen=True)
class Recommendation:
    type: str
    priority: str
    message: str
    area: str  # api, database, cache, tracing
    issue: str  # the guide's common issue, or the check's name
    score: float
    score_basis: str  # the excess and share the score came from
    where: str  # endpoint, statement, table, key pattern or service
    solution: str
    evidence: tuple[Evidence, ...] = ()
    diagnosis: tuple[Step, ...] = ()
    command: str | None = None  # the exact SQL or command to run, when there is one
    cause: str = ""  # the cause found, in a few words
    statement: tuple[str, str, str] | None = None  # (target, datname, queryid) of the statement it is about

    def as_json(self) -> dict[str, Any]:
        """The guide's three fields first, the rest beside them."""
        out: dict[str, Any] = {"type": self.type, "priority": self.priority, "message": self.message,
                               "area": self.area, "issue": self.issue, "cause": self.cause, "where": self.where,
                               "score": round(self.score, 4), "scoreBasis": self.score_basis,
                               "solution": self.solution,
                               "evidence": [e.as_json() for e in self.evidence],
                               "diagnosis": [s.as_json() for s in self.diagnosis]}
        if self.command:
            out["command"] = self.command
        if self.statement:
            out["statement"] = {"target": self.statement[0], "datname": self.statement[1],
                                "queryid": self.statement[2]}
        return out


def priority(score: float, cap: str | None = None) -> str:
    level = HIGH if score >= HIGH_SCORE else MEDIUM if score >= MEDIUM_SCORE else LOW
    if cap == MEDIUM and level == HIGH:
        return MEDIUM
    return level


def excess_over(observed: float, ceiling: float) -> float:
    return max(0.0, observed / ceiling - 1) if ceiling > 0 else 0.0


def excess_under(observed: float, floor: float) -> float:
    return max(0.0, 1 - observed / floor) if floor > 0 else 0.0


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


def _basis(excess: float, share: float, what: str) -> str:
    return f"excess {excess:.2f} x share {share:.2f} of {what} = {excess * share:.2f}"


# ---------------------------------------------------------------------------------------------------------------
# Links between the signals


def critical_path_shares(tracing: Sequence[Tracing]) -> list[tuple[str, float]]:
    """Services by their share of the traces' critical path, largest first."""
    totals: dict[str, float] = {}
    for t in tracing:
        for service, seconds in t.critical_path_s.items():
            totals[service] = totals.get(service, 0.0) + seconds
    whole = sum(totals.values())
    if whole <= 0:
        return []
    return sorted(((s, v / whole) for s, v in totals.items()), key=lambda x: -x[1])


def top_statements(databases: Sequence[Database], n: int = 5) -> list[Statement]:
    """Statements by the database time they took in the window, most first."""
    statements = [s for db in databases for s in db.statements if s.calls > 0]
    return sorted(statements, key=lambda s: -s.seconds)[:n]


def scanned_tables(statement: Statement, database: Database | None) -> list[Table]:
    """Tables the statement names that were read by sequential scans in the window (or whose synthetic query's
    plan has a Seq Scan), most rows read first."""
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


_FILTER_COLUMN = re.compile(r"\bwhere\s+(?:\w+\.)?(\w+)\s*(?:=|<|>|in\b|like\b)", re.IGNORECASE)


def filter_column(text: str | None) -> str | None:
    """The first column a statement filters on (``WHERE o.rider_id = $1`` -> ``rider_id``)."""
    match = _FILTER_COLUMN.search(text or "")
    return match.group(1) if match else None


def _database_of(statement: Statement, databases: Sequence[Database]) -> Database | None:
    return next((db for db in databases if db.target == statement.target), None)


def _short(text: str | None, limit: int = 120) -> str:
    if not text:
        return "(text not exported)"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def index_advice(statement: Statement, table: Table | None) -> tuple[str, str | None]:
    """The guide's solution for a scanning statement: index the filtered column, with the SQL."""
    column = filter_column(statement.text)
    if table is not None and column:
        return (f"add an index on {table.qualified}({column}), the column it filters on",
                f"CREATE INDEX CONCURRENTLY ON {table.qualified} ({column});")
    if table is not None:
        return f"add an index on the filter/join columns of {table.qualified}", None
    return "review the statement's plan (EXPLAIN ANALYZE) and add indexes on its filter/join columns", None


def chain_kind(children: Sequence[ChildSpan] | None) -> tuple[str, str]:
    """Whether serial siblings can run side by side: ``("cache-aside", why)`` for a cache GET, a read and a cache
    SET of the same key; ``("read-then-write", why)`` for a read then a write of the same table or key;
    ``("independent", why)`` when no such dependency shows; ``("unknown", why)`` without a sample trace."""
    if not children:
        return "unknown", "no sample trace of these siblings was read, so whether they depend on each other is unknown"
    ordered = sorted(children, key=lambda c: c.start_us)
    for i, first in enumerate(ordered):
        if first.system == "redis" and first.command.upper() == "GET" and first.key:
            for later in ordered[i + 1:]:
                if later.system == "redis" and later.command.upper() in ("SET", "SETEX", "PSETEX") \
                        and later.key == first.key:
                    return "cache-aside", (f"a cache-aside read: GET {first.key}, then the data store, then SET of "
                                           f"the same key; each step needs the one before")
            for later in ordered[i + 1:]:
                if later.system and later.system != "redis" and later.command.upper() == "SELECT":
                    return "cache-aside", (f"a cache-aside read: {later.operation} runs only when GET {first.key} "
                                           "missed, so it needs the GET's answer")
    reads = {"GET", "SELECT", "HGET", "HGETALL", "MGET"}
    writes = {"SET", "UPDATE", "INSERT", "DELETE", "DEL", "HSET", "SETEX"}
    for i, first in enumerate(ordered):
        if first.command.upper() in reads and first.key:
            for later in ordered[i + 1:]:
                if later.command.upper() in writes and later.key == first.key:
                    return "read-then-write", (f"{first.operation} reads {first.key} and {later.operation} then "
                                               f"writes it: the write depends on the read")
    return "independent", "the sample trace shows no read-then-write of the same key or table among them"


# ---------------------------------------------------------------------------------------------------------------
# The guide's common issues


def _cause_of_latency(facts: Facts, slow: Sequence[Endpoint]) -> tuple[str, str, str, str | None, list[Evidence],
                                                                        list[Step]]:
    """(cause, where, solution, command, evidence, diagnosis) for slow endpoints, following the guide's steps."""
    evidence: list[Evidence] = []
    steps: list[Step] = []
    worst = slow[0]
    steps.append(Step("Check Grafana for high response times",
                      f"P95 {ms(worst.p95_s)} on {worst.name} (target {ms(facts.targets.p95_for(worst.name))}); "
                      f"{len(slow)} endpoint(s) over their P95 target"))
    shares = critical_path_shares(facts.tracing)
    spans = sorted((s for t in facts.tracing for s in t.spans), key=lambda s: -s.mean_s)
    if shares:
        service, share = shares[0]
        path = ", ".join(f"{s} {pct(v)}" for s, v in shares[:3])
        slowest = next((s for s in spans if s.service == service), spans[0] if spans else None)
        found = f"{service} holds {pct(share)} of the traces' critical path ({path})"
        if slowest is not None:
            found += f"; its slowest operation is {slowest.operation} (mean {ms(slowest.mean_s)})"
        evidence.append(Evidence("traces", found, facts.source("critical_path")))
        if worst.trace_s is not None:
            evidence.append(Evidence("traces", f"{worst.name}'s probe traces last {ms(worst.trace_s)} on average",
                                     facts.source("probe_traces")))
        steps.append(Step("Review Jaeger traces for slow services", found))
    else:
        service, share = "", 0.0
        steps.append(Step("Review Jaeger traces for slow services", "no trace data in the window"))
    statements = top_statements(facts.databases, 1)
    statement = statements[0] if statements else None
    db_found = "no statement data in the window"
    if statement is not None:
        db_found = (f"the most time-consuming statement runs {ms(statement.mean_s)} on average over "
                    f"{statement.calls:.0f} calls: {_short(statement.text, 80)}")
        evidence.append(Evidence("database", db_found, facts.source("statements")))
    steps.append(Step("Check database query times", db_found))
    network = {k: v for k, v in worst.phases_s.items() if k in ("resolve", "connect", "tls")}
    network_s = sum(network.values())
    if worst.phases_s:
        verdict = ("rules network latency in" if worst.p95_s and network_s > 0.5 * worst.p95_s
                   else "rules network latency out")
        net_found = (", ".join(f"{k} {ms(v)}" for k, v in sorted(network.items())) or "no connect phase")
        net_found = f"{net_found} on {worst.name}: {verdict}"
        evidence.append(Evidence("network", net_found, facts.source("phases")))
    else:
        net_found = "no phase timings in the window"
    steps.append(Step("Identify network latency", net_found))

    target = facts.targets.p95_for(worst.name)
    excess_s = (worst.p95_s or 0.0) - target
    if worst.phases_s and worst.p95_s and network_s > 0.5 * worst.p95_s:
        return ("network latency", worst.name, "add a CDN for static content / reduce payload sizes; move the "
                "client closer to the gateway", None, evidence, steps)
    db = _database_of(statement, facts.databases) if statement is not None else None
    # The statement is the cause when it is slow by the database's own target, or takes a quarter of the excess.
    if statement is not None and statement.mean_s is not None and (
            statement.mean_s > facts.targets.db_query_p95 or statement.mean_s >= max(0.25 * excess_s, 0.05)):
        tables = scanned_tables(statement, db)
        solution, command = index_advice(statement, tables[0] if tables else None)
        where = f"{worst.name} -> statement {statement.queryid}"
        if tables:
            where += f" -> table {tables[0].qualified}"
        return "a slow database statement", where, solution, command, evidence, steps
    cache_low = [c for c in facts.caches if c.hit_rate is not None and c.hit_rate < facts.targets.cache_hit_rate]
    if cache_low:
        return ("cache misses", f"{worst.name} -> cache {cache_low[0].target}",
                "implement caching (Redis) for the data it reads; raise the TTL of stable data", None, evidence, steps)
    if service:
        return (f"time in {service}", f"{worst.name} -> {service}",
                f"optimize the algorithms of {service}, which holds most of the critical path", None, evidence,
                steps)
    return "unknown (no trace or statement data)", worst.name, "add database indexes, implement caching, optimize " \
        "algorithms, reduce payload sizes (the guide's list; no signal points at one)", None, evidence, steps


def slow_api_endpoints(facts: Facts) -> list[Recommendation]:
    """The guide's "Slow API endpoints": P95 over target (per endpoint targets honoured), as one finding
    naming the slow endpoints, worst first, with the cause the traces, statements and phases point at."""
    total = facts.total_requests
    slow = [e for e in facts.endpoints
            if e.p95_s is not None and e.requests > 0 and e.p95_s > facts.targets.p95_for(e.name)]
    if not slow or total <= 0:
        return []
    slow.sort(key=lambda e: -excess_over(e.p95_s or 0.0, facts.targets.p95_for(e.name)) * e.requests)
    affected = sum(e.requests for e in slow)
    share = affected / total
    excess = sum(excess_over(e.p95_s or 0.0, facts.targets.p95_for(e.name)) * e.requests for e in slow) / affected
    score = excess * share
    cause, where, solution, command, evidence, steps = _cause_of_latency(facts, slow)
    names = ", ".join(f"{e.name} (P95 {ms(e.p95_s)}, target {ms(facts.targets.p95_for(e.name))})"
                      for e in slow[:5])
    evidence.insert(0, Evidence("api", f"over target: {names}", facts.source("api_latency")))
    message = (f"Slow API endpoints: {names}; {pct(share)} of requests affected. Cause: {cause} ({where}). "
               f"Do: {solution}.")
    return [Recommendation("PERFORMANCE", priority(score), message, "api", "Slow API endpoints", score,
                           _basis(excess, share, "requests"), where, solution, tuple(evidence), tuple(steps),
                           command, cause)]


def high_error_rate(facts: Facts) -> list[Recommendation]:
    """The guide's "High error rate": the share of failed requests over the target."""
    total = facts.total_requests
    failed = sum(e.failed for e in facts.endpoints)
    if total <= 0:
        return []
    rate = failed / total
    target = facts.targets.error_rate
    if rate <= target:
        return []
    failing = sorted((e for e in facts.endpoints if e.failed > 0), key=lambda e: -e.failed)
    excess = excess_over(rate, target)
    share = sum(e.requests for e in failing) / total
    score = excess * share
    server = sum(e.server_errors for e in failing)
    timeouts = sum(e.timeouts for e in failing)
    connect = sum(e.connect_errors for e in failing)
    names = ", ".join(f"{e.name} ({pct(e.failed / e.requests if e.requests else None)} of {e.requests:.0f})"
                      for e in failing[:5])
    evidence = [Evidence("api", f"{failed:.0f} of {total:.0f} requests failed ({pct(rate)}): {names}",
                         facts.source("api_errors")),
                Evidence("api", f"5xx {server:.0f}, timeouts {timeouts:.0f}, connection errors {connect:.0f}",
                         facts.source("api_errors"))]
    error_spans = sorted(((s, n) for t in facts.tracing for s, n in t.errors.items() if n > 0), key=lambda x: -x[1])
    steps = [Step("Check Grafana for error spikes", f"{pct(rate)} of requests failed (target < {pct(target)})")]
    if error_spans:
        found = ", ".join(f"{s}: {n:.0f} error spans" for s, n in error_spans[:3])
        evidence.append(Evidence("traces", found, facts.source("trace_errors")))
        steps.append(Step("Review application logs", f"perf-exporter does not read logs; the traces' error spans "
                                                    f"point at {found}: read those services' logs"))
    else:
        steps.append(Step("Review application logs", "perf-exporter does not read logs; no error spans in traces"))
    saturated = [db for db in facts.databases if db.connections and db.max_connections
                 and db.connections >= CONNECTIONS_MAX_SHARE * db.max_connections]
    if saturated:
        db = saturated[0]
        db_found = f"{db.target}: {db.connections:.0f} of {db.max_connections:.0f} connections in use"
    elif facts.databases:
        db_found = "connections within limits" + (
            "" if any(d.max_connections for d in facts.databases) else " (max_connections not measured)")
    else:
        db_found = "no database collector in the window"
    steps.append(Step("Check database connectivity", db_found))
    steps.append(Step("Verify external service status",
                      f"{connect:.0f} connection errors and {timeouts:.0f} timeouts reaching the gateway"))
    if saturated:
        cause, solution = "connections near max_connections", "add connection pooling (e.g. PgBouncer)"
    elif timeouts + connect > server:
        cause, solution = "timeouts and connection errors", "implement retry logic with backoff and add circuit " \
            "breakers; scale the infrastructure if it is saturated"
    else:
        cause = "server errors (5xx) from the application"
        solution = "fix the application bugs behind the 5xx answers; add circuit breakers around failing calls"
    where = failing[0].name if failing else "all endpoints"
    message = f"High error rate: {pct(rate)} of requests failed (target < {pct(target)}), most on {names}. " \
              f"Cause: {cause}. Do: {solution}."
    return [Recommendation("RELIABILITY", priority(score), message, "api", "High error rate", score,
                           _basis(excess, share, "requests"), where, solution, tuple(evidence), tuple(steps),
                           None, cause)]


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


def low_cache_hit_rate(facts: Facts) -> list[Recommendation]:
    """The guide's "Low cache hit rate": hits / (hits + misses) under the target, with the key pattern behind
    it (the pattern the traces' cache reads go to, its sampled keys and their TTLs)."""
    out = []
    target = facts.targets.cache_hit_rate
    for cache in facts.caches:
        rate = cache.hit_rate
        if rate is None or rate >= target:
            continue
        excess = excess_under(rate, target)
        score = excess * 1.0
        lookups = (cache.hits or 0) + (cache.misses or 0)
        evidence = [Evidence("cache", f"{cache.hits:.0f} hits, {cache.misses:.0f} misses: {pct(rate)} "
                             f"(target > {pct(target)})", facts.source("cache_hits"))]
        names = [p.pattern for p in cache.patterns]
        reads: dict[str, float] = {}
        for t in facts.tracing:
            for span in t.spans:
                if span.operation.upper().startswith("GET "):
                    pattern = _pattern_of_operation(span.operation, names)
                    if pattern:
                        reads[pattern] = reads.get(pattern, 0.0) + span.count
        pattern = max(reads, key=lambda p: reads[p]) if reads else (names[0] if names else None)
        info = next((p for p in cache.patterns if p.pattern == pattern), None)
        steps = [Step("Check Redis hit/miss statistics", evidence[0].text)]
        if pattern and info is not None:
            found = (f"the traces' cache reads go to {pattern} ({reads.get(pattern, 0):.0f} GET spans); "
                     f"{info.sampled or 0:.0f} keys of it sampled, {pct(info.without_ttl)} without TTL")
            evidence.append(Evidence("cache", found, facts.source("key_patterns")))
            steps.append(Step("Review cache key patterns", found))
            ttl = f"median TTL {info.median_ttl_s:.0f} s" if info.median_ttl_s is not None else "no TTL measured"
            steps.append(Step("Analyze TTL settings", f"{pattern}: {ttl}"))
        else:
            steps.append(Step("Review cache key patterns", "no key pattern is configured (key_patterns)"))
            steps.append(Step("Analyze TTL settings", "no key pattern sampled"))
        evicted = cache.evicted or 0.0
        steps.append(Step("Check cache invalidation", f"{evicted:.0f} keys evicted in the window"
                          + (f" (maxmemory {cache.memory_max:.0f} B)" if cache.memory_max else "")))
        if evicted > 0.1 * max(cache.misses or 0, 1):
            cause, solution = "evictions under maxmemory", "review the eviction policy and maxmemory; add a Redis " \
                "cluster if the working set does not fit"
        elif info is not None and (info.sampled or 0) == 0:
            cause = f"{pattern} keys are not in the cache: reads miss and nothing fills them"
            solution = (f"check cache invalidation and the fill path for {pattern}; implement write-through "
                        "caching so the first read after a write hits")
        elif info is not None and info.median_ttl_s is not None and info.median_ttl_s < 60:
            cause = f"{pattern} keys expire within a minute"
            solution = f"increase the TTL of {pattern} (stable data)"
        else:
            cause = f"misses on {pattern}" if pattern else "misses"
            solution = "increase the TTL for stable data, optimize the cache keys, implement write-through caching"
        db_reads = [s for s in top_statements(facts.databases, 5) if (s.text or "").lstrip().upper()
                    .startswith("SELECT")]
        if db_reads:
            evidence.append(Evidence("database", f"the reads reach the database instead: {_short(db_reads[0].text, 80)}"
                                     f" ({db_reads[0].calls:.0f} calls)", facts.source("statements")))
        where = f"cache {cache.target} -> {pattern}" if pattern else f"cache {cache.target}"
        message = (f"Low cache hit rate on {cache.target}: {pct(rate)} of {lookups:.0f} lookups hit (target > "
                   f"{pct(target)}). Cause: {cause}. Do: {solution}.")
        out.append(Recommendation("CACHE", priority(score), message, "cache", "Low cache hit rate", score,
                                  _basis(excess, 1.0, "lookups"), where, solution, tuple(evidence), tuple(steps),
                                  None, cause))
    return out


def slow_database_queries(facts: Facts, run_profiling: str = "") -> list[Recommendation]:
    """The guide's "Slow database queries": the query P95 over the target, or (when it is not decided) a
    statement whose mean alone is over it; names the statement, its calls and the table it scans."""
    out = []
    target = facts.targets.db_query_p95
    for db in facts.databases:
        p95 = db.p95
        over = p95 is not None and p95.value is not None and p95.value > target
        if p95 is not None and p95.method == "statements-estimate" and p95.upper is not None \
                and p95.upper <= target:
            over = False
        slow = [s for s in db.statements if s.mean_s is not None and s.mean_s > target and s.calls > 0]
        if not over and not slow:
            continue
        total_s = sum(s.seconds for s in db.statements) or 1.0
        culprits = sorted(slow or db.statements, key=lambda s: -s.seconds)
        statement = culprits[0]
        share = sum(s.seconds for s in (slow or [statement])) / total_s
        observed = p95.value if over and p95 is not None and p95.value is not None else statement.mean_s or 0.0
        excess = excess_over(observed, target)
        score = excess * min(1.0, share)
        tables = scanned_tables(statement, db)
        solution, command = index_advice(statement, tables[0] if tables else None)
        check = next((c for c in db.index_checks if c.command == command), None)
        if check is not None:
            if check.used and check.cost_after < check.cost_before:
                solution += (f" (hypopg: the plan's cost falls from {check.cost_before:.0f} to "
                             f"{check.cost_after:.0f} with it)")
            else:
                solution = (f"the planner would not use {command} (hypopg: cost {check.cost_before:.0f} -> "
                            f"{check.cost_after:.0f}); review the statement itself (EXPLAIN ANALYZE)")
                command = None
        measured = (f"query P95 {ms(p95.value)} ({p95.method}"
                    + (f", bounds {ms(p95.lower)}..{ms(p95.upper)}" if p95.lower is not None else "") + ")"
                    if p95 is not None else "query P95 not measured")
        evidence = [Evidence("database", f"{measured}; target < {ms(target)}",
                             p95.source if p95 is not None else facts.source("db_p95")),
                    Evidence("database", f"statement {statement.queryid}: mean {ms(statement.mean_s)} over "
                             f"{statement.calls:.0f} calls, {pct(share)} of database time: "
                             f"{_short(statement.text)}", facts.source("statements"))]
        if tables:
            t = tables[0]
            evidence.append(Evidence("database", f"{t.qualified}: {t.seq_scans:.0f} sequential scans reading "
                                     f"{t.seq_rows_read:.0f} rows, {t.idx_scans:.0f} index scans in the window",
                                     facts.source("tables")))
        shares = critical_path_shares(facts.tracing)
        if shares:
            evidence.append(Evidence("traces", f"critical path: {', '.join(f'{s} {pct(v)}' for s, v in shares[:3])}",
                                     facts.source("critical_path")))
        plans = [f"{probe}: Seq Scan on {table}" for probe, table in db.probe_seq_scans]
        if check is not None:
            plans.append(f"hypopg, {check.command}: cost {check.cost_before:.0f} -> {check.cost_after:.0f}"
                         f"{'' if check.used else ' (not used)'}")
            evidence.append(Evidence("database", plans[-1], "hypopg: EXPLAIN of the statement's generic plan "
                                     "without and with a hypothetical index"))
        steps = [Step("Run db-profiling.js benchmark", run_profiling or
                      "not part of this report: perf-exporter bench db-profiling loads the database"),
                 Step("Check pg_stat_statements", evidence[1].text),
                 Step("Review query plans", "; ".join(plans) if plans else
                      "no synthetic query's plan has a Seq Scan (plans are read for the configured queries only)"),
                 Step("Identify table scans", evidence[2].text if tables else
                      "no table the statement names was scanned sequentially in the window")]
        cause = f"statement {statement.queryid}" + (f" scanning {tables[0].qualified}" if tables else "")
        where = f"{db.target} -> statement {statement.queryid}" + (f" -> {tables[0].qualified}" if tables else "")
        message = (f"Slow database queries on {db.target}: {measured} (target < {ms(target)}). The statement "
                   f"behind it: {_short(statement.text, 100)} (mean {ms(statement.mean_s)}, "
                   f"{statement.calls:.0f} calls" + (f", scans {tables[0].qualified}" if tables else "")
                   + f"). Do: {solution}.")
        out.append(Recommendation("DATABASE", priority(score), message, "database", "Slow database queries", score,
                                  _basis(excess, min(1.0, share), "database time"), where, solution,
                                  tuple(evidence), tuple(steps), command, cause,
                                  (statement.target, statement.datname, statement.queryid)))
    return out


def _serial_advice(group: SerialGroup, per_trace_s: float | None) -> tuple[str, str]:
    kind, why = chain_kind(group.sample)
    saving = f" (saves {ms(per_trace_s)} per trace)" if per_trace_s else ""
    if kind in ("cache-aside", "read-then-write"):
        return kind, (f"do not parallelise {group.service} {group.operation}: {why}; make the slow step rarer "
                      "instead (raise the hit rate, speed up the read)")
    if kind == "independent":
        return kind, (f"run the serial siblings of {group.service} {group.operation} side by side{saving}, if "
                      "neither needs the other's result (a sample trace shows no read then write of one key or "
                      "table among them)")
    return kind, (f"check whether the serial siblings of {group.service} {group.operation} depend on each other "
                  f"before running them side by side{saving}: {why}")


def high_trace_duration(facts: Facts) -> list[Recommendation]:
    """The guide's "High trace duration": trace P95 over the target, with the critical path's holders and the
    serial siblings (told apart from chains that cannot run side by side)."""
    out = []
    target = facts.targets.trace_p95
    for t in facts.tracing:
        if t.p95_s is None or t.p95_s <= target:
            continue
        excess = excess_over(t.p95_s, target)
        share = t.share_over_target if t.share_over_target is not None else 1.0
        share = max(share, 0.05)
        score = excess * share
        shares = critical_path_shares([t])
        spans = sorted(t.spans, key=lambda s: -s.mean_s)
        evidence = [Evidence("traces", f"trace P95 {ms(t.p95_s)} over {t.traces:.0f} traces (target < {ms(target)})",
                             facts.source("trace_p95"))]
        path = ", ".join(f"{s} {pct(v)}" for s, v in shares[:3]) or "no critical-path data"
        evidence.append(Evidence("traces", f"critical path: {path}", facts.source("critical_path")))
        serial = sorted(t.serial, key=lambda g: -g.saving_s)
        advice = ""
        steps = [Step("Check Jaeger for slow traces", evidence[0].text),
                 Step("Identify slowest spans", ", ".join(f"{s.service} {s.operation} {ms(s.mean_s)}"
                                                          for s in spans[:3]) or "no span data")]
        steps.append(Step("Check service dependencies", path))
        steps.append(Step("Review network latency", "not measured between services (spans hold no network phase); "
                          "the gateway's connect phase is in the API report"))
        if serial:
            g = serial[0]
            per_trace = g.saving_s / t.traces if t.traces else None
            kind, advice = _serial_advice(g, per_trace)
            evidence.append(Evidence("traces", f"serial siblings under {g.service} {g.operation}: {g.children:.0f}, "
                                     f"{ms(g.saving_s)} in the window if run side by side ({kind})",
                                     facts.source("serial")))
        top = shares[0][0] if shares else (spans[0].service if spans else "")
        solution = advice or (f"optimize {top}, which holds most of the critical path; reduce cross-service calls"
                              if top else "optimize slow services; reduce cross-service calls")
        where = top or t.target
        message = (f"High trace duration on {t.target}: P95 {ms(t.p95_s)} (target < {ms(target)}). "
                   f"Critical path: {path}. Do: {solution}.")
        out.append(Recommendation("TRACING", priority(score), message, "tracing", "High trace duration", score,
                                  _basis(excess, share, "traces"), where, solution, tuple(evidence), tuple(steps),
                                  None, f"time in {top}" if top else "unknown"))
    return out


def serial_siblings(facts: Facts) -> list[Recommendation]:
    """Serial siblings while the trace target holds: advice, LOW, told apart from chains."""
    out = []
    for t in facts.tracing:
        if t.p95_s is not None and t.p95_s > facts.targets.trace_p95:
            continue  # high_trace_duration covers them
        for g in sorted(t.serial, key=lambda g: -g.saving_s)[:3]:
            if g.saving_s <= 0:
                continue
            per_trace = g.saving_s / t.traces if t.traces else None
            kind, advice = _serial_advice(g, per_trace)
            message = (f"Serial execution under {g.service} {g.operation}: {g.children:.0f} siblings ran one after "
                       f"another ({ms(g.saving_s)} in the window). {advice[0].upper()}{advice[1:]}.")
            out.append(Recommendation("TRACING", LOW, message, "tracing", "Serial execution", 0.0,
                                      "trace target met: advice only", f"{g.service} {g.operation}", advice,
                                      (Evidence("traces", message, facts.source("serial")),), (), None, kind))
    return out


# ---------------------------------------------------------------------------------------------------------------
# PgHero-style database checks and Redis checks


def _check(area: str, issue: str, excess: float, basis: str, where: str, message: str, solution: str,
           evidence: Evidence, command: str | None = None) -> Recommendation:
    score = excess
    return Recommendation("DATABASE" if area == "database" else "CACHE", priority(score, MEDIUM), message, area,
                          issue, score, basis, where, solution, (evidence,), (), command, issue)


def database_checks(facts: Facts) -> list[Recommendation]:
    out = []
    src = facts.source("database_checks")
    for db in facts.databases:
        ratio = db.buffer_hit_ratio
        if ratio is not None and ratio < BUFFER_HIT_MIN:
            e = excess_under(ratio, BUFFER_HIT_MIN)
            out.append(_check("database", "Buffer cache hit ratio", e, _basis(e, 1, "block reads"), db.target,
                              f"{db.target}: buffer cache hit ratio {pct(ratio)} (should be > {pct(BUFFER_HIT_MIN)}).",
                              "raise shared_buffers or the server's memory; look for scans of large tables",
                              Evidence("database", f"{db.blocks_hit:.0f} hits, {db.blocks_read:.0f} reads", src)))
        if db.connections is not None and db.max_connections:
            used = db.connections / db.max_connections
            if used >= CONNECTIONS_MAX_SHARE:
                e = excess_over(used, CONNECTIONS_MAX_SHARE)
                out.append(_check("database", "Connections near max_connections", max(e, MEDIUM_SCORE),
                                  _basis(max(e, MEDIUM_SCORE), 1, "connections"), db.target,
                                  f"{db.target}: {db.connections:.0f} of {db.max_connections:.0f} connections used.",
                                  "add connection pooling (PgBouncer) before raising max_connections",
                                  Evidence("database", f"{pct(used)} of max_connections", src)))
        if db.oldest_query_s is not None and db.oldest_query_s > LONG_QUERY_S:
            e = excess_over(db.oldest_query_s, LONG_QUERY_S)
            out.append(_check("database", "Long-running queries", e, _basis(e, 1, "queries"), db.target,
                              f"{db.target}: a query has run {db.oldest_query_s:.0f} s.",
                              "find it and cancel it if it is stuck; add a statement_timeout",
                              Evidence("database", f"oldest active query {db.oldest_query_s:.0f} s", src),
                              "SELECT pid, now() - query_start, query FROM pg_stat_activity WHERE state = 'active' "
                              "ORDER BY query_start LIMIT 5;"))
        if db.oldest_xact_s is not None and db.oldest_xact_s > LONG_XACT_S:
            e = excess_over(db.oldest_xact_s, LONG_XACT_S)
            out.append(_check("database", "Long-running transactions", e, _basis(e, 1, "transactions"), db.target,
                              f"{db.target}: a transaction has been open {db.oldest_xact_s:.0f} s.",
                              "end it; long transactions hold back vacuum and keep locks",
                              Evidence("database", f"oldest transaction {db.oldest_xact_s:.0f} s", src)))
        if db.idle_in_transaction:
            e = MEDIUM_SCORE if db.idle_in_transaction >= 5 else 0.0
            out.append(_check("database", "Idle in transaction", e, "sessions idle in transaction: 5 or more is "
                              "MEDIUM", db.target, f"{db.target}: {db.idle_in_transaction:.0f} sessions idle in "
                              "transaction.", "set idle_in_transaction_session_timeout; commit or roll back promptly",
                              Evidence("database", f"{db.idle_in_transaction:.0f} sessions", src)))
        if db.lock_waiting:
            e = MEDIUM_SCORE
            out.append(_check("database", "Lock waits", e, "any session waiting on a lock is MEDIUM", db.target,
                              f"{db.target}: up to {db.lock_waiting:.0f} sessions waited on locks.",
                              "find the blocking session (pg_blocking_pids) and shorten its transaction",
                              Evidence("database", f"{db.lock_waiting:.0f} waiting sessions", src),
                              "SELECT pid, pg_blocking_pids(pid), query FROM pg_stat_activity "
                              "WHERE cardinality(pg_blocking_pids(pid)) > 0;"))
        for table in db.tables:
            if table.dead is None or table.live is None or table.dead < DEAD_TUPLES_MIN:
                continue
            share = table.dead / (table.dead + table.live)
            if share > DEAD_TUPLES_MAX_SHARE:
                e = excess_over(share, DEAD_TUPLES_MAX_SHARE)
                out.append(_check("database", "Dead tuples", e, _basis(e, 1, "rows"), table.qualified,
                                  f"{table.qualified}: {pct(share)} of its rows are dead ({table.dead:.0f}).",
                                  "vacuum it, and tune autovacuum for this table",
                                  Evidence("database", f"{table.dead:.0f} dead, {table.live:.0f} live", src),
                                  f"VACUUM (ANALYZE) {table.qualified};"))
    return out


def cache_checks(facts: Facts) -> list[Recommendation]:
    out = []
    src = facts.source("cache_checks")
    for cache in facts.caches:
        lookups = (cache.hits or 0) + (cache.misses or 0)
        if cache.evicted and cache.memory_max:
            share = cache.evicted / lookups if lookups else 1.0
            e = excess_over(share, EVICTIONS_MAX_SHARE) if share > EVICTIONS_MAX_SHARE else 0.0
            out.append(_check("cache", "Evictions under maxmemory", e, _basis(e, 1, "lookups"), cache.target,
                              f"{cache.target}: {cache.evicted:.0f} keys evicted under maxmemory in the window.",
                              "raise maxmemory or review the eviction policy (allkeys-lru for a pure cache)",
                              Evidence("cache", f"{cache.evicted:.0f} evictions, {lookups:.0f} lookups", src)))
        if cache.memory_used is not None and cache.memory_max:
            used = cache.memory_used / cache.memory_max
            if used >= MEMORY_MAX_SHARE:
                e = max(excess_over(used, MEMORY_MAX_SHARE), MEDIUM_SCORE)
                out.append(_check("cache", "Memory near its limit", e, _basis(e, 1, "memory"), cache.target,
                                  f"{cache.target}: {pct(used)} of maxmemory used.",
                                  "raise maxmemory, set TTLs on keys that never expire, or add a Redis cluster",
                                  Evidence("cache", f"{cache.memory_used:.0f} of {cache.memory_max:.0f} bytes", src)))
        for p in cache.patterns:
            if p.without_ttl is not None and p.without_ttl > NO_TTL_MAX_SHARE and (p.sampled or 0) > 0:
                out.append(_check("cache", "Keys without TTL", 0.0, "advice: keys without TTL never leave the cache",
                                  p.pattern, f"{cache.target}: {pct(p.without_ttl)} of {p.pattern} keys have no TTL.",
                                  f"set a TTL on {p.pattern} (EXPIRE, or SET ... EX)",
                                  Evidence("cache", f"{p.sampled:.0f} keys sampled", src)))
        for q in cache.queues:
            growth = q.last - q.first
            if growth >= QUEUE_MIN_GROWTH and q.slope_per_s > 0:
                e = min(1.0, growth / max(q.highest, 1.0))
                out.append(_check("cache", "Growing queue", e, _basis(e, 1, "the queue's depth"), q.name,
                                  f"{cache.target}: queue {q.name} grew from {q.first:.0f} to {q.last:.0f} "
                                  f"({q.slope_per_s:.1f}/s).", f"add consumers to {q.name} or speed them up",
                                  Evidence("cache", f"first {q.first:.0f}, highest {q.highest:.0f}, last "
                                           f"{q.last:.0f}", src)))
    return out


RULES: tuple[Callable[[Facts], list[Recommendation]], ...] = (
    slow_api_endpoints, high_error_rate, low_cache_hit_rate, slow_database_queries, high_trace_duration,
    serial_siblings, database_checks, cache_checks)

_ORDER = {HIGH: 0, MEDIUM: 1, LOW: 2}


@dataclass(frozen=True)
class Findings:
    recommendations: list[Recommendation] = field(default_factory=list)

    def top(self, n: int = 3) -> list[Recommendation]:
        """The bottlenecks: the highest-scoring findings of the guide's issues (score > 0)."""
        return [r for r in self.recommendations if r.score > 0][:n]

    def for_area(self, area: str) -> list[Recommendation]:
        return [r for r in self.recommendations if r.area == area]


def recommend(facts: Facts) -> Findings:
    """Every rule over the facts, ranked: priority, then score."""
    found = [r for rule in RULES for r in rule(facts)]
    found.sort(key=lambda r: (_ORDER[r.priority], -r.score))
    return Findings(found)
