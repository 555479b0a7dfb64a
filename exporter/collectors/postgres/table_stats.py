"""pg_stat_user_tables of each watched database (read by that database's own connection): sequential and index
scans as counters, live and dead rows as gauges."""

from __future__ import annotations

from collections.abc import Sequence

from exporter import metrics
from exporter.collectors.postgres.connection import Row
from exporter.collectors.postgres.increases import Readings, add_increases
from exporter.store import MetricStore

COUNTERS = (metrics.PG_TABLE_SEQ_SCANS, metrics.PG_TABLE_SEQ_TUPLES, metrics.PG_TABLE_IDX_SCANS)


class TableStats:
    def __init__(self, store: MetricStore, t: str) -> None:
        self.store = store
        self.t = t
        self.previous: Readings = {}

    def write(self, tables: Sequence[tuple[str, Sequence[Row]]]) -> None:
        """``tables``: each database's name and its rows of ``queries.TABLE_STATS``."""
        readings: Readings = {}
        live: dict[tuple[str, ...], float] = {}
        dead: dict[tuple[str, ...], float] = {}
        for datname, rows in tables:
            for schema, table, *values in rows:
                labels = (self.t, datname, schema, table)
                readings[labels] = tuple(float(v) for v in values[:3])
                live[labels], dead[labels] = float(values[3]), float(values[4])
        add_increases(self.store, COUNTERS, self.previous, readings)
        self.previous = readings
        self.store.replace(metrics.PG_TABLE_LIVE, live)
        self.store.replace(metrics.PG_TABLE_DEAD, dead)
