"""Jaeger's v1 "UI" JSON (``/api/traces``: ``{"traceID", "spans", "processes"}`` with microsecond times and
``references``) into :mod:`exporter.collectors.jaeger.traces`'s plain types.

A span's service is its ``processID`` in the trace's ``processes`` (or an inline ``process``); a span is an error
when its ``error`` tag is true or ``otel.status_code`` is ``ERROR``; a reference to another trace is not a parent
candidate; int64 values (times above 2^53) may arrive as strings.

A v1 search is counted, not analysed, except for the poll's sample (:func:`found_in_v1`): each trace's facts come
from the fewest Python steps per span, because a poll can hold 500,000 spans. Its tags are not decoded at all:
one search of the body for the text of the two error keys marks the traces that could have an error span, and
those are read by the full path. The others are decoded into strict Structs (:class:`V1FastSpan`) that only fit
ordinary spans, and a few list passes give their extent, root and services; a trace that does not fit is read by
the full path too, so both give the same facts (``tests/test_fuzz_jaeger_decode.py`` checks that). One trace
that does not fit its Struct is decoded again on its own, loosely: a span that still does not fit is counted as
``invalid_span`` and the rest of the trace is kept.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType, field

from exporter.collectors.jaeger.decoding import (
    TRUE,
    Body,
    BodyNotJson,
    Bytes,
    Decoded,
    Int,
    Skip,
    TraceDataError,
    as_int,
    decode,
)
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


class V1Tag(Decoded):
    key: str = ""
    value: Any = None


class V1Reference(Decoded):
    ref_type: str = field(name="refType", default="CHILD_OF")
    trace_id: str | None = field(name="traceID", default=None)
    span_id: str | int | None = field(name="spanID", default=None)


class V1Process(Decoded):
    service_name: str | None = field(name="serviceName", default=None)


class V1Span(Decoded):
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


class V1Trace(Decoded):
    spans: list[V1Span]
    trace_id: str | None = field(name="traceID", default=None)
    processes: dict[str, V1Process] | None = None
    warnings: list[Any] | None = None


class V1Response(Decoded):
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



def v1_response(body: Bytes) -> V1Response:
    """The envelope of a v1 body; its traces stay JSON text until :func:`traces_from_v1` reads them."""
    return decode(_V1_RESPONSE, body)


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
                start = as_int(start, f"span {span_id} startTime")
                duration = as_int(duration, f"span {span_id} duration")
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
                elif (key == "error" and tag.value in TRUE) or (key == "otel.status_code" and tag.value == "ERROR"):
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


class V1FastRef(Decoded):
    """A reference as almost every trace has them: a parent in the same trace."""

    trace_id: str = field(name="traceID")
    ref_type: Literal["CHILD_OF"] = field(name="refType", default="CHILD_OF")


class V1FastSpan(Decoded):
    """A span as almost every trace has them (a string ID, integer times, a duration not below 0, its process by
    ID), without its tags; a span with anything else fails to decode, and its trace is read by the full path."""

    span_id: str = field(name="spanID")
    start: int = field(name="startTime")
    duration: Annotated[int, Meta(ge=0)]
    process_id: str = field(name="processID")
    operation: str = field(name="operationName", default="")
    references: list[V1FastRef] = []
    process: None = None


class V1FastTrace(Decoded):
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
                if (key == "error" and tag.value in TRUE) or (key == "otel.status_code" and tag.value == "ERROR"):
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
    yield from _kept(traces, skip, lambda index, raw: V1Found(v1_facts(raw, errorless=index not in marked), raw),
                     lambda found: found.facts.key)


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
    yield from _kept(response.data or (), skip, lambda _, raw: trace_from_v1(raw), lambda trace: trace.key)


D = TypeVar("D")


def _kept(traces: Sequence[Raw], skip: Skip | None, read: Callable[[int, Raw], D],
          key: Callable[[D], str]) -> Iterator[D]:
    """``read(index, raw)`` of each of a response's traces that ``skip`` does not reject: by the traceID its text
    starts with, before it is read, else by the ``key`` of what was read."""
    for index, raw in enumerate(traces):
        if skip is None:
            yield read(index, raw)
            continue
        leading = _LEADING_TRACE_ID.match(memoryview(raw)[:200])
        if leading is not None:
            if not skip(trace_key(leading.group(1).decode())):
                yield read(index, raw)
            continue
        found = read(index, raw)
        if not skip(key(found)):
            yield found


