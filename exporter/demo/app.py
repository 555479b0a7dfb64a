"""The demo's ASGI app: the Tripo04OS API gateway endpoints, health, fault control and the Jaeger query API.

Every API request is traced: the gateway's server span (taking the caller's ``traceparent`` if valid) with
children for authentication, the owning service, its database and cache calls. Some steps that could run side
by side run one after another on purpose (the rider check and the fare quote when creating an order; the cache
invalidation and the notification when cancelling; the two Redis writes of a location update), so a trace
analyser has serial siblings to find. The response carries ``traceresponse`` with the trace id.

Order creation ends with the matching service choosing a driver (its own span, ``matching-service
match_driver``; the order's answer carries ``driver_id`` and ``matching_ms``). Pickup and dropoff are address
strings or coordinates ``{"lat": .., "lon": ..}``. Location updates go onto the Redis list the Redis collector
watches (``trip:location:updates``), which the demo's queue workers drain.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporter.demo.cache import LOCATION_QUEUE, NOTIFICATION_QUEUE, Cache, CacheUnavailable, location_key, order_key
from exporter.demo.faults import STEP_LATENCY, Faults, updated_faults
from exporter.demo.jaeger_routes import JaegerRoutes
from exporter.demo.spans import SpanKind, TraceBuffer, TraceRecorder, format_traceparent, parse_traceparent
from exporter.demo.storage import SPAN_NAMES, SQL, TRIP_STATUSES, Store, StoreUnavailable
from exporter.logs import event

log = logging.getLogger(__name__)

GATEWAY = "api-gateway"
ORDERS = "order-service"
PRICING = "pricing-service"
TRIPS = "trip-service"
NOTIFICATIONS = "notification-service"
MATCHING = "matching-service"
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


@dataclass
class DemoState:
    store: Store
    cache: Cache
    buffer: TraceBuffer = field(default_factory=TraceBuffer)
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)
    down: set[str] = field(default_factory=set)  # backends last seen failing, to log each outage once

    def backend_failed(self, backend: str, cause: str) -> None:
        if backend not in self.down:
            self.down.add(backend)
            event(log, logging.WARNING, "demo_backend_unavailable", backend=backend, cause=cause)

    def backend_ok(self, backend: str) -> None:
        if backend in self.down:
            self.down.discard(backend)
            event(log, logging.INFO, "demo_backend_recovered", backend=backend)


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
    return _text_field(body, name, default)


_COORDINATES = re.compile(r"^(-?\d{1,2}\.\d{5}),(-?\d{1,3}\.\d{5})$")


def _shown(order: dict[str, Any]) -> dict[str, Any]:
    """The order as the API answers it: places kept as coordinates are coordinates again."""
    out = dict(order)
    for name in ("pickup", "dropoff"):
        match = _COORDINATES.match(str(out.get(name, "")))
        if match:
            out[name] = {"lat": float(match.group(1)), "lon": float(match.group(2))}
    return out


def _text_field(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ApiError(422, f"{name}: expected a non-empty string (at most 500 characters), got {value!r}")
    return value


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
            response.headers["traceresponse"] = format_traceparent(rec.trace_id, root.span_id)
            return response

        return endpoint

    async def service(self, service: str, operation: str) -> None:
        """Enter a service: its injected latency and injected errors happen here (call inside its span)."""
        faults = self.state.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.error_rate > 0 and self.state.rng.random() < faults.error_rate:
            raise ApiError(500, f"{service} failed (injected fault)")
        await self.work(operation)

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
                    kind: SpanKind = "client") -> Any:
        pattern = re.sub(r":\d+$", ":{id}", key)
        with rec.span(service, f"{command} {pattern}", kind,
                      **{"db.system": "redis", "db.operation": command, "db.redis.key": key}) as span:
            try:
                result = await call
            except CacheUnavailable:
                span.status_message = "cache unavailable"
                raise
        self.state.backend_ok("redis")
        return result

    async def cache_order(self, rec: TraceRecorder, order: dict[str, Any]) -> None:
        """Put ``order`` in the cache unless the cache fault is set; a broken cache is logged, not an error."""
        if self.state.faults.cache != "on":
            return
        try:
            await self.redis(rec, ORDERS, "SET", order_key(order["id"]), self.state.cache.set_order(order))
        except CacheUnavailable as exc:
            self.state.backend_failed("redis", str(exc))

    # -- orders ------------------------------------------------------------------------------------------------

    async def create_order(self, request: Request, rec: TraceRecorder) -> Response:
        body = await _json_body(request)
        rider_id = _int_field(body, "rider_id")
        pickup = _place_field(body, "pickup", "Alexanderplatz 1")
        dropoff = _place_field(body, "dropoff", "Flughafen BER")
        store = self.state.store
        with rec.span(ORDERS, "create_order", "server"):
            await self.service(ORDERS, "create_order")
            # The rider check and the fare quote do not depend on each other, yet run one after another.
            active = await self.db(rec, ORDERS, "rider_active_orders", store.rider_active_orders(rider_id))
            if self.state.faults.slow_query:
                await self.db(rec, ORDERS, "rider_order_history", store.rider_order_history(rider_id))
            with rec.span(PRICING, "quote_fare", "server"):
                await self.work("quote_fare")
                fare_cents = 800 + self.state.rng.randrange(0, 2500, 5)
            order = await self.db(rec, ORDERS, "insert_order",
                                  store.create_order(rider_id, pickup, dropoff, fare_cents))
            await self.cache_order(rec, order)  # written through: the first read of a new order is a hit
            driver_id, matching_seconds = await self.match_driver(rec, order["id"])
        order["rider_open_orders"] = active + 1
        order["driver_id"] = driver_id
        order["matching_ms"] = round(matching_seconds * 1000, 3)
        return JSONResponse(_shown(order), status_code=201)

    async def match_driver(self, rec: TraceRecorder, order_id: int) -> tuple[int, float]:
        """The matching service picks a driver near the pickup: its own span and latency (seconds)."""
        started = time.perf_counter()
        with rec.span(MATCHING, "match_driver", "server", **{"order.id": order_id}):
            await self.work("match_driver")
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
            if cached is not None:
                return JSONResponse(_shown(cached), headers={"x-cache": "hit"})
            order = await self.db(rec, ORDERS, "get_order", store.get_order(order_id))
            if order is None:
                raise ApiError(404, f"order {order_id} not found")
            await self.cache_order(rec, order)
        return JSONResponse(_shown(order), headers={"x-cache": "miss"})

    async def cancel_order(self, request: Request, rec: TraceRecorder) -> Response:
        order_id = _path_id(request, "order")
        with rec.span(ORDERS, "cancel_order", "server"):
            await self.service(ORDERS, "cancel_order")
            order, changed = await self.db(rec, ORDERS, "cancel_order", self.state.store.cancel_order(order_id))
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

    # -- trips -------------------------------------------------------------------------------------------------

    async def update_trip(self, request: Request, rec: TraceRecorder) -> Response:
        trip_id = _path_id(request, "trip")
        body = await _json_body(request)
        status = body.get("status")
        if status not in TRIP_STATUSES:
            raise ApiError(422, f"status: expected one of {', '.join(TRIP_STATUSES)}, got {status!r}")
        with rec.span(TRIPS, "update_trip_status", "server"):
            await self.service(TRIPS, "update_trip_status")
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
                   "message": _text_field(body, "message")}
        if message["channel"] not in NOTIFICATION_CHANNELS:
            raise ApiError(422, f"channel: expected one of {', '.join(NOTIFICATION_CHANNELS)}, "
                                f"got {message['channel']!r}")
        with rec.span(NOTIFICATIONS, "send_notification", "server"):
            await self.service(NOTIFICATIONS, "send_notification")
            length = await self.notify(rec, message)
        return JSONResponse({"status": "queued", "queue_length": length}, status_code=202)

    # -- health and faults -------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        state = self.state
        db_ok, cache_ok = await asyncio.gather(state.store.healthy(), state.cache.healthy())
        body = {"status": "ok" if db_ok and cache_ok else "degraded",
                "storage": {"kind": state.store.kind, "up": db_ok},
                "cache": {"kind": state.cache.kind, "up": cache_ok},
                "faults": state.faults.as_json()}
        return JSONResponse(body, status_code=200 if db_ok and cache_ok else 503)

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.state.faults.as_json())

    async def set_faults(self, request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
            faults = updated_faults(self.state.faults, data)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        await self._apply_faults(faults)
        return JSONResponse(faults.as_json())

    async def clear_faults(self, request: Request) -> Response:
        await self._apply_faults(Faults())
        return JSONResponse(self.state.faults.as_json())

    async def _apply_faults(self, faults: Faults) -> None:
        before = self.state.faults
        self.state.faults = faults
        dropped = 0
        if faults.cache == "off" and before.cache == "on":
            try:
                dropped = await self.state.cache.drop_all_orders()  # the cache is cold from now on
            except CacheUnavailable as exc:
                self.state.backend_failed("redis", str(exc))
        event(log, logging.INFO, "demo_faults_set", **faults.as_json(), cached_orders_dropped=dropped)


def build_app(state: DemoState) -> Starlette:
    api = DemoApi(state)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/admin/faults", api.get_faults, methods=["GET"]),
        Route("/admin/faults", api.set_faults, methods=["POST"]),
        Route("/admin/faults", api.clear_faults, methods=["DELETE"]),
        Route("/api/v1/orders", api.traced("/api/v1/orders", api.create_order), methods=["POST"]),
        Route("/api/v1/orders/{id:int}", api.traced("/api/v1/orders/{id}", api.get_order), methods=["GET"]),
        Route("/api/v1/orders/{id:int}/cancel", api.traced("/api/v1/orders/{id}/cancel", api.cancel_order),
              methods=["POST"]),
        Route("/api/v1/trips/{id:int}", api.traced("/api/v1/trips/{id}", api.update_trip), methods=["PATCH"]),
        Route("/api/v1/trips/{id:int}/location",
              api.traced("/api/v1/trips/{id}/location", api.update_location), methods=["POST"]),
        Route("/api/v1/notifications", api.traced("/api/v1/notifications", api.send_notification),
              methods=["POST"]),
        *JaegerRoutes(state.buffer).routes(),
    ]
    return Starlette(routes=routes)
