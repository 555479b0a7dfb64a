"""The PostgreSQL profiling collector: pg_stat_statements deltas, sessions, locks, database and table
statistics, and synthetic queries (timed, and EXPLAINed for sequential scans).

One persistent connection per database (``application_name=perf-exporter``, its own ``statement_timeout`` and
``lock_timeout``, read-only, autocommit), each with a lock so that never more than one query is in flight on
it, and reconnects with exponential backoff. Server-wide views are read once per collection: pg_stat_activity,
pg_locks and pg_stat_database over the main connection (the DSN's database), pg_stat_statements over the
connection of one database that has the extension (the main one if it can). Each database's own connection
reads whether it has the extension, and its pg_stat_user_tables.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from exporter import metrics
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.plans import seq_scans
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
    monotonic_delta,
    per_bucket,
    slow_statement_counts,
    split_exported,
    sum_rows,
)
from exporter.collectors.postgres.target import PostgresQuery, PostgresTarget
from exporter.jobs import JobContext
from exporter.logs import event
from exporter.secrets import mask_url

log = logging.getLogger(__name__)


APPLICATION_NAME = "perf-exporter"
_BACKOFF_NOTE = re.compile(r" \(next attempt in \d+s\)$")
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
QUERY_TEXT_CHARS = 200

Row = tuple[Any, ...]
Readings = dict[tuple[str, ...], tuple[float, ...]]  # labels -> cumulative values, one per counter family

# The per-statement counter families, each with the field of :class:`Counters` it adds up.
STATEMENT_COUNTERS = (
    (metrics.PG_STATEMENT_CALLS, "calls"), (metrics.PG_STATEMENT_EXEC, "exec_seconds"),
    (metrics.PG_STATEMENT_ROWS, "rows"), (metrics.PG_STATEMENT_BLOCKS_HIT, "blocks_hit"),
    (metrics.PG_STATEMENT_BLOCKS_READ, "blocks_read"),
    (metrics.PG_STATEMENT_TEMP_WRITTEN, "temp_blocks_written"))
QUERY_P95_FAMILIES = (metrics.PG_QUERY_P95, metrics.PG_QUERY_P95_UPPER, metrics.PG_QUERY_P95_LOWER)
SPREAD_COLUMNS = itemgetter(slice(10, 14))  # a counters row's sum of squares, min, max and minmax_since


def describe(exc: BaseException) -> str:
    """One line, no secrets: what went wrong, for logs and errors."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, Unavailable):  # already described
        return mask_url(text)
    return mask_url(f"{type(exc).__name__}: {text}")


