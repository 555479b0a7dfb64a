"""Decoding Jaeger's JSON into :mod:`exporter.collectors.jaeger.traces`'s plain types, with msgspec.

Jaeger serves traces in two shapes: the v1 "UI" JSON (``/api/traces``: ``{"traceID", "spans", "processes"}``
with microsecond times and ``references``) and OTLP JSON (``/api/v3``: ``resourceSpans`` -> ``scopeSpans`` ->
``spans`` with nanosecond times as strings and ``parentSpanId``); api_v3 also has trace summaries. Each shape
has typed :class:`msgspec.Struct` classes below that declare only the fields we read: msgspec decodes a body
straight into them and skips the rest (logs, tag types, process tags, most attributes) without building it,
which is what makes a poll of 10,000 traces fast (``bench/bench_jaeger.py`` compares it with ``json.loads`` and
``orjson.loads`` of the whole body followed by a walk over the dicts).

What a field means, per the formats (the analysis module's docstring has the rules that follow from them):

- v1: a span's service is its ``processID`` in the trace's ``processes`` (or an inline ``process``); a span is an
  error when its ``error`` tag is true or ``otel.status_code`` is ``ERROR``; a reference to another trace is not
  a parent candidate; int64 values (times above 2^53) may arrive as strings.
- OTLP: times are nanoseconds (strings, per proto3 JSON, which also leaves zero values out); ``status.code`` 2
  is an error, as is an ``error`` attribute that is true; ``parentSpanId`` is a ``CHILD_OF`` parent and each link
  to a span of the same trace a ``FOLLOWS_FROM`` one (that is how Jaeger converts references); Jaeger's own span
  warnings are the ``@jaeger@warnings`` attribute.

A v1 search is counted, not analysed, except for the poll's sample (:func:`found_in_v1`): each trace's facts
come from the fewest Python steps per span, because a poll can hold 500,000 spans. Its tags are not decoded at
all: one search of the body for the text of the two error keys marks the traces that could have an error span,
and those are read by the full path. The others are decoded into strict Structs (:class:`V1FastSpan`) that only
fit ordinary spans, and a few list passes give their extent, root and services; a trace that does not fit is
read by the full path too, so both give the same facts (``tests/test_fuzz_jaeger_decode.py`` checks that).

A body that is not JSON raises :class:`BodyNotJson`; JSON of the wrong shape raises :class:`TraceDataError`.
One trace that does not fit its Struct is decoded again on its own, loosely: a span that still does not fit is
counted as ``invalid_span`` and the rest of the trace is kept.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType, field

from exporter.collectors.jaeger.traces import (
    INVALID_SPAN,
    KEPT_TAGS,
    V1_NO_SERVICE,
    Span,
    Trace,
    TraceBuilder,
    TraceFacts,
    trace_key,
    warning_kind,
)

OTLP_NO_SERVICE = "OTLPResourceNoServiceName"  # what Jaeger itself calls a resource without service.name
_OTLP_WARNINGS = "@jaeger@warnings"
_STATUS_ERROR = (2, "2", "STATUS_CODE_ERROR")
_TRUE = (True, 1, "true", "True", "TRUE", "1")

Skip = Callable[[str], bool]
Bytes = bytes | bytearray
Body = Bytes | Mapping[str, Any]  # a response body as received, or already parsed (tests, fixtures)


class TraceDataError(ValueError):
    """A response or trace that does not have the shape Jaeger's API documents."""


class BodyNotJson(TraceDataError):
    """A body that is not JSON at all (HTML, truncated, empty)."""


class _Decoded(Struct, gc=False):
    """Base of every decoded shape: no reference cycles, so the cyclic GC need not track them."""


# ---------------------------------------------------------------------------------------------------------------
# Jaeger v1 JSON (/api/traces)

Int = int | float | str  # int64 may arrive as a string; anything else is checked when it is read


class V1Tag(_Decoded):
    key: str = ""
    value: Any = None


class V1Reference(_Decoded):
    ref_type: str = field(name="refType", default="CHILD_OF")
    trace_id: str | None = field(name="traceID", default=None)
    span_id: str | int | None = field(name="spanID", default=None)


class V1Process(_Decoded):
    service_name: str | None = field(name="serviceName", default=None)


