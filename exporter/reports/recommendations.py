"""Recommendations that name the true cause: the guide's "Common Performance Issues" turned into findings, each a
cause with the share of a missed target it explains, its fix and the exact command.

For every target missed in the window, the excess is shared out by magnitude
(:mod:`exporter.reports.attribution` for latency; misses, failures and statement calls for the other targets),
and each part is named (:mod:`exporter.reports.diagnosis`). A cause is named only when it explains at least
``MIN_SHARE`` of an excess, and it says how much; what no cause explains is reported as unexplained, with the
next place to look. One cause behind several symptoms (a statement slowing two endpoints and the database's P95)
is one recommendation listing each symptom with its share.

Priority comes from a stated score: the sum over the symptoms of ``excess x traffic x share``, where ``excess``
is how far past its target the figure is (``observed / target - 1``, or ``1 - observed / target`` for the hit
rate), ``traffic`` the part of the traffic the symptom touches (its requests, lookups, statement calls or
traces) and ``share`` the part of the excess the cause explains. ``score >= 0.5`` is HIGH (the guide's week 1),
``>= 0.1`` MEDIUM (week 2), anything else LOW; unexplained time is never HIGH.

Advice that no missed target calls for (PgHero-style database and Redis checks, serial siblings while the trace
target holds) is **housekeeping**: LOW, listed apart, never a bottleneck. With every target met the report is
quiet: no bottleneck, nothing HIGH or MEDIUM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.reports.attribution import Attribution, Route, attribute
from exporter.reports.diagnosis import (
    UNEXPLAINED,
    Cause,
    Evidence,
    cache_causes,
    error_causes,
    ms,
    part_cause,
    pct,
    short,
    statement_cause,
)
from exporter.reports.facts import (
    ChildSpan,
    Database,
    Endpoint,
    Facts,
    SerialGroup,
    Statement,
    Tracing,
)

HIGH, MEDIUM, LOW = "HIGH", "MEDIUM", "LOW"
HIGH_SCORE = 0.5
MEDIUM_SCORE = 0.1
MIN_SHARE = 0.2  # a cause must explain at least this share of an excess to be named
PRIORITY_RULE = ("score = the sum over the cause's symptoms of excess x traffic x share: excess is how far past "
                 "the target (observed/target - 1, or 1 - observed/target for a floor), traffic the part of the "
                 "traffic the symptom touches, share the part of the excess the cause explains; "
                 f"HIGH >= {HIGH_SCORE}, MEDIUM >= {MEDIUM_SCORE}, else LOW; a cause is named only when it explains "
                 f"{MIN_SHARE:.0%} of an excess or more; unexplained time is at most MEDIUM; housekeeping (advice no "
                 "missed target calls for) is LOW")

# Thresholds of the checks (PgHero's defaults where it has one).
BUFFER_HIT_MIN = 0.99
CONNECTIONS_MAX_SHARE = 0.8
LONG_QUERY_S = 60.0
LONG_XACT_S = 300.0
DEAD_TUPLES_MAX_SHARE = 0.2
DEAD_TUPLES_MIN = 1000.0
MEMORY_MAX_SHARE = 0.9
NO_TTL_MAX_SHARE = 0.5
QUEUE_MIN_GROWTH = 100.0

SLOW_API, ERRORS, LOW_HIT_RATE, SLOW_DB, SLOW_TRACES = (
    "Slow API endpoints", "High error rate", "Low cache hit rate", "Slow database queries", "High trace duration")
AREA = {SLOW_API: "api", ERRORS: "api", LOW_HIT_RATE: "cache", SLOW_DB: "database", SLOW_TRACES: "tracing"}
TYPE = {SLOW_API: "PERFORMANCE", ERRORS: "RELIABILITY", LOW_HIT_RATE: "CACHE", SLOW_DB: "DATABASE",
        SLOW_TRACES: "TRACING"}


@dataclass(frozen=True)
class Step:
    """One of the guide's diagnosis steps for the issue, and what it found in this window."""

    step: str
    found: str

    def as_json(self) -> dict[str, str]:
        return {"step": self.step, "found": self.found}


