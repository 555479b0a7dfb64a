"""Where the demo keeps orders and trips: PostgreSQL (real tables, real queries) or memory.

The PostgreSQL tables live in their own schema, ``tripo04os_demo``, created and seeded at startup (20 000
orders and trips, so a sequential scan costs something). ``orders.rider_id`` is deliberately not indexed: the
per-order "active orders of this rider" check is the table scan a profiler should find. An order's fare items
(``ORDER_ITEMS`` per order) come from the view ``order_items``.

Connections come from a pool of adjustable size (the ``db_pool_size`` fault). A request keeps the connection it
took from its first statement to the end of its work, as an ORM session does (:meth:`PostgresStore.begin`), so
a small pool makes requests queue for a connection. Every statement also waits a simulated network round trip
to the database (``DB_ROUND_TRIP``), as a database on another host costs, which is what makes one query per
item (the ``n_plus_one`` fault) expensive. The ``lock_contention`` fault is a transaction that keeps row locks
on the trips that trip updates wait on (:meth:`PostgresStore.hold_trip_locks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from exporter.demo.faults import SLOW_QUERY_SECONDS, STEP_LATENCY, Latency

SCHEMA = "tripo04os_demo"
ORDER_ITEMS = 250  # fare items per order: one query reads them all, or one query each (n_plus_one)
DB_ROUND_TRIP = Latency(1.2, 0.25)
POOL_SIZE = 16  # connections per demo process unless db_pool_size says otherwise
LOCKED_TRIPS = 2000  # lock_contention holds the row locks of trips 1..LOCKED_TRIPS (the probes' and k6's)
LOCK_HOLD_SECONDS = 1.0  # each holding transaction keeps its locks this long, idle in transaction,
LOCK_GAP_SECONDS = 0.05  # then commits and starts again after this pause
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
    "order_items": f"SELECT position, kind, amount_cents FROM {SCHEMA}.order_items WHERE order_id = %s "
                   f"ORDER BY position",
    "order_item_ids": f"SELECT position FROM {SCHEMA}.order_items WHERE order_id = %s ORDER BY position",
    "order_item": f"SELECT kind, amount_cents FROM {SCHEMA}.order_items WHERE order_id = %s AND position = %s",
    "lock_trips": f"SELECT id FROM {SCHEMA}.trips WHERE id <= %s ORDER BY id FOR UPDATE",
}

# Span names as OpenTelemetry's database conventions write them: operation and table.
SPAN_NAMES = {
    "rider_active_orders": "SELECT orders",
    "rider_order_history": "SELECT orders",
    "insert_order": "INSERT orders",
    "get_order": "SELECT orders",
    "cancel_order": "UPDATE orders",
    "update_trip": "UPDATE trips",
    "order_items": "SELECT order_items",
    "order_item_ids": "SELECT order_items",
    "order_item": "SELECT order_items",
}
ITEM_KINDS = ("base", "distance", "time", "surge", "fee")

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
    f"""CREATE OR REPLACE VIEW {SCHEMA}.order_items AS
        SELECT o.id AS order_id, i AS position,
               (ARRAY{list(ITEM_KINDS)!r})[1 + i % {len(ITEM_KINDS)}] AS kind, o.fare_cents / {ORDER_ITEMS} + i % 3
               AS amount_cents
        FROM {SCHEMA}.orders o CROSS JOIN generate_series(1, {ORDER_ITEMS}) AS i""",
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


Item = dict[str, Any]


class Store(Protocol):
    kind: str
    pool: Pool

    async def begin(self) -> Session: ...

    async def end(self, session: Session) -> None: ...

    async def rider_active_orders(self, rider_id: int) -> int: ...

    async def rider_order_history(self, rider_id: int) -> int: ...

    async def create_order(self, rider_id: int, pickup: str, dropoff: str, fare_cents: int) -> dict[str, Any]: ...

    async def get_order(self, order_id: int) -> dict[str, Any] | None: ...

    async def order_items(self, order_id: int) -> list[Item]: ...

    async def order_item_ids(self, order_id: int) -> list[int]: ...

    async def order_item(self, order_id: int, position: int) -> Item | None: ...

    async def cancel_order(self, order_id: int) -> tuple[dict[str, Any] | None, bool]: ...

    async def update_trip(self, trip_id: int, status: str) -> dict[str, Any] | None: ...

    async def hold_trip_locks(self, stop: asyncio.Event) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


# ---------------------------------------------------------------------------------------------------------------
# The pool and a request's session


class Pool:
    """At most ``size`` connections in use at once (``resize`` changes it while running); ``acquire`` waits for
    one to come back when all are taken. ``connect`` opens a new one; idle ones are kept for reuse."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int = POOL_SIZE) -> None:
        self.connect = connect
        self.size = size
        self.in_use = 0
        self.idle: list[Any] = []
        self._changed = asyncio.Condition()

    async def acquire(self) -> Any:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_use < self.size)
            self.in_use += 1
            conn = self.idle.pop() if self.idle else None
        if conn is None:
            try:
                conn = await self.connect()
            except BaseException:
                await self.release(None)
                raise
        return conn

    async def release(self, conn: Any) -> None:
        """Give ``conn`` back (None: it broke and was dropped)."""
        async with self._changed:
            self.in_use -= 1
            if conn is not None:
                self.idle.append(conn)
            self._changed.notify_all()

    async def resize(self, size: int) -> None:
        async with self._changed:
            self.size = size
            self._changed.notify_all()


