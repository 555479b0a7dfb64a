"""Trace analysis on plain data: one span model for Jaeger's two JSON forms, and what a trace says about itself.

Jaeger serves traces in two shapes: the v1 "UI" JSON (``/api/traces``: ``{"traceID", "spans", "processes"}``
with microsecond times and ``references``) and OTLP JSON (``/api/v3``: ``resourceSpans`` -> ``scopeSpans`` ->
``spans`` with nanosecond times as strings and ``parentSpanId``). Both become :class:`Trace`, a list of
:class:`Span` with times in integer microseconds, and :func:`analyse` turns a trace into :class:`TraceFacts`.

Rules (the README's ``jaeger`` section says the same):

- **Parent.** A span's parent is its first ``CHILD_OF`` reference to a span present in the same trace, else its
  first ``FOLLOWS_FROM`` reference to one (then ``follows_from`` is set). References to other traces are
  ignored. A span whose references all point at spans that are not in the trace has a *missing parent*.
- **Root.** The earliest (then longest) span without any reference in the trace. A trace without one (every
  top span has a missing parent) uses its earliest, longest orphan as a stand-in root, for labels and for the
  critical path.
- **Duplicates.** A second span with a span ID already seen and the same content is dropped. One with the same
  ID but different content is kept (it is real work) but cannot be anybody's parent.
- **Duration** of a trace is its extent: latest span end minus earliest span start (what Jaeger shows, and what
  trace summaries report); it includes asynchronous ``FOLLOWS_FROM`` work after the root ended.
- **Clipping (clock skew).** For the critical path and serial detection, each ``CHILD_OF`` child is clipped to
  its (clipped) parent's interval; a child entirely outside its parent is left out with its descendants.
  ``FOLLOWS_FROM`` children are not waited for by their parent: they are left out of the parent's critical path
  and of its siblings, and start their own subtree.
- **Critical path** (as Jaeger UI computes it): start at the root's end; repeatedly take the child that finished
  last before the current time (ties: the one that started first), give the gap after it to the parent, descend
  into it, and continue before its start; time not covered by a child is the span's own. Every microsecond of
  the root is attributed to exactly one service.
- **Serial siblings.** Under one parent, sort its clipped ``CHILD_OF`` children by start and group them into
  *waves*: a child that starts before every earlier child has ended joins the current wave (it overlaps it,
  directly or through a chain of overlaps); a child that starts at or after the end of all earlier ones opens
  a new wave. A parent whose children form two or more waves ran them one after another: all its children are
  *serial children*, and the *saving* is the sum of the waves' lengths minus the longest wave (the time the
  parent would save if the waves ran side by side). Labels are the parent's service and operation: that is the
  code that makes the calls.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Anomaly kinds, as counted in perf_trace_anomalies_total{kind}.
DUPLICATE_SPAN = "duplicate_span"
MISSING_PARENT = "missing_parent"
CHILD_OUTSIDE_PARENT = "child_outside_parent"
TRUNCATED = "truncated"
WARNING = "warning"
INVALID_SPAN = "invalid_span"
ANOMALY_KINDS = (DUPLICATE_SPAN, MISSING_PARENT, CHILD_OUTSIDE_PARENT, TRUNCATED, WARNING, INVALID_SPAN)

OTLP_NO_SERVICE = "OTLPResourceNoServiceName"  # what Jaeger itself calls a resource without service.name
V1_NO_SERVICE = "unknown"
_OTLP_WARNINGS = "@jaeger@warnings"
_STATUS_ERROR = (2, "2", "STATUS_CODE_ERROR")
_TRUE = (True, 1, "true", "True", "TRUE", "1")


class TraceDataError(ValueError):
    """A response or trace that does not have the shape Jaeger's API documents."""


def trace_key(trace_id: str) -> str:
    """The identity of a trace ID: Jaeger writes 64-bit IDs as 16 hex digits and may drop leading zeros."""
    return trace_id.lower().lstrip("0") or "0"


