"""The bundled demo target over real sockets: its endpoints, its faults as the probes measure them, its
PostgreSQL and Redis backends, its Jaeger query API (against the real Jaeger fixtures) and ``run --demo``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from exporter.config.loading import load_config
from exporter.demo import jaeger_format
from exporter.demo.launcher import config_environment, example_config_path
from exporter.demo.spans import Span, TraceBuffer, TraceRecorder, parse_traceparent
from tests.daemon_process import DaemonProcess
from tests.probe_harness import ProbeHarness
from tests.servers import Demo, Postgres, Redis, free_port, port_open, wait_for

REPO = Path(__file__).resolve().parent.parent
JAEGER_FIXTURES = REPO / "tests" / "fixtures" / "jaeger"


# ---------------------------------------------------------------------------------------------------------------
# A demo process and a small HTTP client for it


class DemoProcess(Demo):
    """The demo, with a client that sends any body and headers and reads any answer."""

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, got = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            status, raw, got = exc.code, exc.read(), dict(exc.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return status, parsed, {k.lower(): v for k, v in got.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """A demo keeping its data in memory."""
    server = DemoProcess(tmp_path_factory.mktemp("demo") / "demo.log")
    yield server
    server.stop()


@pytest.fixture
def set_faults(demo: DemoProcess) -> Iterator[Callable[[dict[str, Any]], None]]:
    def apply(faults: dict[str, Any]) -> None:
        status, body, _ = demo.request("POST", "/admin/faults", faults)
        assert status == 200, body

    yield apply
    assert demo.request("DELETE", "/admin/faults")[0] == 200


def create_order(demo: DemoProcess, rider_id: int = 7, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, body, _ = demo.request("POST", "/api/v1/orders", {"rider_id": rider_id}, headers)
    assert status == 201, body
    return dict(body)


# ---------------------------------------------------------------------------------------------------------------
# Endpoints


def test_every_endpoint_answers_with_its_documented_status(demo: DemoProcess) -> None:
    order = create_order(demo)
    assert order["status"] == "created" and isinstance(order["id"], int)
    oid = order["id"]
    cases: list[tuple[str, str, Any, int]] = [
        ("GET", "/health", None, 200),
        ("POST", "/api/v1/orders", {"pickup": "somewhere"}, 422),            # rider_id missing
        ("POST", "/api/v1/orders", [1, 2], 422),
        ("GET", f"/api/v1/orders/{oid}", None, 200),
        ("GET", "/api/v1/orders/999999999", None, 404),
        ("GET", "/api/v1/orders/99999999999999999999999", None, 404),
        ("POST", f"/api/v1/orders/{oid}/cancel", None, 200),
        ("POST", f"/api/v1/orders/{oid}/cancel", None, 409),                  # already cancelled
        ("POST", "/api/v1/orders/999999999/cancel", None, 404),
        ("PATCH", "/api/v1/trips/1", {"status": "en_route"}, 200),
        ("PATCH", "/api/v1/trips/1", {"status": "teleported"}, 422),
        ("PATCH", "/api/v1/trips/999999999", {"status": "arrived"}, 404),
        ("POST", "/api/v1/trips/1/location", {"driver_id": 42, "lat": 52.52, "lon": 13.405}, 202),
        ("POST", "/api/v1/trips/1/location", {"driver_id": 42, "lat": 95, "lon": 13.405}, 422),
        ("POST", "/api/v1/notifications", {"user_id": 7, "channel": "push", "message": "hi"}, 202),
        ("POST", "/api/v1/notifications", {"user_id": 7, "channel": "pigeon", "message": "hi"}, 422),
        ("GET", "/admin/faults", None, 200),
        ("POST", "/admin/faults", {"error_rate": 2}, 422),
        ("POST", "/admin/faults", {"retries": 1}, 422),
        ("DELETE", "/admin/faults", None, 200),
        ("GET", "/api/v1/nothing-here", None, 404),
    ]
    got = [(method, path, demo.request(method, path, body)[0]) for method, path, body, _ in cases]
    assert got == [(method, path, status) for method, path, _, status in cases]
    status, cancelled, _ = demo.request("GET", f"/api/v1/orders/{oid}")
    assert status == 200 and cancelled["status"] == "cancelled", "a read after cancel must not serve a stale cache"


def test_invalid_json_body_is_a_400(demo: DemoProcess) -> None:
    request = urllib.request.Request(f"{demo.url}/api/v1/orders", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400


# ---------------------------------------------------------------------------------------------------------------
# Faults, as the real API probe measures them


def test_injected_latency_moves_probe_requests_above_the_250ms_bucket(demo: DemoProcess, set_faults) -> None:
    target = {"base_url": demo.url, "endpoints": [{"name": "get_order", "path": "/api/v1/orders/1",
                                                    "requests": 3}]}

    def bucket(h: ProbeHarness, le: str) -> float | None:
        return h.value("perf_http_request_duration_seconds_bucket", endpoint="get_order", method="GET", le=le)

    def timed(h: ProbeHarness) -> float:  # a busy test machine may leave some untimed (exporter.timing)
        return 3 - (h.value("perf_http_timings_discarded_total") or 0)

    before = ProbeHarness(target)
    before.run()
    assert bucket(before, "0.25") == timed(before) >= 1, "without faults the demo answers in a few ms"
    set_faults({"latency_ms": 300})
    after = ProbeHarness(target)
    after.run()
    assert after.requests("get_order", "success") == 3
    assert bucket(after, "0.25") == 0, "every request with 300 ms injected lands above 250 ms"
    assert bucket(after, "1.0") == timed(after) >= 1


def test_error_rate_turns_probe_requests_into_http_5xx(demo: DemoProcess, set_faults) -> None:
    endpoint = {"name": "create_order", "method": "POST", "path": "/api/v1/orders", "json": {"rider_id": 3},
                "expect_status": [201], "requests": 4}
    set_faults({"error_rate": 1.0})
    failing = ProbeHarness({"base_url": demo.url, "endpoints": [endpoint]})
    failing.run()
    assert failing.requests("create_order", "http_5xx", "POST") == 4
    assert failing.requests("create_order", "success", "POST") == 0
    set_faults({"error_rate": 0.0})
    healthy = ProbeHarness({"base_url": demo.url, "endpoints": [endpoint]})
    healthy.run()
    assert healthy.requests("create_order", "success", "POST") == 4
    assert healthy.requests("create_order", "http_5xx", "POST") == 0


def test_half_error_rate_fails_some_requests_but_not_all(demo: DemoProcess, set_faults) -> None:
    set_faults({"error_rate": 0.5})
    statuses = [demo.request("POST", "/api/v1/notifications",
                             {"user_id": 1, "message": "x"})[0] for _ in range(40)]
    # P(all 40 alike) = 2 * 0.5**40: never in practice.
    assert set(statuses) == {202, 500}


# ---------------------------------------------------------------------------------------------------------------
# Traces


def _v3_trace_spans(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [span | {"service": next(a["value"]["stringValue"] for a in rs["resource"]["attributes"]
                                    if a["key"] == "service.name")}
            for rs in body["result"]["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]


def test_the_callers_traceparent_sets_the_trace_and_the_gateway_spans_parent(demo: DemoProcess) -> None:
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    _, _, headers = demo.request("POST", "/api/v1/orders", {"rider_id": 9},
                                 {"traceparent": f"00-{trace_id}-{caller_span}-01"})
    assert headers["traceresponse"].startswith(f"00-{trace_id}-")
    status, body, _ = demo.request("GET", f"/api/v3/traces/{trace_id}")
    assert status == 200
    spans = _v3_trace_spans(body)
    assert {s["traceId"] for s in spans} == {trace_id}
    gateway = [s for s in spans if s.get("parentSpanId") == caller_span]
    assert len(gateway) == 1 and gateway[0]["name"] == "POST /api/v1/orders" and gateway[0]["kind"] == 2
    assert gateway[0]["spanId"] == headers["traceresponse"].split("-")[2]

    _, _, fresh = demo.request("GET", "/api/v1/orders/1", headers={"traceparent": "garbage"})
    assert fresh["traceresponse"].split("-")[1] != trace_id, "a malformed traceparent starts a new trace"


def test_spans_form_one_tree_with_serial_siblings_to_find(demo: DemoProcess) -> None:
    _, _, headers = demo.request("POST", "/api/v1/orders", {"rider_id": 11})
    trace_id = headers["traceresponse"].split("-")[1]
    spans = _v3_trace_spans(demo.request("GET", f"/api/v3/traces/{trace_id}")[1])
    by_id = {s["spanId"]: s for s in spans}
    assert len(by_id) == len(spans), "span ids are unique"
    roots = [s for s in spans if "parentSpanId" not in s]
    assert len(roots) == 1 and roots[0]["service"] == "api-gateway"
    for span in spans:
        seen = set()
        node = span
        while "parentSpanId" in node:  # every parent exists and the walk reaches the root without a cycle
            assert node["spanId"] not in seen
            seen.add(node["spanId"])
            node = by_id[node["parentSpanId"]]
        assert node is roots[0]
        assert int(span["startTimeUnixNano"]) <= int(span["endTimeUnixNano"])
    assert {s["service"] for s in spans} >= {"api-gateway", "order-service", "pricing-service"}
    assert any(s["attributes"][0]["key"] == "db.system" for s in spans if s.get("attributes") and s["kind"] == 3)

    children: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        if "parentSpanId" in span:
            children.setdefault(span["parentSpanId"], []).append(span)
    serial = [(a["name"], b["name"]) for group in children.values() for a in group for b in group
              if a is not b and int(a["endTimeUnixNano"]) <= int(b["startTimeUnixNano"])]
    assert ("SELECT orders", "quote_fare") in serial, "the rider check and the fare quote run one after another"


def _shape(node: Any) -> Any:
    """Keys and JSON types, lists by their first element."""
    if isinstance(node, dict):
        return {key: _shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_shape(node[0])] if node else []
    if isinstance(node, bool):
        return "bool"
    if isinstance(node, int | float):
        return "number"
    return "null" if node is None else type(node).__name__


def _assert_fits(real: Any, ours: Any, where: str, exact: bool) -> None:
    """``ours`` has every key of ``real`` (exactly its keys if ``exact``) with the same JSON types."""
    if isinstance(real, dict) and where.endswith(".processes"):  # a map: process id -> process
        assert ours, f"{where}: no processes"
        for process in ours.values():
            _assert_fits(next(iter(real.values())), process, f"{where}[*]", exact)
    elif isinstance(real, dict):
        assert isinstance(ours, dict), f"{where}: expected an object, got {ours!r}"
        if exact:
            assert set(ours) == set(real), f"{where}: keys {sorted(ours)} != real {sorted(real)}"
        else:
            assert set(real) <= set(ours), f"{where}: missing keys {sorted(set(real) - set(ours))}"
        for key in real:
            _assert_fits(real[key], ours[key], f"{where}.{key}", exact)
    elif isinstance(real, list):
        assert isinstance(ours, list), f"{where}: expected a list"
        if real and ours:
            _assert_fits(real[0], ours[0], f"{where}[0]", exact)
    elif real != "null" and ours != "null":
        assert real == ours, f"{where}: type {ours} != real {real}"


def _fixture(name: str) -> Any:
    return json.loads((JAEGER_FIXTURES / name).read_text())


def test_jaeger_api_v3_answers_in_the_shapes_of_real_jaeger(demo: DemoProcess, set_faults) -> None:
    create_order(demo, rider_id=12)
    set_faults({"error_rate": 1.0})  # the newest trace then fails, like the fixture's server span (status code 2)
    assert demo.request("POST", "/api/v1/orders", {"rider_id": 12})[0] == 500
    window = "query.start_time_min=2020-01-01T00:00:00Z&query.start_time_max=2099-01-01T00:00:00.5Z"
    status, traces, _ = demo.request("GET", f"/api/v3/traces?query.service_name=api-gateway&{window}"
                                            "&query.search_depth=3")
    assert status == 200
    _assert_fits(_shape(_fixture("api_v3/FindTraces.json")), _shape(traces), "FindTraces", exact=False)
    spans = _v3_trace_spans(traces)
    assert len({s["traceId"] for s in spans}) == 3, "search_depth bounds the traces returned"
    for span in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
        assert span["startTimeUnixNano"].isdigit() and span["endTimeUnixNano"].isdigit()
    trace_id = spans[0]["traceId"]
    status, one, _ = demo.request("GET", f"/api/v3/traces/{trace_id}")
    _assert_fits(_shape(_fixture("api_v3/GetTrace.json")), _shape(one), "GetTrace", exact=False)

    status, summaries, _ = demo.request("GET", f"/api/v3/trace-summaries?query.serviceName=api-gateway&"
                                               f"{window.replace('start_time_min', 'startTimeMin')}")
    assert status == 200
    _assert_fits(_shape(_fixture("api_v3/FindTraceSummaries.json")), _shape(summaries), "Summaries", exact=True)
    summary = next(s for s in summaries["summaries"] if s["traceId"] == trace_id)
    assert summary["spanCount"] == len([s for s in spans if s["traceId"] == trace_id])
    assert summary["rootServiceName"] == "api-gateway"

    for path, name in (("/api/v3/services", "GetServices.json"),
                       ("/api/v3/operations?service=api-gateway", "GetOperations.json")):
        status, body, _ = demo.request("GET", path)
        assert status == 200
        _assert_fits(_shape(_fixture(f"api_v3/{name}")), _shape(body), name, exact=True)
    assert "order-service" in demo.request("GET", "/api/v3/services")[1]["services"]

    past = "query.start_time_min=2001-01-01T00:00:00Z&query.start_time_max=2001-01-02T00:00:00Z"
    status, body, _ = demo.request("GET", f"/api/v3/traces?query.service_name=api-gateway&{past}")
    assert (status, body) == (404, {"error": {"httpCode": 404, "message": "No traces found"}})
    assert demo.request("GET", "/api/v3/traces/0123456789abcdef0123456789abcdef")[0] == 404
    assert demo.request("GET", "/api/v3/traces?query.service_name=api-gateway")[0] == 400
    assert demo.request("GET", "/api/v3/traces/not-hex")[0] == 400


def test_jaeger_v1_api_answers_in_the_shapes_of_real_jaeger(demo: DemoProcess) -> None:
    create_order(demo, rider_id=13)
    real = _fixture("jaeger_otlp2jaeger-out.envelope.json")
    status, body, _ = demo.request("GET", "/api/traces?service=order-service&limit=2")
    assert status == 200
    _assert_fits(_shape(real), _shape(body), "v1 search", exact=True)
    assert len(body["data"]) == 2
    trace = body["data"][0]
    status, one, _ = demo.request("GET", f"/api/traces/{trace['traceID']}")
    assert status == 200 and one["data"][0]["traceID"] == trace["traceID"]
    _assert_fits(_shape(real), _shape(one), "v1 trace", exact=True)
    for path in ("/api/services", "/api/services/order-service/operations"):
        status, listing, _ = demo.request("GET", path)
        assert status == 200 and set(listing) == set(real) and listing["errors"] is None and listing["data"]

    spans = trace["spans"]
    ids = {s["spanID"] for s in spans}
    assert all(ref["spanID"] in ids for s in spans for ref in s["references"])
    assert {p["serviceName"] for p in trace["processes"].values()} >= {"api-gateway", "order-service"}
    assert all(s["processID"] in trace["processes"] for s in spans)
    assert demo.request("GET", "/api/traces")[0] == 400, "service is required"
    status, missing, _ = demo.request("GET", "/api/traces/0123456789abcdef0123456789abcdef")
    assert status == 404 and missing["errors"][0]["code"] == 404 and missing["data"] is None
    now_us = int(trace["spans"][0]["startTime"])
    status, none, _ = demo.request("GET", f"/api/traces?service=order-service&start=1&end={now_us - 10**9}")
    assert (status, none["data"]) == (200, [])


def test_trace_buffer_keeps_only_the_newest_traces() -> None:
    buffer = TraceBuffer(capacity=3)
    ids = []
    for _ in range(5):
        recorder = TraceRecorder()
        with recorder.span("svc", "op", "server"):
            pass
        buffer.add(recorder.spans)
        ids.append(recorder.trace_id)
    assert [spans[0].trace_id for spans in buffer.all()] == ids[:1:-1]
    assert buffer.get(ids[0]) is None


def test_v1_and_otlp_forms_carry_the_same_tree_and_times() -> None:
    recorder = TraceRecorder(parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    with recorder.span("api-gateway", "GET /x", "server"), recorder.span("db-service", "SELECT t", "client"):
        pass
    spans: list[Span] = recorder.spans
    v1 = jaeger_format.v1_trace(spans)
    otlp = jaeger_format.v3_traces([spans])["result"]["resourceSpans"]
    otlp_spans = {s["spanId"]: s for rs in otlp for s in rs["scopeSpans"][0]["spans"]}
    for span in v1["spans"]:
        twin = otlp_spans[span["spanID"]]
        assert span["startTime"] == int(twin["startTimeUnixNano"]) // 1000
        parent = span["references"][0]["spanID"] if span["references"] else None
        assert parent == twin.get("parentSpanId")
    assert otlp_spans[spans[0].span_id]["parentSpanId"] == "b7ad6b7169203331"
    assert [v1["processes"][s["processID"]]["serviceName"] for s in v1["spans"]] == ["api-gateway", "db-service"]
    assert jaeger_format.parse_rfc3339_ns("2026-01-02T03:04:05.123456789+01:00") % 10**9 == 123456789
    assert jaeger_format.parse_go_duration_ns("1m30.5s") == 90_500_000_000


# ---------------------------------------------------------------------------------------------------------------
# With PostgreSQL and Redis


@pytest.fixture(scope="module")
def demo_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("demo-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backed_demo(postgres: Postgres, demo_redis: Redis,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    server = DemoProcess(tmp_path_factory.mktemp("demo-backed") / "demo.log", "--postgres", postgres.dsn(),
                         "--redis", demo_redis.url)
    yield server
    server.stop()


def _stats(client: redis.Redis) -> tuple[int, int]:
    info = client.info("stats")
    return int(info["keyspace_hits"]), int(info["keyspace_misses"])


def test_orders_survive_a_read_back_from_postgresql(backed_demo: DemoProcess, postgres: Postgres,
                                                    demo_redis: Redis) -> None:
    order = create_order(backed_demo, rider_id=21)
    path = f"/api/v1/orders/{order['id']}"
    client = redis.Redis.from_url(demo_redis.url)
    assert client.delete(f"order:{order['id']}") == 1, "a new order is written through to the cache"
    client.close()
    status, read, headers = backed_demo.request("GET", path)
    assert status == 200 and headers["x-cache"] == "miss", "with the cache entry gone, the read is the database's"
    fields = ("id", "rider_id", "pickup", "dropoff", "status", "fare_cents")
    assert {k: read[k] for k in fields} == {k: order[k] for k in fields}
    row = postgres.psql(f"SELECT rider_id, status FROM tripo04os_demo.orders WHERE id = {order['id']}")
    assert row.strip() == "21|created"
    assert int(postgres.psql("SELECT count(*) FROM tripo04os_demo.orders")) > 20_000, "seeded for real scans"
    plan = postgres.psql("EXPLAIN SELECT count(*) FROM tripo04os_demo.orders WHERE rider_id = 21 "
                         "AND status = 'created'")
    assert "Seq Scan on orders" in plan
    assert backed_demo.request("GET", "/api/v1/orders/99999999999999999999999")[0] == 404, "not a DB error"
    assert backed_demo.request("POST", "/api/v1/orders", {"rider_id": 2**40})[0] == 422


def test_order_reads_move_redis_keyspace_hits_and_misses(backed_demo: DemoProcess, demo_redis: Redis) -> None:
    client = redis.Redis.from_url(demo_redis.url)
    path = "/api/v1/orders/4242"  # seeded, and read by no other test
    hits, misses = _stats(client)
    assert backed_demo.request("GET", path)[2]["x-cache"] == "miss"
    assert backed_demo.request("GET", path)[2]["x-cache"] == "hit"
    hits_after, misses_after = _stats(client)
    assert (hits_after - hits, misses_after - misses) == (1, 1)
    assert 0 < client.ttl("order:4242") <= 60  # (a lookup itself: counted after the stats)

    status, _, _ = backed_demo.request("POST", "/admin/faults", {"cache": "off"})
    try:
        assert status == 200
        assert client.exists("order:4242") == 0, "turning the cache off empties it"
        hits_after, misses_after = _stats(client)
        for _ in range(3):
            assert backed_demo.request("GET", path)[2]["x-cache"] == "miss"
        hits_off, misses_off = _stats(client)
        assert (hits_off - hits_after, misses_off - misses_after) == (0, 3)
    finally:
        backed_demo.request("DELETE", "/admin/faults")
    client.close()


def test_location_updates_keep_driver_locations_with_a_ttl_and_feed_the_queue(backed_demo: DemoProcess,
                                                                               demo_redis: Redis) -> None:
    client = redis.Redis.from_url(demo_redis.url)
    pushes = int(client.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0))
    status, _, _ = backed_demo.request("POST", "/api/v1/trips/5/location",
                                       {"driver_id": 77, "lat": 52.5, "lon": 13.4})
    assert status == 202
    assert json.loads(client.get("driver:location:77") or "{}")["trip_id"] == 5
    assert 0 < client.ttl("driver:location:77") <= 30
    assert int(client.info("commandstats")["cmdstat_lpush"]["calls"]) == pushes + 1
    client.close()


def test_slow_query_fault_puts_its_statement_on_top_of_pg_stat_statements(backed_demo: DemoProcess,
                                                                         postgres: Postgres) -> None:
    status, _, _ = backed_demo.request("POST", "/admin/faults", {"slow_query": True})
    try:
        assert status == 200
        create_order(backed_demo, rider_id=23)
        create_order(backed_demo, rider_id=23)
    finally:
        backed_demo.request("DELETE", "/admin/faults")
    # the statements requests run (not the one-off schema setup and seeding, which a loaded machine slows), in
    # this demo's database (other modules' demos may share the server: the security tests' run pg_sleep too)
    top = postgres.psql("SELECT query, calls, mean_exec_time FROM pg_stat_statements "
                        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'postgres') "
                        "AND query LIKE '%tripo04os_demo.%' AND query NOT LIKE '%generate_series%' "
                        "AND query NOT LIKE 'CREATE%' AND query NOT LIKE 'ANALYZE%' "
                        "ORDER BY mean_exec_time DESC LIMIT 1")
    query, calls, mean_ms = top.strip().split("|")
    assert "pg_sleep" in query and int(calls) >= 2 and float(mean_ms) >= 250


def test_a_postgres_demo_that_cannot_connect_exits_1_without_the_password(tmp_path: Path) -> None:
    port = free_port()
    out = subprocess.run([sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"127.0.0.1:{free_port()}",
                          "--postgres", f"postgresql://app:hunter2secret@127.0.0.1:{port}/db"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "demo_postgres_unreachable" in out.stderr and "hunter2secret" not in out.stderr


# ---------------------------------------------------------------------------------------------------------------
# The example config and run --demo


def test_example_config_is_shipped_in_the_package_and_linked_from_examples() -> None:
    assert (REPO / "examples" / "tripo04os.yaml").resolve() == example_config_path().resolve()
    config = load_config(example_config_path(), env=config_environment({}, "http://127.0.0.1:8020"))
    api = config.api[0]
    paths = {(e.method, e.path) for e in api.endpoints}
    steps = [(s.method or "GET", s.path) for s in api.journeys[0].steps[1:]]
    assert {("GET", "/health"), ("POST", "/api/v1/orders"), ("GET", "/api/v1/orders/1"),
            ("PATCH", "/api/v1/trips/1"), ("POST", "/api/v1/trips/1/location"),
            ("POST", "/api/v1/notifications")} <= paths
    assert steps == [("GET", "/api/v1/orders/{order_id}"), ("POST", "/api/v1/orders/{order_id}/cancel")]
    assert api.base_url == "http://127.0.0.1:8020"
    assert config.jaeger[0].url == "http://127.0.0.1:8020"
    assert config.postgres and config.redis


def test_run_demo_shows_probe_results_on_metrics_and_stops_cleanly(tmp_path: Path) -> None:
    demo_port = free_port()
    env = {"DEMO_LISTEN": f"127.0.0.1:{demo_port}",
           # nothing listens on these: the collectors must show the targets as down, not crash
           "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "DEMO_DATABASE_URL": "", "DEMO_REDIS_URL": "", "TEST_BASE_URL": "http://192.0.2.1:1"}
    daemon = DaemonProcess(None, tmp_path / "daemon.log", ("--demo",), env=env)
    try:
        daemon.wait_ready(timeout=30)
        assert port_open(demo_port), "the demo listens where DEMO_LISTEN says"
        labels = {"target": "gateway", "endpoint": "create_order", "method": "POST", "outcome": "success"}
        assert daemon.wait_value("perf_http_requests_total", lambda v: v >= 1, timeout=30, **labels) >= 1
        assert daemon.wait_value("perf_journey_runs_total", lambda v: v >= 1, timeout=30, target="gateway",
                                 journey="order_lifecycle", outcome="success") >= 1
        for collector, target, up in (("postgres", "main", 0), ("redis", "cache", 0), ("jaeger", "tracing", 1)):
            assert daemon.wait_value("perf_target_up", lambda v, up=up: v == up, timeout=30,
                                     collector=collector, target=target) == up
        # the demo's security is on, and the example's checks hold with the tokens run --demo minted for them
        checks = [(e.name, check) for e in load_config(example_config_path(), env={}).api[0].endpoints
                  if e.security is not None for check in type(e.security).model_fields
                  if getattr(e.security, check) is not None]
        for endpoint, check in checks:
            assert daemon.wait_value("perf_security_check_success", lambda v: v == 1, timeout=30,
                                     target="gateway", endpoint=endpoint, check=check) == 1, (endpoint, check)
        page, exposition = daemon.get("/")[1], daemon.get("/metrics")[1]
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()
    assert "eyJ" not in daemon.log() + page + exposition, "a token (a JWT starts with eyJ) was shown"
    wait_for(lambda: not port_open(demo_port), timeout=10, what="the demo stopped with the daemon")
    assert "demo_started" in daemon.log()


def test_run_demo_with_a_bad_config_exits_1_naming_the_key_before_starting_the_demo(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("api:\n  - name: x\n    base_url: ${TEST_BASE_URL}\n"
                      "    endpoints: [{name: h, path: /health, bogus: 1}]\n")
    demo_port = free_port()
    out = subprocess.run([sys.executable, "-m", "exporter", "run", "--demo", "--config.file", str(config),
                          "--web.listen-address", f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                              timeout=30,
                         env={**os.environ, "DEMO_LISTEN": f"127.0.0.1:{demo_port}"})
    assert out.returncode == 1
    assert "api[0].endpoints[0].bogus: unknown key" in out.stderr
    assert "demo_started" not in out.stderr
