"""The PostgreSQL profiling collector: one module per view it reads, as postgres_exporter's ``collector/``
(:mod:`~exporter.collectors.postgres.activity`, :mod:`~exporter.collectors.postgres.database_stats`,
:mod:`~exporter.collectors.postgres.table_stats`, :mod:`~exporter.collectors.postgres.stat_statements`,
:mod:`~exporter.collectors.postgres.synthetic`); this module runs them.

One persistent connection per database (:mod:`~exporter.collectors.postgres.connection`:
``application_name=perf-exporter``, its own ``statement_timeout`` and ``lock_timeout``, read-only, autocommit,
one query in flight, reconnects with exponential backoff). Server-wide views are read once per collection:
pg_stat_activity, pg_locks and pg_stat_database over the main connection (the DSN's database), pg_stat_statements
over the connection of one database that has the extension (the main one if it can). Each database's own
connection reads whether it has the extension, and its pg_stat_user_tables.
"""

from __future__ import annotations

import asyncio
import logging
import re

import psycopg
from psycopg.conninfo import make_conninfo

from exporter.collectors.postgres import activity
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.connection import (
    DatabaseConnection,
    ServerGone,
    Unavailable,
    base_conninfo,
    describe,
)
from exporter.collectors.postgres.database_stats import DatabaseStats
from exporter.collectors.postgres.stat_statements import DatabaseResult, StatementsView
from exporter.collectors.postgres.synthetic import SyntheticQueries
from exporter.collectors.postgres.table_stats import TableStats
from exporter.collectors.postgres.target import PostgresTarget
from exporter.jobs import UP, JobContext, Outcome, down
from exporter.logs import event

log = logging.getLogger(__name__)

_BACKOFF_NOTE = re.compile(r" \(next attempt in \d+s\)$")


class PostgresCollector:
    def __init__(self, cfg: PostgresTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store
        self.t = cfg.name
        self.conninfo = base_conninfo(cfg)
        # half the run's deadline for connecting or one query, so one stuck database leaves time for the rest
        self.main = DatabaseConnection(self.conninfo, cfg.timeout / 2, main=True)
        self.others: dict[str, DatabaseConnection] = {}
        self.privileged: bool | None = None
        self.states: dict[str, str] = {}  # condition -> last state logged, so a lasting condition logs once
        self.databases = DatabaseStats(self.store, self.t)
        self.tables = TableStats(self.store, self.t)
        self.statements = StatementsView(cfg, self.store, self._connection, self._once, self.states)
        self.synthetic = SyntheticQueries(cfg, self.store)

    async def run(self) -> Outcome:
        try:
            await self._collect()
        except ServerGone as exc:  # before connecting, between queries or in the middle of one
            event(log, logging.WARNING, "pg_unreachable", target=self.t, cause=str(exc))
            return down("pg_unreachable", str(exc))
        return UP

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
        self.tables.write([(r.datname, r.tables or []) for r in results])
        await self.statements.collect({r.datname: r for r in results}, main_db, watched)
        await self.synthetic.run(self.main)

    async def close(self) -> None:
        for conn in [self.main, *self.others.values()]:
            await conn.close()
        self.others.clear()

    # -- connections and databases ---------------------------------------------------------------------------

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

    async def _collect_database(self, datname: str, watched: bool) -> DatabaseResult:
        """One database's own connection: whether it has pg_stat_statements, and its table statistics."""
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

    async def _collect_server(self, watched: set[str]) -> None:
        """The server-wide views over the main connection; a view that fails is one log line, the rest still
        read."""
        views = (("activity", lambda: activity.activity(self.main, self.store, self.t, watched)),
                 ("locks", lambda: activity.locks(self.main, self.store, self.t)),
                 ("database", lambda: self.databases.collect(self.main, watched)))
        for what, collect in views:
            try:
                await collect()
            except (psycopg.Error, Unavailable) as exc:
                event(log, logging.WARNING, "pg_query_failed", target=self.t, what=what, cause=describe(exc))
