"""The demo's fault knobs, each with its one true cause: set on a running demo, every knob shows where its cause
lies, in the requests' own traces (read back from the demo's Jaeger API and broken down as the Jaeger collector
does) or in what the backends see; unknown knobs, services and values get a 422 that names them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from exporter.collectors.jaeger.breakdown import CACHE, DB, MISS_FILLED, POOL, SELF, SERIAL, Breakdown, CacheRead
from exporter.collectors.jaeger.decode import trace_from_v1
from exporter.collectors.jaeger.traces import analyse
from tests.servers import Postgres, Redis, wait_for
from tests.test_demo import DemoProcess, demo, set_faults

ORDER = {"rider_id": 7}
SetFaults = Callable[[dict[str, Any]], None]
__all__ = ["demo", "set_faults"]  # the demo keeping its data in memory, and its faults cleared after each test


def breakdown(demo: DemoProcess, headers: dict[str, str]) -> Breakdown:
    """The breakdown of the request's own trace (its id from ``traceresponse``)."""
    trace_id = headers["traceresponse"].split("-")[1]
    status, body, _ = demo.request("GET", f"/api/traces/{trace_id}")
    assert status == 200, body
    found = analyse(trace_from_v1(body["data"][0]), breakdown=True).breakdown
    assert found is not None
    return found


def seconds(b: Breakdown, kind: str, service: str | None = None) -> float:
    return sum(us for c, us in b.path.items() if c.kind == kind and (service is None or c.service == service)) / 1e6


@pytest.mark.parametrize(("body", "names"), [
    ({"retries": 1}, "unknown field 'retries'"),
    ({"service_latency": {"billing-service": 100}}, "service_latency: unknown service 'billing-service'"),
    ({"service_errors": {"order-service": 2}}, "service_errors.order-service: expected a ratio between 0 and 1"),
    ({"service_latency": [100]}, "service_latency: expected an object of service to milliseconds"),
    ({"cache_ttl_seconds": 0}, "cache_ttl_seconds: expected a whole number of seconds between 1 and 86400"),
    ({"db_pool_size": 1.5}, "db_pool_size: expected a whole number of connections between 1 and 64"),
    ({"payload_kb": -1}, "payload_kb: expected a whole number of kilobytes"),
    ({"lock_contention": "yes"}, "lock_contention: expected true or false"),
])
def test_a_bad_knob_service_or_value_is_a_422_naming_it(demo: DemoProcess, body: dict[str, Any],
                                                        names: str) -> None:
    status, answer, _ = demo.request("POST", "/admin/faults", body)
    assert status == 422 and names in answer["error"], answer
    assert demo.request("GET", "/admin/faults")[1]["service_latency"] == {}  # nothing was changed


def test_knobs_combine_and_delete_clears_them_all(demo: DemoProcess, set_faults: SetFaults) -> None:
    set_faults({"latency_ms": 5, "n_plus_one": True})
    set_faults({"service_latency": {"pricing-service": 10}})  # keeps the others
    now = demo.request("GET", "/admin/faults")[1]
    assert now["latency_ms"] == 5 and now["n_plus_one"] is True and now["service_latency"] == {"pricing-service": 10}
    assert demo.request("DELETE", "/admin/faults")[1] == {
        "latency_ms": 0.0, "error_rate": 0.0, "service_latency": {}, "service_errors": {}, "slow_query": False,
        "lock_contention": False, "n_plus_one": False, "cache": "on", "cache_ttl_seconds": None,
        "serial_calls": False, "db_pool_size": None, "payload_kb": 0}


def test_latency_lands_in_the_own_work_of_the_service_it_is_set_on(demo: DemoProcess,
                                                                   set_faults: SetFaults) -> None:
    set_faults({"latency_ms": 300, "service_latency": {"pricing-service": 200}})
    status, _, headers = demo.request("POST", "/api/v1/orders", ORDER)
    assert status == 201
    b = breakdown(demo, headers)
    assert seconds(b, SELF, "api-gateway") >= 0.3
    assert seconds(b, SELF, "pricing-service") >= 0.18 + 0.2 * 0.9  # its own ~180 ms and the fault's 200
    assert seconds(b, SELF, "order-service") < 0.1


def test_pricing_and_matching_run_side_by_side_unless_serial_calls(demo: DemoProcess,
                                                                   set_faults: SetFaults) -> None:
    _, _, headers = demo.request("POST", "/api/v1/orders", ORDER)
    assert seconds(breakdown(demo, headers), SERIAL) == 0
    set_faults({"serial_calls": True})
    _, _, headers = demo.request("POST", "/api/v1/orders", ORDER)
    assert seconds(breakdown(demo, headers), SERIAL, "order-service") > 0.1  # the shorter call, ~160 ms


def test_n_plus_one_reads_each_item_with_its_own_query(demo: DemoProcess,
                                                       set_faults: SetFaults) -> None:
    demo.request("GET", "/api/v1/orders/3")  # cached from now on
    _, order, headers = demo.request("GET", "/api/v1/orders/3")
    one = breakdown(demo, headers)
    assert len(order["items"]) == 250
    assert sorted(n for c, n in one.calls.items() if c.kind == DB) == [1]  # the order came from the cache
    set_faults({"n_plus_one": True})
    _, again, headers = demo.request("GET", "/api/v1/orders/3")
    assert again["items"] == order["items"]
    many = breakdown(demo, headers)
    assert max(n for c, n in many.calls.items() if c.kind == DB) == 250
    assert seconds(many, DB) > 10 * seconds(one, DB)


