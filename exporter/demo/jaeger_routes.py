"""The Jaeger query API over the demo's recent traces: ``/api/v3/...`` (current) and ``/api/...`` (v1).

Status codes and error bodies are Jaeger's: api_v3 answers 400 for a missing or malformed parameter and 404
(``{"error": {"httpCode": 404, "message": "No traces found"}}``) when a search finds nothing, both as
``text/plain`` like Go's ``http.Error``; v1 wraps errors as ``{"data": null, ..., "errors": [{"code", "msg"}]}``.
"""

from __future__ import annotations

import json
import re
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporter.demo import jaeger_format as fmt
from exporter.demo.spans import Span, TraceBuffer

DEFAULT_SEARCH_DEPTH = 20
V1_DEFAULT_LIMIT = 100
V1_DEFAULT_LOOKBACK_NS = 2 * 86400 * 1_000_000_000
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{1,32}$")


class ParamError(Exception):
    pass


def _v3_error(code: int, message: str) -> Response:
    return Response(json.dumps(fmt.v3_error(code, message), separators=(",", ":")) + "\n", status_code=code,
                    media_type="text/plain; charset=utf-8", headers={"X-Content-Type-Options": "nosniff"})


def _param(request: Request, *names: str) -> tuple[str, str | None]:
    """(name, value) of the first of ``names`` (a parameter and its aliases) sent with a value; else
    (``names[0]``, None)."""
    for name in names:
        value = request.query_params.get(name)
        if value not in (None, ""):
            return name, value
    return names[0], None


def _normal_trace_id(text: str) -> str:
    if not _TRACE_ID.match(text):
        raise ParamError(f"malformed parameter trace_id: {text!r} is not a hex trace ID")
    return text.lower().rjust(32, "0")