class V1Span(_Decoded):
    span_id: str | int | None = field(name="spanID", default=None)
    trace_id: str | None = field(name="traceID", default=None)
    operation: str | None = field(name="operationName", default=None)
    references: list[V1Reference] | None = None
    start: Int = field(name="startTime", default=0)
    duration: Int = 0
    tags: list[V1Tag] | None = None
    process_id: str = field(name="processID", default="")
    process: V1Process | None = None
    warnings: list[Any] | None = None


class V1Trace(_Decoded):
    spans: list[V1Span]
    trace_id: str | None = field(name="traceID", default=None)
    processes: dict[str, V1Process] | None = None
    warnings: list[Any] | None = None


class V1Response(_Decoded):
    """``{"data": [...], "errors": ...}`` with each trace left as JSON text, decoded one by one (a trace decoded
    and turned into spans while its bytes are still in cache is faster than the whole body at once, and its
    Structs are freed before the next); ``data`` is UNSET when the key is missing (not a trace response)."""

    data: list[Raw] | UnsetType | None = UNSET
    errors: Any = None

    @property
    def has_data(self) -> bool:
        return self.data is not UNSET


_V1_RESPONSE = msgspec.json.Decoder(V1Response)
_V1_TRACE = msgspec.json.Decoder(V1Trace)
# Jaeger writes a trace's ID as its first key: read from there, a trace already counted is not decoded at all.
# (Anything else, such as keys in another order, is decoded whole, then skipped.)
_LEADING_TRACE_ID = re.compile(rb'\s*\{\s*"traceID"\s*:\s*"([0-9A-Za-z_-]*)"')
_ANY = msgspec.json.Decoder()

T = TypeVar("T")


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TraceDataError(f"{what} is not an integer: {value!r}")
    try:
        return int(value)  # int64 values may arrive as strings (above 2^53, and always in OTLP JSON)
    except (TypeError, ValueError):
        raise TraceDataError(f"{what} is not an integer: {value!r}") from None


def _decode(decoder: msgspec.json.Decoder[T], body: Bytes | Raw) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise TraceDataError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BodyNotJson(str(exc)) from None


def v1_response(body: Bytes) -> V1Response:
    """The envelope of a v1 body; its traces stay JSON text until :func:`traces_from_v1` reads them."""
    return _decode(_V1_RESPONSE, body)


