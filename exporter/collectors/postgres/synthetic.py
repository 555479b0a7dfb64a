"""The configured synthetic queries: each timed exactly on every collection, and EXPLAINed every
``explain_interval`` for sequential scans of tables of ``seq_scan_min_rows`` rows or more."""

from __future__ import annotations

import logging
import re
import time

import psycopg

from exporter import metrics
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.connection import DatabaseConnection, Unavailable, describe
from exporter.collectors.postgres.plans import seq_scans
from exporter.collectors.postgres.target import PostgresQuery, PostgresTarget
from exporter.logs import event
from exporter.store import MetricStore

log = logging.getLogger(__name__)


def statement(text: str) -> str:
    """A configured query as one statement: trailing semicolons and whitespace removed."""
    return re.sub(r"[\s;]+$", "", text)


class SyntheticQueries:
    def __init__(self, cfg: PostgresTarget, store: MetricStore) -> None:
        self.cfg = cfg
        self.store = store
        self.t = cfg.name
        self.last_explain: float | None = None
        for query in cfg.queries:
            store.ensure_histogram(metrics.PG_PROBE_DURATION, target=self.t, probe=query.name)

    async def run(self, conn: DatabaseConnection) -> None:
        if not self.cfg.queries:
            return
        now = time.monotonic()
        explain = self.last_explain is None or now - self.last_explain >= self.cfg.explain_interval
        for query in self.cfg.queries:
            await self._probe(conn, query)
        if explain:
            self.last_explain = now
            flagged: dict[tuple[str, ...], float] = {}
            for query in self.cfg.queries:
                if query.explain:
                    flagged.update(await self._explain(conn, query))
            self.store.replace(metrics.PG_PROBE_SEQ_SCAN, flagged)

    async def _probe(self, conn: DatabaseConnection, query: PostgresQuery) -> None:
        labels = {"target": self.t, "probe": query.name}
        try:
            _, seconds = await conn.timed(statement(query.sql))
        except (psycopg.Error, Unavailable) as exc:
            self.store.set(metrics.PG_PROBE_SUCCESS, 0.0, **labels)
            event(log, logging.WARNING, "pg_probe_failed", target=self.t, probe=query.name, cause=describe(exc))
            return
        self.store.observe(metrics.PG_PROBE_DURATION, seconds, **labels)
        self.store.set(metrics.PG_PROBE_SUCCESS, 1.0, **labels)

    async def _explain(self, conn: DatabaseConnection, query: PostgresQuery) -> dict[tuple[str, ...], float]:
        flagged: dict[tuple[str, ...], float] = {}
        try:
            rows = await conn.rows("EXPLAIN (FORMAT JSON, VERBOSE) " + statement(query.sql))
            for scan in seq_scans(rows[0][0] if rows else []):
                size = await conn.rows(q.TABLE_ROWS, (scan.schema, scan.table))
                if size and float(size[0][0]) >= self.cfg.seq_scan_min_rows:
                    flagged[(self.t, query.name, scan.name)] = 1.0
        except (psycopg.Error, Unavailable) as exc:
            event(log, logging.WARNING, "pg_explain_failed", target=self.t, probe=query.name, cause=describe(exc))
        return flagged
