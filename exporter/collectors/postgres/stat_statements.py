"""pg_stat_statements: each statement's interval deltas (the top statements by time one by one, the rest as
``queryid="other"``), the approximate duration histogram, the P95 estimate and its bounds, and the texts of the
exported statements. Read over the connection of one database that has the extension (the view is
server-wide); :mod:`exporter.collectors.postgres.statements` and :mod:`~exporter.collectors.postgres.query_latency`
hold the arithmetic."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter

import psycopg

from exporter import metrics
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.connection import DatabaseConnection, Unavailable, describe
from exporter.collectors.postgres.query_latency import SpreadRow, interval_latency, query_p95
from exporter.collectors.postgres.scrub import scrub_statement
from exporter.collectors.postgres.statements import (
    OTHER_QUERYID,
    Counters,
    Snapshot,
    StatementKey,
    StickyTop,
    duration_observations,
    interval_deltas,
    per_bucket,
    slow_statement_counts,
    split_exported,
    sum_rows,
)
from exporter.collectors.postgres.target import PostgresTarget
from exporter.logs import event
from exporter.store import MetricStore

log = logging.getLogger(__name__)

QUERY_TEXT_CHARS = 200

# The per-statement counter families, each with the field of :class:`Counters` it adds up.
STATEMENT_COUNTERS = (
    (metrics.PG_STATEMENT_CALLS, "calls"), (metrics.PG_STATEMENT_EXEC, "exec_seconds"),
    (metrics.PG_STATEMENT_ROWS, "rows"), (metrics.PG_STATEMENT_BLOCKS_HIT, "blocks_hit"),
    (metrics.PG_STATEMENT_BLOCKS_READ, "blocks_read"),
    (metrics.PG_STATEMENT_TEMP_WRITTEN, "temp_blocks_written"))
QUERY_P95_FAMILIES = (metrics.PG_QUERY_P95, metrics.PG_QUERY_P95_UPPER, metrics.PG_QUERY_P95_LOWER)
SPREAD_COLUMNS = itemgetter(slice(10, 14))  # a counters row's sum of squares, min, max and minmax_since


def short_query(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUERY_TEXT_CHARS else flat[:QUERY_TEXT_CHARS - 3] + "..."


@dataclass
class DatabaseResult:
    """What one database's own task found."""

    datname: str
    extension_schema: str | None = None
    tables: list[tuple[object, ...]] | None = None  # None: not collected (failed or not watched)
    error: str | None = None


