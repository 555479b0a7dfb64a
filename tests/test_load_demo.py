"""What the demo grew for the load scenarios: coordinates for pickup and dropoff, a driver-matching step with
its own span, location updates queued in Redis and drained by workers, and ``--workers N``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import Demo, Redis, wait_for


class JsonDemo(Demo):
    """The demo, with a client for its JSON endpoints."""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsonDemo]:
    server = JsonDemo(tmp_path_factory.mktemp("demo") / "demo.log")
    yield server
    server.stop()


def test_orders_take_pickup_and_dropoff_as_coordinates_and_answer_them_as_coordinates(demo: JsonDemo) -> None:
    pickup, dropoff = {"lat": 52.52, "lon": 13.405}, {"lat": 52.3667, "lon": 13.5033}
    status, order, _ = demo.call("POST", "/api/v1/orders", {"rider_id": 7, "pickup": pickup, "dropoff": dropoff})
    assert status == 201, order
    assert (order["pickup"], order["dropoff"]) == (pickup, dropoff)
    status, again, _ = demo.call("GET", f"/api/v1/orders/{order['id']}")
    assert status == 200 and again["pickup"] == pickup
    status, text_order, _ = demo.call("POST", "/api/v1/orders", {"rider_id": 7, "pickup": "Alexanderplatz 1"})
    assert status == 201 and text_order["pickup"] == "Alexanderplatz 1"


@pytest.mark.parametrize("place", [{"lat": 100, "lon": 13.4}, {"lat": 52.5}, {"lat": 52.5, "lon": 13.4, "x": 1}])
def test_impossible_coordinates_are_a_422_naming_the_field(demo: JsonDemo, place: dict[str, Any]) -> None:
    status, body, _ = demo.call("POST", "/api/v1/orders", {"rider_id": 7, "pickup": place})
    assert status == 422
    assert "pickup" in body["error"] or "lat" in body["error"] or "lon" in body["error"]


def test_order_creation_matches_a_driver_in_a_span_of_the_matching_service(demo: JsonDemo) -> None:
    status, order, headers = demo.call("POST", "/api/v1/orders", {"rider_id": 9})
    assert status == 201
    assert 1 <= order["driver_id"] <= 800 and order["matching_ms"] > 0
    trace_id = {k.lower(): v for k, v in headers.items()}["traceresponse"].split("-")[1]
    _, trace, _ = demo.call("GET", f"/api/traces/{trace_id}")
    spans = trace["data"][0]["spans"]
    services = {p: v["serviceName"] for p, v in trace["data"][0]["processes"].items()}
    matching = [s for s in spans if s["operationName"] == "match_driver"]
    assert len(matching) == 1 and services[matching[0]["processID"]] == "matching-service"
    assert matching[0]["duration"] > 0


def test_location_updates_fill_the_redis_queue_and_the_workers_drain_it(fresh_redis: Redis, tmp_path: Path) -> None:
    demo = JsonDemo(tmp_path / "demo.log", "--redis", fresh_redis.url)  # one worker drains 50 a second
    client = redis.Redis.from_url(fresh_redis.url)
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: demo.call("POST", f"/api/v1/trips/{1 + i % 50}/location",
                                                         {"driver_id": 1 + i % 800, "lat": 52.5, "lon": 13.4})[0],
                                     range(400)))
        assert statuses == [202] * 400
        assert client.llen("trip:location:updates") > 0  # the burst outran the drain
        wait_for(lambda: client.llen("trip:location:updates") == 0, timeout=30, what="queue drained")
    finally:
        demo.process.stop()
        client.close()


def test_workers_share_one_port_and_an_order_reaches_every_worker_through_redis(fresh_redis: Redis,
                                                                                tmp_path: Path) -> None:
    demo = JsonDemo(tmp_path / "demo.log", "--redis", fresh_redis.url, "--workers", "3")
    try:
        assert demo.process.proc is not None
        children = Path(f"/proc/{demo.process.proc.pid}/task/{demo.process.proc.pid}/children").read_text().split()
        assert len(children) == 3
        status, order, _ = demo.call("POST", "/api/v1/orders", {"rider_id": 5})
        assert status == 201
        for _ in range(12):  # a new connection each time: the kernel spreads them over the workers
            status, again, _ = demo.call("GET", f"/api/v1/orders/{order['id']}")
            assert status == 200 and again["id"] == order["id"]
    finally:
        demo.process.stop()
    assert demo.process.proc is not None and demo.process.proc.returncode == 0
