"""The peer of bench_jaeger.py: Jaeger v1 bodies read the way the collector read them before msgspec.

``json.loads`` (or ``orjson.loads``) builds the whole body as dicts and lists, then each trace is walked with
``dict.get`` into :class:`~exporter.collectors.jaeger.traces.Span` objects: the decoding the collector used until the
typed decoder (:mod:`exporter.collectors.jaeger.decode`) replaced it, kept here only as the figure to compare
with. Its output is the same :class:`~exporter.collectors.jaeger.traces.Trace` as the decoder's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from exporter.collectors.jaeger.traces import (
    INVALID_SPAN,
    V1_NO_SERVICE,
    Span,
    Trace,
    TraceBuilder,
    trace_key,
    warning_kind,
)

_TRUE = (True, 1, "true", "True", "TRUE", "1")
Loads = Callable[[bytes], Any]


def _bump(counts: dict[str, int], kind: str) -> None:
    counts[kind] = counts.get(kind, 0) + 1


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
    if not isinstance(obj, Mapping) or not isinstance(obj.get("spans"), list):
        raise ValueError("a v1 trace must be an object with a 'spans' list")
    trace_id = str(obj.get("traceID") or "")
    own = trace_key(trace_id) if trace_id else None
    processes = obj.get("processes") or {}
    services: dict[str, str] = {}
    if isinstance(processes, Mapping):
        for pid, process in processes.items():
            if isinstance(process, Mapping):
                services[pid] = str(process.get("serviceName") or V1_NO_SERVICE)
    builder = TraceBuilder(trace_id)
    anomalies = builder.anomalies
    for raw in obj["spans"]:
        if not isinstance(raw, dict) or "spanID" not in raw:
            _bump(anomalies, INVALID_SPAN)
            continue
        process = raw.get("process")
        service = services.get(raw.get("processID", ""), V1_NO_SERVICE) if process is None else str(
            process.get("serviceName") or V1_NO_SERVICE)
        span_id = raw["spanID"]
        if type(span_id) is not str:
            span_id = str(span_id)
        start, duration = raw.get("startTime", 0), raw.get("duration", 0)
        if type(start) is not int or type(duration) is not int:
            try:
                start, duration = int(start), int(duration)
            except (TypeError, ValueError):
                _bump(anomalies, INVALID_SPAN)
                continue
        candidates: list[tuple[str, bool]] = []
        for ref in raw.get("references") or ():
            ref_trace = ref.get("traceID")
            if ref_trace != trace_id and ref_trace is not None and own is not None and trace_key(ref_trace) != own:
                continue
            candidates.append((str(ref.get("spanID")), ref.get("refType", "CHILD_OF") != "FOLLOWS_FROM"))
        for warning in raw.get("warnings") or ():
            _bump(anomalies, warning_kind(str(warning)))
        builder.add(Span(span_id, service, str(raw.get("operationName") or ""), start, max(0, duration),
                         _v1_error(raw.get("tags"))), candidates)
    for warning in obj.get("warnings") or ():
        _bump(anomalies, warning_kind(str(warning)))
    return builder.build()


def read_v1(body: bytes, skip: Callable[[str], bool] | None = None,
            loads: Loads = json.loads) -> tuple[list[Trace], int]:
    """(traces not skipped, traces returned): what the collector's search reads from one v1 body."""
    data = loads(body).get("data") or []
    traces = [trace_from_v1(obj) for obj in data
              if skip is None or not skip(trace_key(str(obj.get("traceID") or "")))]
    return traces, len(data)
