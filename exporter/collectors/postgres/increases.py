"""Counters of the cumulative views (pg_stat_database, pg_stat_user_tables) as increases between collections."""

from __future__ import annotations

from collections.abc import Sequence

from exporter import metrics
from exporter.collectors.postgres.statements import monotonic_delta
from exporter.store import MetricStore

Readings = dict[tuple[str, ...], tuple[float, ...]]  # labels -> cumulative values, one per counter family


def add_increases(store: MetricStore, families: Sequence[metrics.Family], previous: Readings,
                  current: Readings) -> None:
    """Add to each counter its increase from ``previous`` to ``current``; drop the series not in ``current``."""
    for i, family in enumerate(families):
        increases: dict[tuple[str, ...], float] = {}
        for labels, values in current.items():
            before = previous.get(labels)
            increases[labels] = monotonic_delta(None if before is None else before[i], values[i])
        store.inc_many(family, increases)
        store.remove_where(family, current)
