"""Where the demo keeps orders and trips: PostgreSQL (real tables, real queries) or memory.

The PostgreSQL tables live in their own schema, ``tripo04os_demo``, created and seeded at startup (20 000
orders and trips, so a sequential scan costs something). ``orders.rider_id`` is deliberately not indexed: the
per-order "active orders of this rider" check is the table scan a profiler should find.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from exporter.demo.faults import SLOW_QUERY_SECONDS, STEP_LATENCY

SCHEMA = "tripo04os_demo"
SEED_ROWS = 20_000
MEMORY_SEED_ROWS = 2_000
TRIP_STATUSES = ("requested", "accepted", "en_route", "arrived", "in_progress", "completed", "cancelled")

ORDER_COLUMNS = "id, rider_id, pickup, dropoff, status, fare_cents, created_at, updated_at"
TRIP_COLUMNS = "id, order_id, driver_id, status, updated_at"

# Statement texts, also shown in the db spans' db.statement attribute.
SQL = {
    "rider_active_orders": f"SELECT count(*) FROM {SCHEMA}.orders WHERE rider_id = %s AND status = 'created'",
    "rider_order_history": f"SELECT count(*), max(o.created_at) FROM {SCHEMA}.orders o CROSS JOIN pg_sleep(%s) "
                           f"WHERE o.rider_id = %s",
    "insert_order": f"INSERT INTO {SCHEMA}.orders (rider_id, pickup, dropoff, status, fare_cents) "
                    f"VALUES (%s, %s, %s, 'created', %s) RETURNING {ORDER_COLUMNS}",
    "get_order": f"SELECT {ORDER_COLUMNS} FROM {SCHEMA}.orders WHERE id = %s",
    "cancel_order": f"UPDATE {SCHEMA}.orders SET status = 'cancelled', updated_at = now() "
                    f"WHERE id = %s AND status <> 'cancelled' RETURNING {ORDER_COLUMNS}",
    "update_trip": f"UPDATE {SCHEMA}.trips SET status = %s, updated_at = now() WHERE id = %s "
                   f"RETURNING {TRIP_COLUMNS}",
}

# Span names as OpenTelemetry's database conventions write them: operation and table.
SPAN_NAMES = {
    "rider_active_orders": "SELECT orders",
    "rider_order_history": "SELECT orders",
    "insert_order": "INSERT orders",
    "get_order": "SELECT orders",
    "cancel_order": "UPDATE orders",
    "update_trip": "UPDATE trips",
}

_SETUP = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.orders (
        id bigserial PRIMARY KEY,
        rider_id integer NOT NULL,          -- deliberately not indexed
        pickup text NOT NULL,
        dropoff text NOT NULL,
        status text NOT NULL,
        fare_cents integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.trips (
        id bigserial PRIMARY KEY,
        order_id bigint NOT NULL,
        driver_id integer NOT NULL,
        status text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())""",
]
_SEED = [
    f"""INSERT INTO {SCHEMA}.orders (rider_id, pickup, dropoff, status, fare_cents, created_at, updated_at)
        SELECT 1 + (g * 7919) % 5000, 'Pickup ' || g, 'Dropoff ' || g,
               (ARRAY['completed', 'completed', 'completed', 'cancelled', 'created'])[1 + g % 5],
               500 + (g * 37) % 4500, now() - make_interval(mins => g), now() - make_interval(mins => g)
        FROM generate_series(1, {SEED_ROWS}) AS g""",
    f"""INSERT INTO {SCHEMA}.trips (order_id, driver_id, status, updated_at)
        SELECT g, 1 + g % 800, 'completed', now() - make_interval(mins => g)
        FROM generate_series(1, {SEED_ROWS}) AS g""",
    f"ANALYZE {SCHEMA}.orders",
    f"ANALYZE {SCHEMA}.trips",
]


class StoreUnavailable(Exception):
    """The database did not answer; the request gets a 503."""


