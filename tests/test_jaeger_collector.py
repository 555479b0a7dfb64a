"""The Jaeger collector against a real HTTP server on loopback replaying real Jaeger responses
(tests/jaeger_replay.py), in both API forms, and against what real Jaeger does wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from exporter import registry
from exporter.collectors.jaeger.collector import PROBE_ATTEMPTS, JaegerCollector
from exporter.collectors.jaeger.target import JaegerTarget
from exporter.jobs import JobContext, SentTrace, TraceLink
from exporter.scheduler import JobRunner
from exporter.store import StoreCollector
from tests.jaeger_replay import (
    JSON,
    TEXT,
    JaegerReplay,
    Reply,
    fixture,
    fixture_trace,
    v1_error,
    v3_error,
)
from tests.servers import Process, free_port, http_ok, wait_for

FIXTURES = ["jaeger-ui_testTrace.trace.json", "jaeger-ui_spanLongerAsParent.trace.json",
            "jaeger-ui_spansAmongEachOther.trace.json", "jaeger-ui_genaiTestTrace.trace.json"]


def now_us() -> int:
    return int(time.time() * 1e6)


class Harness:
    """One collector on its own event loop, run by the real JobRunner, read through a registry."""

    def __init__(self, url: str, **cfg: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.stores = StoreCollector()
        self.store = self.stores.add("jaeger/tracing")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.stores)
        self.cfg = JaegerTarget(name="tracing", url=url, **cfg)
        self.context = JobContext(self.store, TraceLink())
        self.job = JaegerCollector(self.cfg, self.context)
        self.runner = JobRunner(registry.kind("jaeger"), self.cfg, self.job, self.context)

    def run(self) -> str:
        self.loop.run_until_complete(self.runner.run())
        return self.runner.last.result

    @property
    def error(self) -> str:
        return self.runner.last.cause

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"target": "tracing", **labels})

    def total(self, name: str) -> float:
        """Sum of every series of ``name`` (e.g. ``perf_trace_duration_seconds_count``)."""
        out = 0.0
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name == name:
                    out += sample.value
        return out

    def close(self) -> None:
        self.loop.run_until_complete(self.job.close())
        self.loop.close()


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for h in made:
        h.close()


@pytest.fixture
def replays() -> Iterator[list[JaegerReplay]]:
    made: list[JaegerReplay] = []
    yield made
    for r in made:
        r.stop()


@pytest.fixture
def make(harnesses: list[Harness], replays: list[JaegerReplay]) -> Any:
    def build(api: str = "v3", summaries: bool = True, base_path: str = "", **cfg: Any) -> tuple[JaegerReplay, Harness]:
        replay = JaegerReplay(api=api, summaries=summaries, base_path=base_path).start()
        replays.append(replay)
        cfg.setdefault("top_operations", 100)
        harness = Harness(replay.url, base_path=base_path, **cfg)
        harnesses.append(harness)
        return replay, harness
    return build


def add_fixtures(replay: JaegerReplay, start: int) -> None:
    for name in FIXTURES:
        replay.add(fixture_trace(name), start)


# ---------------------------------------------------------------------------------------------------------------
# Hand-computed values from the fixtures, through every form of the API


@pytest.mark.parametrize(("api", "summaries"), [("v1", False), ("v3", True), ("v3", False)],
                         ids=["v1", "api_v3-with-summaries", "api_v3-without-summaries"])
def test_fixture_traces_give_hand_computed_durations_critical_path_and_serial_siblings(
        make: Any, api: str, summaries: bool) -> None:
    replay, h = make(api=api, summaries=summaries)
    add_fixtures(replay, now_us() - 120_000_000)
    assert h.run() == "success", h.error

    # Durations are trace extents (see test_trace_analysis for the arithmetic): testTrace 1.0 s (its
    # FOLLOWS_FROM span ends 1 s after the root's start), spanLongerAsParent 13940 µs, spansAmongEachOther
    # 3720 µs, genai 44 s.
    duration = "perf_trace_duration_seconds"
    assert h.value(f"{duration}_sum", service="service1", operation="op1") == pytest.approx(1.0)
    assert h.value(f"{duration}_bucket", service="service1", operation="op1", le="1.0") == 1  # le includes 1 s
    assert h.value(f"{duration}_sum", service="api-gateway",
                   operation="GET /api/customer/owners/8/pets/10") == pytest.approx(0.01394)
    assert h.value(f"{duration}_sum", service="api-gateway",
                   operation="GET /api/customer/owners") == pytest.approx(0.00372)
    assert h.value(f"{duration}_sum", service="api-edge", operation="POST /api/graphql") == pytest.approx(44.0)
    assert h.total(f"{duration}_count") == 4

    # Spans per trace: 11, 8, 12, 57, by the root's service.
    assert h.value("perf_trace_spans_sum", service="service1") == 11
    assert h.value("perf_trace_spans_sum", service="api-gateway") == 8 + 12
    assert h.value("perf_trace_spans_sum", service="api-edge") == 57
    assert h.value("perf_trace_errors_total", service="service1") == 1  # span-2, error "true"
    assert h.value("perf_trace_errors_total", service="k8s-api") == 1  # span 0x11
    assert h.value("perf_trace_errors_total", service="coding-agent") == 0

    # Critical path: service1 370 ms + service2 20 ms (testTrace); api-gateway 4581 + 2024 µs and customers
    # 8306 + 1696 µs (spanLongerAsParent + spansAmongEachOther); genai: api-edge 1 s, graphql-gateway 43 s.
    cp = "perf_trace_critical_path_seconds_total"
    assert h.value(cp, service="service1") == pytest.approx(0.370)
    assert h.value(cp, service="service2") == pytest.approx(0.020)
    assert h.value(cp, service="api-gateway") == pytest.approx(0.004581 + 0.002024)
    assert h.value(cp, service="customers-service") == pytest.approx(0.008306 + 0.001696)
    assert h.value(cp, service="api-edge") == pytest.approx(1.0)
    assert h.value(cp, service="graphql-gateway") == pytest.approx(43.0)
    assert h.value(cp, service="coding-agent") is None

    # Serial: op1's five children one after another (saving 100 ms); spanLongerAsParent's client span runs two
    # waves of two (saving 1077 µs) and 4b52 two JDBC calls in a row (saving 143 µs).
    assert h.value("perf_trace_serial_children_total", service="service1", operation="op1") == 5
    assert h.value("perf_trace_serial_saving_seconds_total", service="service1", operation="op1") == \
        pytest.approx(0.100)
    assert h.value("perf_trace_serial_children_total", service="api-gateway",
                   operation="GET /owners/8/pets/10") == 4
    assert h.value("perf_trace_serial_saving_seconds_total", service="api-gateway",
                   operation="GET /owners/8/pets/10") == pytest.approx(0.001077)
    assert h.value("perf_trace_serial_saving_seconds_total", service="customers-service",
                   operation="GET /owners/8/pets/10") == pytest.approx(0.000143)
    assert h.total("perf_trace_serial_children_total") == 5 + 4 + 2

    # The slowest operation: genai's root, one span of 44 s.
    assert h.value("perf_trace_span_duration_seconds_sum", service="api-edge",
                   operation="POST /api/graphql") == pytest.approx(44.0)
    assert h.value("perf_trace_analysed_total") == 4
    assert h.value("perf_trace_anomalies_total", kind="child_outside_parent") == 2 + 1  # spanLonger, genai


@pytest.mark.parametrize(("api", "summaries"), [("v1", False), ("v3", True), ("v3", False)],
                         ids=["v1", "api_v3-with-summaries", "api_v3-without-summaries"])
def test_each_root_operations_traces_are_broken_down_by_component(make: Any, api: str, summaries: bool) -> None:
    from exporter.collectors.jaeger.breakdown import normalize_statement, statement_fingerprint
    from tests.test_trace_breakdown import ORDER, db, redis, span, trace

    replay, h = make(api=api, summaries=summaries)
    # two reads of an order (root 100 ms): a cache miss nothing fills, a wait of 2 ms for a connection, a 30 ms
    # statement; the second read's pricing call fails. And a write that caches an order for 60 s.
    for n, failing in ((1, False), (2, True)):
        read = trace(
            span("r", "gw", "GET /api/v1/orders/{id}", 0, 100_000, error=failing),
            span("s", "orders", "get_order", 5_000, 90_000, "r", error=failing),
            redis("g", "s", 6_000, 1_000, "GET", f"order:{n}", cache_hit=False),
            span("p", "orders", "acquire connection", 8_000, 2_000, "s", db_system="postgresql",
                 db_client_connection_pool_name="demo"),
            db("q", "s", 10_000, 30_000, ORDER),
            span("f", "pricing", "quote_fare", 50_000, 10_000, "s", error=failing))
        replay.add(_renamed(read, f"a{n}"), now_us() - 60_000_000 + n * 1_000_000)
    write = trace(span("w", "orders", "create_order", 0, 10_000),
                  redis("c", "w", 1_000, 1_000, "SET", "order:9", "SET order:9 ? EX 60"))
    replay.add(_renamed(write, "b1"), now_us() - 50_000_000)
    assert h.run() == "success", h.error

    root = {"root_service": "api-gateway", "root_operation": "GET /api/v1/orders/{id}"}
    assert h.value("perf_trace_root_analysed_total", **root) == 2
    text = normalize_statement(ORDER)
    statement = {**root, "service": "order-service", "kind": "db", "operation": "SELECT orders",
                 "statement": statement_fingerprint(text)}
    assert h.value("perf_trace_path_seconds_total", **statement) == pytest.approx(2 * 0.030)
    assert h.value("perf_trace_path_calls_total", **statement) == 2
    pool = {**root, "service": "order-service", "kind": "pool", "operation": "acquire connection", "statement": ""}
    assert h.value("perf_trace_path_seconds_total", **pool) == pytest.approx(2 * 0.002)
    # the path adds up to the roots' duration: 2 x 100 ms
    assert sum(v for (name, labels), v in _samples(h).items() if name == "perf_trace_path_seconds_total"
               and dict(labels)["root_operation"] == root["root_operation"]) == pytest.approx(0.2)
    assert h.value("perf_trace_cache_reads_total", **root, service="order-service", operation="GET order:{id}",
                   result="miss_unfilled") == 2
    assert h.value("perf_trace_error_origins_total", **root, service="pricing-service") == 1
    assert h.value("perf_trace_statement_info", statement=statement_fingerprint(text), query=text) == 1
    ttl = {"service": "order-service", "operation": "SET order:{id}"}
    assert h.value("perf_trace_cache_write_ttl_seconds_sum", **ttl) == 60
    assert h.value("perf_trace_cache_write_ttl_seconds_bucket", **ttl, le="60.0") == 1


def _renamed(trace: dict[str, Any], trace_id: str) -> dict[str, Any]:
    trace["traceID"] = trace_id
    for s in trace["spans"]:
        s["traceID"] = trace_id
        for ref in s["references"]:
            ref["traceID"] = trace_id
    return trace


def _samples(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in h.registry.collect() for s in f.samples}


def test_api_v3_golden_bodies_are_read(make: Any) -> None:
    # The api_v3 snapshots: one service "foo"; its summary says a 1 s trace of 2 spans, 1 error, rooted at
    # frontend "HTTP GET /"; the trace itself is one error span "foobar" without a service name.
    replay, h = make(api="v3")
    replay.override("/api/v3/services", Reply(200, json.dumps(fixture("api_v3/GetServices.json")).encode()))
    replay.override("/api/v3/trace-summaries",
                    Reply(200, json.dumps(fixture("api_v3/FindTraceSummaries.json")).encode()))
    replay.override("/api/v3/traces/00000000000000000000000000000001",
                    Reply(200, json.dumps(fixture("api_v3/GetTrace.json")).encode()))
    assert h.run() == "success", h.error
    assert h.value("perf_trace_duration_seconds_sum", service="frontend", operation="HTTP GET /") == 1.0
    assert h.value("perf_trace_spans_sum", service="frontend") == 2
    assert h.value("perf_trace_errors_total", service="frontend") == 1
    assert h.value("perf_trace_analysed_total") == 1
    assert h.value("perf_trace_span_duration_seconds_count", service="OTLPResourceNoServiceName",
                   operation="foobar") == 1
    [search] = replay.hits("/api/v3/trace-summaries")
    assert search.query["query.service_name"] == "foo"
    assert search.query["query.start_time_min"].endswith("Z")


def test_with_summaries_every_trace_counts_and_only_the_sample_is_fetched_whole(make: Any) -> None:
    replay, h = make(api="v3", sample=2)
    add_fixtures(replay, now_us() - 120_000_000)
    assert h.run() == "success", h.error
    assert h.total("perf_trace_duration_seconds_count") == 4  # from the summaries
    assert h.value("perf_trace_analysed_total") == 2
    assert len([r for r in replay.requests if r.path.startswith("/api/v3/traces/")]) == 2


def test_truncated_trace_is_counted_from_the_warning_on_its_first_span(make: Any) -> None:
    replay, h = make(api="v3", summaries=False, services=["service1"])
    trace = fixture_trace("jaeger-ui_testTrace.trace.json")
    trace["spans"][0]["warnings"] = ["trace size exceeded maximum allowed size"]
    replay.add(trace, now_us() - 120_000_000)
    assert h.run() == "success", h.error
    assert h.value("perf_trace_anomalies_total", kind="truncated") == 1  # read from OTLP @jaeger@warnings
    assert h.value("perf_trace_spans_sum", service="service1") == 11


# ---------------------------------------------------------------------------------------------------------------
# Windows, settle, exactly once


def test_overlapping_polls_count_each_trace_once(make: Any) -> None:
    replay, h = make(api="v1", summaries=False)
    add_fixtures(replay, now_us() - 120_000_000)
    assert h.run() == "success"
    assert h.run() == "success"
    assert h.total("perf_trace_duration_seconds_count") == 4
    assert h.value("perf_trace_critical_path_seconds_total", service="service1") == pytest.approx(0.370)


def test_trace_shared_by_two_services_is_counted_once(make: Any) -> None:
    # testTrace has spans of service1 and service2: both services' searches return it.
    replay, h = make(api="v3")
    replay.add(fixture_trace("jaeger-ui_testTrace.trace.json"), now_us() - 120_000_000)
    assert h.run() == "success"
    assert len(replay.hits("/api/v3/trace-summaries")) == 2
    assert h.total("perf_trace_duration_seconds_count") == 1
    assert h.value("perf_trace_serial_children_total", service="service1", operation="op1") == 5


def test_young_trace_is_read_again_after_settle_with_its_late_spans_and_counted_once(make: Any) -> None:
    replay, h = make(api="v3", summaries=False, settle="30s", interval="60s", timeout="10s", lookback="5m")
    clock = time.time()
    h.job.clock = lambda: clock
    trace = fixture_trace("jaeger-ui_testTrace.trace.json")
    early = dict(trace, spans=[s for s in trace["spans"] if s["spanID"] in ("span-1", "span-2")])
    start = int(clock * 1e6) - 5_000_000  # ended 5 s ago: younger than settle
    replay.add(early, start)
    assert h.run() == "success"
    assert h.total("perf_trace_duration_seconds_count") == 0
    replay.add(trace, start)  # the rest of the spans arrive
    clock += 60
    assert h.run() == "success"
    assert h.total("perf_trace_spans_count") == 1
    assert h.value("perf_trace_spans_sum", service="service1") == 11
    clock += 60
    assert h.run() == "success"
    assert h.total("perf_trace_spans_count") == 1


def test_full_search_is_narrowed_to_halves_of_the_window(make: Any) -> None:
    # limit 1 and three traces 100 s apart in a 5 min window: the full window and then its halves come back
    # full, the quarters find the three traces.
    replay, h = make(api="v1", summaries=False, limit=1, services=["api-gateway"])
    now = now_us()
    for i, offset in enumerate((280, 180, 40)):
        trace = fixture_trace("jaeger-ui_spansAmongEachOther.trace.json")
        trace = json.loads(json.dumps(trace).replace(trace["traceID"], f"abc{i}"))
        replay.add(trace, now - offset * 1_000_000)
    assert h.run() == "success", h.error
    assert h.total("perf_trace_duration_seconds_count") == 3
    assert h.value("perf_trace_searches_truncated_total", service="api-gateway") is None


def test_search_still_full_in_the_narrowest_window_is_counted_as_truncated(make: Any,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    replay, h = make(api="v1", summaries=False, limit=1, services=["api-gateway"])
    start = now_us() - 60_000_000
    for i in range(3):  # three traces at the same time: no narrowing separates them
        trace = fixture_trace("jaeger-ui_spansAmongEachOther.trace.json")
        replay.add(json.loads(json.dumps(trace).replace(trace["traceID"], f"same{i}")), start)
    with caplog.at_level(logging.WARNING):
        assert h.run() == "success"
    assert h.value("perf_trace_searches_truncated_total", service="api-gateway") == 1
    assert "jaeger_search_truncated" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# What real Jaeger does wrong: counted as errors, never a crash


def test_errors_array_in_a_200_still_counts_the_data_and_makes_the_run_an_error(make: Any) -> None:
    replay, h = make(api="v1", services=["service1"])
    trace = replay.add(fixture_trace("jaeger-ui_testTrace.trace.json"), now_us() - 120_000_000)
    body = {"data": [trace], "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": 500, "msg": "storage shard 3 timed out"}]}
    replay.override("/api/traces", Reply(200, json.dumps(body).encode()))
    assert h.run() == "error"
    assert "storage shard 3 timed out" in h.error
    assert h.total("perf_trace_duration_seconds_count") == 1
    assert h.value("perf_job_runs_total", collector="jaeger", result="error") == 1


@pytest.mark.parametrize(("status", "reply", "message"), [
    (400, v1_error(400, "unable to parse param 'limit'"), "unable to parse param 'limit'"),
    (404, v1_error(404, "service not found"), "service not found"),
    (500, v1_error(500, "elasticsearch: no such index"), "elasticsearch: no such index"),
])
def test_text_plain_json_error_bodies_are_reported_with_jaegers_message(make: Any, status: int, reply: Reply,
                                                                       message: str) -> None:
    replay, h = make(api="v1", services=["service1"])
    replay.override("/api/traces", reply)
    assert reply.content_type == TEXT
    assert h.run() == "error"
    assert f"HTTP {status}: {message}" in h.error
    assert h.value("perf_target_up", collector="jaeger") == 0


def test_api_v3_500_error_body_is_reported(make: Any) -> None:
    replay, h = make(api="v3", summaries=False, services=["service1"])
    replay.override("/api/v3/traces", v3_error(500, "failed to find traces: connection refused"))
    assert h.run() == "error"
    assert "HTTP 500: failed to find traces: connection refused" in h.error


def test_api_v3_no_traces_found_404_is_an_empty_search(make: Any) -> None:
    replay, h = make(api="v3", summaries=False, services=["quiet"])
    assert h.run() == "success", h.error
    [search] = replay.hits("/api/v3/traces")
    assert search.query["query.service_name"] == "quiet"
    assert h.total("perf_trace_duration_seconds_count") == 0


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b"<html><body>502 Bad Gateway</body></html>", "text/html", "an HTML page instead of JSON"),
    (b'{"data": [{"traceID": "abc", "spans": [{"spanID"', JSON, "not JSON"),
    (b"", JSON, "empty body"),
])
def test_html_or_truncated_json_is_an_error_run(make: Any, body: bytes, content_type: str,
                                                expected: str) -> None:
    replay, h = make(api="v1", services=["service1"])
    replay.override("/api/traces", Reply(200, body, content_type))
    assert h.run() == "error"
    assert expected in h.error


def test_response_above_max_response_bytes_is_refused(make: Any) -> None:
    replay, h = make(api="v1", summaries=False, services=["api-edge"], max_response_bytes=20_000)
    replay.add(fixture_trace("jaeger-ui_genaiTestTrace.trace.json"), now_us() - 120_000_000)  # ~60 kB
    assert h.run() == "error"
    assert "larger than max_response_bytes (20000)" in h.error
    assert h.total("perf_trace_duration_seconds_count") == 0


def test_oversized_response_is_split_into_halves_that_fit(make: Any) -> None:
    # The v1 body of one testTrace is 3855 bytes, of two 7647: above 6000 together; each half of the window
    # holds one.
    replay, h = make(api="v1", summaries=False, services=["service1"], max_response_bytes=6_000)
    now = now_us()
    for i, offset in enumerate((250, 60)):
        trace = fixture_trace("jaeger-ui_testTrace.trace.json")
        replay.add(json.loads(json.dumps(trace).replace("trace-123", f"trace-{i}")), now - offset * 1_000_000)
    assert h.run() == "success", h.error
    assert h.total("perf_trace_duration_seconds_count") == 2
    assert len(replay.hits("/api/traces")) == 3  # the whole window, then its two halves


def test_malformed_trace_is_an_error_and_the_others_still_count(make: Any) -> None:
    replay, h = make(api="v1", services=["service1"])
    good = replay.add(fixture_trace("jaeger-ui_testTrace.trace.json"), now_us() - 120_000_000)
    body = {"data": [good, {"traceID": "broken", "spans": "not a list"}], "errors": None}
    replay.override("/api/traces", Reply(200, json.dumps(body).encode()))
    assert h.run() == "error"
    assert "not a trace response" in h.error


def test_duplicate_spans_and_missing_parents_are_counted(make: Any) -> None:
    replay, h = make(api="v1", services=["telemetrygen"])
    replay.add(fixture_trace("jaeger_otlp2jaeger-out.envelope.json"), now_us() - 120_000_000)
    assert h.run() == "success", h.error
    assert h.value("perf_trace_anomalies_total", kind="duplicate_span") == 1
    assert h.value("perf_trace_anomalies_total", kind="missing_parent") == 1
    assert h.value("perf_trace_spans_sum", service="telemetrygen") == 1
    assert h.value("perf_trace_duration_seconds_sum", service="telemetrygen",
                   operation="okey-dokey-0") == pytest.approx(0.000123)


def test_unreachable_jaeger_is_a_failed_run_with_one_log_line(harnesses: list[Harness],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(f"http://127.0.0.1:{free_port()}", bearer_token="s3cret-token")
    harnesses.append(h)
    with caplog.at_level(logging.WARNING):
        assert h.run() == "failure"
    lines = [r for r in caplog.records if r.getMessage() == "jaeger_unreachable"]
    assert len(lines) == 1
    assert "s3cret-token" not in caplog.text
    assert h.value("perf_target_up", collector="jaeger") == 0


# ---------------------------------------------------------------------------------------------------------------
# Requests: base path, tenant, headers


def test_base_path_and_tenant_header_are_sent(make: Any) -> None:
    replay, h = make(api="v3", base_path="/jaeger", tenant="tripo04", tenant_header="x-scope-orgid",
                     bearer_token="s3cret-token")
    replay.add(fixture_trace("jaeger-ui_testTrace.trace.json"), now_us() - 120_000_000)
    assert h.run() == "success", h.error
    assert h.total("perf_trace_duration_seconds_count") == 1
    assert all(r.path.startswith("/jaeger/api/v3/") for r in replay.requests)
    assert {r.headers.get("x-scope-orgid") for r in replay.requests} == {"tripo04"}
    assert {r.headers.get("authorization") for r in replay.requests} == {"Bearer s3cret-token"}


def test_other_operations_share_one_series_beyond_top_operations(make: Any) -> None:
    replay, h = make(api="v1", top_operations=1, services=["service1"])
    replay.add(fixture_trace("jaeger-ui_testTrace.trace.json"), now_us() - 120_000_000)
    assert h.run() == "success"
    # Time by operation: service2 op3 (span-7) 200 ms is second to service1 op1 (390 ms): op1 is the top one.
    assert h.value("perf_trace_span_duration_seconds_count", service="service1", operation="op1") == 1
    assert h.value("perf_trace_span_duration_seconds_count", service="service1", operation="other") == 7
    assert h.value("perf_trace_span_duration_seconds_count", service="service2", operation="other") == 3


# ---------------------------------------------------------------------------------------------------------------
# Synthetic trace probe


def test_probe_trace_is_reported_once_after_settle(make: Any) -> None:
    replay, h = make(api="v3", settle="10s", services=["service1"])
    trace = replay.add(fixture_trace("jaeger-ui_testTrace.trace.json"), now_us() - 120_000_000)
    sent_at = time.time() - 15
    h.context.traces.send(SentTrace(trace["traceID"], "gateway", "create_order", sent_at))
    h.context.traces.send(SentTrace("0af7651916cd43dd8448eb211c80319c", "gateway", "health",
                                           time.time()))  # too young: left for a later poll
    assert h.run() == "success", h.error
    labels = {"target": "tracing", "probe_target": "gateway", "probe": "create_order"}
    assert h.registry.get_sample_value("perf_trace_probe_duration_seconds", labels) == pytest.approx(1.0)
    assert h.registry.get_sample_value("perf_trace_probe_spans", labels) == 11
    assert h.registry.get_sample_value("perf_trace_probe_services", labels) == 2
    visibility = h.registry.get_sample_value("perf_trace_probe_visibility_seconds", labels)
    assert visibility is not None and 15 <= visibility < 60
    assert [s.probe for s in h.job.sent] == ["health"]
    lookups = len(replay.hits(f"/api/v3/traces/{trace['traceID']}"))  # the probe's, and the sample's
    assert h.run() == "success"
    assert len(replay.hits(f"/api/v3/traces/{trace['traceID']}")) == lookups  # consumed once


def test_probe_trace_never_served_is_given_up_after_a_bound(make: Any) -> None:
    replay, h = make(api="v1", settle="10s", services=["service1"])
    missing = "4bf92f3577b34da6a3ce929d0e0e4736"
    h.context.traces.send(SentTrace(missing, "gateway", "create_order", time.time() - 15))
    for _ in range(PROBE_ATTEMPTS + 2):
        assert h.run() == "success", h.error
    labels = {"target": "tracing", "probe_target": "gateway", "probe": "create_order"}
    assert h.registry.get_sample_value("perf_trace_probe_missing_total", labels) == 1
    assert len(replay.hits(f"/api/traces/{missing}")) == PROBE_ATTEMPTS
    assert h.registry.get_sample_value("perf_trace_probe_duration_seconds", labels) is None


# ---------------------------------------------------------------------------------------------------------------
# End to end: the bundled demo target serves its recent traces through both forms of the Jaeger API


@pytest.fixture
def demo(tmp_path: Any) -> Iterator[str]:
    port = free_port()
    cli = Path(sys.executable).with_name("perf-exporter")  # the installed console script
    process = Process([str(cli), "demo", "--web.listen-address", f"127.0.0.1:{port}"], tmp_path / "demo.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: not process.alive() or http_ok(f"{url}/health"), timeout=30, what="demo target")
        assert process.alive(), process.log()
        yield url
    finally:
        process.stop()


def test_demo_traces_are_collected_through_api_v3_and_v1(demo: str, harnesses: list[Harness]) -> None:
    trace_id = os.urandom(16).hex()
    with httpx.Client(base_url=demo, timeout=10) as client:
        sent_at = time.time()
        first = client.post("/api/v1/orders", json={"rider_id": 7},
                            headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"})
        assert first.status_code == 201, first.text
        assert trace_id in first.headers["traceresponse"]
        for _ in range(2):
            assert client.post("/api/v1/orders", json={"rider_id": 8}).status_code == 201
        assert client.get(f"/api/v1/orders/{first.json()['id']}").status_code == 200
    for api in ("v3", "v1"):
        h = Harness(demo, api=api, settle="1s", top_operations=100)
        harnesses.append(h)
        h.context.traces.send(SentTrace(trace_id, "gateway", "create_order", sent_at))

        def all_four_counted(h: Harness = h) -> bool:
            assert h.run() == "success", h.error
            return h.total("perf_trace_duration_seconds_count") >= 4

        wait_for(all_four_counted, timeout=20, interval=0.3, what=f"the demo's 4 traces through {api}")
        assert h.run() == "success"
        assert h.total("perf_trace_duration_seconds_count") == 4  # and never again
        assert h.value("perf_trace_duration_seconds_count", service="api-gateway",
                       operation="POST /api/v1/orders") == 3
        # The demo checks the rider and quotes the fare one after another: create_order's children run in waves.
        serial = h.value("perf_trace_serial_children_total", service="order-service", operation="create_order")
        assert serial is not None and serial >= 3 * 2
        critical = h.total("perf_trace_critical_path_seconds_total")
        assert 0 < critical <= h.total("perf_trace_duration_seconds_sum") + 1e-5
        labels = {"target": "tracing", "probe_target": "gateway", "probe": "create_order"}
        assert (h.registry.get_sample_value("perf_trace_probe_services", labels) or 0) >= 2
        assert (h.registry.get_sample_value("perf_trace_probe_spans", labels) or 0) >= 3
        visibility = h.registry.get_sample_value("perf_trace_probe_visibility_seconds", labels)
        assert visibility is not None and visibility >= 1.0  # looked up once settle had passed