class StatementsView:
    """What the collector keeps of pg_stat_statements between collections, and how it reads and writes it.
    ``connection`` gives a database's connection; ``once`` says whether a condition just entered a state (so a
    lasting condition is logged once)."""

    def __init__(self, cfg: PostgresTarget, store: MetricStore, connection: Callable[[str], DatabaseConnection],
                 once: Callable[[str, str], bool], states: dict[str, str]) -> None:
        self.cfg = cfg
        self.store = store
        self.t = cfg.name
        self.connection = connection
        self.once = once
        self.states = states
        self.sticky = StickyTop(cfg.top_statements, cfg.sticky_for)
        self.snapshot: Snapshot | None = None
        self.other_pairs: set[tuple[str, str]] = set()  # (database, role) pairs that have an "other" series
        self.spreads: dict[StatementKey, SpreadRow] = {}  # read with self.snapshot: each statement's spread of calls
        self.texts: dict[str, str] = {}  # queryid -> shortened text, for the exported statements
        self.queries: dict[tuple[str, str], q.StatementQueries] = {}  # (datname, schema) -> SQL

    async def collect(self, by_db: dict[str, DatabaseResult], main_db: str, watched: list[str]) -> None:
        t = self.t
        # The view is server-wide: one database that has the extension is enough; the main one if it can.
        candidates = [r for r in [by_db[main_db], *(by_db[d] for d in sorted(by_db) if d != main_db)]
                      if r.extension_schema is not None]
        available: dict[tuple[str, ...], float] = {
            (t, r.datname, "pg_stat_statements"): 0.0 for r in by_db.values() if r.error is None}
        snapshot: Snapshot | None = None
        problem: str | None = None
        if not candidates:
            problem = (f"pg_stat_statements is not installed in {', '.join(sorted(by_db))}; fix: add "
                       f"pg_stat_statements to shared_preload_libraries, restart PostgreSQL, then run CREATE "
                       f"EXTENSION pg_stat_statements in database {main_db}")
        else:
            source = candidates[0]
            try:
                snapshot, spreads = await self._read(source.datname, str(source.extension_schema))
            except psycopg.errors.ObjectNotInPrerequisiteState:
                problem = ("pg_stat_statements is created but its library is not loaded; fix: add "
                           "pg_stat_statements to shared_preload_libraries and restart PostgreSQL")
            except psycopg.errors.InsufficientPrivilege as exc:
                problem = (f"the role may not read pg_stat_statements ({describe(exc)}); fix: "
                           f"GRANT pg_monitor TO the role, or GRANT SELECT on the view and EXECUTE on its function")
            except (psycopg.Error, Unavailable) as exc:
                event(log, logging.WARNING, "pg_query_failed", target=t, datname=source.datname,
                      what="pg_stat_statements", cause=describe(exc))
            else:
                for r in candidates:
                    if r.error is None:
                        available[(t, r.datname, "pg_stat_statements")] = 1.0
        self.store.replace(metrics.PG_EXTENSION_AVAILABLE, available)
        if problem is not None:
            if self.once("pg_stat_statements", problem):
                event(log, logging.WARNING, "pg_stat_statements_unavailable", target=t, cause=problem)
            self._drop_series()
            self.snapshot = None
            self.other_pairs = set()
            self.spreads = {}
            return
        if snapshot is None:
            return
        had_problem = "pg_stat_statements" in self.states
        if self.once("pg_stat_statements", "ok") and had_problem:
            event(log, logging.INFO, "pg_stat_statements_available", target=t)
        deltas = self._write(snapshot, watched)
        self._write_query_p95(deltas, snapshot, spreads)
        await self._refresh_texts(candidates[0].datname, str(candidates[0].extension_schema))

    async def _read(self, datname: str, schema: str) -> tuple[Snapshot, dict[StatementKey, SpreadRow]]:
        conn = self.connection(datname)
        queries = self.queries.get((datname, schema))
        if queries is None:
            columns = {row[0] for row in await conn.rows(q.VIEW_COLUMNS, (f"{schema}.pg_stat_statements",))}
            info = await conn.rows(q.VIEW_COLUMNS, (f"{schema}.pg_stat_statements_info",))
            queries = q.statement_queries(schema, columns, bool(info))
            self.queries[(datname, schema)] = queries
        # Counters before info: a reset between the two reads is then seen at the next collection as counters
        # going down (counted from zero once); the other order would count the post-reset work twice.
        stats_reset = dealloc = None
        try:
            rows = await conn.rows(queries.counters, binary=True)
            if queries.info is not None:
                info_rows = await conn.rows(queries.info)
                if info_rows:
                    stats_reset, dealloc = info_rows[0]
        except psycopg.Error:
            # the extension may have been updated (ALTER EXTENSION ... UPDATE): read its columns again next time
            self.queries.pop((datname, schema), None)
            raise
        entries = sum_rows(((row[0], row[1], row[2]), Counters._make(row[3:9]), row[9]) for row in rows)
        if len(entries) == len(rows):  # one row per key, in the order of the entries (the query groups by key)
            spreads = dict(zip(entries, map(SPREAD_COLUMNS, rows), strict=True))
        else:
            spreads = {(row[0], row[1], row[2]): SPREAD_COLUMNS(row) for row in rows}
        return Snapshot(entries, stats_reset, dealloc), spreads

    def _write(self, snapshot: Snapshot, watched: list[str]) -> dict[StatementKey, Counters]:
        """Write the statement series; returns the interval's deltas."""
        t, store = self.t, self.store
        first = self.snapshot is None
        change = interval_deltas(self.snapshot, snapshot)
        self.snapshot = snapshot
        if change.reset:
            event(log, logging.INFO, "pg_stat_statements_reset", target=t,
                  cause="pg_stat_statements was reset; counting from the reset")
        if snapshot.dealloc is not None:
            store.inc(metrics.PG_STATEMENT_EVICTIONS, change.evictions, target=t)
        now = time.monotonic()
        if first:
            scores = {key: entry.counters.exec_seconds for key, entry in snapshot.entries.items()}
        else:
            scores = {key: delta.exec_seconds for key, delta in change.deltas.items()}
        had_series = set(self.sticky.last_top)
        exported = self.sticky.update(scores, now)
        # A statement entering the exported set starts at 0 and its work of this interval goes to "other":
        # Prometheus takes a new series' first sample as its baseline, so that work would otherwise be lost
        # from sum(rate(...)). Its own series counts from the next interval on.
        continuing = exported & had_series
        split = split_exported(change.deltas, continuing)
        series = {(t, *key): split.exported.get(key, Counters()) for key in exported}
        # "other" exists for every database and role that has statements not exported one by one, and once it
        # exists it stays while the pair has statements at all: a series that went and came back would start
        # again from 0, a counter going backwards
        present = {(d, u) for (d, u, _) in snapshot.entries}
        others = {(d, u) for (d, u, qid) in snapshot.entries if (d, u, qid) not in continuing}
        others |= self.other_pairs & present
        self.other_pairs = others
        for datname, user in sorted(others):
            series[(t, datname, user, OTHER_QUERYID)] = split.other.get((datname, user), Counters())
        for family, field in STATEMENT_COUNTERS:
            store.inc_many(family, {labels: getattr(delta, field) for labels, delta in series.items()})
            store.remove_where(family, series)
        means = {(t, *key): mean for key in exported
                 if (mean := change.deltas.get(key, Counters()).mean_seconds) is not None}
        store.replace(metrics.PG_STATEMENT_MEAN, means)
        slow: dict[tuple[str, ...], float] = {(t, db): 0.0 for db in watched}
        for db, n in slow_statement_counts(change.deltas, self.cfg.slow_query).items():
            slow[(t, db)] = float(n)
        store.replace(metrics.PG_SLOW_STATEMENTS, slow)
        for db in watched:
            store.ensure_histogram(metrics.PG_QUERY_DURATION, target=t, datname=db)
        for datname, observations in duration_observations(change.deltas).items():
            for mean, calls in per_bucket(observations, metrics.PG_QUERY_DURATION.buckets):
                store.observe(metrics.PG_QUERY_DURATION, mean, calls, target=t, datname=datname)
        return change.deltas

    def _write_query_p95(self, deltas: dict[StatementKey, Counters], snapshot: Snapshot,
                         spreads: dict[StatementKey, SpreadRow]) -> None:
        """The P95 of every statement's calls of the interval and its bounds
        (:mod:`exporter.collectors.postgres.query_latency`); no calls in the interval: no series."""
        latency = interval_latency(deltas, snapshot.entries, spreads, self.spreads)
        self.spreads = spreads
        p95 = query_p95(latency)
        if p95 is None:
            for family in QUERY_P95_FAMILIES:
                self.store.remove_where(family, ())
            return
        for family, value in zip(QUERY_P95_FAMILIES, (p95.estimate, p95.upper, p95.lower), strict=True):
            self.store.set(family, value, target=self.t)

    async def _refresh_texts(self, datname: str, schema: str) -> None:
        exported = {key[2] for key in self.sticky.last_top}  # StickyTop never holds hidden statements
        self.texts = {qid: text for qid, text in self.texts.items() if qid in exported}
        missing = sorted(exported - set(self.texts))
        if missing:
            queries = self.queries[(datname, schema)]
            try:
                rows = await self.connection(datname).rows(queries.texts, ([int(m) for m in missing],))
                for qid, text in rows:
                    self.texts[str(qid)] = short_query(scrub_statement(str(text or "")))  # before cutting
            except (psycopg.Error, Unavailable) as exc:
                event(log, logging.WARNING, "pg_query_failed", target=self.t, datname=datname,
                      what="pg_stat_statements texts", cause=describe(exc))
        self.store.replace(metrics.PG_STATEMENT_INFO,
                           {(self.t, qid, text): 1.0 for qid, text in self.texts.items()})

    def _drop_series(self) -> None:
        for family in (*(family for family, _ in STATEMENT_COUNTERS), metrics.PG_STATEMENT_INFO,
                       metrics.PG_STATEMENT_MEAN, metrics.PG_SLOW_STATEMENTS, *QUERY_P95_FAMILIES):
            self.store.remove_where(family, ())
        self.sticky.last_top.clear()
        self.texts.clear()