@dataclass(slots=True)
class Span:
    span_id: str
    service: str
    operation: str
    start: int  # microseconds since the epoch
    duration: int  # microseconds
    error: bool = False
    parent_id: str | None = None
    follows_from: bool = False  # the link to parent_id is FOLLOWS_FROM: the parent does not wait for this span
    orphan: bool = False  # has references in the trace, but none to a span that is present

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(slots=True)
class Trace:
    trace_id: str
    spans: list[Span]
    anomalies: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return trace_key(self.trace_id)

    @property
    def end(self) -> int:
        return max((s.start + s.duration for s in self.spans), default=0)


@dataclass(slots=True)
class SerialGroup:
    service: str
    operation: str
    children: int
    saving: int  # microseconds


@dataclass(slots=True)
class TraceFacts:
    """What one trace says: from a whole trace (:func:`analyse`) or a Jaeger trace summary (fewer fields)."""

    trace_id: str
    root_service: str
    root_operation: str
    start: int  # microseconds
    end: int  # microseconds
    span_count: int
    error_spans: dict[str, int]  # by service
    services: tuple[str, ...]
    critical_path: dict[str, int] = field(default_factory=dict)  # microseconds by service
    serial: list[SerialGroup] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)
    whole: bool = True  # False: from a summary, without spans, critical path or serial groups

    @property
    def key(self) -> str:
        return trace_key(self.trace_id)

    @property
    def duration_seconds(self) -> float:
        return max(0, self.end - self.start) / 1e6


def _bump(counts: dict[str, int], kind: str, n: int = 1) -> None:
    counts[kind] = counts.get(kind, 0) + n


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TraceDataError(f"{what} is not an integer: {value!r}")
    try:
        return int(value)  # int64 values may arrive as strings (above 2^53, and always in OTLP JSON)
    except (TypeError, ValueError):
        raise TraceDataError(f"{what} is not an integer: {value!r}") from None


def _warning_kind(text: str) -> str:
    lowered = text.lower()
    return TRUNCATED if "truncat" in lowered or "exceeded maximum" in lowered else WARNING


# ---------------------------------------------------------------------------------------------------------------
# Building a trace from spans with raw references


class _Builder:
    """Collects spans of one trace, then resolves parents (which needs every span ID first)."""

    __slots__ = ("anomalies", "by_id", "candidates", "spans", "trace_id")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.spans: list[Span] = []
        self.candidates: list[list[tuple[str, bool]]] = []  # per span: (span ID, is CHILD_OF) in the trace
        self.by_id: dict[str, Span] = {}
        self.anomalies: dict[str, int] = {}

    def add(self, span: Span, candidates: list[tuple[str, bool]]) -> None:
        seen = self.by_id.get(span.span_id)
        if seen is not None:
            _bump(self.anomalies, DUPLICATE_SPAN)
            if (seen.operation, seen.service, seen.start, seen.duration) == (
                    span.operation, span.service, span.start, span.duration):
                return
            span.span_id = f"{span.span_id}#{len(self.spans)}"  # kept as work, never a parent
        else:
            self.by_id[span.span_id] = span
        self.spans.append(span)
        self.candidates.append(candidates)

    def build(self) -> Trace:
        by_id = self.by_id
        for span, candidates in zip(self.spans, self.candidates, strict=True):
            if not candidates:
                continue
            parent: str | None = None
            follows = False
            for ref_id, child_of in candidates:
                if child_of and ref_id in by_id and ref_id != span.span_id:
                    parent = ref_id
                    break
            if parent is None:
                for ref_id, child_of in candidates:
                    if not child_of and ref_id in by_id and ref_id != span.span_id:
                        parent, follows = ref_id, True
                        break
            if parent is None:
                span.orphan = True
                _bump(self.anomalies, MISSING_PARENT)
            span.parent_id, span.follows_from = parent, follows
        return Trace(self.trace_id, self.spans, self.anomalies)


# ---------------------------------------------------------------------------------------------------------------
# Jaeger v1 JSON (/api/traces)


