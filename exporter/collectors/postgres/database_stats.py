"""pg_stat_database, server-wide over the main connection: buffer hits and reads, commits, rollbacks, deadlocks
and temp files, as counters that start at 0 and survive ``pg_stat_reset()``."""

from __future__ import annotations

from exporter import metrics
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.connection import DatabaseConnection
from exporter.collectors.postgres.increases import Readings, add_increases
from exporter.store import MetricStore

FAMILIES = (metrics.PG_DB_BLOCKS_HIT, metrics.PG_DB_BLOCKS_READ, metrics.PG_DB_COMMITS, metrics.PG_DB_ROLLBACKS,
            metrics.PG_DB_DEADLOCKS, metrics.PG_DB_TEMP_FILES, metrics.PG_DB_TEMP_BYTES)


class DatabaseStats:
    def __init__(self, store: MetricStore, t: str) -> None:
        self.store = store
        self.t = t
        self.previous: Readings = {}

    async def collect(self, conn: DatabaseConnection, watched: set[str]) -> None:
        readings: Readings = {(self.t, datname): tuple(float(v or 0) for v in values)
                              for datname, *values in await conn.rows(q.DATABASE_STATS) if datname in watched}
        add_increases(self.store, FAMILIES, self.previous, readings)
        self.previous = readings
