"""OTLP JSON as Jaeger's api_v3 serves it (``/api/v3``: ``resourceSpans`` -> ``scopeSpans`` -> ``spans``) into
:mod:`exporter.collectors.jaeger.traces`'s plain types.

Times are nanoseconds (strings, per proto3 JSON, which also leaves zero values out); ``status.code`` 2 is an error,
as is an ``error`` attribute that is true; ``parentSpanId`` is a ``CHILD_OF`` parent and each link to a span of the
same trace a ``FOLLOWS_FROM`` one (that is how Jaeger converts references); Jaeger's own span warnings are the
``@jaeger@warnings`` attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType, field

from exporter.collectors.jaeger.decoding import TRUE, Body, Decoded, Int, Skip, TraceDataError, as_int, decode
from exporter.collectors.jaeger.traces import (
    INVALID_SPAN,
    KEPT_TAGS,
    Span,
    Trace,
    TraceBuilder,
    trace_key,
    warning_kind,
)

OTLP_NO_SERVICE = "OTLPResourceNoServiceName"  # what Jaeger itself calls a resource without service.name
_OTLP_WARNINGS = "@jaeger@warnings"
_STATUS_ERROR = (2, "2", "STATUS_CODE_ERROR")


class OtlpArray(Decoded):
    values: list[OtlpValue] | None = None


class OtlpValue(Decoded):
    """An OTLP ``AnyValue``: one of these is set (bytes and key-value lists are not read)."""

    string: str | UnsetType = field(name="stringValue", default=UNSET)
    bool_: bool | UnsetType = field(name="boolValue", default=UNSET)
    double: float | UnsetType = field(name="doubleValue", default=UNSET)
    int_: int | str | UnsetType = field(name="intValue", default=UNSET)  # a string, per proto3 JSON
    array: OtlpArray | UnsetType | None = field(name="arrayValue", default=UNSET)


class OtlpAttribute(Decoded):
    key: str = ""
    value: OtlpValue | None = None


class OtlpStatus(Decoded):
    code: int | str | None = None


class OtlpLink(Decoded):
    trace_id: str | None = field(name="traceId", default=None)
    span_id: str | None = field(name="spanId", default=None)


class OtlpSpan(Decoded):
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


class OtlpScopeSpans(Decoded):
    spans: list[OtlpSpan] | None = None


class OtlpResource(Decoded):
    attributes: list[OtlpAttribute] | None = None


class OtlpResourceSpans(Decoded):
    resource: OtlpResource | None = None
    scope_spans: list[OtlpScopeSpans] | None = field(name="scopeSpans", default=None)
    library_spans: list[OtlpScopeSpans] | None = field(name="instrumentationLibrarySpans", default=None)


class OtlpResult(Decoded):
    resource_spans: list[OtlpResourceSpans] | None = field(name="resourceSpans", default=None)


class OtlpResponse(Decoded):
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
        return as_int(value.int_, "intValue")
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
    return decode(_OTLP_RESPONSE, body)


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
        start_ns = as_int(raw.start, f"span {span_id} startTimeUnixNano")
        end_ns = start_ns if raw.end is None else as_int(raw.end, f"span {span_id} endTimeUnixNano")
    except TraceDataError:
        anomalies[INVALID_SPAN] = anomalies.get(INVALID_SPAN, 0) + 1
        return
    error = raw.status is not None and raw.status.code in _STATUS_ERROR
    attributes = raw.attributes
    kept: dict[str, Any] | None = None
    if attributes:
        if not error and _otlp_attribute(attributes, "error") in TRUE:
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


