"""Sessions and locks, server-wide over the main connection: pg_stat_activity and pg_locks."""

from __future__ import annotations

from exporter import metrics
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.connection import DatabaseConnection
from exporter.store import MetricStore


async def activity(conn: DatabaseConnection, store: MetricStore, t: str, watched: set[str]) -> None:
    """Client backends by database, state and wait event; sessions idle in transaction and waiting on locks; the
    oldest query and transaction."""
    rows = await conn.rows(q.ACTIVITY)
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
    store.replace(metrics.PG_CONNECTIONS, connections)
    store.replace(metrics.PG_IDLE_IN_XACT, idle_in_xact)
    store.replace(metrics.PG_LOCK_WAITING, waiting)
    store.set(metrics.PG_OLDEST_QUERY_AGE, oldest_query, target=t)
    store.set(metrics.PG_OLDEST_XACT_AGE, oldest_xact, target=t)


async def locks(conn: DatabaseConnection, store: MetricStore, t: str) -> None:
    """Lock requests not granted, by mode; sessions waiting on a lock, by the statement they run."""
    blocked: dict[tuple[str, ...], float] = {(t, mode): 0.0 for mode in q.LOCK_MODES}
    for mode, count in await conn.rows(q.BLOCKED_LOCKS):
        blocked[(t, str(mode))] = float(count)
    store.replace(metrics.PG_BLOCKED_LOCKS, blocked)
    waiting = {(t, str(datname), str(queryid)): float(count)
               for datname, queryid, count in await conn.rows(q.LOCK_WAITING_STATEMENTS) if queryid is not None}
    store.replace(metrics.PG_LOCK_WAITING_STATEMENTS, waiting)