@dataclass(frozen=True)
class Symptom:
    """A missed target (one endpoint's P95, the error rate, ...) and how much of its excess the cause explains."""

    issue: str  # the guide's common issue
    what: str  # "get_order P95 812 ms (target 500 ms)"
    share: float  # of the excess, 0..1
    explained: str  # "312 ms of its 312 ms excess"
    score: float
    basis: str  # the score's arithmetic
    attributed: str = ""  # what the shares are of

    def as_json(self) -> dict[str, Any]:
        return {"issue": self.issue, "what": self.what, "share": round(self.share, 4), "explained": self.explained,
                "score": round(self.score, 4), "scoreBasis": self.basis, "sharesOf": self.attributed}


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
    kind: str = ""  # the cause's kind (exporter.reports.diagnosis), or the check's
    share: float | None = None  # the largest share of one symptom's excess it explains
    symptoms: tuple[Symptom, ...] = ()
    housekeeping: bool = False  # advice no missed target calls for

    def as_json(self) -> dict[str, Any]:
        """The guide's three fields first, the rest beside them."""
        out: dict[str, Any] = {"type": self.type, "priority": self.priority, "message": self.message,
                               "area": self.area, "issue": self.issue, "cause": self.cause, "causeKind": self.kind,
                               "where": self.where, "score": round(self.score, 4), "scoreBasis": self.score_basis,
                               "solution": self.solution, "housekeeping": self.housekeeping,
                               "evidence": [e.as_json() for e in self.evidence],
                               "diagnosis": [s.as_json() for s in self.diagnosis]}
        if self.share is not None:
            out["share"] = round(self.share, 4)
            out["symptoms"] = [s.as_json() for s in self.symptoms]
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
    if cap == LOW:
        return LOW
    return level


def excess_over(observed: float, ceiling: float) -> float:
    return max(0.0, observed / ceiling - 1) if ceiling > 0 else 0.0


def excess_under(observed: float, floor: float) -> float:
    return max(0.0, 1 - observed / floor) if floor > 0 else 0.0


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


# ---------------------------------------------------------------------------------------------------------------
# Symptoms and their causes


MAX_EVIDENCE = 6


@dataclass
class _Found:
    """A cause with the symptoms it explains, as the rules find them, and the evidence of each."""

    cause: Cause
    symptoms: list[Symptom] = field(default_factory=list)
    diagnosis: dict[str, tuple[Step, ...]] = field(default_factory=dict)  # issue -> the guide's steps
    evidence: list[Evidence] = field(default_factory=list)


Found = dict[tuple[str, str], _Found]


def _add(found: Found, cause: Cause, symptom: Symptom, steps: tuple[Step, ...]) -> None:
    entry = found.get(cause.key)
    if entry is None:
        entry = found[cause.key] = _Found(cause)
    entry.symptoms.append(symptom)
    entry.diagnosis.setdefault(symptom.issue, steps)
    for e in cause.evidence:
        if e not in entry.evidence and len(entry.evidence) < MAX_EVIDENCE:
            entry.evidence.append(e)


def _symptom(issue: str, what: str, share: float, excess: float, traffic: float, traffic_of: str,
             explained: str, attributed: str = "") -> Symptom:
    score = excess * traffic * share
    basis = f"excess {excess:.2f} x traffic {traffic:.2f} of {traffic_of} x share {share:.2f} = {score:.2f}"
    return Symptom(issue, what, share, explained, score, basis, attributed)


def _routes(facts: Facts) -> dict[tuple[str, str], Route]:
    return {(r.service, r.operation): r for r in facts.routes}


def attributions(facts: Facts) -> list[tuple[Endpoint, Attribution]]:
    """Every endpoint over its P95 target, with its excess shared out over the parts of its requests."""
    routes = _routes(facts)
    out = []
    for e in facts.endpoints:
        target = facts.targets.p95_for(e.name)
        if e.p95_s is None or e.requests <= 0 or e.p95_s <= target:
            continue
        route = routes.get(e.route) if e.route else None
        out.append((e, attribute(e.name, e.target, e.p95_s, target, e.phases_s, route, e.baseline_phases_s,
                                 e.baseline_p95_s)))
    return out


