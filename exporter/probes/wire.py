"""HTTP/1.1 exchanges for the probes: h11 on asyncio's transports, timed where the bytes meet the loop.

httpx spends about 0.6 ms of CPU on a GET to a local nginx on this project's machine, and several times that with
many requests in flight on one client (bench/bench_scale.py); this is about 0.15 ms, which is what lets one
replica probe thousands of endpoints every 15 s. It does what the probes need and no more: HTTP/1.1 over TCP or
TLS, kept-alive connections per origin, a body limit, and the marks a probe's phases are made of, each taken
when the loop hands the protocol its bytes:

- ``connect`` (TCP) and ``tls`` (the handshake, apart);
- ``sent``: the request has been written; the duration runs from here;
- ``first_byte``: the first bytes of the answer; ``end``: its last bytes;
- ``busy``: how long the loop's thread was on a CPU or waiting for one between the moment the answer's last
  bytes can have arrived at the earliest (``sent``, or the return of the loop's previous wait for events when
  that is later) and ``end`` (:mod:`exporter.timing`): the most the process can have added to the duration.

Redirects, outcomes and expectations are the caller's (:mod:`exporter.probes.http`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import h11

from exporter.timing import IN_FLIGHT, BusyClock, arrival_floor_ns, busy_clock


class WireError(Exception):
    """The exchange failed below HTTP: refused, reset, closed early, not HTTP, TLS."""


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    size: int
    sent: float
    first_byte: float
    end: float
    busy: float  # seconds the loop's thread ran or waited for a CPU between sent and end
    connect: float = 0.0
    tls: float = 0.0
    send: float = 0.0

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class _Exchange:
    waiter: asyncio.Future[None]
    limit: int
    keep_body: bool
    sent: float = 0.0
    busy_at_sent: int = 0
    first_byte: float = 0.0
    end: float = 0.0
    busy_at_end: int = 0
    busy_floor: int = 0  # the busy clock when the last bytes can have arrived at the earliest
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time."""

    def __init__(self, clock: BusyClock) -> None:
        self.clock = clock
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.closed = False
        self.answered = False  # bytes came back for the current (or last) exchange

    # -- asyncio.Protocol --------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        ex = self.exchange
        if ex is None:  # bytes nobody asked for: the connection cannot be trusted with another request
            self.close()
            return
        busy = self.clock.read_ns()
        if not ex.first_byte:
            ex.first_byte = now
            self.answered = True
        try:
            self.h11.receive_data(data)
            self._drain(ex, now, busy)
        except h11.RemoteProtocolError as exc:
            self._fail(WireError(f"not a valid HTTP/1.1 answer: {exc}"))
        except BodyTooLarge as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        self._closed_by_server()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._closed_by_server(exc)

    # -- exchanges -----------------------------------------------------------------------------------------------

    def _closed_by_server(self, exc: Exception | None = None) -> None:
        ex = self.exchange
        if ex is None or ex.waiter.done():
            self.closed = True
            return
        try:  # an answer without a length ends with the connection
            self.h11.receive_data(b"")
            self._drain(ex, time.perf_counter(), self.clock.read_ns())
        except (h11.RemoteProtocolError, BodyTooLarge):
            pass
        if not ex.waiter.done():
            cause = f": {exc}" if exc else ""
            self._fail(WireError(f"connection closed before a complete answer{cause}"))

    def _drain(self, ex: _Exchange, now: float, busy: int) -> None:
        while True:
            event = self.h11.next_event()
            kind = type(event)
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if kind is h11.Response:
                ex.status = event.status_code  # type: ignore[union-attr]
                ex.headers = list(event.headers)  # type: ignore[union-attr]
            elif kind is h11.Data:
                data = event.data  # type: ignore[union-attr]
                ex.size += len(data)
                if ex.size > ex.limit:
                    raise BodyTooLarge(f"body larger than max_body_bytes ({ex.limit})")
                if ex.keep_body:
                    ex.chunks.append(bytes(data))
            elif kind is h11.EndOfMessage:
                ex.end, ex.busy_at_end = now, busy
                floor = arrival_floor_ns()
                ex.busy_floor = ex.busy_at_sent if floor is None else max(ex.busy_at_sent, floor)
                if not ex.waiter.done():
                    ex.waiter.set_result(None)
                return
            elif kind is h11.ConnectionClosed:
                return

    def _fail(self, exc: Exception) -> None:
        ex = self.exchange
        if ex is not None and not ex.waiter.done():
            ex.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return not self.closed and self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE

    async def exchange_once(self, request: h11.Request, body: bytes, limit: int, keep_body: bool) -> Answer:
        """Send one request and wait for its whole answer (the caller bounds the wait)."""
        assert self.transport is not None and self.exchange is None
        loop = asyncio.get_running_loop()
        ex = self.exchange = _Exchange(loop.create_future(), limit, keep_body)
        self.answered = False
        try:
            started = time.perf_counter()
            try:
                data = self.h11.send(request) or b""
                if body:
                    data += self.h11.send(h11.Data(data=body)) or b""
                data += self.h11.send(h11.EndOfMessage()) or b""
            except h11.LocalProtocolError as exc:
                raise WireError(f"cannot send this request: {exc}") from None
            self.transport.write(data)
            ex.sent = time.perf_counter()
            ex.busy_at_sent = self.clock.read_ns()
            IN_FLIGHT.started()
            try:
                await ex.waiter
            finally:
                IN_FLIGHT.ended()
            body_bytes = b"".join(ex.chunks)
            answer = Answer(ex.status, ex.headers, body_bytes, ex.size, ex.sent, ex.first_byte, ex.end,
                            max(0, ex.busy_at_end - ex.busy_floor) / 1e9, send=ex.sent - started)
        except BaseException:
            self.close()
            raise
        finally:
            self.exchange = None
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        else:
            self.close()
        return answer