def _loose_v1_trace(obj: Any) -> tuple[V1Trace, int]:
    """A trace that did not fit :class:`V1Trace`, read span by span: (what fits, how many spans did
    not)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("spans"), list):
        raise TraceDataError("a v1 trace must be an object with a 'spans' list")
    spans: list[V1Span] = []
    invalid = 0
    for item in obj["spans"]:
        try:
            spans.append(msgspec.convert(item, V1Span))
        except msgspec.ValidationError:
            invalid += 1
    processes: dict[str, V1Process] = {}
    if isinstance(obj.get("processes"), dict):
        for pid, process in obj["processes"].items():
            with suppress(msgspec.ValidationError):  # unreadable: its spans are V1_NO_SERVICE's
                processes[pid] = msgspec.convert(process, V1Process)
    trace_id = obj.get("traceID")
    warnings = obj.get("warnings")
    return V1Trace(spans, None if trace_id is None else str(trace_id), processes,
                   warnings if isinstance(warnings, list) else None), invalid


_NO_CANDIDATES: Sequence[tuple[str, bool]] = ()


def _v1_trace(decoded: V1Trace, invalid: int = 0) -> Trace:
    trace_id = decoded.trace_id or ""
    own = trace_key(trace_id) if trace_id else None
    services = {pid: p.service_name or V1_NO_SERVICE for pid, p in (decoded.processes or {}).items()}
    builder = TraceBuilder(trace_id)
    add = builder.add
    anomalies = builder.anomalies
    if invalid:
        anomalies[INVALID_SPAN] = invalid
    for raw in decoded.spans:
        span_id = raw.span_id
        if span_id is None:
            anomalies[INVALID_SPAN] = anomalies.get(INVALID_SPAN, 0) + 1
            continue
        if type(span_id) is not str:
            span_id = str(span_id)
        if not trace_id:
            trace_id = builder.trace_id = raw.trace_id or ""
            own = trace_key(trace_id)
        process = raw.process
        service = services.get(raw.process_id, V1_NO_SERVICE) if process is None else (
            process.service_name or V1_NO_SERVICE)
        start, duration = raw.start, raw.duration
        if type(start) is not int or type(duration) is not int:
            try:
                start = _as_int(start, f"span {span_id} startTime")
                duration = _as_int(duration, f"span {span_id} duration")
            except TraceDataError:
                anomalies[INVALID_SPAN] = anomalies.get(INVALID_SPAN, 0) + 1
                continue
        candidates = _NO_CANDIDATES
        if raw.references:
            candidates = []
            for ref in raw.references:
                ref_trace = ref.trace_id
                if ref_trace != trace_id and ref_trace is not None and own is not None and trace_key(
                        ref_trace) != own:
                    continue  # a link to another trace
                ref_id = ref.span_id
                candidates.append((ref_id if type(ref_id) is str else str(ref_id), ref.ref_type != "FOLLOWS_FROM"))
        if raw.warnings:
            for warning in raw.warnings:
                kind = warning_kind(str(warning))
                anomalies[kind] = anomalies.get(kind, 0) + 1
        error = False
        kept: dict[str, Any] | None = None
        if raw.tags:  # inline rather than a call per span: this loop is most of the decoding time
            for tag in raw.tags:
                key = tag.key
                if key in KEPT_TAGS:
                    if kept is None:
                        kept = {}
                    kept[key] = tag.value
                elif (key == "error" and tag.value in _TRUE) or (key == "otel.status_code" and tag.value == "ERROR"):
                    error = True
        add(Span(span_id, service, raw.operation or "", start, duration if duration > 0 else 0, error, tags=kept),
            candidates)
    for warning in decoded.warnings or ():
        kind = warning_kind(str(warning))
        anomalies[kind] = anomalies.get(kind, 0) + 1
    return builder.build()


def trace_from_v1(obj: Mapping[str, Any] | Raw) -> Trace:
    """One element of ``data`` in a v1 response: parsed, or its JSON text."""
    try:
        if isinstance(obj, Raw):
            return _v1_trace(_V1_TRACE.decode(obj))
        return _v1_trace(msgspec.convert(obj, V1Trace))
    except msgspec.ValidationError:
        pass  # read it again, span by span
    except msgspec.DecodeError as exc:
        raise BodyNotJson(str(exc)) from None
    return _v1_trace(*_loose_v1_trace(_ANY.decode(obj) if isinstance(obj, Raw) else obj))


class V1FastRef(_Decoded):
    """A reference as almost every trace has them: a parent in the same trace."""

    trace_id: str = field(name="traceID")
    ref_type: Literal["CHILD_OF"] = field(name="refType", default="CHILD_OF")


class V1FastSpan(_Decoded):
    """A span as almost every trace has them (a string ID, integer times, a duration not below 0, its process by
    ID), without its tags; a span with anything else fails to decode, and its trace is read by the full path."""

    span_id: str = field(name="spanID")
    start: int = field(name="startTime")
    duration: Annotated[int, Meta(ge=0)]
    process_id: str = field(name="processID")
    operation: str = field(name="operationName", default="")
    references: list[V1FastRef] = []
    process: None = None


class V1FastTrace(_Decoded):
    trace_id: str = field(name="traceID")
    spans: list[V1FastSpan]
    processes: dict[str, V1Process] = {}


_V1_FAST_TRACE = msgspec.json.Decoder(V1FastTrace)
# The text of the tag keys that can make a span an error: a trace in which neither appears has no error span.
# (A key written with \u escapes for its letters would not be seen; Go's encoder, Jaeger's, writes ASCII letters
# as they are.)
_ERROR_MARKS = (b'"error"', b"otel.status_code")


def _marked(body: Bytes, traces: Sequence[Raw]) -> set[int]:
    """Indices of the traces in whose JSON text an :data:`_ERROR_MARKS` appears: one search of the body per mark
    (in C, at memory speed), rather than a look at every tag of every span."""
    found: list[int] = []
    for mark in _ERROR_MARKS:
        at = body.find(mark)
        while at >= 0:
            found.append(at)
            at = body.find(mark, at + 1)
    if not found:
        return set()
    starts: list[int] = []
    ends: list[int] = []
    end = 0
    for raw in traces:  # each trace's place in the body: its text follows the previous one's, past a comma
        text = memoryview(raw)
        start = body.find(text[:64], end)
        if start < 0:  # not where it should be: read every trace by the full path
            return set(range(len(traces)))
        end = start + len(text)
        starts.append(start)
        ends.append(end)
    marked: set[int] = set()
    for at in found:
        index = bisect_right(starts, at) - 1
        if index >= 0 and at < ends[index]:
            marked.add(index)
    return marked


def _fast_facts(decoded: V1FastTrace) -> TraceFacts | None:
    """What :func:`_v1_facts` finds, in a few passes over the spans, for a trace that has no error span and whose
    spans are all ordinary: each one's references inside the trace, and a span without any. None for any other
    trace: :func:`_v1_facts` reads it."""
    spans, trace_id = decoded.spans, decoded.trace_id
    if not spans or not trace_id:
        return None
    if [1 for span in spans for ref in span.references if ref.trace_id != trace_id]:
        return None
    orphans = [span for span in spans if not span.references]
    if not orphans:
        return None
    names = {pid: p.service_name or V1_NO_SERVICE for pid, p in decoded.processes.items()}
    services = tuple(dict.fromkeys([names.get(pid, V1_NO_SERVICE)
                                    for pid in dict.fromkeys([span.process_id for span in spans])]))
    start = min([span.start for span in spans])
    end = max([span.start + span.duration for span in spans])
    _, _, service, operation = min((span.start, -span.duration, names.get(span.process_id, V1_NO_SERVICE),
                                    span.operation) for span in orphans)
    return TraceFacts(trace_id, service, operation, start, end, len(spans), {}, services, whole=False)


@dataclass(slots=True)
class V1Found:
    """A trace of a v1 search counted from its spans (:attr:`facts`, ``whole=False``), kept as its JSON text: it
    is read whole by :meth:`whole` only if it is drawn into the poll's sample."""

    facts: TraceFacts
    raw: Raw

    def own(self) -> V1Found:
        """The same trace holding its own copy of its text, not a view of the whole response body."""
        return V1Found(self.facts, self.raw.copy())

    def whole(self) -> Trace:
        return trace_from_v1(self.raw)


