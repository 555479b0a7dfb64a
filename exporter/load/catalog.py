"""The scenarios ``perf-exporter bench`` runs: each a k6 script shipped in ``scenarios/`` with its default shape
(the guide's numbers), its warm-up, the endpoints and parts it tags, and the custom metrics it defines."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

Model = Literal["closed", "open", "breakpoint"]


@dataclass(frozen=True)
class Stage:
    duration: float  # seconds
    target: int  # VUs (closed model) or iterations per second (open model)


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    summary: str
    model: Model = "closed"
    vus: int = 10
    duration: float = 60.0
    stages: tuple[Stage, ...] = ()  # a closed scenario with stages ramps; without, it holds ``vus``
    rate: int = 0  # open model: iterations per second; breakpoint: the first step's rate and each step's rise
    steps: int = 0  # breakpoint: how many steps
    warmup: float = 10.0
    endpoints: tuple[str, ...] = ()
    parts: dict[str, float] = field(default_factory=dict)  # part tag -> intended share (mixed workload)
    metrics: tuple[str, ...] = ()  # custom metrics the script defines

    def script_path(self) -> Path:
        return scenarios_dir() / self.script


def scenarios_dir() -> Path:
    return Path(str(resources.files("exporter.load") / "scenarios"))


_ORDERS = ("create_order", "get_order")
SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("api", "api.js", "every endpoint of the gateway", vus=10, duration=60,
             endpoints=("health", "create_order", "get_order", "update_trip_status", "update_location",
                        "send_notification")),
    Scenario("db-profiling", "db-profiling.js", "order creation and reads that reach the database",
             vus=10, duration=60, endpoints=_ORDERS),
    Scenario("caching", "caching.js", "read-heavy order reads from a hot set", vus=10, duration=60,
             endpoints=("get_order",), metrics=("cache_hits",)),
    Scenario("tracing", "tracing.js", "requests carrying traceparent, their traces looked up in Jaeger",
             vus=5, duration=60, endpoints=_ORDERS, metrics=("trace_found", "trace_duration")),
    Scenario("ramp-up", "ramp-up.js", "10 -> 500 users over 10 minutes", stages=(Stage(10, 10), Stage(600, 500)),
             warmup=10, endpoints=_ORDERS),
    Scenario("steady", "steady.js", "500 users for 30 minutes", vus=500, duration=1800, warmup=60,
             endpoints=(*_ORDERS, "update_location")),
    Scenario("spike", "spike.js", "100 -> 1000 -> 100 users",
             stages=(Stage(30, 100), Stage(60, 1000), Stage(90, 100)), warmup=10, endpoints=_ORDERS),
    Scenario("order-creation", "order-creation.js", "many users creating orders at once", vus=500, duration=600,
             warmup=30, endpoints=("create_order",), parts={"order_creation": 1.0}),
    Scenario("trip-execution", "trip-execution.js", "active trips sending location updates", vus=500,
             duration=600, warmup=30, endpoints=("update_location", "update_trip_status", "create_order"),
             parts={"location_update": 4 / 6, "trip_update": 1 / 6, "order_creation": 1 / 6},
             metrics=("matching_duration",)),
    Scenario("mixed", "mixed.js", "40 % orders, 30 % trip updates, 20 % locations, 10 % notifications",
             vus=500, duration=600, warmup=30,
             endpoints=("create_order", "update_trip_status", "update_location", "send_notification"),
             parts={"order_creation": 0.4, "trip_update": 0.3, "location_update": 0.2, "notification": 0.1}),
    Scenario("arrival-rate", "arrival-rate.js", "orders arriving at a fixed rate (open model)", model="open",
             vus=50, duration=60, rate=50, endpoints=("create_order",), parts={"order_creation": 1.0}),
    Scenario("breakpoint", "breakpoint.js", "the arrival rate rises step by step until a target breaks",
             model="breakpoint", vus=200, duration=30, rate=10, steps=20, endpoints=("create_order",),
             parts={"order_creation": 1.0}),
]}

# The guide's run-all-benchmarks, in its order.
BENCHMARKS = ("api", "db-profiling", "caching", "tracing")