def _latency_steps(facts: Facts, e: Endpoint, a: Attribution, causes: list[tuple[Cause, float]]) -> tuple[Step, ...]:
    trace_parts = [(c, s) for c, s in causes if c.kind not in ("network-latency", "payload", UNEXPLAINED)]
    db_parts = [(c, s) for c, s in causes if c.statement is not None or c.kind in ("slow-statement",)]
    net = [(c, s) for c, s in causes if c.kind in ("network-latency", "payload")]
    return (
        Step("Check Grafana for high response times", f"{e.name}: P95 {ms(e.p95_s)} against {ms(a.target_s)}"),
        Step("Review Jaeger traces for slow services",
             "; ".join(f"{c.title}: {pct(s)} of the excess" for c, s in trace_parts[:3])
             or (f"no trace of {a.route} explains it" if a.route else "no trace of its route was analysed")),
        Step("Check database query times",
             "; ".join(f"{c.title}: {pct(s)}" for c, s in db_parts[:2]) or "no database call explains it"),
        Step("Identify network latency",
             "; ".join(f"{c.title}: {pct(s)}" for c, s in net) or "the network explains none of it"))


def slow_endpoints(facts: Facts, found: Found) -> None:
    """The guide's "Slow API endpoints": each endpoint over its P95 target, its excess attributed."""
    total = facts.total_requests
    routes = _routes(facts)
    for e, a in attributions(facts):
        route = routes.get(e.route) if e.route else None
        excess = excess_over(e.p95_s or 0.0, a.target_s)
        traffic = e.requests / total if total > 0 else 1.0
        causes = [(part_cause(p, facts, e, route), p.share) for p in a.parts]
        merged: dict[tuple[str, str], tuple[Cause, float]] = {}
        for cause, share in causes:  # the largest part first: its cause stands for the others of the same key
            seen = merged.get(cause.key)
            merged[cause.key] = (seen[0], seen[1] + share) if seen else (cause, share)
        ranked = sorted(merged.values(), key=lambda cs: -cs[1])
        steps = _latency_steps(facts, e, a, ranked)
        what = f"{e.name} P95 {ms(e.p95_s)} (target {ms(a.target_s)})"
        for cause, share in ranked:
            if share < MIN_SHARE:
                continue
            explained = f"{ms(share * a.excess_s)} of its {ms(a.excess_s)} excess"
            _add(found, cause, _symptom(SLOW_API, what, share, excess, traffic, "requests", explained, a.basis),
                 steps)


def slow_traces(facts: Facts, found: Found) -> None:
    """The guide's "High trace duration": each route whose traces' P95 is over the target, its excess attributed
    along its traces' critical path."""
    target = facts.targets.trace_p95
    routes = [r for r in facts.routes if r.p95_s is not None and r.p95_s > target]
    total = sum(r.window.traces for r in facts.routes) or 1.0
    for r in routes:
        assert r.p95_s is not None
        a = attribute(r.name, r.target, r.p95_s, target, {}, r, {} if r.baseline else None, r.baseline_p95_s)
        excess = excess_over(r.p95_s, target)
        traffic = r.window.traces / total
        what = f"{r.name} trace P95 {ms(r.p95_s)} (target {ms(target)})"
        causes = [(part_cause(p, facts, None, r), p.share) for p in a.parts]
        steps = (Step("Check Jaeger for slow traces", what),
                 Step("Identify slowest spans", "; ".join(f"{c.title}: {pct(s)}" for c, s in causes[:3])),
                 Step("Check service dependencies", ", ".join(sorted({p.key.service for p in a.parts
                                                                     if p.key.service}))),
                 Step("Review network latency", "not measured between services (spans hold no network phase)"))
        for cause, share in causes:
            if share < MIN_SHARE:
                continue
            _add(found, cause, _symptom(SLOW_TRACES, what, share, excess, traffic, "traces",
                                        f"{ms(share * a.excess_s)} of its {ms(a.excess_s)} excess", a.basis), steps)


