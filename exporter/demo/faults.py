"""Faults that can be set on the running demo (``POST /admin/faults``), and its per-step latency model.

Each knob has one true cause and one true fix, in the guide's words (docs/demo.md lists them); any of them can be
combined with the others. ``POST`` changes the knobs it names and keeps the others; ``DELETE`` clears them all.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

CacheMode = Literal["on", "off"]

GATEWAY = "api-gateway"
ORDERS = "order-service"
PRICING = "pricing-service"
TRIPS = "trip-service"
NOTIFICATIONS = "notification-service"
MATCHING = "matching-service"
SERVICES = (GATEWAY, ORDERS, PRICING, MATCHING, TRIPS, NOTIFICATIONS)

MAX_LATENCY_MS = 60_000
MAX_TTL_SECONDS = 86_400
MAX_POOL_SIZE = 64
MAX_PAYLOAD_KB = 10_240


@dataclass(frozen=True)
class Faults:
    """The knobs in force. ``latency_ms`` and ``error_rate`` act in the gateway's own span; ``service_latency``
    and ``service_errors`` in one service's own span; ``cache_ttl_seconds`` and ``db_pool_size`` are None when
    the demo's defaults apply."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    service_latency: Mapping[str, float] = field(default_factory=dict)
    service_errors: Mapping[str, float] = field(default_factory=dict)
    slow_query: bool = False
    lock_contention: bool = False
    n_plus_one: bool = False
    cache: CacheMode = "on"
    cache_ttl_seconds: int | None = None
    serial_calls: bool = False
    db_pool_size: int | None = None
    payload_kb: int = 0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["service_latency"] = dict(self.service_latency)
        out["service_errors"] = dict(self.service_errors)
        return out

    def latency_of(self, service: str) -> float:
        """Seconds of extra own work the faults give ``service``."""
        extra = self.service_latency.get(service, 0.0)
        if service == GATEWAY:
            extra += self.latency_ms
        return extra / 1000

    def error_ratio_of(self, service: str) -> float:
        """The share of the service's calls that fail (the gateway's ``error_rate`` and its own, combined)."""
        ratio = self.service_errors.get(service, 0.0)
        if service == GATEWAY:
            ratio = 1 - (1 - ratio) * (1 - self.error_rate)
        return ratio


def _number(name: str, value: Any, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name}: expected {what} between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _whole(name: str, value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: expected a whole number of {what} between {low} and {high}, got {value!r}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def _per_service(name: str, value: Any, high: float, what: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected an object of service to {what}, such as "
                         f"{{\"{ORDERS}\": {high if high < 1 else 300:g}}}, got {value!r}")
    out: dict[str, float] = {}
    for service, amount in value.items():
        if service not in SERVICES:
            raise ValueError(f"{name}: unknown service {service!r} (expected one of: {', '.join(SERVICES)})")
        number = _number(f"{name}.{service}", amount, 0, high, what)
        if number > 0:
            out[service] = number
    return out


def updated_faults(current: Faults, data: Any) -> Faults:
    """``current`` with the knobs given in ``data`` changed; ValueError naming the first bad knob, service or
    value."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object like {\"latency_ms\": 800, \"error_rate\": 0.05}")
    known = {f.name for f in fields(Faults)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (expected one of: {', '.join(sorted(known))})")
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "latency_ms":
            changes[name] = _number(name, value, 0, MAX_LATENCY_MS, "milliseconds")
        elif name == "error_rate":
            changes[name] = _number(name, value, 0, 1, "a ratio")
        elif name == "service_latency":
            changes[name] = _per_service(name, value, MAX_LATENCY_MS, "milliseconds")
        elif name == "service_errors":
            changes[name] = _per_service(name, value, 1, "a ratio")
        elif name == "cache":
            if value not in ("on", "off"):
                raise ValueError(f"cache: expected 'on' or 'off', got {value!r}")
            changes[name] = value
        elif name == "cache_ttl_seconds":
            changes[name] = None if value is None else _whole(name, value, 1, MAX_TTL_SECONDS, "seconds")
        elif name == "db_pool_size":
            changes[name] = None if value is None else _whole(name, value, 1, MAX_POOL_SIZE, "connections")
        elif name == "payload_kb":
            changes[name] = _whole(name, value, 0, MAX_PAYLOAD_KB, "kilobytes")
        else:
            changes[name] = _flag(name, value)
    return replace(current, **changes)


@dataclass(frozen=True)
class Latency:
    """A lognormal step time: most calls near the median, a long tail to the right, as real services show."""

    median_ms: float
    sigma: float = 0.5

    def sample(self, rng: random.Random) -> float:
        """Seconds; capped at 20x the median so one draw cannot stall a request."""
        value = self.median_ms * math.exp(rng.gauss(0.0, self.sigma))
        return min(value, 20 * self.median_ms) / 1000


# Simulated work of each internal step (on top of real database and Redis time when those are used). Pricing and
# matching are remote calls of some weight; order creation runs them side by side (serial_calls: one after the
# other).
STEP_LATENCY = {
    "authenticate": Latency(0.4, 0.4),
    "create_order": Latency(2.0, 0.6),
    "quote_fare": Latency(180.0, 0.08),
    "match_driver": Latency(160.0, 0.08),
    "get_order": Latency(0.6, 0.5),
    "cancel_order": Latency(1.2, 0.5),
    "update_trip_status": Latency(1.0, 0.5),
    "update_location": Latency(0.5, 0.4),
    "send_notification": Latency(0.8, 0.5),
    "memory_db": Latency(0.8, 0.6),
    "memory_cache": Latency(0.15, 0.4),
}
SLOW_QUERY_SECONDS = 0.25
