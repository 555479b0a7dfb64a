"""Fuzzing the Jaeger decoders (exporter.collectors.jaeger.decode) and the analysis that follows them: any body,
v1 or api_v3 (OTLP JSON), gives traces or a TraceDataError, never another exception, and every trace decoded
can be analysed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from exporter.collectors.jaeger.decode import (
    TraceDataError,
    _marked,
    found_in_v1,
    otlp_response,
    traces_from_otlp,
    traces_from_v1,
    v1_facts,
    v1_response,
)
from exporter.collectors.jaeger.traces import analyse
from tests.fuzzing import FUZZ, json_bytes, json_values, report_inputs, tried  # noqa: F401 - report_inputs: fixture

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jaeger"
V1_TRACE = json.loads((FIXTURES / "jaeger-ui_testTrace.trace.json").read_text())
OTLP = json.loads((FIXTURES / "api_v3" / "GetTrace.json").read_text())

ids = st.sampled_from(["span-1", "span-2", "trace-123", "", "0" * 16, "zz"]) | st.text(max_size=6)
times = st.integers(min_value=-(2**64), max_value=2**64) | st.text(max_size=25) | st.none() | st.floats()
v1_span = st.fixed_dictionaries({}, optional={
    "traceID": ids, "spanID": ids, "operationName": st.text(max_size=8) | st.integers(), "startTime": times,
    "duration": times, "processID": st.sampled_from(["p1", "p2", "nope"]) | json_values,
    "references": st.lists(st.fixed_dictionaries({}, optional={"refType": st.sampled_from(
        ["CHILD_OF", "FOLLOWS_FROM", "x"]), "traceID": ids, "spanID": ids}), max_size=3) | json_values,
    "tags": st.lists(st.fixed_dictionaries({}, optional={"key": st.sampled_from(["error", "span.kind",
                                                                                  "otel.status_code"]),
                                                         "value": json_values}), max_size=3) | json_values,
    "warnings": st.none() | st.lists(st.text(max_size=20), max_size=2) | json_values})
v1_trace = st.fixed_dictionaries({"traceID": ids, "spans": st.lists(v1_span, max_size=6)}, optional={
    "processes": st.dictionaries(st.sampled_from(["p1", "p2"]), st.fixed_dictionaries(
        {}, optional={"serviceName": st.text(max_size=6) | json_values})) | json_values})
v1_bodies = st.fixed_dictionaries({"data": st.lists(v1_trace | json_values, max_size=4) | json_values},
                                  optional={"errors": json_values, "total": json_values})

otlp_span = st.fixed_dictionaries({}, optional={
    "traceId": ids, "spanId": ids, "parentSpanId": ids, "name": st.text(max_size=8) | json_values,
    "startTimeUnixNano": times, "endTimeUnixNano": times,
    "status": st.fixed_dictionaries({}, optional={"code": json_values}) | json_values,
    "attributes": st.lists(st.fixed_dictionaries({"key": st.sampled_from(["error", "@jaeger@warnings", "x"]),
                                                  "value": json_values}), max_size=3) | json_values,
    "links": st.lists(st.fixed_dictionaries({}, optional={"traceId": ids, "spanId": ids}), max_size=2)})
otlp_bodies = st.fixed_dictionaries({"result": st.fixed_dictionaries({"resourceSpans": st.lists(
    st.fixed_dictionaries({}, optional={
        "resource": st.fixed_dictionaries({}, optional={"attributes": st.lists(st.fixed_dictionaries(
            {"key": st.just("service.name"), "value": json_values}), max_size=2)}),
        "scopeSpans": st.lists(st.fixed_dictionaries({}, optional={"spans": st.lists(otlp_span, max_size=5)}),
                               max_size=2)}), max_size=3) | json_values}) | json_values})




@st.composite
def v1_searches(draw: st.DrawFn) -> bytes:
    """Search answers of traces that are ordinary (what the collector counts from a few passes over the spans)
    or have one thing that sends them down the full path: an error or status tag, a FOLLOWS_FROM or a reference
    to another trace, no span without a parent, a negative duration, an inline process. Written compact, spaced
    or indented, as JSON encoders do."""
    traces = []
    for t in range(draw(st.integers(1, 4))):
        trace_id = draw(st.sampled_from(["ab", "00ab", "cd"])) + str(t)
        count = draw(st.integers(1, 6))
        spans: list[dict[str, Any]] = []
        for i in range(count):
            parents = [] if i == 0 or draw(st.integers(0, 5)) == 0 else [draw(st.integers(0, i - 1))]
            spans.append({
                "traceID": trace_id, "spanID": f"s{i}",
                "operationName": draw(st.sampled_from(["GET /", "SELECT 1", ""])),
                "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": f"s{p}"} for p in parents],
                "startTime": draw(st.integers(0, 50)), "duration": draw(st.integers(0, 50)),
                "tags": draw(st.lists(st.fixed_dictionaries({
                    "key": st.sampled_from(["span.kind", "http.status_code"]), "type": st.just("string"),
                    "value": st.sampled_from([True, "OK", 200, "server"])}), max_size=3)),
                "logs": [], "processID": draw(st.sampled_from(["p1", "p2", "p3"])), "warnings": None})
        span = spans[draw(st.integers(0, count - 1))]
        trouble = draw(st.sampled_from([None, None, None, "error", "error text", "status", "follows", "other trace",
                                        "no root", "negative", "inline"]))
        if trouble == "error":
            span["tags"].append({"key": "error", "type": "bool", "value": draw(st.sampled_from([True, False]))})
        elif trouble == "error text":
            span["operationName"] = "error"
        elif trouble == "status":
            span["tags"].append({"key": "otel.status_code", "type": "string",
                                 "value": draw(st.sampled_from(["ERROR", "OK"]))})
        elif trouble in ("follows", "other trace"):
            span["references"] = [{"refType": "FOLLOWS_FROM" if trouble == "follows" else "CHILD_OF",
                                   "traceID": trace_id if trouble == "follows" else "other", "spanID": "s0"}]
        elif trouble == "no root":
            for i, each in enumerate(spans):
                each["references"] = [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": f"s{(i + 1) % count}"}]
        elif trouble == "negative":
            span["duration"] = -draw(st.integers(1, 5))
        elif trouble == "inline":
            span["process"] = {"serviceName": "inline"}
        traces.append({"traceID": trace_id, "spans": spans,
                       "processes": {"p1": {"serviceName": "api"}, "p2": {"serviceName": "db"}}})
    layout = draw(st.sampled_from([{"separators": (",", ":")}, {}, {"indent": 2}]))
    return json.dumps({"data": traces, "errors": None}, **layout).encode()


def _mutated(document: Any, data: st.DataObject) -> Any:
    """The document with one value somewhere replaced by anything."""
    document = json.loads(json.dumps(document))
    node, steps = document, data.draw(st.integers(0, 8))
    for _ in range(steps):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], dict | list) or data.draw(st.booleans()):
                node[key] = data.draw(json_values)
                return document
            node = node[key]
        elif isinstance(node, list) and node:
            i = data.draw(st.integers(0, len(node) - 1))
            if not isinstance(node[i], dict | list) or data.draw(st.booleans()):
                node[i] = data.draw(json_values)
                return document
            node = node[i]
    return document


def _decode_v1(body: bytes) -> None:
    try:
        traces = list(traces_from_v1(v1_response(body)))
    except TraceDataError:
        return
    for trace in traces:
        analyse(trace)


def _decode_otlp(body: bytes) -> None:
    try:
        traces = traces_from_otlp(otlp_response(body))
    except TraceDataError:
        return
    for trace in traces:
        analyse(trace)


@FUZZ
@given(st.binary(max_size=200) | json_values.map(json_bytes))
def test_any_bytes_are_traces_or_a_trace_data_error(body: bytes) -> None:
    tried(__name__, "raw bodies")
    _decode_v1(body)
    _decode_otlp(body)


@FUZZ
@given(v1_bodies)
def test_v1_bodies_of_any_field_values(body: dict[str, Any]) -> None:
    tried(__name__, "v1 bodies")
    _decode_v1(json_bytes(body))


@FUZZ
@given(otlp_bodies)
def test_otlp_bodies_of_any_field_values(body: dict[str, Any]) -> None:
    tried(__name__, "OTLP bodies")
    _decode_otlp(json_bytes(body))


@FUZZ
@given(st.data())
def test_real_traces_with_one_value_changed_anywhere(data: st.DataObject) -> None:
    tried(__name__, "mutated fixtures")
    _decode_v1(json_bytes(_mutated({"data": [V1_TRACE]}, data)))
    _decode_otlp(json_bytes(_mutated(OTLP, data)))


@FUZZ
@given(v1_searches())
def test_v1_search_traces_are_counted_with_the_facts_of_their_full_reading(body: bytes) -> None:
    tried(__name__, "v1 searches counted")
    response = v1_response(bytearray(body))  # as the collector receives it
    counted = [found.facts for found in found_in_v1(bytearray(body), response)]
    assert counted == [v1_facts(raw) for raw in response.data or ()]


def test_only_the_traces_whose_text_holds_an_error_tag_are_marked_for_the_full_path() -> None:
    def trace(trace_id: str, tags: list[dict[str, Any]]) -> dict[str, Any]:
        return {"traceID": trace_id, "spans": [{"spanID": "a", "tags": tags}], "processes": {}}

    error = [{"key": "error", "type": "bool", "value": True}]
    status = [{"key": "otel.status_code", "type": "string", "value": "ERROR"}]
    plain = [{"key": "span.kind", "type": "string", "value": "server"}]
    twice = "a" * 80  # a trace returned twice: its first and last copies begin with the same text
    document = {"data": [trace(twice, plain), trace("t1", error), trace("t2", plain), trace("t3", status),
                         trace(twice, error)],
                "errors": [{"code": 500, "msg": "error"}]}  # outside every trace: marks nothing
    for layout in ({"separators": (",", ":")}, {}, {"indent": 4}):
        body = json.dumps(document, **layout).encode()  # type: ignore[arg-type]
        assert _marked(body, v1_response(body).data or []) == {1, 3, 4}