class Pool:
    """Kept-alive connections to one origin: a free one is reused, else a new one is opened. Nothing waits for a
    connection, so the callers bound how many are in flight (an endpoint's ``concurrency``)."""

    def __init__(self, origin: Origin, ssl_context: ssl.SSLContext | None, idle_max: int = 4) -> None:
        self.origin = origin
        self.ssl_context = ssl_context
        self.idle: list[Connection] = []
        self.idle_max = idle_max

    async def open(self) -> tuple[Connection, float, float]:
        """A new connection, with the seconds its TCP connect and its TLS handshake took."""
        loop = asyncio.get_running_loop()
        clock = busy_clock()
        started = time.perf_counter()
        try:
            transport, protocol = await loop.create_connection(lambda: Connection(clock), self.origin.host,
                                                               self.origin.port)
        except OSError as exc:
            raise WireError(f"cannot connect to {self.origin.authority}: {exc.strerror or exc}") from None
        connected = time.perf_counter()
        tls = 0.0
        if self.ssl_context is not None:
            try:
                tls_transport = await loop.start_tls(transport, protocol, self.ssl_context,
                                                     server_hostname=self.origin.host)
            except (OSError, ssl.SSLError, ConnectionError) as exc:
                transport.close()
                raise WireError(f"TLS with {self.origin.authority} failed: {exc}") from None
            if tls_transport is None:
                transport.close()
                raise WireError(f"TLS with {self.origin.authority} failed")
            protocol.transport = tls_transport
            tls = time.perf_counter() - connected
        return protocol, connected - started, tls

    @contextmanager
    def checked_out(self, connection: Connection) -> Iterator[Connection]:
        try:
            yield connection
        finally:
            if connection.reusable and len(self.idle) < self.idle_max:
                self.idle.append(connection)
            else:
                connection.close()

    def take_idle(self) -> Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if connection.reusable:
                return connection
            connection.close()
        return None

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class Pools:
    """One :class:`Pool` per origin a job talks to (its base URL, and where redirects lead). ``ssl_context`` is
    called for the first https origin only."""

    def __init__(self, ssl_context: Callable[[], ssl.SSLContext]) -> None:
        self.ssl_context = ssl_context
        self.pools: dict[Origin, Pool] = {}

    def pool(self, origin: Origin) -> Pool:
        found = self.pools.get(origin)
        if found is None:
            tls = self.ssl_context() if origin.scheme == "https" else None
            found = self.pools[origin] = Pool(origin, tls)
        return found

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


async def exchange(pool: Pool, request: h11.Request, body: bytes, limit: int, keep_body: bool) -> Answer:
    """One request on a kept-alive connection of ``pool`` (or a new one). A kept-alive connection that the server
    closed while it sat idle is replaced once, as every client does."""
    connection = pool.take_idle()
    if connection is not None:
        try:
            with pool.checked_out(connection):
                return await connection.exchange_once(request, body, limit, keep_body)
        except WireError:
            if connection.answered:
                raise
    connection, connect, tls = await pool.open()
    with pool.checked_out(connection):
        answer = await connection.exchange_once(request, body, limit, keep_body)
    answer.connect, answer.tls = connect, tls
    return answer
