"""Trace analysis on plain data: one span model for Jaeger's two JSON forms, and what a trace says about itself.

A trace is a :class:`Trace`, a list of :class:`Span` with times in integer microseconds; decoding Jaeger's v1 and
OTLP JSON into it is I/O-side (:mod:`exporter.collectors.jaeger.v1`, :mod:`~exporter.collectors.jaeger.otlp`),
which hands each span with its raw references to :class:`TraceBuilder`. :func:`analyse` turns a trace into
:class:`TraceFacts`.

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
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeVar

from exporter.collectors.jaeger.breakdown import Breakdown, breakdown_of, waves

# Anomaly kinds, as counted in perf_trace_anomalies_total{kind}.
DUPLICATE_SPAN = "duplicate_span"
MISSING_PARENT = "missing_parent"
CHILD_OUTSIDE_PARENT = "child_outside_parent"
TRUNCATED = "truncated"
WARNING = "warning"
INVALID_SPAN = "invalid_span"
ANOMALY_KINDS = (DUPLICATE_SPAN, MISSING_PARENT, CHILD_OUTSIDE_PARENT, TRUNCATED, WARNING, INVALID_SPAN)

V1_NO_SERVICE = "unknown"  # the service of a span whose process is not named


def trace_key(trace_id: str) -> str:
    """The identity of a trace ID: Jaeger writes 64-bit IDs as 16 hex digits and may drop leading zeros."""
    return trace_id.lower().lstrip("0") or "0"


# The tags a whole trace keeps for its breakdown (exporter.collectors.jaeger.breakdown); every other tag is dropped
# when decoding. OpenTelemetry's database and span-kind conventions, and the demo's cache.hit.
KEPT_TAGS = frozenset({"db.system", "db.statement", "db.operation", "db.redis.key", "cache.hit", "span.kind",
                       "db.client.connection.pool.name"})


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
    tags: dict[str, Any] | None = None  # only KEPT_TAGS, and only when the decoder was asked for them

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
    breakdown: Breakdown | None = None  # where the root's time went, when analyse() was asked for it

    @property
    def key(self) -> str:
        return trace_key(self.trace_id)

    @property
    def duration_seconds(self) -> float:
        return max(0, self.end - self.start) / 1e6


def _bump(counts: dict[str, int], kind: str, n: int = 1) -> None:
    counts[kind] = counts.get(kind, 0) + n


def warning_kind(text: str) -> str:
    """The anomaly kind of a warning Jaeger attached to a span or trace."""
    lowered = text.lower()
    return TRUNCATED if "truncat" in lowered or "exceeded maximum" in lowered else WARNING


# ---------------------------------------------------------------------------------------------------------------
# Building a trace from spans with raw references


class TraceBuilder:
    """Collects the spans of one trace, each with its parent candidates (span ID, is ``CHILD_OF``) in the order
    the trace lists them, then resolves parents (which needs every span ID first): the module docstring's
    *Parent* and *Duplicates* rules."""

    __slots__ = ("anomalies", "by_id", "candidates", "spans", "trace_id")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.spans: list[Span] = []
        self.candidates: list[Sequence[tuple[str, bool]]] = []  # per span: (span ID, is CHILD_OF) in the trace
        self.by_id: dict[str, Span] = {}
        self.anomalies: dict[str, int] = {}

    def add(self, span: Span, candidates: Sequence[tuple[str, bool]]) -> None:
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
# Analysis of one trace


def root_of(trace: Trace) -> Span | None:
    """The root span, or a stand-in when every top span has a missing parent (see the module docstring)."""
    return _root_among(trace.spans, trace.spans)


def _root_among(tops: Iterable[Span], spans: list[Span]) -> Span | None:
    """:func:`root_of` when every span without a parent is in ``tops``."""
    best: Span | None = None
    stand_in: Span | None = None
    for span in tops:
        if span.parent_id is not None:
            continue
        if span.orphan:
            if stand_in is None or (span.start, -span.duration) < (stand_in.start, -stand_in.duration):
                stand_in = span
        elif best is None or (span.start, -span.duration) < (best.start, -best.duration):
            best = span
    if best is None and stand_in is None and spans:  # every span sits in a reference cycle
        return min(spans, key=lambda s: (s.start, -s.duration))
    return best or stand_in


Clipped = tuple[int, int, Span]  # (start, end, span) clipped to the parent
_START, _END = itemgetter(0), itemgetter(1)


def serial_waves(children: list[Clipped]) -> tuple[int, int] | None:
    """(children, saving in µs) when ``children`` (clipped, any order) form two or more waves, else None."""
    if len(children) < 2:
        return None
    lengths = [end - start for start, end in waves((start, end) for start, end, _ in children)]
    if len(lengths) < 2:
        return None
    return len(children), sum(lengths) - max(lengths)


def _latest_end_first(children: list[Clipped]) -> list[Clipped]:
    """By end, latest first; equal ends by start, earliest first (two stable sorts, with C-level keys)."""
    return sorted(sorted(children, key=_START), key=_END, reverse=True)


Segment = tuple[int, int, Span]  # a stretch [start, end) of the critical path and the span it belongs to


def _critical_path(root: Span, kids: Mapping[str, list[Clipped]], out: list[Segment]) -> None:
    # An explicit stack (traces can be deeper than Python's recursion limit). A frame is
    # [span, lo, t, children sorted by end desc then start asc, next index]: the span's time from lo to t is
    # not yet attributed. Segments are appended latest first.
    def frame(span: Span, lo: int, hi: int) -> list[Any]:
        return [span, lo, hi, _latest_end_first(kids.get(span.span_id, [])), 0]

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
                out.append((c_end, t, span))
            if child.span_id not in kids:  # a leaf: all its time is its own; no frame needed
                if c_end > c_start:
                    out.append((c_start, c_end, child))
                t = c_start
                continue
            top[2], top[4] = c_start, i
            stack.append(frame(child, c_start, c_end))
            descended = True
            break
        if descended:
            continue
        if t > lo:
            out.append((lo, t, span))
        stack.pop()


def analyse(trace: Trace, breakdown: bool = False) -> TraceFacts:
    """Everything one whole trace says: root, extent, counts, critical path and serial siblings; with
    ``breakdown``, also where the root's time went by component (:mod:`exporter.collectors.jaeger.breakdown`)."""
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
        service = span.service
        services[service] = None
        if span.error:
            errors[service] = errors.get(service, 0) + 1
        span_start = span.start
        span_end = span_start + span.duration
        if span_start < start:
            start = span_start
        if span_end > end:
            end = span_end
        parent_id = span.parent_id
        if parent_id is None or span.follows_from:
            tops.append(span)
        else:
            siblings = children.get(parent_id)
            if siblings is None:
                children[parent_id] = [span]
            else:
                siblings.append(span)
    root = _root_among(tops, spans)
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
            if child.span_id in children:  # a leaf has no subtree to clip
                pending.append((child, c_start, c_end))
        kids[span.span_id] = clipped
        found = serial_waves(clipped)
        if found is not None:
            serial.append(SerialGroup(span.service, span.operation, found[0], found[1]))
    if outside:
        _bump(anomalies, CHILD_OUTSIDE_PARENT, outside)

    segments: list[Segment] = []
    _critical_path(root, kids, segments)
    critical: dict[str, int] = {}
    for lo, hi, span in segments:
        critical[span.service] = critical.get(span.service, 0) + (hi - lo)
    return TraceFacts(trace.trace_id, root.service, root.operation, start, end, len(spans), errors,
                      tuple(services), critical, serial, anomalies,
                      breakdown=breakdown_of(root, spans, children, kids, segments) if breakdown else None)


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

    @property
    def total(self) -> dict[tuple[str, str], float]:
        """Seconds by (service, operation)."""
        return {key: sum(sums.sums) for key, sums in self.by_operation.items()}

    def add(self, trace: Trace) -> None:
        buckets, table = self.buckets, self.by_operation
        size = len(buckets) + 1
        for span in trace.spans:
            key = (span.service, span.operation)
            sums = table.get(key)
            if sums is None:
                sums = table[key] = BucketSums([0] * size, [0.0] * size)
            seconds = span.duration / 1e6
            index = bisect_left(buckets, seconds)
            sums.counts[index] += 1
            sums.sums[index] += seconds


K = TypeVar("K", bound=Hashable)


def rank_operations(scores: Mapping[K, float], totals: Mapping[K, float], decay: float = 0.5,
                    keep: int = 1000) -> dict[K, float]:
    """Scores for choosing the top operations by time: the previous scores times ``decay`` plus this poll's
    totals, so the ranking follows recent traffic without flapping on one poll; at most ``keep`` entries."""
    merged = {key: value * decay for key, value in scores.items()}
    for key, value in totals.items():
        merged[key] = merged.get(key, 0.0) + value
    if len(merged) > keep:
        merged = dict(sorted(merged.items(), key=lambda kv: kv[1], reverse=True)[:keep])
    return merged


def top_keys(scores: Mapping[K, float], n: int) -> set[K]:
    return {key for key, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]}
