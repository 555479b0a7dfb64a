"""The demo's API: the Tripo04OS gateway endpoints, each traced (composed with the other routes in routes.py).

Every API request is traced: the gateway's server span (taking the caller's ``traceparent`` if valid) with
children for authentication, the owning service, its database and cache calls. Some steps that could run side
by side run one after another on purpose (the rider check and the fare quote when creating an order; the cache
invalidation and the notification when cancelling; the two Redis writes of a location update), so a trace
analyser has serial siblings to find. The response carries ``traceresponse`` with the trace id.

Order creation asks the pricing service for a fare and the matching service for a driver side by side (one after
the other with the ``serial_calls`` fault), then stores the order (its answer carries ``driver_id`` and
``matching_ms``). An order read returns the order (cache-aside) and its fare items, read in one query (one query
per item with ``n_plus_one``). Pickup and dropoff are address strings or coordinates ``{"lat": .., "lon": ..}``.
Location updates go onto the Redis list the Redis collector watches (``trip:location:updates``), which the demo's
queue workers drain.

With its security on (:mod:`exporter.demo.security`), a rider reads, cancels and books only its own orders (404
for another's, unless the ``idor`` hole is open); ``GET /api/v1/orders?status=`` lists the caller's newest orders
with a statement that binds the status (``sqli``: pasted into the text); the HTML pages under ``/web/`` escape
what they show (``xss``: not).

The faults (:mod:`exporter.demo.faults`) act where their true cause lies: a service's extra time and errors in
its own span, the gateway's in the gateway's span, the pool and lock faults in the database layer, and large
payloads on the way back to the client, after the gateway's span has ended (``LINK_BYTES_PER_SECOND``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from exporter.demo.cache import (
    LOCATION_QUEUE,
    NOTIFICATION_QUEUE,
    ORDER_TTL_SECONDS,
    CacheUnavailable,
    location_key,
    order_key,
)
from exporter.demo.faults import (
    GATEWAY,
    MATCHING,
    NOTIFICATIONS,
    ORDERS,
    PRICING,
    STEP_LATENCY,
    TRIPS,
)
from exporter.demo.security import (
    CALLER,
    Caller,
)
from exporter.demo.spans import SpanKind, TraceRecorder, format_traceparent, parse_traceparent
from exporter.demo.state import DemoState
from exporter.demo.storage import SPAN_NAMES, SQL, TRIP_STATUSES, PostgresStore, StoreUnavailable
from exporter.logs import event

log = logging.getLogger(__name__)

POOL_NAME = "tripo04os-demo"
LINK_BYTES_PER_SECOND = 1_000_000  # large payloads reach the client as over a 8 Mbit/s link
DRIVERS = 800  # drivers 1..800, as the seeded trips have them
NOTIFICATION_CHANNELS = ("push", "sms", "email")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def span_error(self) -> bool:
        """Only a server-side failure marks the spans it leaves as errors; a 404 or 422 does not."""
        return self.status >= 500


Handler = Callable[[Request, TraceRecorder], Awaitable[Response]]


# ---------------------------------------------------------------------------------------------------------------
# Large payloads


def padded(response: Response, kilobytes: int) -> bytes:
    """The JSON object ``response`` carries, with a ``receipt`` field that makes it ``kilobytes`` larger."""
    body = bytes(response.body)
    filler = b', "receipt": "' + b"x" * max(0, kilobytes * 1024 - 16) + b'"}'
    return body[:-1] + filler if body.endswith(b"}") else body


class PacedResponse(Response):
    """A JSON body sent at LINK_BYTES_PER_SECOND, as a client on a slow link receives it: the time shows in the
    client's receive phase, after the gateway's span has ended."""

    media_type = "application/json"
    CHUNK = 16 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        body = bytes(self.body)
        for start in range(0, len(body), self.CHUNK):
            chunk = body[start:start + self.CHUNK]
            await send({"type": "http.response.body", "body": chunk, "more_body": start + self.CHUNK < len(body)})
            await asyncio.sleep(len(chunk) / LINK_BYTES_PER_SECOND)
        if not body:
            await send({"type": "http.response.body", "body": b""})


# ---------------------------------------------------------------------------------------------------------------
# Request helpers


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "expected a JSON object")
    return body


MAX_ID = 2**31 - 1  # every id fits a PostgreSQL integer column


def _int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise ApiError(422, f"{name}: expected a positive integer up to {MAX_ID}, got {value!r}")
    return value


def _path_id(request: Request, what: str) -> int:
    value = int(request.path_params["id"])
    if not 0 < value <= MAX_ID:
        raise ApiError(404, f"{what} {value} not found")
    return value


def _float_field(body: dict[str, Any], name: str, low: float, high: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(422, f"{name}: expected a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _place_field(body: dict[str, Any], name: str, default: str) -> str:
    """A pickup or dropoff: an address string, or coordinates ``{"lat": 52.52, "lon": 13.40}`` as a ride-hailing
    client sends them (kept as the text ``"52.52000,13.40000"``, shown as coordinates again by :func:`_shown`)."""
    value = body.get(name, default)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"lat", "lon"})
        if unknown:
            raise ApiError(422, f"{name}: expected {{\"lat\": ..., \"lon\": ...}}, got the key {unknown[0]!r}")
        lat = _float_field(value, "lat", -90, 90)
        lon = _float_field(value, "lon", -180, 180)
        return f"{lat:.5f},{lon:.5f}"
    return text_field(body, name, default)


_COORDINATES = re.compile(r"^(-?\d{1,2}\.\d{5}),(-?\d{1,3}\.\d{5})$")


def _shown(order: dict[str, Any]) -> dict[str, Any]:
    """The order as the API answers it: places kept as coordinates are coordinates again."""
    out = dict(order)
    for name in ("pickup", "dropoff"):
        match = _COORDINATES.match(str(out.get(name, "")))
        if match:
            out[name] = {"lat": float(match.group(1)), "lon": float(match.group(2))}
    return out


def text_field(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ApiError(422, f"{name}: expected a non-empty string (at most 500 characters), got {value!r}")
    return value


def status_param(request: Request) -> str:
    """The order status the caller asks for (``?status=``, ``created`` by default)."""
    status = request.query_params.get("status", "created")
    if len(status) > 500:
        raise ApiError(422, "status: expected at most 500 characters")
    return status


def request_caller(request: Request) -> Caller | None:
    """Who the security middleware let in; None when the demo's security is off."""
    caller: Caller | None = request.scope.get(CALLER)
    return caller