def high_error_rate(facts: Facts, found: Found) -> None:
    """The guide's "High error rate": the share of failed requests over the target, by where failures started."""
    total = facts.total_requests
    failed = sum(e.failed for e in facts.endpoints)
    target = facts.targets.error_rate
    if total <= 0 or failed / total <= target:
        return
    rate = failed / total
    failing = sorted((e for e in facts.endpoints if e.failed > 0), key=lambda e: -e.failed)
    excess = excess_over(rate, target)
    traffic = sum(e.requests for e in failing) / total
    names = ", ".join(f"{e.name} ({pct(e.failed / e.requests if e.requests else None)})" for e in failing[:5])
    what = f"error rate {pct(rate)} (target < {pct(target)}): {names}"
    causes = error_causes(failing, facts)
    saturated = [db for db in facts.databases if db.connections and db.max_connections
                 and db.connections >= CONNECTIONS_MAX_SHARE * db.max_connections]
    steps = (Step("Check Grafana for error spikes", what),
             Step("Review application logs", "perf-exporter reads no logs; the traces' error spans point at "
                  + (", ".join(c.subject for c, _ in causes[:3]) or "nothing")),
             Step("Check database connectivity",
                  f"{saturated[0].target}: {saturated[0].connections:.0f} of {saturated[0].max_connections:.0f} "
                  "connections in use" if saturated else "connections within limits" if facts.databases
                  else "no database collector in the window"),
             Step("Verify external service status", f"{sum(e.connect_errors for e in failing):.0f} connection "
                  f"errors and {sum(e.timeouts for e in failing):.0f} timeouts reaching the gateway"))
    if not causes:
        causes = [(Cause(UNEXPLAINED, "errors", "failures with no cause in the traces or the probes' outcomes",
                         "read the gateway's logs for the failed requests", "gateway"), 1.0)]
    for cause, share in causes:
        if share < MIN_SHARE:
            continue
        _add(found, cause, _symptom(ERRORS, what, share, excess, traffic, "requests",
                                    f"{pct(share)} of the failures", "the failures of the failing endpoints"), steps)


def low_cache_hit_rate(facts: Facts, found: Found) -> None:
    """The guide's "Low cache hit rate": hits / lookups under the target, by why the reads missed."""
    target = facts.targets.cache_hit_rate
    for cache in facts.caches:
        rate = cache.hit_rate
        if rate is None or rate >= target:
            continue
        excess = excess_under(rate, target)
        lookups = (cache.hits or 0.0) + (cache.misses or 0.0)
        what = f"{cache.target}: hit rate {pct(rate)} of {lookups:.0f} lookups (target > {pct(target)})"
        causes = cache_causes(cache, facts)
        ttl = ", ".join(f"{t.operation} {t.seconds:.0f} s" for t in facts.cache_ttls) or "no TTL seen in traces"
        steps = (Step("Check Redis hit/miss statistics", f"{cache.hits:.0f} hits, {cache.misses:.0f} misses"),
                 Step("Review cache key patterns", "; ".join(f"{c.title}: {pct(s)} of the misses"
                                                             for c, s in causes[:3]) or "no traced reads"),
                 Step("Analyze TTL settings", f"TTLs the traces' writes set: {ttl}; {cache.expired or 0:.0f} keys "
                      "expired in the window"),
                 Step("Check cache invalidation", f"{cache.evicted or 0:.0f} keys evicted in the window"))
        for cause, share in causes:
            if share < MIN_SHARE:
                continue
            _add(found, cause, _symptom(LOW_HIT_RATE, what, share, excess, 1.0, "lookups",
                                        f"{pct(share)} of the misses", "the cache's misses"), steps)


def slow_database_queries(facts: Facts, found: Found) -> None:
    """The guide's "Slow database queries": the query P95 over the target, by the statements whose calls are
    slower than it (each with its share of those calls), told apart by what makes them slow."""
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
        observed = p95.value if over and p95 is not None and p95.value is not None else max(
            s.mean_s or 0.0 for s in slow)
        excess = excess_over(observed, target)
        measured = (f"query P95 {ms(p95.value)} ({p95.method}"
                    + (f", bounds {ms(p95.lower)}..{ms(p95.upper)}" if p95.lower is not None else "") + ")"
                    if p95 is not None and over else f"statement means up to {ms(observed)}")
        what = f"{db.target} {measured} (target {ms(target)})"
        plans = "; ".join(f"{probe}: Seq Scan on {table}" for probe, table in db.probe_seq_scans)
        if not slow:
            top = top_statements([db], 3)
            cause = Cause(UNEXPLAINED, f"{db.target}/p95", "slow calls spread over statements whose means are "
                          "under the target", "look at the statements' slowest calls (max_exec_time, stddev in "
                          "pg_stat_statements) and at lock waits", f"{db.target}",
                          "SELECT queryid, calls, mean_exec_time, max_exec_time, stddev_exec_time, query FROM "
                          "pg_stat_statements ORDER BY max_exec_time DESC LIMIT 10;",
                          tuple(Evidence("database", f"{short(s.text, 80)}: mean {ms(s.mean_s)}",
                                         facts.source("statements")) for s in top))
            steps = _db_steps(what, top, plans)
            _add(found, cause, _symptom(SLOW_DB, what, 1.0, excess, 1.0, "statement calls",
                                        "all of it", "the slow statements' calls"), steps)
            continue
        slow_calls = sum(s.calls for s in slow)
        all_calls = sum(s.calls for s in db.statements) or slow_calls
        steps = _db_steps(what, slow, plans)
        for s in sorted(slow, key=lambda s: -s.calls):
            share = s.calls / slow_calls
            if share < MIN_SHARE:
                continue
            cause = statement_cause(s, db, facts)
            _add(found, cause, _symptom(SLOW_DB, what, share, excess, slow_calls / all_calls, "statement calls",
                                        f"{pct(share)} of the calls slower than the target",
                                        "the calls of statements whose mean is over the target"), steps)