class Store(Protocol):
    kind: str

    async def rider_active_orders(self, rider_id: int) -> int: ...

    async def rider_order_history(self, rider_id: int) -> int: ...

    async def create_order(self, rider_id: int, pickup: str, dropoff: str, fare_cents: int) -> dict[str, Any]: ...

    async def get_order(self, order_id: int) -> dict[str, Any] | None: ...

    async def cancel_order(self, order_id: int) -> tuple[dict[str, Any] | None, bool]: ...

    async def update_trip(self, trip_id: int, status: str) -> dict[str, Any] | None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresStore:
    """A few autocommit connections (no pool library needed for a demo), re-opened when one breaks."""

    kind = "postgresql"

    def __init__(self, dsn: str, size: int = 4) -> None:
        self.dsn = dsn
        self.size = size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any] | None] = asyncio.Queue()

    async def open(self) -> PostgresStore:
        """Connect, create the schema and seed it (once; an advisory lock keeps two demos from racing)."""
        conn = await self._connect()
        try:
            await conn.execute("SELECT pg_advisory_lock(hashtext('tripo04os_demo'))")
            try:
                for statement in _SETUP:
                    await conn.execute(statement)
                cur = await conn.execute(f"SELECT count(*) FROM {SCHEMA}.orders")
                row = await cur.fetchone()
                if row is not None and row["count"] == 0:
                    for statement in _SEED:
                        await conn.execute(statement)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext('tripo04os_demo'))")
        except BaseException:
            await conn.close()
            raise
        self._idle.put_nowait(conn)
        for _ in range(self.size - 1):
            self._idle.put_nowait(None)  # opened on first use
        return self

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5,
                                                     row_factory=dict_row,
                                                     application_name="tripo04os-demo")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self._idle.get()
        try:
            if conn is None or conn.closed:
                conn = await self._connect()
            yield conn
        except psycopg.OperationalError as exc:
            if conn is not None and not conn.closed and conn.broken:
                await conn.close()
            raise StoreUnavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        finally:
            self._idle.put_nowait(conn if conn is not None and not conn.closed else None)

    async def _one(self, name: str, *params: Any) -> dict[str, Any] | None:
        async with self._connection() as conn:
            cur = await conn.execute(SQL[name], params)
            row: dict[str, Any] | None = await cur.fetchone()
            return row

    async def rider_active_orders(self, rider_id: int) -> int:
        row = await self._one("rider_active_orders", rider_id)
        return int(row["count"]) if row else 0

    async def rider_order_history(self, rider_id: int) -> int:
        row = await self._one("rider_order_history", SLOW_QUERY_SECONDS, rider_id)
        return int(row["count"]) if row else 0

    async def create_order(self, rider_id: int, pickup: str, dropoff: str, fare_cents: int) -> dict[str, Any]:
        row = await self._one("insert_order", rider_id, pickup, dropoff, fare_cents)
        assert row is not None  # INSERT ... RETURNING always returns the row
        return json_row(row)

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        row = await self._one("get_order", order_id)
        return json_row(row) if row else None

    async def cancel_order(self, order_id: int) -> tuple[dict[str, Any] | None, bool]:
        row = await self._one("cancel_order", order_id)
        if row is not None:
            return json_row(row), True
        return await self.get_order(order_id), False

    async def update_trip(self, trip_id: int, status: str) -> dict[str, Any] | None:
        row = await self._one("update_trip", status, trip_id)
        return json_row(row) if row else None

    async def healthy(self) -> bool:
        try:
            async with self._connection() as conn:
                await conn.execute("SELECT 1")
        except (StoreUnavailable, psycopg.Error):
            return False
        return True

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                await conn.close()


# ---------------------------------------------------------------------------------------------------------------
# Memory


class MemoryStore:
    """Orders and trips in dicts. Each call waits a simulated database latency; the rider check really scans
    every order, as the unindexed query does in PostgreSQL."""

    kind = "memory"

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.orders: dict[int, dict[str, Any]] = {}
        self.trips: dict[int, dict[str, Any]] = {}
        now = datetime.now(UTC)
        statuses = ("completed", "completed", "completed", "cancelled", "created")
        for g in range(1, MEMORY_SEED_ROWS + 1):
            at = (now - timedelta(minutes=g)).isoformat()
            self.orders[g] = {"id": g, "rider_id": 1 + (g * 7919) % 5000, "pickup": f"Pickup {g}",
                              "dropoff": f"Dropoff {g}", "status": statuses[g % 5], "fare_cents": 500 + (g * 37) % 4500,
                              "created_at": at, "updated_at": at}
            self.trips[g] = {"id": g, "order_id": g, "driver_id": 1 + g % 800, "status": "completed",
                             "updated_at": at}
        self.next_order = MEMORY_SEED_ROWS + 1

    async def _wait(self) -> None:
        await asyncio.sleep(STEP_LATENCY["memory_db"].sample(self.rng))

    async def rider_active_orders(self, rider_id: int) -> int:
        await self._wait()
        return sum(1 for o in self.orders.values() if o["rider_id"] == rider_id and o["status"] == "created")

    async def rider_order_history(self, rider_id: int) -> int:
        await asyncio.sleep(SLOW_QUERY_SECONDS)
        return sum(1 for o in self.orders.values() if o["rider_id"] == rider_id)

    async def create_order(self, rider_id: int, pickup: str, dropoff: str, fare_cents: int) -> dict[str, Any]:
        await self._wait()
        at = datetime.now(UTC).isoformat()
        order = {"id": self.next_order, "rider_id": rider_id, "pickup": pickup, "dropoff": dropoff,
                 "status": "created", "fare_cents": fare_cents, "created_at": at, "updated_at": at}
        self.orders[self.next_order] = order
        self.next_order += 1
        return dict(order)

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        await self._wait()
        order = self.orders.get(order_id)
        return dict(order) if order else None

    async def cancel_order(self, order_id: int) -> tuple[dict[str, Any] | None, bool]:
        await self._wait()
        order = self.orders.get(order_id)
        if order is None or order["status"] == "cancelled":
            return (dict(order) if order else None), False
        order.update(status="cancelled", updated_at=datetime.now(UTC).isoformat())
        return dict(order), True

    async def update_trip(self, trip_id: int, status: str) -> dict[str, Any] | None:
        await self._wait()
        trip = self.trips.get(trip_id)
        if trip is None:
            return None
        trip.update(status=status, updated_at=datetime.now(UTC).isoformat())
        return dict(trip)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