class DemoApi:
    """The endpoints; each runs inside the gateway span that :meth:`traced` opens."""

    def __init__(self, state: DemoState) -> None:
        self.state = state

    async def work(self, step: str) -> None:
        await asyncio.sleep(STEP_LATENCY[step].sample(self.state.rng))

    def traced(self, route: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state = self.state
            rec = TraceRecorder(parse_traceparent(request.headers.get("traceparent")))
            response: Response
            with rec.span(GATEWAY, f"{request.method} {route}", "server", **{
                    "http.request.method": request.method, "http.route": route,
                    "url.path": request.url.path}) as root:
                try:
                    with rec.span(GATEWAY, "authenticate"):
                        await self.work("authenticate")
                    await self.own_work(GATEWAY)
                    response = await handler(request, rec)
                except ApiError as exc:
                    response = JSONResponse({"error": str(exc)}, status_code=exc.status)
                except StoreUnavailable as exc:
                    state.backend_failed("postgresql", str(exc))
                    response = JSONResponse({"error": "database unavailable"}, status_code=503)
                except CacheUnavailable as exc:
                    state.backend_failed("redis", str(exc))
                    response = JSONResponse({"error": "cache unavailable"}, status_code=503)
                except Exception as exc:  # a bug in the demo: still a traced 500 and one log line
                    event(log, logging.ERROR, "demo_request_failed", route=route,
                          cause=f"{type(exc).__name__}: {exc}")
                    response = JSONResponse({"error": "internal error"}, status_code=500)
                root.attributes["http.response.status_code"] = response.status_code
                if response.status_code >= 500:
                    root.error = True
                    root.status_message = f"HTTP {response.status_code}"
            state.buffer.add(rec.spans)
            if state.faults.payload_kb and response.status_code < 400:
                response = PacedResponse(padded(response, state.faults.payload_kb), response.status_code)
            response.headers["traceresponse"] = format_traceparent(rec.trace_id, root.span_id)
            return response

        return endpoint

    async def own_work(self, service: str) -> None:
        """The faults' extra time and errors of ``service``, in its own span (call inside it)."""
        faults = self.state.faults
        extra = faults.latency_of(service)
        if extra > 0:
            await asyncio.sleep(extra)
        ratio = faults.error_ratio_of(service)
        if ratio > 0 and self.state.rng.random() < ratio:
            raise ApiError(500, f"{service} failed (injected fault)")

    async def service(self, service: str, operation: str) -> None:
        """Enter a service: its injected latency and errors, then its own work (call inside its span)."""
        await self.own_work(service)
        await self.work(operation)

    @contextlib.asynccontextmanager
    async def db_session(self, rec: TraceRecorder, service: str) -> AsyncIterator[None]:
        """The request's database connection, from the pool, held until the block ends (as an ORM session holds
        it); the wait for it is its own span."""
        store = self.state.store
        with rec.span(service, "acquire connection", "client", **{
                "db.system": "postgresql" if store.kind == "postgresql" else "memory",
                "db.client.connection.pool.name": POOL_NAME}):
            session = await store.begin()
        try:
            yield
        finally:
            await store.end(session)

    async def db(self, rec: TraceRecorder, service: str, statement: str, call: Awaitable[Any]) -> Any:
        operation = SPAN_NAMES[statement]
        with rec.span(service, operation, "client", **{"db.system": "postgresql",
                                                       "db.statement": SQL[statement]}) as span:
            try:
                result = await call
            except StoreUnavailable:
                span.status_message = "database unavailable"
                raise
        self.state.backend_ok("postgresql")
        return result

    async def redis(self, rec: TraceRecorder, service: str, command: str, key: str, call: Awaitable[Any],
                    kind: SpanKind = "client", ttl_seconds: int | None = None) -> Any:
        pattern = re.sub(r":\d+$", ":{id}", key)
        statement = f"{command} {key}" + (" ?" if command == "SET" else "") + (
            f" EX {ttl_seconds}" if ttl_seconds is not None else "")
        with rec.span(service, f"{command} {pattern}", kind,
                      **{"db.system": "redis", "db.operation": command, "db.redis.key": key,
                         "db.statement": statement}) as span:
            try:
                result = await call
            except CacheUnavailable:
                span.status_message = "cache unavailable"
                raise
        self.state.backend_ok("redis")
        return result

    async def cache_order(self, rec: TraceRecorder, order: dict[str, Any]) -> None:
        """Put ``order`` in the cache unless the cache fault is set; a broken cache is logged, not an error."""
        faults = self.state.faults
        if faults.cache != "on":
            return
        ttl = faults.cache_ttl_seconds or ORDER_TTL_SECONDS
        try:
            await self.redis(rec, ORDERS, "SET", order_key(order["id"]), self.state.cache.set_order(order, ttl),
                             ttl_seconds=ttl)
        except CacheUnavailable as exc:
            self.state.backend_failed("redis", str(exc))

    # -- orders ------------------------------------------------------------------------------------------------

    def _own(self, request: Request, rider_id: int) -> bool:
        """Whether the caller may see and change an order of ``rider_id``: a dispatcher any, a rider its own (any,
        with the idor hole open), anybody while the demo's security is off."""
        caller = request_caller(request)
        return (caller is None or caller.rider_id is None or caller.rider_id == rider_id
                or self.state.faults.hole("idor"))

    @staticmethod
    def booking_rider(request: Request, body: dict[str, Any]) -> int:
        """The rider an order is booked for: the body's ``rider_id`` (a rider's own when it gives none)."""
        caller = request_caller(request)
        if caller is not None and caller.rider_id is not None:
            body = {"rider_id": caller.rider_id, **body}
        rider_id = _int_field(body, "rider_id")
        if caller is not None and caller.rider_id is not None and rider_id != caller.rider_id:
            raise ApiError(403, "a rider books orders for itself only")
        return rider_id

    async def create_order(self, request: Request, rec: TraceRecorder) -> Response:
        body = await _json_body(request)
        rider_id = self.booking_rider(request, body)
        pickup = _place_field(body, "pickup", "Alexanderplatz 1")
        dropoff = _place_field(body, "dropoff", "Flughafen BER")
        order = await self.book(rec, rider_id, pickup, dropoff)
        return JSONResponse(_shown(order), status_code=201)

    async def book(self, rec: TraceRecorder, rider_id: int, pickup: str, dropoff: str) -> dict[str, Any]:
        """Order creation: the rider check, the fare quote and the driver match, the insert and the cache."""
        store = self.state.store
        with rec.span(ORDERS, "create_order", "server"):
            await self.service(ORDERS, "create_order")
            async with self.db_session(rec, ORDERS):
                # The rider check and the fare quote do not depend on each other, yet run one after another.
                active = await self.db(rec, ORDERS, "rider_active_orders", store.rider_active_orders(rider_id))
                if self.state.faults.slow_query:
                    await self.db(rec, ORDERS, "rider_order_history", store.rider_order_history(rider_id))
                if self.state.faults.serial_calls:
                    fare_cents = await self.quote_fare(rec)
                    driver_id, matching_seconds = await self.match_driver(rec, pickup)
                else:
                    fare_cents, (driver_id, matching_seconds) = await asyncio.gather(
                        self.quote_fare(rec), self.match_driver(rec, pickup))
                order = await self.db(rec, ORDERS, "insert_order",
                                      store.create_order(rider_id, pickup, dropoff, fare_cents))
            await self.cache_order(rec, order)  # written through: the first read of a new order is a hit
        order["rider_open_orders"] = active + 1
        order["driver_id"] = driver_id
        order["matching_ms"] = round(matching_seconds * 1000, 3)
        return order

    async def quote_fare(self, rec: TraceRecorder) -> int:
        """The pricing service's fare for a ride, in cents: its own span and latency."""
        with rec.span(PRICING, "quote_fare", "server"):
            await self.service(PRICING, "quote_fare")
            return 800 + self.state.rng.randrange(0, 2500, 5)

    async def match_driver(self, rec: TraceRecorder, pickup: str) -> tuple[int, float]:
        """The matching service picks a driver near the pickup: its own span and latency (seconds)."""
        started = time.perf_counter()
        with rec.span(MATCHING, "match_driver", "server", **{"pickup": pickup}):
            await self.service(MATCHING, "match_driver")
            driver_id = 1 + self.state.rng.randrange(DRIVERS)
        return driver_id, time.perf_counter() - started

    async def get_order(self, request: Request, rec: TraceRecorder) -> Response:
        order_id = _path_id(request, "order")
        cache, store = self.state.cache, self.state.store
        with rec.span(ORDERS, "get_order", "server"):
            await self.service(ORDERS, "get_order")
            try:
                cached = await self.redis(rec, ORDERS, "GET", order_key(order_id), cache.get_order(order_id))
            except CacheUnavailable as exc:  # cache-aside: a broken cache is a miss, not an outage
                self.state.backend_failed("redis", str(exc))
                cached = None
            rec.spans[-1].attributes["cache.hit"] = cached is not None
            async with self.db_session(rec, ORDERS):
                order = cached
                if order is None:
                    order = await self.db(rec, ORDERS, "get_order", store.get_order(order_id))
                    if order is None:
                        raise ApiError(404, f"order {order_id} not found")
                if not self._own(request, order["rider_id"]):
                    raise ApiError(404, f"order {order_id} not found")  # another rider's: not even its existence
                items = await self.order_items(rec, order_id)
            if cached is None:
                await self.cache_order(rec, order)
        return JSONResponse({**_shown(order), "items": items}, headers={"x-cache": "hit" if cached else "miss"})

    async def order_items(self, rec: TraceRecorder, order_id: int) -> list[dict[str, Any]]:
        """The order's fare items: one query, or one per item with the n_plus_one fault."""
        store = self.state.store
        if not self.state.faults.n_plus_one:
            items: list[dict[str, Any]] = await self.db(rec, ORDERS, "order_items", store.order_items(order_id))
            return items
        out = []
        for position in await self.db(rec, ORDERS, "order_item_ids", store.order_item_ids(order_id)):
            item = await self.db(rec, ORDERS, "order_item", store.order_item(order_id, position))
            if item is not None:
                out.append(item)
        return out

    async def cancel_order(self, request: Request, rec: TraceRecorder) -> Response:
        order_id = _path_id(request, "order")
        with rec.span(ORDERS, "cancel_order", "server"):
            await self.service(ORDERS, "cancel_order")
            async with self.db_session(rec, ORDERS):
                caller = request_caller(request)
                if caller is not None and caller.rider_id is not None:  # a rider: its own orders only
                    mine = await self.db(rec, ORDERS, "get_order", self.state.store.get_order(order_id))
                    if mine is None or not self._own(request, mine["rider_id"]):
                        raise ApiError(404, f"order {order_id} not found")
                order, changed = await self.db(rec, ORDERS, "cancel_order",
                                               self.state.store.cancel_order(order_id))
            if order is None:
                raise ApiError(404, f"order {order_id} not found")
            if not changed:
                raise ApiError(409, f"order {order_id} is already cancelled")
            # Invalidation and notification are independent, yet run one after another.
            key = order_key(order_id)
            await self.redis(rec, ORDERS, "DEL", key, self.state.cache.drop_order(order_id))
            await self.notify(rec, {"user_id": order["rider_id"], "channel": "push",
                                    "message": f"Order {order_id} was cancelled"})
        return JSONResponse(order)

    async def list_orders(self, request: Request, rec: TraceRecorder) -> Response:
        """The caller's newest orders with ``status`` (a rider's own; all for a dispatcher)."""
        status = status_param(request)
        return JSONResponse({"status": status, "orders": await self.orders_with_status(
            request, rec, status, self.state.faults.hole("sqli"))})

    async def orders_with_status(self, request: Request, rec: TraceRecorder, status: str,
                                 unsafe: bool) -> list[dict[str, Any]]:
        caller = request_caller(request)
        rider_id = caller.rider_id if caller is not None else None
        store = self.state.store
        with rec.span(ORDERS, "list_orders", "server"):
            await self.service(ORDERS, "get_order")
            async with self.db_session(rec, ORDERS):
                if unsafe and isinstance(store, PostgresStore):
                    found = await self.db(rec, ORDERS, "list_orders_unsafe",
                                          store.list_orders_unsafe(rider_id, status))
                else:
                    found = await self.db(rec, ORDERS, "list_orders" if rider_id is None else "rider_orders",
                                          store.list_orders(rider_id, status))
        return [_shown(order) for order in found]

    # -- trips -------------------------------------------------------------------------------------------------

    async def update_trip(self, request: Request, rec: TraceRecorder) -> Response:
        trip_id = _path_id(request, "trip")
        body = await _json_body(request)
        status = body.get("status")
        if status not in TRIP_STATUSES:
            raise ApiError(422, f"status: expected one of {', '.join(TRIP_STATUSES)}, got {status!r}")
        with rec.span(TRIPS, "update_trip_status", "server"):
            await self.service(TRIPS, "update_trip_status")
            async with self.db_session(rec, TRIPS):
                trip = await self.db(rec, TRIPS, "update_trip", self.state.store.update_trip(trip_id, status))
            if trip is None:
                raise ApiError(404, f"trip {trip_id} not found")
            await self.notify(rec, {"user_id": trip["driver_id"], "channel": "push",
                                    "message": f"Trip {trip_id} is {status}"})
        return JSONResponse(trip)

    async def update_location(self, request: Request, rec: TraceRecorder) -> Response:
        trip_id = _path_id(request, "trip")
        body = await _json_body(request)
        driver_id = _int_field(body, "driver_id")
        location = {"trip_id": trip_id, "driver_id": driver_id, "lat": _float_field(body, "lat", -90, 90),
                    "lon": _float_field(body, "lon", -180, 180)}
        cache = self.state.cache
        with rec.span(TRIPS, "update_location", "server"):
            await self.service(TRIPS, "update_location")
            # Two independent Redis writes, one after another.
            await self.redis(rec, TRIPS, "SET", location_key(driver_id),
                             cache.set_location(driver_id, location))
            await self.redis(rec, TRIPS, "LPUSH", LOCATION_QUEUE, cache.enqueue(LOCATION_QUEUE, location),
                             kind="producer")
        return JSONResponse({"trip_id": trip_id, "driver_id": driver_id, "status": "accepted"}, status_code=202)

    # -- notifications -----------------------------------------------------------------------------------------

    async def notify(self, rec: TraceRecorder, message: dict[str, Any]) -> int:
        with rec.span(NOTIFICATIONS, "enqueue_notification", "server"):
            await self.work("send_notification")
            length: int = await self.redis(rec, NOTIFICATIONS, "LPUSH", NOTIFICATION_QUEUE,
                                           self.state.cache.enqueue(NOTIFICATION_QUEUE, message), kind="producer")
        return length

    async def send_notification(self, request: Request, rec: TraceRecorder) -> Response:
        body = await _json_body(request)
        message = {"user_id": _int_field(body, "user_id"), "channel": body.get("channel", "push"),
                   "message": text_field(body, "message")}
        if message["channel"] not in NOTIFICATION_CHANNELS:
            raise ApiError(422, f"channel: expected one of {', '.join(NOTIFICATION_CHANNELS)}, "
                                f"got {message['channel']!r}")
        with rec.span(NOTIFICATIONS, "send_notification", "server"):
            await self.service(NOTIFICATIONS, "send_notification")
            length = await self.notify(rec, message)
        return JSONResponse({"status": "queued", "queue_length": length}, status_code=202)