def _db_steps(what: str, statements: Sequence[Statement], plans: str) -> tuple[Step, ...]:
    listed = "; ".join(f"queryid {s.queryid}: {s.calls:.0f} calls, mean {ms(s.mean_s)}" for s in statements[:3])
    return (Step("Run db-profiling.js benchmark", "not part of this report: perf-exporter bench db-profiling loads "
                 "the database"),
            Step("Check pg_stat_statements", f"{what}; {listed}"),
            Step("Review query plans", plans or "no synthetic query's plan has a Seq Scan (plans are read for the "
                 "configured queries only)"),
            Step("Identify table scans", "see each statement's evidence"))


def _recommendation(entry: _Found) -> Recommendation:
    cause = entry.cause
    symptoms = sorted(entry.symptoms, key=lambda s: -s.score)
    first = symptoms[0]
    score = sum(s.score for s in symptoms)
    share = max(s.share for s in symptoms)
    issue = first.issue
    level = priority(score, MEDIUM if cause.unexplained else None)
    told = "; ".join(f"{s.what}: {pct(s.share)} ({s.explained})" for s in symptoms[:4])
    more = f"; and {len(symptoms) - 4} more" if len(symptoms) > 4 else ""
    lead = "Unexplained" if cause.unexplained else "Cause"
    message = f"{lead}: {cause.title}. Explains {told}{more}. Do: {cause.fix}."
    basis = " + ".join(s.basis for s in symptoms[:4]) + (f" + {len(symptoms) - 4} more" if len(symptoms) > 4 else "")
    steps = entry.diagnosis[issue]
    return Recommendation(TYPE[issue], level, message, AREA[issue], issue, score, basis, cause.where, cause.fix,
                          tuple(entry.evidence), steps, cause.command, cause.title, cause.statement, cause.kind,
                          share, tuple(symptoms))


# ---------------------------------------------------------------------------------------------------------------
# Housekeeping: advice no missed target calls for


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


def serial_advice(group: SerialGroup, per_trace_s: float | None) -> tuple[str, str]:
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


def _housekeeping(area: str, issue: str, size: float, basis: str, where: str, message: str, solution: str,
                  evidence: Evidence, command: str | None = None, kind: str = "") -> Recommendation:
    return Recommendation({"database": "DATABASE", "cache": "CACHE"}.get(area, "TRACING"), LOW, message, area,
                          issue, size, basis, where, solution, (evidence,), (), command, issue, None,
                          kind or issue.lower().replace(" ", "-"), housekeeping=True)


def serial_siblings(facts: Facts) -> list[Recommendation]:
    """Serial siblings: the largest three groups, told apart from chains."""
    out = []
    for t in facts.tracing:
        for g in sorted(t.serial, key=lambda g: -g.saving_s)[:3]:
            if g.saving_s <= 0:
                continue
            per_trace = g.saving_s / t.traces if t.traces else None
            kind, advice = serial_advice(g, per_trace)
            message = (f"Serial execution under {g.service} {g.operation}: {g.children:.0f} siblings ran one after "
                       f"another ({ms(g.saving_s)} in the window).")
            out.append(_housekeeping("tracing", "Serial execution", g.saving_s, "no target missed: advice only",
                                     f"{g.service} {g.operation}", message, advice,
                                     Evidence("traces", f"{g.children:.0f} serial siblings, {ms(g.saving_s)} in "
                                              "the window", facts.source("serial")), None, kind))
    return out