class JaegerRoutes:
    def __init__(self, buffer: TraceBuffer) -> None:
        self.buffer = buffer

    def routes(self) -> list[Route]:
        return [
            Route("/api/v3/services", self.v3_services),
            Route("/api/v3/operations", self.v3_operations),
            Route("/api/v3/traces", self.v3_find_traces),
            Route("/api/v3/trace-summaries", self.v3_trace_summaries),
            Route("/api/v3/traces/{trace_id}", self.v3_get_trace),
            Route("/api/services", self.v1_services),
            Route("/api/services/{service}/operations", self.v1_service_operations),
            Route("/api/operations", self.v1_operations),
            Route("/api/traces", self.v1_find_traces),
            Route("/api/traces/{trace_id}", self.v1_get_trace),
        ]

    # -- api_v3 ------------------------------------------------------------------------------------------------

    async def v3_services(self, request: Request) -> Response:
        return JSONResponse(fmt.v3_services(self.buffer.services()))

    async def v3_operations(self, request: Request) -> Response:
        _, service = _param(request, "service")
        _, kind = _param(request, "span_kind", "spanKind")
        operations = [(n, k) for n, k in self.buffer.operations(service) if kind is None or k == kind]
        return JSONResponse(fmt.v3_operations(operations))

    def _v3_search(self, request: Request) -> list[list[Span]]:
        name_min, time_min = _param(request, "query.start_time_min", "query.startTimeMin")
        name_max, time_max = _param(request, "query.start_time_max", "query.startTimeMax")
        if time_min is None or time_max is None:
            raise ParamError("query.start_time_min and query.start_time_max are required")
        bounds: dict[str, int | None] = {}
        for key, name, value in (("start_min_ns", name_min, time_min), ("start_max_ns", name_max, time_max)):
            try:
                bounds[key] = fmt.parse_rfc3339_ns(value)
            except ValueError as exc:
                raise ParamError(f"malformed parameter {name}: {exc}") from None
        for key, names in (("duration_min_ns", ("query.duration_min", "query.durationMin")),
                           ("duration_max_ns", ("query.duration_max", "query.durationMax"))):
            name, duration = _param(request, *names)
            try:
                bounds[key] = fmt.parse_go_duration_ns(duration) if duration is not None else None
            except ValueError as exc:
                raise ParamError(f"malformed parameter {name}: time: {exc}") from None
        name, depth_text = _param(request, "query.search_depth", "query.searchDepth", "query.num_traces")
        try:
            depth = int(depth_text) if depth_text is not None else DEFAULT_SEARCH_DEPTH
        except ValueError:
            raise ParamError(f"malformed parameter {name}: strconv.Atoi: parsing {depth_text!r}: "
                             f"invalid syntax") from None
        _, service = _param(request, "query.service_name", "query.serviceName")
        _, operation = _param(request, "query.operation_name", "query.operationName")
        return self.buffer.search(service=service, operation=operation, limit=depth if depth > 0 else 10**9,
                                  **bounds)

    async def v3_find_traces(self, request: Request) -> Response:
        try:
            traces = self._v3_search(request)
        except ParamError as exc:
            return _v3_error(400, str(exc))
        if not traces:
            return _v3_error(404, "No traces found")
        return JSONResponse(fmt.v3_traces(traces))

    async def v3_trace_summaries(self, request: Request) -> Response:
        try:
            traces = self._v3_search(request)
        except ParamError as exc:
            return _v3_error(400, str(exc))
        return JSONResponse(fmt.v3_trace_summaries(traces))

    async def v3_get_trace(self, request: Request) -> Response:
        try:
            trace_id = _normal_trace_id(request.path_params["trace_id"])
        except ParamError as exc:
            return _v3_error(400, str(exc))
        spans = self.buffer.get(trace_id)
        if spans is None:
            return _v3_error(404, "trace not found")
        return JSONResponse(fmt.v3_traces([spans]))

    # -- v1 ----------------------------------------------------------------------------------------------------

    async def v1_services(self, request: Request) -> Response:
        services = self.buffer.services()
        return JSONResponse(fmt.v1_envelope(services, total=len(services)))

    async def v1_service_operations(self, request: Request) -> Response:
        names = sorted({name for name, _ in self.buffer.operations(request.path_params["service"])})
        return JSONResponse(fmt.v1_envelope(names, total=len(names)))

    async def v1_operations(self, request: Request) -> Response:
        service = request.query_params.get("service")
        if not service:
            return JSONResponse(fmt.v1_error(400, "parameter 'service' is required"), status_code=400)
        kind = request.query_params.get("spanKind") or None
        operations = [{"name": n, "spanKind": k} for n, k in self.buffer.operations(service)
                      if kind is None or k == kind]
        return JSONResponse(fmt.v1_envelope(operations, total=len(operations)))

    async def v1_find_traces(self, request: Request) -> Response:
        q = request.query_params
        trace_ids = q.getlist("traceID")
        if trace_ids:
            try:
                found = [self.buffer.get(_normal_trace_id(t)) for t in trace_ids]
            except ParamError as exc:
                return JSONResponse(fmt.v1_error(400, str(exc)), status_code=400)
            return JSONResponse(fmt.v1_envelope([fmt.v1_trace(s) for s in found if s]))
        service = q.get("service")
        if not service:
            return JSONResponse(fmt.v1_error(400, "parameter 'service' is required"), status_code=400)
        try:
            now_ns = time.time_ns()
            end_ns = int(q["end"]) * 1000 if q.get("end") else now_ns
            start_ns = int(q["start"]) * 1000 if q.get("start") else end_ns - V1_DEFAULT_LOOKBACK_NS
            limit = int(q["limit"]) if q.get("limit") else V1_DEFAULT_LIMIT
            duration_min = fmt.parse_go_duration_ns(q["minDuration"]) if q.get("minDuration") else None
            duration_max = fmt.parse_go_duration_ns(q["maxDuration"]) if q.get("maxDuration") else None
        except ValueError as exc:
            return JSONResponse(fmt.v1_error(400, f"malformed query parameter: {exc}"), status_code=400)
        traces = self.buffer.search(service=service, operation=q.get("operation") or None, start_min_ns=start_ns,
                                    start_max_ns=end_ns, duration_min_ns=duration_min,
                                    duration_max_ns=duration_max, limit=limit if limit > 0 else V1_DEFAULT_LIMIT)
        return JSONResponse(fmt.v1_envelope([fmt.v1_trace(spans) for spans in traces]))

    async def v1_get_trace(self, request: Request) -> Response:
        try:
            trace_id = _normal_trace_id(request.path_params["trace_id"])
        except ParamError as exc:
            return JSONResponse(fmt.v1_error(400, str(exc)), status_code=400)
        spans = self.buffer.get(trace_id)
        if spans is None:
            return JSONResponse(fmt.v1_error(404, "trace not found"), status_code=404)
        return JSONResponse(fmt.v1_envelope([fmt.v1_trace(spans)]))