def short_query(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUERY_TEXT_CHARS else flat[:QUERY_TEXT_CHARS - 3] + "..."


def base_conninfo(cfg: PostgresTarget) -> str:
    """The libpq connection string of the target's main database, with our session settings."""
    params: dict[str, Any] = {}
    dsn = ""
    if cfg.dsn is not None:
        dsn = cfg.dsn.get_secret_value()
    else:
        params.update(host=cfg.host, port=cfg.port)
    if cfg.user is not None:
        params["user"] = cfg.user
    if cfg.password is not None:
        params["password"] = cfg.password.get_secret_value()
    if cfg.dbname is not None:
        params["dbname"] = cfg.dbname
    if cfg.sslmode is not None:
        params["sslmode"] = cfg.sslmode
    statement_timeout = cfg.statement_timeout if cfg.statement_timeout is not None else cfg.timeout / 2
    own = (f"-c statement_timeout={max(1, int(statement_timeout * 1000))} "
           f"-c lock_timeout={max(1, int(cfg.lock_timeout * 1000))} -c default_transaction_read_only=on")
    existing = conninfo_to_dict(dsn).get("options") if dsn else None
    params["options"] = f"{existing} {own}" if existing else own
    params["application_name"] = APPLICATION_NAME
    params["connect_timeout"] = max(2, math.ceil(cfg.timeout / 2))
    return make_conninfo(dsn, **params)


class Unavailable(Exception):
    """The database cannot be queried right now (down, refused, or waiting out a reconnect backoff)."""


class ServerGone(Exception):
    """The main connection is lost and cannot be reopened: the server is down, stopping or restarting.

    Not an :class:`Unavailable` on purpose: no single query's handler catches it, so the whole collection ends
    as one failure with this cause (``up`` 0, one log line), and what it read so far decides nothing (no
    statement series dropped, no snapshot replaced, no "not installed")."""


class DatabaseConnection:
    """One persistent connection to one database: reconnects with backoff, one query in flight at a time."""

    def __init__(self, conninfo: str, connect_deadline: float, main: bool = False) -> None:
        self.conninfo = conninfo
        self.connect_deadline = connect_deadline
        self.lost: type[Exception] = ServerGone if main else Unavailable  # raised when it cannot be reached
        self.conn: psycopg.AsyncConnection[Row] | None = None
        self.lock = asyncio.Lock()
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = ""
        self.dbname = ""  # the database's name once connected (kept while reconnecting)

    async def _connected(self) -> psycopg.AsyncConnection[Row]:
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        await self._discard()
        now = time.monotonic()
        if now < self.retry_at:
            raise self.lost(f"{self.last_error} (next attempt in {self.retry_at - now:.0f}s)")
        try:
            async with asyncio.timeout(self.connect_deadline):
                self.conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            self.failures += 1
            self.retry_at = time.monotonic() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
            self.last_error = describe(exc)
            raise self.lost(self.last_error) from None
        self.failures = 0
        self.retry_at = 0.0
        self.dbname = self.conn.info.dbname
        return self.conn

    async def _discard(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:  # closing a broken connection may fail; it is gone either way
                log.debug("close failed: %s", describe(exc))

    async def connect(self) -> None:
        async with self.lock:
            await self._connected()

    async def timed(self, query: str | sql.Composed, params: Sequence[Any] | None = None, binary: bool = False,
                    ) -> tuple[list[Row], float]:
        """Rows of ``query`` and the seconds from sending it to having every row (connecting not included).
        ``binary``: results in binary format (numbers cost no text parsing: for the thousands of rows of
        pg_stat_statements).

        A connection found broken (the server restarted since the last query) is reopened and the query sent
        once more: every query here only reads.
        """
        async with self.lock:
            for attempt in (1, 2):
                conn = await self._connected()
                try:
                    async with conn.cursor(binary=binary) as cursor:
                        started = time.perf_counter()
                        await cursor.execute(query, params)
                        rows = await cursor.fetchall() if cursor.description is not None else []
                        return rows, time.perf_counter() - started
                except psycopg.OperationalError as exc:
                    if conn.broken and attempt == 1:
                        await self._discard()
                        continue
                    if conn.broken:  # reopened, and lost again at once: the server is going away
                        await self._discard()
                        raise self.lost(describe(exc)) from None
                    raise
                except asyncio.CancelledError:
                    # psycopg has asked the server to cancel the query; a connection left busy is not reusable
                    if conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
                        await self._discard()
                    raise
            raise AssertionError("unreachable")

    async def rows(self, query: str | sql.Composed, params: Sequence[Any] | None = None, binary: bool = False,
                   ) -> list[Row]:
        return (await self.timed(query, params, binary))[0]

    async def close(self) -> None:
        async with self.lock:
            await self._discard()


@dataclass
class DatabaseResult:
    """What one database's own task found."""

    datname: str
    extension_schema: str | None = None
    tables: list[Row] | None = None  # None: not collected (failed or not watched)
    error: str | None = None


class PostgresCollector:
    def __init__(self, cfg: PostgresTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store
        self.t = cfg.name
        self.conninfo = base_conninfo(cfg)
        # half the run's deadline for connecting or one query, so one stuck database leaves time for the rest
        self.main = DatabaseConnection(self.conninfo, cfg.timeout / 2, main=True)
        self.others: dict[str, DatabaseConnection] = {}
        self.sticky = StickyTop(cfg.top_statements, cfg.sticky_for)
        self.snapshot: Snapshot | None = None
        self.other_pairs: set[tuple[str, str]] = set()  # (database, role) pairs that have an "other" series
        self.spreads: dict[StatementKey, SpreadRow] = {}  # read with self.snapshot: each statement's spread of calls
        self.texts: dict[str, str] = {}  # queryid -> shortened text, for the exported statements
        self.statement_queries: dict[tuple[str, str], q.StatementQueries] = {}  # (datname, schema) -> SQL
        self.db_previous: Readings = {}
        self.table_previous: Readings = {}
        self.last_explain: float | None = None
        self.privileged: bool | None = None
        self.states: dict[str, str] = {}  # condition -> last state logged, so a lasting condition logs once
        for query in cfg.queries:
            self.store.ensure_histogram(metrics.PG_PROBE_DURATION, target=self.t, probe=query.name)

    # -- the job ---------------------------------------------------------------------------------------------

    async def run(self) -> bool:
        try:
            await self._collect()
        except ServerGone as exc:  # before connecting, between queries or in the middle of one
            event(log, logging.WARNING, "pg_unreachable", target=self.t, cause=str(exc))
            return False
        return True

    async def _collect(self) -> None:
        await self.main.connect()
        main_db = self.main.dbname
        await self._check_privileges()
        watched = await self._watched_databases(main_db)
        await self._keep_connections(watched, main_db)
        names = sorted({*watched, main_db})
        # every task to its end, then the server's loss first: the other databases' failures are its echo
        outcomes = await asyncio.gather(*(self._collect_database(db, db in watched) for db in names),
                                        self._collect_server(set(watched)), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for failure in sorted(failures, key=lambda f: not isinstance(f, ServerGone)):
            raise failure
        results = [o for o in outcomes if isinstance(o, DatabaseResult)]
        self._log_database_failures(results)
        by_db = {r.datname: r for r in results}
        self._write_tables(results)
        await self._collect_statements(by_db, main_db, watched)
        await self._run_probes()

    async def close(self) -> None:
        for conn in [self.main, *self.others.values()]:
            await conn.close()
        self.others.clear()

    # -- connections -----------------------------------------------------------------------------------------

    def _connection(self, datname: str) -> DatabaseConnection:
        if datname == self.main.dbname:
            return self.main
        conn = self.others.get(datname)
        if conn is None:
            conn = self.others[datname] = DatabaseConnection(make_conninfo(self.conninfo, dbname=datname),
                                                             self.main.connect_deadline)
        return conn

    async def _keep_connections(self, watched: list[str], main_db: str) -> None:
        for datname in [d for d in self.others if d not in watched or d == main_db]:
            await self.others.pop(datname).close()

    async def _watched_databases(self, main_db: str) -> list[str]:
        if self.cfg.databases != "auto":
            return list(self.cfg.databases)
        try:
            return [row[0] for row in await self.main.rows(q.DATABASES)]
        except (psycopg.Error, Unavailable) as exc:
            event(log, logging.WARNING, "pg_query_failed", target=self.t, datname=main_db, what="databases",
                  cause=describe(exc))
            return [main_db]

    async def _check_privileges(self) -> None:
        try:
            rows = await self.main.rows(q.PRIVILEGES)
        except (psycopg.Error, Unavailable) as exc:
            event(log, logging.WARNING, "pg_query_failed", target=self.t, what="privileges",
                  cause=describe(exc))
            return
        if not rows:
            return
        role, privileged = str(rows[0][0]), bool(rows[0][1])
        if privileged != self.privileged and not privileged:
            event(log, logging.WARNING, "pg_insufficient_privilege", target=self.t, role=role,
                  cause=f"role {role} is not a member of pg_read_all_stats: statements and sessions of other "
                        f"roles are hidden (shown as <insufficient privilege>) and counted only as "
                        f"queryid=\"other\"; fix: GRANT pg_monitor TO {role}")
        self.privileged = privileged

    def _once(self, condition: str, state: str) -> bool:
        """True when ``condition`` enters ``state`` (so a lasting condition is logged once, not every run)."""
        changed = self.states.get(condition) != state
        self.states[condition] = state
        return changed

    # -- per database: extension and table statistics --------------------------------------------------------

    async def _collect_database(self, datname: str, watched: bool) -> DatabaseResult:
        result = DatabaseResult(datname)
        conn = self._connection(datname)
        try:
            schemas = await conn.rows(q.EXTENSION_SCHEMA)
            result.extension_schema = str(schemas[0][0]) if schemas else None
            if watched:
                result.tables = await conn.rows(q.TABLE_STATS, (self.cfg.top_tables,))
        except (psycopg.Error, Unavailable) as exc:
            result.error = describe(exc)
        return result

    def _log_database_failures(self, results: list[DatabaseResult]) -> None:
        """Each database's failure once while it lasts (logged after the collection: a lost server says it)."""
        for result in results:
            state = "ok" if result.error is None else _BACKOFF_NOTE.sub("", result.error)
            if self._once(f"database:{result.datname}", state) and result.error is not None:
                event(log, logging.WARNING, "pg_database_failed", target=self.t, datname=result.datname,
                      cause=result.error)

    def _write_tables(self, results: list[DatabaseResult]) -> None:
        readings: Readings = {}
        live: dict[tuple[str, ...], float] = {}
        dead: dict[tuple[str, ...], float] = {}
        for result in results:
            for schema, table, *values in result.tables or []:
                labels = (self.t, result.datname, schema, table)
                readings[labels] = tuple(float(v) for v in values[:3])
                live[labels], dead[labels] = float(values[3]), float(values[4])
        self._add_increases((metrics.PG_TABLE_SEQ_SCANS, metrics.PG_TABLE_SEQ_TUPLES, metrics.PG_TABLE_IDX_SCANS),
                            self.table_previous, readings)
        self.table_previous = readings
        self.store.replace(metrics.PG_TABLE_LIVE, live)
        self.store.replace(metrics.PG_TABLE_DEAD, dead)

    # -- server-wide views, over the main connection ---------------------------------------------------------

    async def _collect_server(self, watched: set[str]) -> None:
        for what, collect in (("activity", self._activity), ("locks", self._locks),
                              ("database", self._database_stats)):
            try:
                await collect(watched)
            except (psycopg.Error, Unavailable) as exc:
                event(log, logging.WARNING, "pg_query_failed", target=self.t, what=what, cause=describe(exc))

    async def _activity(self, watched: set[str]) -> None:
        t = self.t
        rows = await self.main.rows(q.ACTIVITY)
        connections: dict[tuple[str, ...], float] = {}
        idle_in_xact: dict[tuple[str, ...], float] = {(t, db): 0.0 for db in watched}
        waiting: dict[tuple[str, ...], float] = {(t, db): 0.0 for db in watched}
        oldest_query = oldest_xact = 0.0
        for datname, state, wait_type, count, query_age, xact_age in rows:
            connections[(t, datname, state, wait_type)] = float(count)
            if state.startswith("idle in transaction"):
                idle_in_xact[(t, datname)] = idle_in_xact.get((t, datname), 0.0) + count
            if wait_type == "Lock":
                waiting[(t, datname)] = waiting.get((t, datname), 0.0) + count
            if state == "active":
                oldest_query = max(oldest_query, float(query_age))
            oldest_xact = max(oldest_xact, float(xact_age))
        self.store.replace(metrics.PG_CONNECTIONS, connections)
        self.store.replace(metrics.PG_IDLE_IN_XACT, idle_in_xact)
        self.store.replace(metrics.PG_LOCK_WAITING, waiting)
        self.store.set(metrics.PG_OLDEST_QUERY_AGE, oldest_query, target=t)
        self.store.set(metrics.PG_OLDEST_XACT_AGE, oldest_xact, target=t)

    async def _locks(self, _watched: set[str]) -> None:
        blocked: dict[tuple[str, ...], float] = {(self.t, mode): 0.0 for mode in q.LOCK_MODES}
        for mode, count in await self.main.rows(q.BLOCKED_LOCKS):
            blocked[(self.t, str(mode))] = float(count)
        self.store.replace(metrics.PG_BLOCKED_LOCKS, blocked)
        waiting = {(self.t, str(datname), str(queryid)): float(count)
                   for datname, queryid, count in await self.main.rows(q.LOCK_WAITING_STATEMENTS)
                   if queryid is not None}
        self.store.replace(metrics.PG_LOCK_WAITING_STATEMENTS, waiting)

    async def _database_stats(self, watched: set[str]) -> None:
        families = (metrics.PG_DB_BLOCKS_HIT, metrics.PG_DB_BLOCKS_READ, metrics.PG_DB_COMMITS,
                    metrics.PG_DB_ROLLBACKS, metrics.PG_DB_DEADLOCKS, metrics.PG_DB_TEMP_FILES,
                    metrics.PG_DB_TEMP_BYTES)
        readings: Readings = {(self.t, datname): tuple(float(v or 0) for v in values)
                              for datname, *values in await self.main.rows(q.DATABASE_STATS) if datname in watched}
        self._add_increases(families, self.db_previous, readings)
        self.db_previous = readings

    def _add_increases(self, families: Sequence[metrics.Family], previous: Readings, current: Readings) -> None:
        """Add to each counter its increase from ``previous`` to ``current``; drop the series not in ``current``."""
        for i, family in enumerate(families):
            increases: dict[tuple[str, ...], float] = {}
            for labels, values in current.items():
                before = previous.get(labels)
                increases[labels] = monotonic_delta(None if before is None else before[i], values[i])
            self.store.inc_many(family, increases)
            self.store.remove_where(family, current)

    # -- pg_stat_statements ----------------------------------------------------------------------------------

    async def _collect_statements(self, by_db: dict[str, DatabaseResult], main_db: str,
                                  watched: list[str]) -> None:
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
                snapshot, spreads = await self._read_statements(source.datname, str(source.extension_schema))
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
            if self._once("pg_stat_statements", problem):
                event(log, logging.WARNING, "pg_stat_statements_unavailable", target=t, cause=problem)
            self._drop_statement_series()
            self.snapshot = None
            self.other_pairs = set()
            self.spreads = {}
            return
        if snapshot is None:
            return
        had_problem = "pg_stat_statements" in self.states
        if self._once("pg_stat_statements", "ok") and had_problem:
            event(log, logging.INFO, "pg_stat_statements_available", target=t)
        deltas = self._write_statements(snapshot, watched)
        self._write_query_p95(deltas, snapshot, spreads)
        await self._refresh_texts(candidates[0].datname, str(candidates[0].extension_schema))

    async def _read_statements(self, datname: str, schema: str) -> tuple[Snapshot, dict[StatementKey, SpreadRow]]:
        conn = self._connection(datname)
        queries = self.statement_queries.get((datname, schema))
        if queries is None:
            columns = {row[0] for row in await conn.rows(q.VIEW_COLUMNS, (f"{schema}.pg_stat_statements",))}
            info = await conn.rows(q.VIEW_COLUMNS, (f"{schema}.pg_stat_statements_info",))
            queries = q.statement_queries(schema, columns, bool(info))
            self.statement_queries[(datname, schema)] = queries
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
            self.statement_queries.pop((datname, schema), None)
            raise
        entries = sum_rows(((row[0], row[1], row[2]), Counters._make(row[3:9]), row[9]) for row in rows)
        if len(entries) == len(rows):  # one row per key, in the order of the entries (the query groups by key)
            spreads = dict(zip(entries, map(SPREAD_COLUMNS, rows), strict=True))
        else:
            spreads = {(row[0], row[1], row[2]): SPREAD_COLUMNS(row) for row in rows}
        return Snapshot(entries, stats_reset, dealloc), spreads

    def _write_statements(self, snapshot: Snapshot, watched: list[str]) -> dict[StatementKey, Counters]:
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
            queries = self.statement_queries[(datname, schema)]
            try:
                rows = await self._connection(datname).rows(queries.texts, ([int(m) for m in missing],))
                for qid, text in rows:
                    self.texts[str(qid)] = short_query(scrub_statement(str(text or "")))  # before cutting
            except (psycopg.Error, Unavailable) as exc:
                event(log, logging.WARNING, "pg_query_failed", target=self.t, datname=datname,
                      what="pg_stat_statements texts", cause=describe(exc))
        self.store.replace(metrics.PG_STATEMENT_INFO,
                           {(self.t, qid, text): 1.0 for qid, text in self.texts.items()})

    def _drop_statement_series(self) -> None:
        for family in (*(family for family, _ in STATEMENT_COUNTERS), metrics.PG_STATEMENT_INFO,
                       metrics.PG_STATEMENT_MEAN, metrics.PG_SLOW_STATEMENTS, *QUERY_P95_FAMILIES):
            self.store.remove_where(family, ())
        self.sticky.last_top.clear()
        self.texts.clear()

    # -- synthetic queries -----------------------------------------------------------------------------------

    async def _run_probes(self) -> None:
        if not self.cfg.queries:
            return
        now = time.monotonic()
        explain = self.last_explain is None or now - self.last_explain >= self.cfg.explain_interval
        for query in self.cfg.queries:
            await self._probe(query)
        if explain:
            self.last_explain = now
            flagged: dict[tuple[str, ...], float] = {}
            for query in self.cfg.queries:
                if query.explain:
                    flagged.update(await self._explain(query))
            self.store.replace(metrics.PG_PROBE_SEQ_SCAN, flagged)

    async def _probe(self, query: PostgresQuery) -> None:
        labels = {"target": self.t, "probe": query.name}
        try:
            _, seconds = await self.main.timed(_statement(query.sql))
        except (psycopg.Error, Unavailable) as exc:
            self.store.set(metrics.PG_PROBE_SUCCESS, 0.0, **labels)
            event(log, logging.WARNING, "pg_probe_failed", target=self.t, probe=query.name,
                  cause=describe(exc))
            return
        self.store.observe(metrics.PG_PROBE_DURATION, seconds, **labels)
        self.store.set(metrics.PG_PROBE_SUCCESS, 1.0, **labels)

    async def _explain(self, query: PostgresQuery) -> dict[tuple[str, ...], float]:
        flagged: dict[tuple[str, ...], float] = {}
        try:
            rows = await self.main.rows("EXPLAIN (FORMAT JSON, VERBOSE) " + _statement(query.sql))
            for scan in seq_scans(rows[0][0] if rows else []):
                size = await self.main.rows(q.TABLE_ROWS, (scan.schema, scan.table))
                if size and float(size[0][0]) >= self.cfg.seq_scan_min_rows:
                    flagged[(self.t, query.name, scan.name)] = 1.0
        except (psycopg.Error, Unavailable) as exc:
            event(log, logging.WARNING, "pg_explain_failed", target=self.t, probe=query.name,
                  cause=describe(exc))
        return flagged


def _statement(text: str) -> str:
    """A configured query as one statement: trailing semicolons and whitespace removed."""
    return re.sub(r"[\s;]+$", "", text)