@dataclass
class Session:
    """A request's hold on one pooled connection, from :meth:`Store.begin` to :meth:`Store.end`."""

    conn: Any
    broken: bool = False


# The session of the request the running code serves; each request runs in its own task, hence its own context.
_SESSION: ContextVar[Session | None] = ContextVar("demo_db_session", default=None)


async def _round_trip(rng: random.Random) -> None:
    await asyncio.sleep(DB_ROUND_TRIP.sample(rng))


class _Pooled:
    """What both stores share: sessions on a pool, and statements inside the current session (or a connection of
    their own when none is open, as health checks run)."""

    pool: Pool

    async def begin(self) -> Session:
        session = Session(await self.pool.acquire())
        _SESSION.set(session)
        return session

    async def end(self, session: Session) -> None:
        if _SESSION.get() is session:
            _SESSION.set(None)
        await self.pool.release(None if session.broken else session.conn)


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresStore(_Pooled):
    kind = "postgresql"

    def __init__(self, dsn: str, size: int = POOL_SIZE, rng: random.Random | None = None) -> None:
        self.dsn = dsn
        self.rng = rng or random.Random()
        self.pool = Pool(self._connect, size)

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
        self.pool.idle.append(conn)
        return self

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5,
                                                     row_factory=dict_row,
                                                     application_name="tripo04os-demo")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        session = _SESSION.get()
        own = session is None
        if session is None:
            session = Session(await self.pool.acquire())
        conn = session.conn
        try:
            if conn.closed:
                session.conn = conn = await self._connect()
            yield conn
        except psycopg.OperationalError as exc:
            if not conn.closed and conn.broken:
                await conn.close()
            if conn.closed:
                session.broken = True
            raise StoreUnavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        except OSError as exc:  # connecting failed
            session.broken = True
            raise StoreUnavailable(str(exc) or type(exc).__name__) from exc
        finally:
            if own:
                await self.pool.release(None if session.broken else conn)

    async def _rows(self, name: str, *params: Any) -> list[dict[str, Any]]:
        await _round_trip(self.rng)
        async with self._connection() as conn:
            cur = await conn.execute(SQL[name], params)
            rows: list[dict[str, Any]] = await cur.fetchall()
            return rows

    async def _one(self, name: str, *params: Any) -> dict[str, Any] | None:
        rows = await self._rows(name, *params)
        return rows[0] if rows else None

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

    async def order_items(self, order_id: int) -> list[Item]:
        return await self._rows("order_items", order_id)

    async def order_item_ids(self, order_id: int) -> list[int]:
        return [int(row["position"]) for row in await self._rows("order_item_ids", order_id)]

    async def order_item(self, order_id: int, position: int) -> Item | None:
        row = await self._one("order_item", order_id, position)
        return {"position": position, **row} if row else None

    async def cancel_order(self, order_id: int) -> tuple[dict[str, Any] | None, bool]:
        row = await self._one("cancel_order", order_id)
        if row is not None:
            return json_row(row), True
        return await self.get_order(order_id), False

    async def update_trip(self, trip_id: int, status: str) -> dict[str, Any] | None:
        row = await self._one("update_trip", status, trip_id)
        return json_row(row) if row else None

    async def hold_trip_locks(self, stop: asyncio.Event) -> None:
        """Until ``stop``: a transaction takes the row locks of trips 1..LOCKED_TRIPS, stays idle in transaction
        for LOCK_HOLD_SECONDS, commits, and starts again; trip updates of those rows wait for it."""
        while not stop.is_set():
            try:
                conn = await self._connect()
            except (psycopg.Error, OSError):
                await _until(stop, 1.0)
                continue
            try:
                while not stop.is_set():
                    async with conn.transaction():
                        await conn.execute(SQL["lock_trips"], (LOCKED_TRIPS,))
                        await _until(stop, LOCK_HOLD_SECONDS)
                    await _until(stop, LOCK_GAP_SECONDS)
            except psycopg.Error:
                await _until(stop, 1.0)
            finally:
                await conn.close()

    async def healthy(self) -> bool:
        try:
            async with self._connection() as conn:
                await conn.execute("SELECT 1")
        except (StoreUnavailable, psycopg.Error):
            return False
        return True

    async def close(self) -> None:
        for conn in self.pool.idle:
            await conn.close()
        self.pool.idle.clear()