def database_checks(facts: Facts) -> list[Recommendation]:
    """PgHero's checks, each against its own threshold: housekeeping."""
    out = []
    src = facts.source("database_checks")
    for db in facts.databases:
        ratio = db.buffer_hit_ratio
        if ratio is not None and ratio < BUFFER_HIT_MIN:
            e = excess_under(ratio, BUFFER_HIT_MIN)
            out.append(_housekeeping("database", "Buffer cache hit ratio", e, f"{pct(ratio)} against "
                                     f"{pct(BUFFER_HIT_MIN)}", db.target,
                                     f"{db.target}: buffer cache hit ratio {pct(ratio)} (should be > "
                                     f"{pct(BUFFER_HIT_MIN)}).",
                                     "raise shared_buffers or the server's memory; look for scans of large tables",
                                     Evidence("database", f"{db.blocks_hit:.0f} hits, {db.blocks_read:.0f} reads",
                                              src)))
        if db.connections is not None and db.max_connections:
            used = db.connections / db.max_connections
            if used >= CONNECTIONS_MAX_SHARE:
                out.append(_housekeeping("database", "Connections near max_connections", used,
                                         f"{pct(used)} against {pct(CONNECTIONS_MAX_SHARE)}", db.target,
                                         f"{db.target}: {db.connections:.0f} of {db.max_connections:.0f} "
                                         "connections used.",
                                         "add connection pooling (PgBouncer) before raising max_connections",
                                         Evidence("database", f"{pct(used)} of max_connections", src)))
        if db.oldest_query_s is not None and db.oldest_query_s > LONG_QUERY_S:
            out.append(_housekeeping("database", "Long-running queries", db.oldest_query_s / LONG_QUERY_S,
                                     f"{db.oldest_query_s:.0f} s against {LONG_QUERY_S:.0f} s", db.target,
                                     f"{db.target}: a query has run {db.oldest_query_s:.0f} s.",
                                     "find it and cancel it if it is stuck; add a statement_timeout",
                                     Evidence("database", f"oldest active query {db.oldest_query_s:.0f} s", src),
                                     "SELECT pid, now() - query_start, query FROM pg_stat_activity WHERE state = "
                                     "'active' ORDER BY query_start LIMIT 5;"))
        if db.oldest_xact_s is not None and db.oldest_xact_s > LONG_XACT_S:
            out.append(_housekeeping("database", "Long-running transactions", db.oldest_xact_s / LONG_XACT_S,
                                     f"{db.oldest_xact_s:.0f} s against {LONG_XACT_S:.0f} s", db.target,
                                     f"{db.target}: a transaction has been open {db.oldest_xact_s:.0f} s.",
                                     "end it; long transactions hold back vacuum and keep locks",
                                     Evidence("database", f"oldest transaction {db.oldest_xact_s:.0f} s", src)))
        if db.idle_in_transaction:
            out.append(_housekeeping("database", "Idle in transaction", db.idle_in_transaction,
                                     f"{db.idle_in_transaction:.0f} sessions", db.target,
                                     f"{db.target}: {db.idle_in_transaction:.0f} sessions idle in transaction.",
                                     "set idle_in_transaction_session_timeout; commit or roll back promptly",
                                     Evidence("database", f"{db.idle_in_transaction:.0f} sessions", src)))
        if db.lock_waiting:
            out.append(_housekeeping("database", "Lock waits", db.lock_waiting, f"{db.lock_waiting:.0f} sessions",
                                     db.target, f"{db.target}: up to {db.lock_waiting:.0f} sessions waited on locks.",
                                     "find the blocking session (pg_blocking_pids) and shorten its transaction",
                                     Evidence("database", f"{db.lock_waiting:.0f} waiting sessions", src),
                                     "SELECT pid, pg_blocking_pids(pid), query FROM pg_stat_activity "
                                     "WHERE cardinality(pg_blocking_pids(pid)) > 0;"))
        for table in db.tables:
            if table.dead is None or table.live is None or table.dead < DEAD_TUPLES_MIN:
                continue
            share = table.dead / (table.dead + table.live)
            if share > DEAD_TUPLES_MAX_SHARE:
                out.append(_housekeeping("database", "Dead tuples", share, f"{pct(share)} against "
                                         f"{pct(DEAD_TUPLES_MAX_SHARE)}", table.qualified,
                                         f"{table.qualified}: {pct(share)} of its rows are dead ({table.dead:.0f}).",
                                         "vacuum it, and tune autovacuum for this table",
                                         Evidence("database", f"{table.dead:.0f} dead, {table.live:.0f} live", src),
                                         f"VACUUM (ANALYZE) {table.qualified};"))
    return out