def test_errors_start_in_the_service_they_are_set_on(demo: DemoProcess,
                                                     set_faults: SetFaults) -> None:
    set_faults({"service_errors": {"pricing-service": 1.0}})
    status, _, headers = demo.request("POST", "/api/v1/orders", ORDER)
    assert status == 500 and breakdown(demo, headers).error_origins == {"pricing-service": 1}
    set_faults({"service_errors": {}, "error_rate": 1.0})
    status, _, headers = demo.request("GET", "/api/v1/orders/3")
    assert status == 500 and breakdown(demo, headers).error_origins == {"api-gateway": 1}


def test_a_pool_of_one_makes_concurrent_requests_wait_for_a_connection(
        demo: DemoProcess, set_faults: SetFaults) -> None:
    set_faults({"db_pool_size": 1})
    found: list[dict[str, str]] = []

    def create() -> None:
        status, _, headers = demo.request("POST", "/api/v1/orders", ORDER)
        assert status == 201
        found.append(headers)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waits = sorted(seconds(breakdown(demo, h), POOL) for h in found)
    # each holds its connection ~190 ms (rider check, then pricing and matching): the last waits for three
    assert waits[0] < 0.05 and waits[-1] > 0.3, waits


def test_large_payloads_arrive_slowly_after_the_gateways_span(demo: DemoProcess,
                                                              set_faults: SetFaults) -> None:
    set_faults({"payload_kb": 300})
    started = time.monotonic()
    status, body, headers = demo.request("POST", "/api/v1/notifications",
                                         {"user_id": 7, "channel": "push", "message": "hi"})
    took = time.monotonic() - started
    assert status == 202 and len(body["receipt"]) >= 300 * 1024 - 16
    b = breakdown(demo, headers)
    assert took >= 0.25 and b.duration / 1e6 < 0.1  # 300 KB at 1 MB/s, none of it inside the trace


def test_lock_contention_makes_trip_updates_wait_in_memory(demo: DemoProcess,
                                                           set_faults: SetFaults) -> None:
    set_faults({"lock_contention": True})
    time.sleep(0.2)
    waits = []
    for _ in range(3):
        _, _, headers = demo.request("PATCH", "/api/v1/trips/1", {"status": "en_route"})
        waits.append(seconds(breakdown(demo, headers), DB, "trip-service"))
    assert max(waits) > 0.3, waits


# ---------------------------------------------------------------------------------------------------------------
# On PostgreSQL and Redis


@pytest.fixture(scope="module")
def backed(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoProcess, Redis]]:
    root = tmp_path_factory.mktemp("demo-faults-backed")
    postgres.psql("DROP DATABASE IF EXISTS demo_faults WITH (FORCE)")
    postgres.psql("CREATE DATABASE demo_faults")
    cache = Redis(root / "redis").start()
    server = DemoProcess(root / "demo.log", "--postgres", postgres.dsn("demo_faults"), "--redis", cache.url)
    yield server, cache
    server.stop()
    cache.stop()
    postgres.psql("DROP DATABASE IF EXISTS demo_faults WITH (FORCE)")


def test_lock_contention_is_a_transaction_holding_the_trips_row_locks(backed: tuple[DemoProcess, Redis],
                                                                      postgres: Postgres) -> None:
    demo, _ = backed
    assert demo.request("POST", "/admin/faults", {"lock_contention": True})[0] == 200
    try:
        wait_for(lambda: postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                                       "AND datname = 'demo_faults'").strip() == "1", 10, "the lock holder")
        started = time.monotonic()
        assert demo.request("PATCH", "/api/v1/trips/7", {"status": "en_route"})[0] == 200
        assert time.monotonic() - started > 0.05  # it waited for the holder's commit
    finally:
        assert demo.request("DELETE", "/admin/faults")[0] == 200
    wait_for(lambda: postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                                   "AND datname = 'demo_faults'").strip() == "0", 10, "the holder gone")


def test_a_short_ttl_expires_the_cached_orders_too(backed: tuple[DemoProcess, Redis]) -> None:
    demo, cache = backed
    client = redis.Redis.from_url(cache.url)
    demo.request("GET", "/api/v1/orders/11")
    assert client.ttl("order:11") > 50
    try:
        assert demo.request("POST", "/admin/faults", {"cache_ttl_seconds": 1})[0] == 200
        assert client.ttl("order:11") <= 1  # the cached order too
        time.sleep(1.2)
        _, _, headers = demo.request("GET", "/api/v1/orders/11")
        b = breakdown(demo, headers)
        assert b.cache_reads == {CacheRead("order-service", "GET order:{id}", MISS_FILLED): 1}
        assert b.cache_ttls == {("order-service", "SET order:{id}"): [1]}
        assert seconds(b, CACHE) > 0
    finally:
        demo.request("DELETE", "/admin/faults")
        client.close()


def test_faults_that_last_hold_nothing_after_the_demo_stops(tmp_path: Path, postgres: Postgres) -> None:
    postgres.psql("DROP DATABASE IF EXISTS demo_faults_stop WITH (FORCE)")
    postgres.psql("CREATE DATABASE demo_faults_stop")
    demo = DemoProcess(tmp_path / "demo.log", "--postgres", postgres.dsn("demo_faults_stop"))
    try:
        assert demo.request("POST", "/admin/faults", {"lock_contention": True})[0] == 200
        wait_for(lambda: postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'demo_faults_stop' "
                                       "AND state = 'idle in transaction'").strip() == "1", 10, "the lock holder")
    finally:
        demo.stop()
    wait_for(lambda: postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'demo_faults_stop'")
             .strip() == "0", 10, "no session of the stopped demo")
    postgres.psql("DROP DATABASE IF EXISTS demo_faults_stop WITH (FORCE)")