async def _until(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# ---------------------------------------------------------------------------------------------------------------
# Memory


class MemoryStore(_Pooled):
    """Orders and trips in dicts. Each call waits a simulated database latency; the rider check really scans
    every order, as the unindexed query does in PostgreSQL. The pool hands out numbered stand-ins for
    connections; the trip locks are one asyncio lock."""

    kind = "memory"

    def __init__(self, rng: random.Random | None = None, size: int = POOL_SIZE) -> None:
        self.rng = rng or random.Random()
        self.orders: dict[int, dict[str, Any]] = {}
        self.trips: dict[int, dict[str, Any]] = {}
        self.trip_lock = asyncio.Lock()
        self._opened = 0
        self.pool = Pool(self._connect, size)
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

    async def _connect(self) -> int:
        self._opened += 1
        return self._opened

    async def _wait(self) -> None:
        session = _SESSION.get()
        if session is None:  # a statement outside a request's session takes a connection of its own
            session = Session(await self.pool.acquire())
            await self.pool.release(session.conn)
        await _round_trip(self.rng)
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

    def _item(self, order_id: int, position: int) -> Item | None:
        order = self.orders.get(order_id)
        if order is None or not 1 <= position <= ORDER_ITEMS:
            return None
        return {"position": position, "kind": ITEM_KINDS[position % len(ITEM_KINDS)],
                "amount_cents": order["fare_cents"] // ORDER_ITEMS + position % 3}

    async def order_items(self, order_id: int) -> list[Item]:
        await self._wait()
        return [item for p in range(1, ORDER_ITEMS + 1) if (item := self._item(order_id, p)) is not None]

    async def order_item_ids(self, order_id: int) -> list[int]:
        await self._wait()
        return list(range(1, ORDER_ITEMS + 1)) if order_id in self.orders else []

    async def order_item(self, order_id: int, position: int) -> Item | None:
        await self._wait()
        return self._item(order_id, position)

    async def cancel_order(self, order_id: int) -> tuple[dict[str, Any] | None, bool]:
        await self._wait()
        order = self.orders.get(order_id)
        if order is None or order["status"] == "cancelled":
            return (dict(order) if order else None), False
        order.update(status="cancelled", updated_at=datetime.now(UTC).isoformat())
        return dict(order), True

    async def update_trip(self, trip_id: int, status: str) -> dict[str, Any] | None:
        async with self.trip_lock:  # held by hold_trip_locks while the lock_contention fault is on
            await self._wait()
        trip = self.trips.get(trip_id)
        if trip is None:
            return None
        trip.update(status=status, updated_at=datetime.now(UTC).isoformat())
        return dict(trip)

    async def hold_trip_locks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with self.trip_lock:
                await _until(stop, LOCK_HOLD_SECONDS)
            await _until(stop, LOCK_GAP_SECONDS)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
