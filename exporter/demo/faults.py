"""Faults that can be set on the running demo (``POST /admin/faults``), and its per-step latency model."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

CacheMode = Literal["on", "off"]


@dataclass(frozen=True)
class Faults:
    """``latency_ms`` is added to every API request; ``error_rate`` of them answer 500; ``cache: off`` empties
    the order cache and stops filling it, so every order read misses; ``slow_query`` makes order creation run an
    extra slow statement (a ``pg_sleep`` plus a table scan) that pg_stat_statements shows as the slowest."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    cache: CacheMode = "on"
    slow_query: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def updated_faults(current: Faults, data: Any) -> Faults:
    """``current`` with the fields given in ``data`` changed; ValueError naming the first bad field."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object like {\"latency_ms\": 800, \"error_rate\": 0.05}")
    known = {f.name for f in fields(Faults)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (expected one of: {', '.join(sorted(known))})")
    changes: dict[str, Any] = {}
    if "latency_ms" in data:
        value = data["latency_ms"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 60_000:
            raise ValueError(f"latency_ms: expected milliseconds between 0 and 60000, got {value!r}")
        changes["latency_ms"] = float(value)
    if "error_rate" in data:
        value = data["error_rate"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"error_rate: expected a ratio between 0 and 1, got {value!r}")
        changes["error_rate"] = float(value)
    if "cache" in data:
        value = data["cache"]
        if value not in ("on", "off"):
            raise ValueError(f"cache: expected 'on' or 'off', got {value!r}")
        changes["cache"] = value
    if "slow_query" in data:
        value = data["slow_query"]
        if not isinstance(value, bool):
            raise ValueError(f"slow_query: expected true or false, got {value!r}")
        changes["slow_query"] = value
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


# Simulated work of each internal step (on top of real database and Redis time when those are used).
STEP_LATENCY = {
    "authenticate": Latency(0.4, 0.4),
    "create_order": Latency(2.0, 0.6),
    "quote_fare": Latency(1.5, 0.5),
    "match_driver": Latency(2.5, 0.6),
    "get_order": Latency(0.6, 0.5),
    "cancel_order": Latency(1.2, 0.5),
    "update_trip_status": Latency(1.0, 0.5),
    "update_location": Latency(0.5, 0.4),
    "send_notification": Latency(0.8, 0.5),
    "memory_db": Latency(0.8, 0.6),
    "memory_cache": Latency(0.15, 0.4),
}
SLOW_QUERY_SECONDS = 0.25