def _v1_facts(decoded: V1Trace) -> TraceFacts:
    """Extent, root, span and error counts of a v1 trace, without resolving its tree: the root is the earliest
    span that names no parent in the trace (what :func:`exporter.collectors.jaeger.traces.root_of` picks when the
    references are sound)."""
    trace_id = decoded.trace_id or next((s.trace_id for s in decoded.spans if s.trace_id), None) or ""
    names = {pid: p.service_name or V1_NO_SERVICE for pid, p in (decoded.processes or {}).items()}
    services: dict[str, None] = {}
    errors: dict[str, int] = {}
    start = end = None
    count = 0
    root: tuple[int, int, str, str] | None = None
    fallback: tuple[int, int, str, str] | None = None
    for raw in decoded.spans:
        begin, duration = raw.start, raw.duration
        if raw.span_id is None or type(begin) is not int or type(duration) is not int:
            continue  # counted as invalid when (if) the trace is read whole
        count += 1
        service = names.get(raw.process_id, V1_NO_SERVICE) if raw.process is None else (
            raw.process.service_name or V1_NO_SERVICE)
        services[service] = None
        finish = begin + (duration if duration > 0 else 0)
        if start is None or begin < start:
            start = begin
        if end is None or finish > end:
            end = finish
        if raw.tags:
            for tag in raw.tags:
                key = tag.key
                if (key == "error" and tag.value in _TRUE) or (key == "otel.status_code" and tag.value == "ERROR"):
                    errors[service] = errors.get(service, 0) + 1
                    break
        candidate = (begin, -duration, service, raw.operation or "")
        if fallback is None or candidate < fallback:
            fallback = candidate
        if not any(r.ref_type != "FOLLOWS_FROM" and (r.trace_id is None or r.trace_id == trace_id)
                   for r in raw.references or ()) and (root is None or candidate < root):
            root = candidate
    chosen = root or fallback
    if chosen is None or start is None or end is None:
        return TraceFacts(trace_id, V1_NO_SERVICE, "", 0, 0, 0, {}, (), whole=False)
    return TraceFacts(trace_id, chosen[2], chosen[3], start, end, count, errors, tuple(services), whole=False)


