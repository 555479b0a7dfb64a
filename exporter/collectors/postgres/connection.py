"""One persistent connection to one database: reconnects with exponential backoff, one query in flight at a
time, a broken connection reopened once per query (every query here only reads)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from exporter.collectors.postgres.target import PostgresTarget
from exporter.secrets import mask_url

log = logging.getLogger(__name__)

APPLICATION_NAME = "perf-exporter"
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0

Row = tuple[Any, ...]


def describe(exc: BaseException) -> str:
    """One line, no secrets: what went wrong, for logs and errors."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, Unavailable):  # already described
        return mask_url(text)
    return mask_url(f"{type(exc).__name__}: {text}")


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
