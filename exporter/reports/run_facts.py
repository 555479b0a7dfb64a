"""What a bench run's own collectors saw, kept in the run's file so that its report diagnoses causes as a report
from Prometheus does: the databases and their statements, the caches, the traces, each route's breakdown.

Written once, at the end of the run (:func:`measured`, from the readings of
:class:`exporter.load.platform.PlatformWatch`), read back validated (:func:`read`): one typed value, one writer,
one reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from exporter import metrics
from exporter.load.platform_figures import Reading
from exporter.reports import collected
from exporter.reports.attribution import CacheReads, PathTime, Route, RoutePeriod
from exporter.reports.facts import (
    Cache,
    CacheTtl,
    Database,
    Queue,
    Statement,
    Table,
    Targets,
    Tracing,
)
from exporter.reports.model import ReportError
from exporter.reports.readings import ReadingsQuery


@dataclass(frozen=True)
class RunFacts:
    databases: tuple[Database, ...] = ()
    caches: tuple[Cache, ...] = ()
    tracing: tuple[Tracing, ...] = ()
    routes: tuple[Route, ...] = ()
    cache_ttls: tuple[CacheTtl, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)


def _queues(samples: Sequence[Reading], seconds: float) -> dict[str, tuple[Queue, ...]]:
    """Each Redis target's queues over the run: first, last and highest length, and the growth per second."""
    series: dict[tuple[str, str], list[float]] = {}
    for reading in samples:
        for (name, labels), value in reading.items():
            if name == metrics.REDIS_QUEUE_LENGTH.name:
                names = dict(labels)
                series.setdefault((names.get("target", ""), names.get("queue", "")), []).append(value)
    out: dict[str, list[Queue]] = {}
    for (target, queue), values in series.items():
        out.setdefault(target, []).append(Queue(queue, values[0], values[-1], max(values),
                                                (values[-1] - values[0]) / seconds if seconds > 0 else 0.0))
    return {t: tuple(q) for t, q in out.items()}


def measured(start: Reading, end: Reading, during: Sequence[Reading], targets: Targets,
             seconds: float) -> RunFacts:
    """The facts of the measured phase (``seconds`` long), from the reading at its start, the one at its end and
    those between."""
    q = ReadingsQuery(start, end, during)
    sources: dict[str, str] = {}
    return RunFacts(collected.databases(q, sources), collected.caches(q, sources, _queues([*during, end], seconds)),
                    collected.tracing(q, sources, targets), collected.routes(q, None, sources),
                    collected.cache_ttls(q, sources), sources)


def as_json(facts: RunFacts) -> Any:
    return msgspec.to_builtins(facts)


def read(obj: Any, where: str) -> RunFacts:
    """The facts a run file holds, checked; a file that does not have their shape is a clear error."""
    try:
        return msgspec.convert(obj, RunFacts)
    except msgspec.ValidationError as exc:
        raise ReportError(f"{where}: its collectors' facts are not readable ({exc})") from None


# ---------------------------------------------------------------------------------------------------------------
# Several runs in one report (bench all): each figure summed or weighted over the runs


def _merge_periods(periods: Sequence[RoutePeriod]) -> RoutePeriod:
    traces = sum(p.traces for p in periods)
    path: dict[tuple[str, str, str, str], list[Any]] = {}
    reads: dict[tuple[str, str, str], float] = {}
    origins: dict[str, float] = {}
    for p in periods:
        for t in p.path:
            key = (t.service, t.kind, t.operation, t.statement)
            entry = path.setdefault(key, [0.0, 0.0, t.text])
            entry[0] += t.seconds * p.traces
            entry[1] += t.calls * p.traces
        for r in p.cache_reads:
            reads[(r.service, r.operation, r.result)] = reads.get((r.service, r.operation, r.result), 0.0) + r.count
        for service, n in p.error_origins.items():
            origins[service] = origins.get(service, 0.0) + n
    return RoutePeriod(traces, tuple(PathTime(s, k, o, v[0] / traces, v[1] / traces, st, v[2])
                                     for (s, k, o, st), v in sorted(path.items())) if traces else (),
                       tuple(CacheReads(*k, n) for k, n in sorted(reads.items())), origins)


def _merge_databases(databases: Sequence[Database]) -> tuple[Database, ...]:
    by_target: dict[str, list[Database]] = {}
    for db in databases:
        by_target.setdefault(db.target, []).append(db)
    out = []
    for dbs in by_target.values():
        statements: dict[tuple[str, str, str, str], Statement] = {}
        for s in (s for db in dbs for s in db.statements):
            key = (s.target, s.datname, s.user, s.queryid)
            seen = statements.get(key)
            statements[key] = s if seen is None else replace(
                seen, calls=seen.calls + s.calls, seconds=seen.seconds + s.seconds,
                rows=(seen.rows or 0.0) + (s.rows or 0.0), blocks=(seen.blocks or 0.0) + (s.blocks or 0.0),
                lock_waiting=max(seen.lock_waiting, s.lock_waiting))
        tables: dict[tuple[str, str, str], Table] = {}
        for t in (t for db in dbs for t in db.tables):
            seen_t = tables.get((t.datname, t.schema, t.name))
            tables[(t.datname, t.schema, t.name)] = t if seen_t is None else replace(
                seen_t, seq_scans=seen_t.seq_scans + t.seq_scans, seq_rows_read=seen_t.seq_rows_read + t.seq_rows_read,
                idx_scans=seen_t.idx_scans + t.idx_scans)
        worst = max(dbs, key=lambda d: (d.p95.value if d.p95 and d.p95.value is not None else -1.0))
        out.append(replace(worst, statements=tuple(statements.values()), tables=tuple(tables.values())))
    return tuple(out)


def _merge_caches(caches: Sequence[Cache]) -> tuple[Cache, ...]:
    out: dict[str, Cache] = {}
    for c in caches:
        seen = out.get(c.target)
        out[c.target] = c if seen is None else replace(
            seen, hits=(seen.hits or 0.0) + (c.hits or 0.0), misses=(seen.misses or 0.0) + (c.misses or 0.0),
            evicted=(seen.evicted or 0.0) + (c.evicted or 0.0), expired=(seen.expired or 0.0) + (c.expired or 0.0),
            queues=seen.queues + c.queues)
    return tuple(out.values())


def merged(facts: Sequence[RunFacts]) -> RunFacts:
    """Several runs' facts as one (``bench all``): counts summed, per-trace figures weighted by traces."""
    if len(facts) == 1:
        return facts[0]
    routes: dict[tuple[str, str], list[Route]] = {}
    for f in facts:
        for r in f.routes:
            routes.setdefault((r.service, r.operation), []).append(r)
    tracing: dict[str, Tracing] = {}
    for t in (t for f in facts for t in f.tracing):
        if t.target not in tracing or t.traces > tracing[t.target].traces:
            tracing[t.target] = t
    ttls: dict[tuple[str, str], CacheTtl] = {(t.service, t.operation): t for f in facts for t in f.cache_ttls}
    return RunFacts(
        _merge_databases([db for f in facts for db in f.databases]),
        _merge_caches([c for f in facts for c in f.caches]),
        tuple(tracing.values()),
        tuple(replace(rs[0], window=_merge_periods([r.window for r in rs]),
                      p95_s=max((r.p95_s for r in rs if r.p95_s is not None), default=None))
              for rs in routes.values()),
        tuple(ttls.values()), {k: v for f in facts for k, v in f.sources.items()})