def v1_facts(raw: Raw | Bytes, errorless: bool = False) -> TraceFacts:
    """The facts of one v1 trace's JSON text: by :func:`_fast_facts` when the trace is known to have no error
    span and is ordinary, else by :func:`_v1_facts` over the full decoding."""
    facts = None
    if errorless:
        try:
            facts = _fast_facts(_V1_FAST_TRACE.decode(raw))
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            raise BodyNotJson(str(exc)) from None
    if facts is not None:
        return facts
    try:
        decoded = _V1_TRACE.decode(raw)
    except msgspec.ValidationError:
        decoded = _loose_v1_trace(_ANY.decode(raw))[0]
    except msgspec.DecodeError as exc:
        raise BodyNotJson(str(exc)) from None
    return _v1_facts(decoded)


def found_in_v1(body: Bytes, response: V1Response, skip: Skip | None = None) -> Iterator[V1Found]:
    """The traces of a v1 search response (``response`` is ``body`` decoded), counted but not yet read whole,
    except those ``skip(key)`` rejects."""
    traces = response.data or []
    marked = _marked(body, traces)
    for index, raw in enumerate(traces):
        leading = _LEADING_TRACE_ID.match(memoryview(raw)[:200]) if skip is not None else None
        if leading is not None and skip is not None and skip(trace_key(leading.group(1).decode())):
            continue
        facts = v1_facts(raw, errorless=index not in marked)
        if leading is None and skip is not None and skip(facts.key):
            continue
        yield V1Found(facts, raw)


def traces_from_v1(body: Body | V1Response, skip: Skip | None = None) -> Iterator[Trace]:
    """Traces of a v1 response body (``{"data": [...], "errors": ...}``), except those ``skip(key)`` rejects."""
    if isinstance(body, Mapping):
        data = body.get("data")
        if data is None:
            return
        if not isinstance(data, list):
            raise TraceDataError("'data' is not a list")
        for obj in data:
            if skip is not None and isinstance(obj, Mapping) and skip(trace_key(str(obj.get("traceID") or ""))):
                continue
            yield trace_from_v1(obj)
        return
    response = body if isinstance(body, V1Response) else v1_response(body)
    for raw in response.data or ():
        if skip is not None:
            leading = _LEADING_TRACE_ID.match(memoryview(raw)[:200])
            if leading is not None and skip(trace_key(leading.group(1).decode())):
                continue
            trace = trace_from_v1(raw)
            if leading is None and skip(trace.key):
                continue
            yield trace
        else:
            yield trace_from_v1(raw)


# ---------------------------------------------------------------------------------------------------------------
# OTLP JSON (/api/v3)


class OtlpArray(_Decoded):
    values: list[OtlpValue] | None = None


class OtlpValue(_Decoded):
    """An OTLP ``AnyValue``: one of these is set (bytes and key-value lists are not read)."""

    string: str | UnsetType = field(name="stringValue", default=UNSET)
    bool_: bool | UnsetType = field(name="boolValue", default=UNSET)
    double: float | UnsetType = field(name="doubleValue", default=UNSET)
    int_: int | str | UnsetType = field(name="intValue", default=UNSET)  # a string, per proto3 JSON
    array: OtlpArray | UnsetType | None = field(name="arrayValue", default=UNSET)


class OtlpAttribute(_Decoded):
    key: str = ""
    value: OtlpValue | None = None


class OtlpStatus(_Decoded):
    code: int | str | None = None


class OtlpLink(_Decoded):
    trace_id: str | None = field(name="traceId", default=None)
    span_id: str | None = field(name="spanId", default=None)


