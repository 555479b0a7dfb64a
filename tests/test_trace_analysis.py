"""Trace analysis on data alone: the real Jaeger fixtures (values computed by hand in the comments) and traces
built here for the edge cases."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from exporter.collectors.jaeger.decode import facts_from_summaries, trace_from_v1, traces_from_otlp, traces_from_v1
from exporter.collectors.jaeger.traces import (
    BucketSums,
    Span,
    SpanTimes,
    Trace,
    analyse,
    rank_operations,
    serial_waves,
    top_keys,
)
from tests.jaeger_replay import fixture, fixture_trace, to_otlp

# ---------------------------------------------------------------------------------------------------------------
# The real fixtures, by hand


def test_test_trace_duration_is_its_extent_including_the_follows_from_span_after_the_root() -> None:
    # jaeger-ui_testTrace: the root op1 starts at 1542666452979000 and lasts 390000 µs; span-7 (FOLLOWS_FROM
    # span-6) starts at 1542666453779000 (+800 ms) and lasts 200000 µs, so the last end is +1000 ms.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_testTrace.trace.json")))
    assert (facts.root_service, facts.root_operation) == ("service1", "op1")
    assert facts.end - facts.start == 1_000_000
    assert facts.duration_seconds == 1.0
    assert facts.span_count == 11
    # span-2 has {"key": "error", "type": "bool", "value": "true"}: a bool written as a string
    assert facts.error_spans == {"service1": 1}


def test_test_trace_critical_path_gives_service2_only_the_op3_subtree() -> None:
    # Root op1 [0, 390] ms (relative to its start). Its CHILD_OF children, by end, latest first:
    #   span-12 op6 [330, 340] > span-6 op4 [300, 320] > span-2_1 op2 [250, 287] > span-3 op3 [180, 246]
    #   > span-2 op2 [125, 158]. They do not overlap, so all are on the path.
    # service2 appears only under span-3: span-4 op1 [200, 220] (with span-5 [201, 219] inside it, also
    # service2) -> 20 ms. span-7 (service2) is FOLLOWS_FROM: not waited for, not on the path.
    # Everything else of the root's 390 ms is service1: 390 - 20 = 370 ms.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_testTrace.trace.json")))
    assert facts.critical_path == {"service1": 370_000, "service2": 20_000}
    assert sum(facts.critical_path.values()) == 390_000  # exactly the root's duration


def test_test_trace_root_runs_its_five_children_one_after_another() -> None:
    # Root children sorted by start: [125,158], [180,246], [250,287], [300,320], [330,340] ms: no overlaps,
    # five waves. Sum of waves 33 + 66 + 37 + 20 + 10 = 166 ms; the longest is 66 ms; saving 166 - 66 = 100 ms.
    # span-12's children op7 [331,340] and [332,340] overlap: one wave, not serial.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_testTrace.trace.json")))
    assert [(g.service, g.operation, g.children, g.saving) for g in facts.serial] == [
        ("service1", "op1", 5, 100_000)]


def test_span_longer_than_parent_is_clipped_for_critical_path_and_serial_detection() -> None:
    # jaeger-ui_spanLongerAsParent, µs relative to the root ab49 (api-gateway, [0, 12887]):
    #   6745 api-gateway client [1636, 11157], child of the root
    #     4b52 and 0a00 customers [2782, 10011] (same start and duration)
    #       afa5 [7381, 7796], d72e [8366, 8509] (children of 4b52)
    #     ...01 customers [10080, 11580] -> clipped to [10080, 11157]
    #     ...02 customers [10440, 13940] -> clipped to [10440, 11157]
    # Critical path: root gap 12887-11157 = 1730 (api). In 6745 from 11157: ...01 and ...02 both end at 11157;
    # the tie goes to the one that started first, ...01: 11157-10080 = 1077 (customers). Next child ending by
    # 10080: 4b52 (ends 10011): gap 69 (api); 4b52 = 10011-8509 = 1502 own + d72e 143 + 8366-7796 = 570 own
    # + afa5 415 + 7381-2782 = 4599 own = 7229 (customers). 6745 before 2782: 2782-1636 = 1146 (api).
    # Root before 1636: 1636 (api).
    # api-gateway = 1730 + 69 + 1146 + 1636 = 4581; customers = 1077 + 7229 = 8306; sum 12887.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_spanLongerAsParent.trace.json")))
    assert facts.critical_path == {"api-gateway": 4581, "customers-service": 8306}
    assert facts.anomalies == {"child_outside_parent": 2}
    # Serial: 6745's children form two waves, [2782, 10011] (4b52 + 0a00) and [10080, 11157] (...01 + ...02):
    # 4 children, saving 7229 + 1077 - 7229 = 1077. 4b52's children afa5 and d72e: two waves of 415 and 143,
    # saving 143.
    assert sorted((g.service, g.operation, g.children, g.saving) for g in facts.serial) == [
        ("api-gateway", "GET /owners/8/pets/10", 4, 1077),
        ("customers-service", "GET /owners/8/pets/10", 2, 143)]
    assert facts.end - facts.start == 13940  # extent: ...02 ends at 10440 + 3500


def test_spans_among_each_other_finds_the_root_listed_second_and_no_serial_jdbc_calls() -> None:
    # Relative to the root 9afc (api-gateway [0, 3720]): 6962 api-gateway [376, 3353] -> 6f9b customers
    # [1016, 2712] -> 9 JDBC spans between 1849 and 1880, all overlapping (one wave: not serial).
    # Critical path: 3720-3353 = 367 (api); 3353-2712 = 641 (api); in 6f9b the last to end is d293 [1849, 1880]:
    # 2712-1880 = 832 own + 31 + 1849-1016 = 833 own (customers); 1016-376 = 640 (api); 376 (api).
    # api-gateway = 367 + 641 + 640 + 376 = 2024; customers = 832 + 31 + 833 = 1696.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_spansAmongEachOther.trace.json")))
    assert (facts.root_service, facts.root_operation) == ("api-gateway", "GET /api/customer/owners")
    assert facts.span_count == 12
    assert facts.critical_path == {"api-gateway": 2024, "customers-service": 1696}
    assert facts.serial == []


def test_genai_trace_critical_path_follows_the_longest_sibling() -> None:
    # Root api-edge [0, 44 s]; its child 2 graphql-gateway [1 ms, 43.001 s] has two children: 3 graphql-gateway
    # [2 ms, 43.002 s] (clipped to 43.001 s) and 4 coding-agent [3 ms, 42.003 s]. The path takes 3 (latest
    # end) and then nothing fits before its start at 2 ms: coding-agent never is on the critical path.
    # api-edge: 44 - 43.001 + 0.001 = 1.0 s; graphql-gateway: 43.001 - 0.001 = 43.0 s.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_genaiTestTrace.trace.json")))  # has "_comment"
    assert facts.span_count == 57
    assert len(facts.services) == 10
    assert facts.critical_path == {"api-edge": 1_000_000, "graphql-gateway": 43_000_000}
    assert facts.error_spans == {"k8s-api": 1}
    assert facts.serial == []  # every group of siblings overlaps (children start 1 ms apart and run long)


@pytest.mark.parametrize(("name", "serial"), [
    ("jaeger-ui_traceWithOverlappingChildren.trace.json", []),  # [3,43]->[3,36] and [5,13] overlap
    ("jaeger-ui_traceWithThreeShortChildren.trace.json", []),  # [3,13] [9,17] [16,34]: a chain of overlaps
    ("jaeger-ui_traceWithTwoNonOverlappingChildren.trace.json", []),  # [500,600] is after the root [100,140]
])
def test_overlapping_siblings_are_not_serial(name: str, serial: list[Any]) -> None:
    assert analyse(trace_from_v1(fixture_trace(name))).serial == serial


def test_child_after_its_parent_ended_is_left_out_of_the_critical_path() -> None:
    # Root [100, 140] µs (service-one); children [110, 120] (service-two) and [500, 600] (outside: dropped).
    # service-two: 10; service-one: 40 - 10 = 30. The extent still reaches 600: 600 - 100 = 500.
    facts = analyse(trace_from_v1(fixture_trace("jaeger-ui_traceWithTwoNonOverlappingChildren.trace.json")))
    assert facts.critical_path == {"service-one": 30, "service-two": 10}
    assert facts.end - facts.start == 500
    assert facts.anomalies == {"child_outside_parent": 1}


def test_duplicate_span_with_the_same_content_is_dropped_and_its_missing_parent_noted() -> None:
    # jaeger_otlp2jaeger-out: span e127af99e3b3e074 twice, identical, both CHILD_OF 909541b92cf05311, which is
    # not in the trace. One span remains, and it stands in as the root.
    traces = list(traces_from_v1(fixture("jaeger_otlp2jaeger-out.envelope.json")))
    assert len(traces) == 1
    facts = analyse(traces[0])
    assert facts.span_count == 1
    assert (facts.root_service, facts.root_operation) == ("telemetrygen", "okey-dokey-0")
    assert facts.anomalies == {"duplicate_span": 1, "missing_parent": 1}
    assert facts.critical_path == {"telemetrygen": 123}


def test_follows_from_span_is_a_child_but_not_on_the_critical_path() -> None:
    # issue115: "thread" [+50271, +51444] µs FOLLOWS_FROM "demo" [0, 70406]: inside the root, but the root does
    # not wait for it, so the whole 70406 µs is the root's own.
    trace = next(traces_from_v1(fixture("jaeger-ui_issue115_2992f2a5b5d037a8aabffd08ef384237.envelope.json")))
    thread = next(s for s in trace.spans if s.operation == "thread")
    assert thread.parent_id == "ea7cfaca83f0724b" and thread.follows_from
    facts = analyse(trace)
    assert facts.root_operation == "demo"
    assert facts.critical_path == {"issue115": 70406}
    assert facts.span_count == 2


def test_ui_01_reads_every_tag_type_and_keeps_a_conflicting_duplicate_as_work() -> None:
    # Two different spans share spanID 0000000000000002: both are kept (5 spans), the second cannot be a parent.
    # Its tags include int64 "9223372036854775222" as a string and the error tag (bool true). Span 4 lists a
    # CHILD_OF to another trace first: its parent is the local span 2. Warnings: 2 spans + 1 trace.
    trace = trace_from_v1(fixture_trace("jaeger_uimodel_ui_01.trace.json"))
    assert len(trace.spans) == 5
    span4 = next(s for s in trace.spans if s.operation == "reference-test")
    assert (span4.parent_id, span4.follows_from) == ("0000000000000002", False)
    facts = analyse(trace)
    assert facts.root_operation == "test-general-conversion"  # first of two roots with the same start, length
    assert facts.error_spans == {"service-x": 1}
    assert facts.anomalies == {"duplicate_span": 1, "warning": 3}


def test_api_v3_golden_trace_without_times_is_one_error_span_of_an_unnamed_service() -> None:
    # FindTraces.json: one span "foobar", status code 2 (error), resource {} (no service.name), and no times
    # (proto3 JSON leaves zeros out).
    traces = traces_from_otlp(fixture("api_v3/FindTraces.json"))
    assert len(traces) == 1
    facts = analyse(traces[0])
    assert (facts.root_service, facts.root_operation, facts.span_count) == (
        "OTLPResourceNoServiceName", "foobar", 1)
    assert facts.error_spans == {"OTLPResourceNoServiceName": 1}
    assert facts.duration_seconds == 0


def test_api_v3_golden_summary_gives_a_one_second_trace_with_one_error() -> None:
    # FindTraceSummaries.json: min start 1000000000000 ns, max end 1001000000000 ns: 1 s; 2 spans, 1 error.
    [facts] = facts_from_summaries(fixture("api_v3/FindTraceSummaries.json"))
    assert (facts.root_service, facts.root_operation) == ("frontend", "HTTP GET /")
    assert facts.duration_seconds == 1.0
    assert (facts.span_count, facts.error_spans, facts.whole) == (2, {"frontend": 1}, False)


@pytest.mark.parametrize("name", ["jaeger-ui_testTrace.trace.json", "jaeger-ui_spanLongerAsParent.trace.json",
                                  "jaeger-ui_genaiTestTrace.trace.json", "jaeger_uimodel_ui_01.trace.json"])
def test_otlp_and_v1_forms_of_the_same_trace_give_the_same_facts(name: str) -> None:
    v1 = analyse(trace_from_v1(fixture_trace(name)))
    [otlp_trace] = traces_from_otlp(to_otlp([fixture_trace(name)]))
    otlp = analyse(otlp_trace)
    for attr in ("root_service", "root_operation", "start", "end", "span_count", "error_spans",
                 "critical_path", "serial"):
        assert getattr(otlp, attr) == getattr(v1, attr), attr
    # OTLP has no trace-level warnings (ui_01 has one), only span ones
    assert {k: n for k, n in otlp.anomalies.items() if k != "warning"} == {
        k: n for k, n in v1.anomalies.items() if k != "warning"}


# ---------------------------------------------------------------------------------------------------------------
# Generated edge cases


def span(span_id: str, start: int, duration: int, parent: str | None = None, *,
         operation: str | None = None, ref: str = "CHILD_OF", tags: list[dict[str, Any]] | None = None,
         pid: str = "p1") -> dict[str, Any]:
    return {"traceID": "t1", "spanID": span_id, "operationName": operation or span_id, "startTime": start,
            "duration": duration, "processID": pid, "tags": tags or [], "logs": [], "warnings": None,
            "references": [] if parent is None else [{"refType": ref, "traceID": "t1", "spanID": parent}]}


def v1_trace(*spans: dict[str, Any], services: dict[str, str] | None = None) -> dict[str, Any]:
    procs = services or {"p1": "svc"}
    return {"traceID": "t1", "spans": list(spans), "warnings": None,
            "processes": {pid: {"serviceName": name, "tags": []} for pid, name in procs.items()}}


def test_siblings_that_touch_end_to_start_are_serial() -> None:
    # a [0,10] then b [10,30]: b starts exactly when a ends -> two waves; saving 10 + 20 - 20 = 10.
    trace = trace_from_v1(v1_trace(span("root", 0, 40), span("a", 0, 10, "root"), span("b", 10, 20, "root")))
    [group] = analyse(trace).serial
    assert (group.operation, group.children, group.saving) == ("root", 2, 10)


def test_two_parallel_calls_then_a_third_are_two_waves() -> None:
    # a [0,10] and b [2,8] overlap (wave [0,10]); c [10,25] (wave [10,25]): 3 children, saving 10 + 15 - 15.
    trace = trace_from_v1(v1_trace(span("root", 0, 30), span("a", 0, 10, "root"), span("b", 2, 6, "root"),
                                   span("c", 10, 15, "root")))
    [group] = analyse(trace).serial
    assert (group.children, group.saving) == (3, 10)


def test_follows_from_siblings_are_not_serial_with_child_of_ones() -> None:
    trace = trace_from_v1(v1_trace(span("root", 0, 40), span("a", 0, 10, "root"),
                                   span("b", 20, 10, "root", ref="FOLLOWS_FROM")))
    assert analyse(trace).serial == []


def test_clock_skewed_child_starting_before_its_parent_is_clipped() -> None:
    # Child [-5, 15] of a root [0, 20] (its host clock runs 5 µs behind): clipped to [0, 15], on a second
    # service. Root own time: 20 - 15 = 5.
    trace = trace_from_v1(v1_trace(span("root", 100, 20), span("c", 95, 20, "root", pid="p2"),
                                   services={"p1": "front", "p2": "back"}))
    facts = analyse(trace)
    assert facts.critical_path == {"front": 5, "back": 15}
    assert facts.anomalies == {"child_outside_parent": 1}


def test_trace_without_a_root_uses_its_earliest_orphan_and_counts_every_missing_parent() -> None:
    trace = trace_from_v1(v1_trace(span("x", 50, 10, "gone"), span("y", 40, 30, "gone2"),
                                   span("z", 45, 5, "y")))
    facts = analyse(trace)
    assert facts.root_operation == "y"
    assert facts.anomalies == {"missing_parent": 2}
    assert facts.critical_path == {"svc": 30}


def test_int64_values_sent_as_strings_are_read_as_numbers() -> None:
    raw = v1_trace(span("root", 0, 40), span("a", 5, 10, "root"))
    raw["spans"][0]["startTime"] = "1700000000000000"
    raw["spans"][0]["duration"] = "40"
    raw["spans"][1]["startTime"] = "1700000000000005"
    raw["spans"][1]["tags"] = [{"key": "http.status_code", "type": "int64", "value": "9223372036854775222"},
                               {"key": "error", "type": "bool", "value": True}]
    facts = analyse(trace_from_v1(raw))
    assert facts.end - facts.start == 40
    assert facts.error_spans == {"svc": 1}


def test_span_with_unreadable_times_is_counted_invalid_and_the_rest_analysed() -> None:
    raw = v1_trace(span("root", 0, 40), span("a", 5, 10, "root"))
    raw["spans"][1]["startTime"] = "soon"
    facts = analyse(trace_from_v1(raw))
    assert facts.span_count == 1
    assert facts.anomalies == {"invalid_span": 1}


def test_reference_cycle_does_not_hang() -> None:
    trace = trace_from_v1(v1_trace(span("a", 0, 10, "b"), span("b", 0, 10, "a")))
    facts = analyse(trace)
    assert facts.span_count == 2
    assert sum(facts.critical_path.values()) == 10


def test_a_chain_of_ten_thousand_spans_is_walked_without_recursion() -> None:
    spans = [Span("s0", "svc", "op", 0, 20_000)]
    spans += [Span(f"s{i}", "svc", "op", i, 20_000 - 2 * i, parent_id=f"s{i - 1}") for i in range(1, 10_000)]
    facts = analyse(Trace("deep", spans))
    assert facts.critical_path == {"svc": 20_000}


def test_truncation_warning_is_told_apart_from_other_warnings() -> None:
    raw = v1_trace(span("root", 0, 40))
    raw["spans"][0]["warnings"] = ["trace has more than 10000 spans, truncated"]
    assert analyse(trace_from_v1(raw)).anomalies == {"truncated": 1}


def test_otlp_search_result_with_two_traces_is_split_by_trace_id_and_skip_is_honoured() -> None:
    one, two = copy.deepcopy(v1_trace(span("r", 0, 10))), copy.deepcopy(v1_trace(span("r", 0, 20)))
    two["traceID"] = "t2"
    two["spans"][0]["traceID"] = "t2"
    traces = traces_from_otlp(to_otlp([one, two]))
    assert sorted((t.trace_id, len(t.spans)) for t in traces) == [("t1", 1), ("t2", 1)]
    assert [t.trace_id for t in traces_from_otlp(to_otlp([one, two]), skip=lambda k: k == "t1")] == ["t2"]


def test_serial_waves_needs_two_waves() -> None:
    s = Span("x", "svc", "op", 0, 1)
    assert serial_waves([(0, 10, s)]) is None
    assert serial_waves([(0, 10, s), (5, 12, s)]) is None
    assert serial_waves([(20, 30, s), (0, 10, s)]) == (2, 10)


def test_span_times_bucket_groups_reproduce_counts_and_sum() -> None:
    times = SpanTimes((0.01, 0.1, 1.0))
    trace = Trace("t", [Span(str(i), "svc", "op", 0, d) for i, d in enumerate((5_000, 7_000, 50_000, 2_000_000))])
    times.add(trace)
    sums = times.by_operation[("svc", "op")]
    assert sums.counts == [2, 1, 0, 1]
    groups = list(sums.groups())
    assert sum(n for _, n in groups) == 4
    assert sum(mean * n for mean, n in groups) == pytest.approx(2.062)
    assert BucketSums([0, 0], [0.0, 0.0]).counts == [0, 0]


def test_operation_ranking_follows_recent_time_and_keeps_a_bound() -> None:
    scores = rank_operations({}, {("a", "x"): 10.0, ("a", "y"): 1.0})
    scores = rank_operations(scores, {("a", "y"): 8.0})  # x: 5, y: 0.5 + 8 = 8.5
    assert top_keys(scores, 1) == {("a", "y")}
    assert len(rank_operations({}, {("s", str(i)): float(i) for i in range(50)}, keep=10)) == 10


# ---------------------------------------------------------------------------------------------------------------
# Decoding response bodies as they arrive (bytes)


def test_a_v1_body_read_as_bytes_gives_the_same_facts_as_the_parsed_body() -> None:
    names = ("jaeger-ui_testTrace.trace.json", "jaeger_uimodel_ui_01.trace.json", "jaeger-ui_genaiTestTrace.trace.json")
    body = {"data": [fixture_trace(name) for name in names], "errors": None}
    from_bytes = [analyse(t) for t in traces_from_v1(json.dumps(body).encode())]
    assert from_bytes == [analyse(t) for t in traces_from_v1(body)]
    assert [f.span_count for f in from_bytes] == [11, 5, 57]


def test_a_span_that_is_not_an_object_is_invalid_and_the_rest_of_the_body_is_read() -> None:
    broken = v1_trace(span("root", 0, 40), span("a", 5, 10, "root"))
    broken["spans"].insert(1, "not a span")
    fine = v1_trace(span("r", 0, 10))
    fine["traceID"] = fine["spans"][0]["traceID"] = "t2"
    traces = list(traces_from_v1(json.dumps({"data": [broken, fine], "errors": None}).encode()))
    assert [(t.trace_id, len(t.spans), t.anomalies) for t in traces] == [("t1", 2, {"invalid_span": 1}),
                                                                          ("t2", 1, {})]


def test_known_traces_of_a_bytes_body_are_skipped_whatever_the_order_of_their_keys() -> None:
    first = v1_trace(span("r", 0, 10))
    later = {"spans": [{**span("r", 0, 20), "traceID": "t2"}], "processes": first["processes"], "traceID": "t2"}
    fresh = v1_trace(span("r", 0, 30))
    fresh["traceID"] = fresh["spans"][0]["traceID"] = "t3"
    body = json.dumps({"data": [first, later, fresh], "errors": None}).encode()
    assert [t.trace_id for t in traces_from_v1(body, skip=lambda key: key in {"t1", "t2"})] == ["t3"]
