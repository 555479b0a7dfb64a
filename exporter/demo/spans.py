"""Spans and traces of the demo, as plain data: W3C trace context, a span recorder, a bounded trace buffer.

Nothing here does I/O. :mod:`exporter.demo.jaeger_format` turns the :class:`Span` lists kept by
:class:`TraceBuffer` into the Jaeger query API's JSON.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

SpanKind = Literal["internal", "server", "client", "producer", "consumer"]
AttributeValue = str | int | float | bool

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """What a ``traceparent`` header carries: the trace and the caller's span."""

    trace_id: str
    parent_span_id: str | None


def parse_traceparent(header: str | None) -> TraceContext | None:
    """A valid W3C ``traceparent`` -> its context; anything else (absent, malformed, all-zero ids) -> None."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, _flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id)


def format_traceparent(trace_id: str, span_id: str) -> str:
    """Always sampled: the demo records every request."""
    return f"00-{trace_id}-{span_id}-01"


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int = 0
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: bool = False
    status_message: str = ""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


class TraceRecorder:
    """Records the spans of one request. :meth:`span` nests: a span opened inside another is its child, also
    across ``await`` (the current span lives in a context variable, so tasks started inside a span inherit it)."""

    def __init__(self, context: TraceContext | None = None) -> None:
        self.trace_id = context.trace_id if context else new_trace_id()
        self.remote_parent = context.parent_span_id if context else None
        self.spans: list[Span] = []

    @contextlib.contextmanager
    def span(self, service: str, name: str, kind: SpanKind = "internal",
             **attributes: AttributeValue) -> Iterator[Span]:
        current = _CURRENT.get()
        if current is not None and current.trace_id == self.trace_id:
            parent_id: str | None = current.span_id
        elif self.spans:
            parent_id = self.spans[0].span_id
        else:
            parent_id = self.remote_parent
        span = Span(self.trace_id, new_span_id(), parent_id, service, name, kind, time.time_ns(),
                    attributes=dict(attributes))
        self.spans.append(span)
        token = _CURRENT.set(span)
        try:
            yield span
        except BaseException as exc:
            if getattr(exc, "span_error", True):  # an exception may say it is no failure (a 404, say)
                span.error = True
                span.status_message = span.status_message or str(exc) or type(exc).__name__
            raise
        finally:
            span.end_ns = time.time_ns()
            _CURRENT.reset(token)


# The span the running code is inside; each request runs in its own task, hence its own context.
_CURRENT: ContextVar[Span | None] = ContextVar("demo_current_span", default=None)


class TraceBuffer:
    """The most recent ``capacity`` traces, oldest dropped first; looked up by id or searched by time."""

    def __init__(self, capacity: int = 2000) -> None:
        self.capacity = capacity
        self._traces: OrderedDict[str, list[Span]] = OrderedDict()

    def add(self, spans: list[Span]) -> None:
        if not spans:
            return
        trace_id = spans[0].trace_id
        existing = self._traces.pop(trace_id, [])
        self._traces[trace_id] = existing + spans  # a caller may reuse a trace id for several requests
        while len(self._traces) > self.capacity:
            self._traces.popitem(last=False)

    def get(self, trace_id: str) -> list[Span] | None:
        return self._traces.get(trace_id.lower())

    def all(self) -> list[list[Span]]:
        """Every kept trace, newest first."""
        return list(reversed(self._traces.values()))

    def services(self) -> list[str]:
        return sorted({s.service for spans in self._traces.values() for s in spans})

    def operations(self, service: str | None) -> list[tuple[str, SpanKind]]:
        found = {(s.name, s.kind) for spans in self._traces.values() for s in spans
                 if service is None or s.service == service}
        return sorted(found)

    def search(self, *, service: str | None = None, operation: str | None = None, start_min_ns: int | None = None,
               start_max_ns: int | None = None, duration_min_ns: int | None = None,
               duration_max_ns: int | None = None, limit: int = 20) -> list[list[Span]]:
        """Traces, newest first, with a span of ``service`` (named ``operation`` if given) that started in the
        window; durations bound the trace's extent (first span start to last span end)."""
        out: list[list[Span]] = []
        for spans in self.all():
            if len(out) >= limit:
                break
            matching = [s for s in spans if (service is None or s.service == service)
                        and (operation is None or s.name == operation)]
            if not matching:
                continue
            if start_min_ns is not None and not any(s.start_ns >= start_min_ns for s in matching):
                continue
            if start_max_ns is not None and not any(s.start_ns <= start_max_ns for s in matching):
                continue
            extent = trace_extent_ns(spans)
            if duration_min_ns is not None and extent < duration_min_ns:
                continue
            if duration_max_ns is not None and extent > duration_max_ns:
                continue
            out.append(spans)
        return out


def trace_extent_ns(spans: list[Span]) -> int:
    return max(s.end_ns for s in spans) - min(s.start_ns for s in spans)


def root_span(spans: list[Span]) -> Span:
    """The span whose parent is not in the trace (the caller's span when a ``traceparent`` was sent), earliest
    first when there are several."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id is None or s.parent_span_id not in ids]
    return min(roots or spans, key=lambda s: s.start_ns)