class OtlpSpan(_Decoded):
    span_id: str | None = field(name="spanId", default=None)
    trace_id: str | None = field(name="traceId", default=None)
    parent_id: str | None = field(name="parentSpanId", default=None)
    name: str | None = None
    kind: int | str | None = None  # the SpanKind enum: its number, or its name
    start: Int = field(name="startTimeUnixNano", default=0)  # proto3 JSON leaves out zero values
    end: Int | None = field(name="endTimeUnixNano", default=None)
    status: OtlpStatus | None = None
    attributes: list[OtlpAttribute] | None = None
    links: list[OtlpLink] | None = None


class OtlpScopeSpans(_Decoded):
    spans: list[OtlpSpan] | None = None


class OtlpResource(_Decoded):
    attributes: list[OtlpAttribute] | None = None


class OtlpResourceSpans(_Decoded):
    resource: OtlpResource | None = None
    scope_spans: list[OtlpScopeSpans] | None = field(name="scopeSpans", default=None)
    library_spans: list[OtlpScopeSpans] | None = field(name="instrumentationLibrarySpans", default=None)


class OtlpResult(_Decoded):
    resource_spans: list[OtlpResourceSpans] | None = field(name="resourceSpans", default=None)


class OtlpResponse(_Decoded):
    """``{"result": {"resourceSpans": [...]}}``; ``result`` is UNSET when the key is missing (then a bare
    ``{"resourceSpans": [...]}`` is read)."""

    result: OtlpResult | UnsetType | None = UNSET
    resource_spans: list[OtlpResourceSpans] | None = field(name="resourceSpans", default=None)

    @property
    def has_result(self) -> bool:
        return self.result is not UNSET


_OTLP_RESPONSE = msgspec.json.Decoder(OtlpResponse)


def otlp_value(value: OtlpValue | None) -> Any:
    """The plain value of an OTLP ``AnyValue`` (``intValue`` arrives as a string)."""
    if value is None:
        return None
    for plain in (value.string, value.bool_, value.double):
        if plain is not UNSET:
            return plain
    if value.int_ is not UNSET:
        return _as_int(value.int_, "intValue")
    if value.array is not UNSET:
        return [otlp_value(v) for v in (value.array.values if value.array else None) or ()]
    return None


def _otlp_attribute(attributes: list[OtlpAttribute] | None, key: str) -> Any:
    for attr in attributes or ():
        if attr.key == key:
            return otlp_value(attr.value)
    return None


def otlp_response(body: Body) -> OtlpResponse:
    """An api_v3 trace body, decoded."""
    if isinstance(body, Mapping):
        try:
            return msgspec.convert(body, OtlpResponse)
        except msgspec.ValidationError as exc:
            raise TraceDataError(str(exc)) from None
    return _decode(_OTLP_RESPONSE, body)


def traces_from_otlp(body: Body | OtlpResponse, skip: Skip | None = None) -> list[Trace]:
    """Traces of an api_v3 body (``{"result": {"resourceSpans": [...]}}``), grouped by trace ID."""
    response = body if isinstance(body, OtlpResponse) else otlp_response(body)
    result = response.result
    resource_spans = response.resource_spans if result is UNSET else result.resource_spans if result else None
    builders: dict[str, TraceBuilder] = {}
    for rs in resource_spans or ():
        service = _otlp_attribute(rs.resource.attributes if rs.resource else None, "service.name")
        service = str(service) if service else OTLP_NO_SERVICE
        for ss in rs.scope_spans or rs.library_spans or ():
            for raw in ss.spans or ():
                _add_otlp_span(raw, service, builders, skip)
    return [b.build() for b in builders.values()]


