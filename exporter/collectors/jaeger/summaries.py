"""api_v3's trace summaries (``/api/v3/trace-summaries``): per trace, its extent, root, span and error counts."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from msgspec import field

from exporter.collectors.jaeger.decoding import Body, Decoded, Int, TraceDataError, as_int, decode
from exporter.collectors.jaeger.otlp import OTLP_NO_SERVICE
from exporter.collectors.jaeger.traces import TraceFacts


class SummaryService(Decoded):
    name: str | None = None
    error_spans: Int = field(name="errorSpanCount", default=0)


class Summary(Decoded):
    trace_id: str | None = field(name="traceId", default=None)
    start: Int = field(name="minStartTimeUnixNano", default=0)
    end: Int = field(name="maxEndTimeUnixNano", default=0)
    services: list[SummaryService] | None = None
    root_service: str | None = field(name="rootServiceName", default=None)
    root_operation: str | None = field(name="rootOperationName", default=None)
    span_count: Int = field(name="spanCount", default=0)
    error_spans: Int | None = field(name="errorSpanCount", default=None)


class Summaries(Decoded):
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
        decoded = decode(_SUMMARIES, body)
    out: list[TraceFacts] = []
    for item in decoded.summaries or ():
        if not item.trace_id:
            raise TraceDataError("a trace summary without traceId")
        trace_id = item.trace_id
        start = as_int(item.start, f"trace {trace_id} minStartTimeUnixNano") // 1000
        end = as_int(item.end, f"trace {trace_id} maxEndTimeUnixNano") // 1000
        errors: dict[str, int] = {}
        services: list[str] = []
        for svc in item.services or ():
            name = svc.name or OTLP_NO_SERVICE
            services.append(name)
            n = as_int(svc.error_spans, "errorSpanCount")
            if n:
                errors[name] = errors.get(name, 0) + n
        root_service = item.root_service or OTLP_NO_SERVICE
        if not services:
            services.append(root_service)
        if not errors and item.error_spans:
            errors[root_service] = as_int(item.error_spans, "errorSpanCount")
        out.append(TraceFacts(trace_id, root_service, item.root_operation or "", start, max(start, end),
                              as_int(item.span_count, "spanCount"), errors, tuple(services), whole=False))
    return out