def cache_checks(facts: Facts) -> list[Recommendation]:
    """Redis checks: evictions, memory, keys without TTL, growing queues: housekeeping."""
    out = []
    src = facts.source("cache_checks")
    for cache in facts.caches:
        lookups = (cache.hits or 0) + (cache.misses or 0)
        if cache.evicted and cache.memory_max:
            share = cache.evicted / lookups if lookups else 1.0
            out.append(_housekeeping("cache", "Evictions under maxmemory", share, f"{pct(share)} of lookups",
                                     cache.target, f"{cache.target}: {cache.evicted:.0f} keys evicted under "
                                     "maxmemory in the window.",
                                     "raise maxmemory or review the eviction policy (allkeys-lru for a pure cache)",
                                     Evidence("cache", f"{cache.evicted:.0f} evictions, {lookups:.0f} lookups",
                                              src)))
        if cache.memory_used is not None and cache.memory_max:
            used = cache.memory_used / cache.memory_max
            if used >= MEMORY_MAX_SHARE:
                out.append(_housekeeping("cache", "Memory near its limit", used, f"{pct(used)} of maxmemory",
                                         cache.target, f"{cache.target}: {pct(used)} of maxmemory used.",
                                         "raise maxmemory, set TTLs on keys that never expire, or add a Redis "
                                         "cluster", Evidence("cache", f"{cache.memory_used:.0f} of "
                                                                      f"{cache.memory_max:.0f} bytes", src)))
        for p in cache.patterns:
            if p.pattern == "other":  # the keys of no configured pattern (queues, say): nothing to act on
                continue
            if p.without_ttl is not None and p.without_ttl > NO_TTL_MAX_SHARE and (p.sampled or 0) > 0:
                out.append(_housekeeping("cache", "Keys without TTL", p.without_ttl, f"{pct(p.without_ttl)} of "
                                         "sampled keys", p.pattern,
                                         f"{cache.target}: {pct(p.without_ttl)} of {p.pattern} keys have no TTL.",
                                         f"set a TTL on {p.pattern} (EXPIRE, or SET ... EX)",
                                         Evidence("cache", f"{p.sampled:.0f} keys sampled", src)))
        for q in cache.queues:
            growth = q.last - q.first
            if growth >= QUEUE_MIN_GROWTH and q.slope_per_s > 0:
                out.append(_housekeeping("cache", "Growing queue", growth, f"grew by {growth:.0f}", q.name,
                                         f"{cache.target}: queue {q.name} grew from {q.first:.0f} to {q.last:.0f} "
                                         f"({q.slope_per_s:.1f}/s).", f"add consumers to {q.name} or speed them up",
                                         Evidence("cache", f"first {q.first:.0f}, highest {q.highest:.0f}, last "
                                                  f"{q.last:.0f}", src)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# All together


SYMPTOM_RULES: tuple[Callable[[Facts, Found], None], ...] = (
    slow_endpoints, high_error_rate, low_cache_hit_rate, slow_database_queries, slow_traces)
HOUSEKEEPING_RULES: tuple[Callable[[Facts], list[Recommendation]], ...] = (
    serial_siblings, database_checks, cache_checks)

RANK = {HIGH: 0, MEDIUM: 1, LOW: 2}


def ranking(r: Recommendation) -> tuple[int, bool, float]:
    """Where a cause ranks: by priority, the unexplained after the explained, then by score."""
    return (RANK[r.priority], r.kind == UNEXPLAINED, -r.score)


@dataclass(frozen=True)
class Findings:
    recommendations: list[Recommendation] = field(default_factory=list)

    def top(self, n: int = 3) -> list[Recommendation]:
        """The bottlenecks: the highest-scoring causes of missed targets (never housekeeping, never a score of 0)."""
        return [r for r in self.recommendations if not r.housekeeping and r.score > 0][:n]

    @property
    def housekeeping(self) -> list[Recommendation]:
        return [r for r in self.recommendations if r.housekeeping]

    def for_area(self, area: str) -> list[Recommendation]:
        return [r for r in self.recommendations if r.area == area]


def recommend(facts: Facts) -> Findings:
    """The causes of every missed target, ranked by priority then score; then housekeeping."""
    found: Found = {}
    for rule in SYMPTOM_RULES:
        rule(facts, found)
    causes = [_recommendation(entry) for entry in found.values()]
    causes.sort(key=ranking)
    chores = [r for rule in HOUSEKEEPING_RULES for r in rule(facts)]
    chores.sort(key=lambda r: -r.score)
    return Findings(causes + chores)