def _add_otlp_span(raw: OtlpSpan, service: str, builders: dict[str, TraceBuilder], skip: Skip | None) -> None:
    if not raw.span_id:
        return
    trace_id = raw.trace_id or ""
    key = trace_key(trace_id)
    builder = builders.get(key)
    if builder is None:
        if skip is not None and skip(key):
            return
        builder = builders[key] = TraceBuilder(trace_id)
    span_id = raw.span_id
    anomalies = builder.anomalies
    try:
        start_ns = _as_int(raw.start, f"span {span_id} startTimeUnixNano")
        end_ns = start_ns if raw.end is None else _as_int(raw.end, f"span {span_id} endTimeUnixNano")
    except TraceDataError:
        anomalies[INVALID_SPAN] = anomalies.get(INVALID_SPAN, 0) + 1
        return
    error = raw.status is not None and raw.status.code in _STATUS_ERROR
    attributes = raw.attributes
    kept: dict[str, Any] | None = None
    if attributes:
        if not error and _otlp_attribute(attributes, "error") in _TRUE:
            error = True
        warnings = _otlp_attribute(attributes, _OTLP_WARNINGS)
        for warning in warnings if isinstance(warnings, list) else [warnings] if warnings else ():
            kind = warning_kind(str(warning))
            anomalies[kind] = anomalies.get(kind, 0) + 1
        kept = {a.key: otlp_value(a.value) for a in attributes if a.key in KEPT_TAGS} or None
    span_kind = _OTLP_KINDS.get(raw.kind) if raw.kind is not None else None
    if span_kind:
        kept = {**(kept or {}), "span.kind": span_kind}
    candidates: list[tuple[str, bool]] = []
    if raw.parent_id:
        candidates.append((raw.parent_id, True))
    for link in raw.links or ():  # Jaeger turns FOLLOWS_FROM references into links
        if trace_key(link.trace_id or trace_id) == key and link.span_id:
            candidates.append((link.span_id, False))
    start = start_ns // 1000
    builder.add(Span(span_id, service, raw.name or "", start, max(0, end_ns // 1000 - start), error, tags=kept),
                candidates)


# OTLP's SpanKind, by number and by name, as Jaeger's v1 span.kind tag writes it.
_OTLP_KINDS: dict[int | str, str] = {}
for _number, _name in enumerate(("", "internal", "server", "client", "producer", "consumer")):
    if _name:
        _OTLP_KINDS[_number] = _OTLP_KINDS[f"SPAN_KIND_{_name.upper()}"] = _name


# ---------------------------------------------------------------------------------------------------------------
# Trace summaries (/api/v3/trace-summaries)


class SummaryService(_Decoded):
    name: str | None = None
    error_spans: Int = field(name="errorSpanCount", default=0)


class Summary(_Decoded):
    trace_id: str | None = field(name="traceId", default=None)
    start: Int = field(name="minStartTimeUnixNano", default=0)
    end: Int = field(name="maxEndTimeUnixNano", default=0)
    services: list[SummaryService] | None = None
    root_service: str | None = field(name="rootServiceName", default=None)
    root_operation: str | None = field(name="rootOperationName", default=None)
    span_count: Int = field(name="spanCount", default=0)
    error_spans: Int | None = field(name="errorSpanCount", default=None)


class Summaries(_Decoded):
    summaries: list[Summary] | None = None


_SUMMARIES = msgspec.json.Decoder(Summaries)


def facts_from_summaries(body: Body) -> list[TraceFacts]:
    """``GET /api/v3/trace-summaries``: per trace, its extent, root, span and error counts."""
    if isinstance(body, Mapping):
        try:
            decoded = msgspec.convert(body, Summaries)
        except msgspec.ValidationError as exc:
            raise TraceDataError(f'expected {{"summaries": [...]}}: {exc}') from None
    else:
        decoded = _decode(_SUMMARIES, body)
    out: list[TraceFacts] = []
    for item in decoded.summaries or ():
        if not item.trace_id:
            raise TraceDataError("a trace summary without traceId")
        trace_id = item.trace_id
        start = _as_int(item.start, f"trace {trace_id} minStartTimeUnixNano") // 1000
        end = _as_int(item.end, f"trace {trace_id} maxEndTimeUnixNano") // 1000
        errors: dict[str, int] = {}
        services: list[str] = []
        for svc in item.services or ():
            name = svc.name or OTLP_NO_SERVICE
            services.append(name)
            n = _as_int(svc.error_spans, "errorSpanCount")
            if n:
                errors[name] = errors.get(name, 0) + n
        root_service = item.root_service or OTLP_NO_SERVICE
        if not services:
            services.append(root_service)
        if not errors and item.error_spans:
            errors[root_service] = _as_int(item.error_spans, "errorSpanCount")
        out.append(TraceFacts(trace_id, root_service, item.root_operation or "", start, max(start, end),
                              _as_int(item.span_count, "spanCount"), errors, tuple(services), whole=False))
    return out