def _v1_error(tags: Any) -> bool:
    if not tags:
        return False
    for tag in tags:
        key = tag.get("key")
        if key == "error":
            if tag.get("value") in _TRUE:
                return True
        elif key == "otel.status_code" and tag.get("value") == "ERROR":
            return True
    return False


def trace_from_v1(obj: Mapping[str, Any]) -> Trace:
    """One element of ``data`` in a v1 response."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("spans"), list):
        raise TraceDataError("a v1 trace must be an object with a 'spans' list")
    trace_id = str(obj.get("traceID") or "")
    own = trace_key(trace_id) if trace_id else None
    processes = obj.get("processes") or {}
    services: dict[str, str] = {}
    if isinstance(processes, Mapping):
        for pid, process in processes.items():
            if isinstance(process, Mapping):
                services[pid] = str(process.get("serviceName") or V1_NO_SERVICE)
    builder = _Builder(trace_id)
    anomalies = builder.anomalies
    for raw in obj["spans"]:
        if not isinstance(raw, dict) or "spanID" not in raw:
            _bump(anomalies, INVALID_SPAN)
            continue
        if not trace_id:
            trace_id = builder.trace_id = str(raw.get("traceID") or "")
            own = trace_key(trace_id)
        process = raw.get("process")
        service = services.get(raw.get("processID", ""), V1_NO_SERVICE) if process is None else str(
            process.get("serviceName") or V1_NO_SERVICE)
        span_id = raw["spanID"]
        if type(span_id) is not str:
            span_id = str(span_id)
        start, duration = raw.get("startTime", 0), raw.get("duration", 0)
        if type(start) is not int or type(duration) is not int:  # int64 may come as a string
            try:
                start = _as_int(start, f"span {span_id} startTime")
                duration = _as_int(duration, f"span {span_id} duration")
            except TraceDataError:
                _bump(anomalies, INVALID_SPAN)
                continue
        candidates: list[tuple[str, bool]] = []
        for ref in raw.get("references") or ():
            ref_trace = ref.get("traceID")
            if ref_trace != trace_id and ref_trace is not None and own is not None and trace_key(ref_trace) != own:
                continue  # a link to another trace
            candidates.append((str(ref.get("spanID")), ref.get("refType", "CHILD_OF") != "FOLLOWS_FROM"))
        warnings = raw.get("warnings")
        if warnings:
            for warning in warnings:
                _bump(anomalies, _warning_kind(str(warning)))
        builder.add(Span(span_id, service, str(raw.get("operationName") or ""), start, max(0, duration),
                         _v1_error(raw.get("tags"))), candidates)
    for warning in obj.get("warnings") or ():
        _bump(anomalies, _warning_kind(str(warning)))
    return builder.build()


def traces_from_v1(body: Any, skip: Callable[[str], bool] | None = None) -> Iterator[Trace]:
    """Traces of a v1 response body (``{"data": [...], "errors": ...}``), except those ``skip(key)`` rejects."""
    data = body.get("data") if isinstance(body, Mapping) else None
    if data is None:
        return
    if not isinstance(data, list):
        raise TraceDataError("'data' is not a list")
    for obj in data:
        if skip is not None and isinstance(obj, Mapping) and skip(trace_key(str(obj.get("traceID") or ""))):
            continue
        yield trace_from_v1(obj)


# ---------------------------------------------------------------------------------------------------------------
# OTLP JSON (/api/v3)


def otlp_value(value: Any) -> Any:
    """The plain value of an OTLP ``AnyValue`` (``intValue`` arrives as a string)."""
    if not isinstance(value, Mapping):
        return None
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return _as_int(value["intValue"], "intValue")
    if "arrayValue" in value:
        return [otlp_value(v) for v in (value["arrayValue"] or {}).get("values") or ()]
    return None


def _otlp_attribute(attributes: Any, key: str) -> Any:
    for attr in attributes or ():
        if attr.get("key") == key:
            return otlp_value(attr.get("value"))
    return None


def traces_from_otlp(body: Any, skip: Callable[[str], bool] | None = None) -> list[Trace]:
    """Traces of an api_v3 body (``{"result": {"resourceSpans": [...]}}``), grouped by trace ID."""
    if not isinstance(body, Mapping):
        raise TraceDataError("expected a JSON object")
    result = body.get("result", body)
    if not isinstance(result, Mapping):
        raise TraceDataError("'result' is not an object")
    resource_spans = result.get("resourceSpans") or ()
    if not isinstance(resource_spans, list):
        raise TraceDataError("'resourceSpans' is not a list")
    builders: dict[str, _Builder] = {}
    for rs in resource_spans:
        resource = rs.get("resource") or {}
        service = _otlp_attribute(resource.get("attributes"), "service.name")
        service = str(service) if service else OTLP_NO_SERVICE
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            for raw in ss.get("spans") or ():
                _add_otlp_span(raw, service, builders, skip)
    return [b.build() for b in builders.values()]


def _add_otlp_span(raw: Any, service: str, builders: dict[str, _Builder],
                   skip: Callable[[str], bool] | None) -> None:
    if not isinstance(raw, Mapping) or not raw.get("spanId"):
        return
    trace_id = str(raw.get("traceId") or "")
    key = trace_key(trace_id)
    builder = builders.get(key)
    if builder is None:
        if skip is not None and skip(key):
            return
        builder = builders[key] = _Builder(trace_id)
    span_id = str(raw["spanId"])
    try:
        # proto3 JSON leaves out zero values: a missing time is 0
        start_ns = _as_int(raw.get("startTimeUnixNano", 0), f"span {span_id} startTimeUnixNano")
        end_ns = _as_int(raw.get("endTimeUnixNano", start_ns), f"span {span_id} endTimeUnixNano")
    except TraceDataError:
        _bump(builder.anomalies, INVALID_SPAN)
        return
    status = raw.get("status") or {}
    error = status.get("code") in _STATUS_ERROR
    attributes = raw.get("attributes")
    if attributes:
        if not error and _otlp_attribute(attributes, "error") in _TRUE:
            error = True
        warnings = _otlp_attribute(attributes, _OTLP_WARNINGS)
        for warning in warnings if isinstance(warnings, list) else [warnings] if warnings else ():
            _bump(builder.anomalies, _warning_kind(str(warning)))
    candidates: list[tuple[str, bool]] = []
    parent = raw.get("parentSpanId")
    if parent:
        candidates.append((str(parent), True))
    for link in raw.get("links") or ():  # Jaeger turns FOLLOWS_FROM references into links
        if trace_key(str(link.get("traceId") or trace_id)) == key and link.get("spanId"):
            candidates.append((str(link["spanId"]), False))
    start = start_ns // 1000
    builder.add(Span(span_id, service, str(raw.get("name") or ""), start, max(0, end_ns // 1000 - start), error),
                candidates)


def facts_from_summaries(body: Any) -> list[TraceFacts]:
    """``GET /api/v3/trace-summaries``: per trace, its extent, root, span and error counts."""
    if not isinstance(body, Mapping) or not isinstance(body.get("summaries", []), list):
        raise TraceDataError("expected {\"summaries\": [...]}")
    out: list[TraceFacts] = []
    for item in body.get("summaries") or ():
        if not isinstance(item, Mapping) or not item.get("traceId"):
            raise TraceDataError("a trace summary without traceId")
        trace_id = str(item["traceId"])
        start = _as_int(item.get("minStartTimeUnixNano", 0), f"trace {trace_id} minStartTimeUnixNano") // 1000
        end = _as_int(item.get("maxEndTimeUnixNano", 0), f"trace {trace_id} maxEndTimeUnixNano") // 1000
        errors: dict[str, int] = {}
        services: list[str] = []
        for svc in item.get("services") or ():
            name = str(svc.get("name") or OTLP_NO_SERVICE)
            services.append(name)
            n = _as_int(svc.get("errorSpanCount", 0), "errorSpanCount")
            if n:
                errors[name] = errors.get(name, 0) + n
        root_service = str(item.get("rootServiceName") or OTLP_NO_SERVICE)
        if not services:
            services.append(root_service)
        if not errors and item.get("errorSpanCount"):
            errors[root_service] = _as_int(item["errorSpanCount"], "errorSpanCount")
        out.append(TraceFacts(trace_id, root_service, str(item.get("rootOperationName") or ""), start,
                              max(start, end), _as_int(item.get("spanCount", 0), "spanCount"), errors,
                              tuple(services), whole=False))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Analysis of one trace


def root_of(trace: Trace) -> Span | None:
    """The root span, or a stand-in when every top span has a missing parent (see the module docstring)."""
    best: Span | None = None
    stand_in: Span | None = None
    for span in trace.spans:
        if span.parent_id is not None:
            continue
        if span.orphan:
            if stand_in is None or (span.start, -span.duration) < (stand_in.start, -stand_in.duration):
                stand_in = span
        elif best is None or (span.start, -span.duration) < (best.start, -best.duration):
            best = span
    if best is None and stand_in is None and trace.spans:  # every span sits in a reference cycle
        return min(trace.spans, key=lambda s: (s.start, -s.duration))
    return best or stand_in


Clipped = tuple[int, int, Span]  # (start, end, span) clipped to the parent


def serial_waves(children: list[Clipped]) -> tuple[int, int] | None:
    """(children, saving in µs) when ``children`` (clipped, any order) form two or more waves, else None."""
    if len(children) < 2:
        return None
    ordered = sorted(children, key=lambda c: (c[0], c[1]))
    waves: list[list[int]] = []
    for start, end, _ in ordered:
        if waves and start < waves[-1][1]:
            if end > waves[-1][1]:
                waves[-1][1] = end
        else:
            waves.append([start, end])
    if len(waves) < 2:
        return None
    lengths = [end - start for start, end in waves]
    return len(children), sum(lengths) - max(lengths)


def _critical_path(root: Span, kids: Mapping[str, list[Clipped]], out: dict[str, int]) -> None:
    # An explicit stack (traces can be deeper than Python's recursion limit). A frame is
    # [span, lo, t, children sorted by end desc then start asc, next index]: the span's time from lo to t is
    # not yet attributed.
    def frame(span: Span, lo: int, hi: int) -> list[Any]:
        children = sorted(kids.get(span.span_id, ()), key=lambda c: (-c[1], c[0]))
        return [span, lo, hi, children, 0]

    stack = [frame(root, root.start, root.end)]
    while stack:
        top = stack[-1]
        span, lo, t, children, i = top
        descended = False
        while i < len(children):
            c_start, c_end, child = children[i]
            i += 1
            if c_end > t:
                continue  # ran alongside a child already on the path, and ended after it started
            if t > c_end:
                out[span.service] = out.get(span.service, 0) + (t - c_end)
            top[2], top[4] = c_start, i
            stack.append(frame(child, c_start, c_end))
            descended = True
            break
        if descended:
            continue
        if t > lo:
            out[span.service] = out.get(span.service, 0) + (t - lo)
        stack.pop()


def analyse(trace: Trace) -> TraceFacts:
    """Everything one whole trace says: root, extent, counts, critical path and serial siblings."""
    spans = trace.spans
    anomalies = dict(trace.anomalies)
    if not spans:
        return TraceFacts(trace.trace_id, V1_NO_SERVICE, "", 0, 0, 0, {}, (), anomalies=anomalies)
    errors: dict[str, int] = {}
    services: dict[str, None] = {}
    children: dict[str, list[Span]] = {}
    tops: list[Span] = []
    start = end = spans[0].start
    for span in spans:
        services[span.service] = None
        if span.error:
            errors[span.service] = errors.get(span.service, 0) + 1
        span_end = span.start + span.duration
        if span.start < start:
            start = span.start
        if span_end > end:
            end = span_end
        if span.parent_id is None or span.follows_from:
            tops.append(span)
        else:
            children.setdefault(span.parent_id, []).append(span)
    root = root_of(trace)
    assert root is not None

    # Clip every CHILD_OF subtree top-down, and look for serial siblings on the way.
    kids: dict[str, list[Clipped]] = {}
    serial: list[SerialGroup] = []
    visited: set[str] = set()
    pending: list[tuple[Span, int, int]] = [(s, s.start, s.start + s.duration) for s in tops]
    if root.parent_id is not None:  # a cycle: start from the stand-in
        pending.append((root, root.start, root.end))
    outside = 0
    while pending:
        span, lo, hi = pending.pop()
        if span.span_id in visited:
            continue
        visited.add(span.span_id)
        raw = children.get(span.span_id)
        if not raw:
            continue
        clipped: list[Clipped] = []
        for child in raw:
            if child.span_id in visited:
                continue  # a reference cycle
            c_start, c_end = child.start, child.start + child.duration
            if c_start < lo or c_end > hi:
                outside += 1
                c_start, c_end = max(c_start, lo), min(c_end, hi)
                if c_end <= c_start:
                    continue  # entirely outside its parent: not part of the parent's time
            clipped.append((c_start, c_end, child))
            pending.append((child, c_start, c_end))
        kids[span.span_id] = clipped
        found = serial_waves(clipped)
        if found is not None:
            serial.append(SerialGroup(span.service, span.operation, found[0], found[1]))
    if outside:
        _bump(anomalies, CHILD_OUTSIDE_PARENT, outside)

    critical: dict[str, int] = {}
    _critical_path(root, kids, critical)
    return TraceFacts(trace.trace_id, root.service, root.operation, start, end, len(spans), errors,
                      tuple(services), critical, serial, anomalies)


# ---------------------------------------------------------------------------------------------------------------
# Span durations by operation, across many traces


@dataclass(slots=True)
class BucketSums:
    """A histogram built locally: per bucket (the last is +Inf), how many values and their sum."""

    counts: list[int]
    sums: list[float]

    def groups(self) -> Iterator[tuple[float, int]]:
        """(mean, count) per non-empty bucket: observing ``mean`` ``count`` times gives the same buckets and
        the same sum as observing every value."""
        for n, total in zip(self.counts, self.sums, strict=True):
            if n:
                yield total / n, n


class SpanTimes:
    """Span durations (seconds) by (service, operation), bucketed with ``buckets`` as they are added."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.by_operation: dict[tuple[str, str], BucketSums] = {}
        self.total: dict[tuple[str, str], float] = {}

    def add(self, trace: Trace) -> None:
        buckets, table, total = self.buckets, self.by_operation, self.total
        size = len(buckets) + 1
        for span in trace.spans:
            key = (span.service, span.operation)
            sums = table.get(key)
            if sums is None:
                sums = table[key] = BucketSums([0] * size, [0.0] * size)
                total[key] = 0.0
            seconds = span.duration / 1e6
            index = bisect_left(buckets, seconds)
            sums.counts[index] += 1
            sums.sums[index] += seconds
            total[key] += seconds


def rank_operations(scores: Mapping[tuple[str, str], float], totals: Mapping[tuple[str, str], float],
                    decay: float = 0.5, keep: int = 1000) -> dict[tuple[str, str], float]:
    """Scores for choosing the top operations by time: the previous scores times ``decay`` plus this poll's
    totals, so the ranking follows recent traffic without flapping on one poll; at most ``keep`` entries."""
    merged = {key: value * decay for key, value in scores.items()}
    for key, value in totals.items():
        merged[key] = merged.get(key, 0.0) + value
    if len(merged) > keep:
        merged = dict(sorted(merged.items(), key=lambda kv: kv[1], reverse=True)[:keep])
    return merged


def top_keys(scores: Mapping[tuple[str, str], float], n: int) -> set[tuple[str, str]]:
    return {key for key, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]}
