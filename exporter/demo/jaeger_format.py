"""The demo's spans in the Jaeger query API's JSON, in the shapes real Jaeger returns.

Two forms, matching the responses in ``shared/fixtures/jaeger/``:

- ``api_v3`` (``/api/v3/...``): OTLP JSON under ``{"result": {"resourceSpans": [...]}}``: one resource per
  service with ``service.name``, hex ids, ``kind`` as the OTLP enum number, times as decimal strings of Unix
  nanoseconds, ``status`` ``{}`` unless the span failed (``{"code": 2, ...}``); errors as
  ``{"error": {"httpCode": 404, "message": ...}}``; trace summaries as ``{"summaries": [...]}``.
- v1 (``/api/services``, ``/api/traces``): ``{"data": [...], "total": 0, "limit": 0, "offset": 0, "errors": null}``
  with traces as ``{"traceID", "spans", "processes", "warnings"}``, microsecond times, typed tags, one process per
  service (``p1``, ``p2``... in order of first appearance) and ``CHILD_OF`` references.

Pure functions on :class:`~exporter.demo.spans.Span` lists, plus the parsers for the query parameters the two
APIs take (RFC 3339 times, Go durations).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from exporter import __version__
from exporter.demo.spans import AttributeValue, Span, root_span

SCOPE_NAME = "tripo04os-demo"

# OTLP SpanKind enum values (opentelemetry/proto/trace/v1/trace.proto)
OTLP_KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
OTLP_STATUS_ERROR = 2


# ---------------------------------------------------------------------------------------------------------------
# api_v3: OTLP JSON


def _otlp_value(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in proto3 JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _otlp_attributes(attributes: dict[str, AttributeValue]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _otlp_value(value)} for key, value in attributes.items()]


def otlp_span(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    out.update({"name": span.name, "kind": OTLP_KIND[span.kind], "startTimeUnixNano": str(span.start_ns),
                "endTimeUnixNano": str(span.end_ns)})
    if span.attributes:
        out["attributes"] = _otlp_attributes(span.attributes)
    status: dict[str, Any] = {}
    if span.error:
        status = {"code": OTLP_STATUS_ERROR}
        if span.status_message:
            status["message"] = span.status_message
    out["status"] = status
    return out


def otlp_resource_spans(spans: list[Span]) -> list[dict[str, Any]]:
    """One ``resourceSpans`` entry per service of the trace, in order of the service's first span."""
    by_service: dict[str, list[Span]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(span)
    return [{"resource": {"attributes": _otlp_attributes({"service.name": service})},
             "scopeSpans": [{"scope": {"name": SCOPE_NAME, "version": __version__},
                             "spans": [otlp_span(s) for s in service_spans]}]}
            for service, service_spans in by_service.items()]


def v3_traces(traces: list[list[Span]]) -> dict[str, Any]:
    """The body of ``GET /api/v3/traces`` and ``GET /api/v3/traces/{id}`` (callers answer 404 for none)."""
    return {"result": {"resourceSpans": [rs for spans in traces for rs in otlp_resource_spans(spans)]}}


def v3_error(http_code: int, message: str) -> dict[str, Any]:
    return {"error": {"httpCode": http_code, "message": message}}


def v3_services(services: list[str]) -> dict[str, Any]:
    return {"services": services}


def v3_operations(operations: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"operations": [{"name": name, "spanKind": kind} for name, kind in operations]}


def trace_summary(spans: list[Span]) -> dict[str, Any]:
    """One entry of ``GET /api/v3/trace-summaries``: extent, root, span and error counts per service."""
    root = root_span(spans)
    services: dict[str, dict[str, Any]] = {}
    for span in spans:
        entry = services.setdefault(span.service, {"errorSpanCount": 0, "name": span.service, "spanCount": 0})
        entry["spanCount"] += 1
        entry["errorSpanCount"] += int(span.error)
    return {
        "errorSpanCount": sum(1 for s in spans if s.error),
        "maxEndTimeUnixNano": str(max(s.end_ns for s in spans)),
        "minStartTimeUnixNano": str(min(s.start_ns for s in spans)),
        "rootOperationName": root.name,
        "rootServiceName": root.service,
        "services": [services[name] for name in sorted(services)],
        "spanCount": len(spans),
        "traceId": root.trace_id,
    }


def v3_trace_summaries(traces: list[list[Span]]) -> dict[str, Any]:
    return {"summaries": [trace_summary(spans) for spans in traces]}


# ---------------------------------------------------------------------------------------------------------------
# v1: the "internal HTTP JSON" Jaeger UI reads


def _v1_tag(key: str, value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int64"
    elif isinstance(value, float):
        kind = "float64"
    else:
        kind, value = "string", str(value)
    return {"key": key, "type": kind, "value": value}


def _v1_tags(span: Span) -> list[dict[str, Any]]:
    # What Jaeger's OTLP -> Jaeger translation adds: the scope, the span kind and the error status.
    tags = [_v1_tag(key, value) for key, value in span.attributes.items()]
    tags.append(_v1_tag("otel.scope.name", SCOPE_NAME))
    tags.append(_v1_tag("span.kind", span.kind))
    if span.error:
        tags.append(_v1_tag("error", True))
        tags.append(_v1_tag("otel.status_code", "ERROR"))
        if span.status_message:
            tags.append(_v1_tag("otel.status_description", span.status_message))
    return tags


def v1_trace(spans: list[Span]) -> dict[str, Any]:
    """One trace object (an element of ``data``)."""
    process_ids: dict[str, str] = {}
    for span in spans:
        process_ids.setdefault(span.service, f"p{len(process_ids) + 1}")
    trace_id = spans[0].trace_id
    return {
        "traceID": trace_id,
        "spans": [{
            "traceID": s.trace_id,
            "spanID": s.span_id,
            "operationName": s.name,
            "references": [{"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_span_id}]
            if s.parent_span_id else [],
            "startTime": s.start_ns // 1000,
            "duration": s.duration_ns // 1000,
            "tags": _v1_tags(s),
            "logs": [],
            "processID": process_ids[s.service],
            "warnings": None,
        } for s in spans],
        "processes": {pid: {"serviceName": service, "tags": []} for service, pid in process_ids.items()},
        "warnings": None,
    }


def v1_envelope(data: Any, *, total: int = 0, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Jaeger's ``structuredResponse``: searches and trace lookups leave total, limit and offset at 0."""
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def v1_error(code: int, message: str) -> dict[str, Any]:
    return v1_envelope(None, errors=[{"code": code, "msg": message}])


# ---------------------------------------------------------------------------------------------------------------
# Query parameters

_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
               "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_rfc3339_ns(text: str) -> int:
    """``2026-11-25T15:00:00.123456789Z`` (Go's RFC3339Nano) -> Unix nanoseconds; ValueError if malformed."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"parsing time {text!r} as RFC3339")
    date, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    whole = datetime.fromisoformat(f"{date}T{clock}{zone}").astimezone(UTC)
    return int(whole.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def parse_go_duration_ns(text: str) -> int:
    """Go ``time.ParseDuration`` syntax (``100ms``, ``1.5s``, ``1h30m``) -> nanoseconds; ValueError if not."""
    value = text.strip()
    if value == "":
        raise ValueError("invalid duration ''")
    if value == "0":
        return 0
    position, total = 0, 0.0
    for match in _GO_DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _GO_UNIT_NS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise ValueError(f"invalid duration {text!r}")
    return int(total)
