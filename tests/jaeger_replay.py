"""A real HTTP server on loopback that answers like Jaeger's query service, from real Jaeger response bodies.

It holds v1 trace objects (the fixtures under ``tests/fixtures/jaeger/``, moved in time so that they fall in
the collector's window, their relative timings untouched) and serves them through the routes of the chosen API:

- ``v1`` (Jaeger 1.x and <= 2.20): ``/api/services``, ``/api/traces?service=&start=&end=&limit=``,
  ``/api/traces/{id}``; bodies ``{"data", "total", "limit", "offset", "errors"}``.
- ``v3`` (current Jaeger): ``/api/v3/services``, ``/api/v3/traces`` (OTLP JSON under ``result``, the v1 trees
  re-encoded), ``/api/v3/traces/{id}``, ``/api/v3/trace-summaries`` (unless ``summaries=False``) and, as the
  newest Jaeger keeps it, ``/api/traces/{id}``.

Errors are written the way Jaeger writes them, with Go's ``http.Error``: ``text/plain`` bodies holding JSON,
api_v3's 404 ``No traces found`` for an empty search, and Go's ``404 page not found`` for unknown routes.
``override`` replaces the answer of a route (to serve HTML, truncated JSON, an error...), and every request is
recorded with its query and headers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jaeger"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_trace(name: str) -> dict[str, Any]:
    """A ``*.trace.json`` as is, or the only trace of an ``*.envelope.json``."""
    doc = fixture(name)
    return doc["data"][0] if "data" in doc else doc


def shifted(trace: dict[str, Any], start_us: int) -> dict[str, Any]:
    """A copy of a v1 trace moved in time so that its earliest span starts at ``start_us``."""
    trace = copy.deepcopy(trace)
    first = min(int(s["startTime"]) for s in trace["spans"])
    for span in trace["spans"]:
        span["startTime"] = int(span["startTime"]) - first + start_us
        for log in span.get("logs") or ():
            log["timestamp"] = int(log["timestamp"]) - first + start_us
    return trace


def _key(trace_id: str) -> str:
    return trace_id.lower().lstrip("0") or "0"


# ---------------------------------------------------------------------------------------------------------------
# v1 -> OTLP JSON (what Jaeger's api_v3 serves for the same trees)


def _any_value(tag: dict[str, Any]) -> dict[str, Any]:
    kind, value = tag.get("type"), tag.get("value")
    if kind == "bool":
        return {"boolValue": value in (True, "true")}
    if kind == "int64":
        return {"intValue": str(value)}  # OTLP JSON writes int64 as a string
    if kind == "float64":
        return {"doubleValue": value}
    if kind == "binary":
        return {"bytesValue": value}
    return {"stringValue": str(value)}


def to_otlp(traces: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``{"result": {"resourceSpans": [...]}}`` body for v1 traces: a resource per (trace, process)."""
    resource_spans = []
    for trace in traces:
        by_process: dict[str, list[dict[str, Any]]] = {}
        for span in trace["spans"]:
            by_process.setdefault(span["processID"], []).append(span)
        for pid, spans in by_process.items():
            service = trace["processes"][pid]["serviceName"]
            out = []
            for span in spans:
                start_ns = int(span["startTime"]) * 1000
                item: dict[str, Any] = {
                    "traceId": span["traceID"], "spanId": span["spanID"], "name": span["operationName"],
                    "kind": 2, "startTimeUnixNano": str(start_ns),
                    "endTimeUnixNano": str(start_ns + int(span["duration"]) * 1000),
                    "attributes": [{"key": t["key"], "value": _any_value(t)} for t in span.get("tags") or ()
                                   if t["key"] != "error"],
                    "status": {},
                }
                refs = span.get("references") or []
                child_of = [r for r in refs if r["refType"] == "CHILD_OF" and r["traceID"] == span["traceID"]]
                if child_of:
                    item["parentSpanId"] = child_of[0]["spanID"]
                links = [r for r in refs if r not in child_of[:1]]
                if links:
                    item["links"] = [{"traceId": r["traceID"], "spanId": r["spanID"]} for r in links]
                if any(t["key"] == "error" and t["value"] in (True, "true") for t in span.get("tags") or ()):
                    item["status"] = {"code": 2}
                if span.get("warnings"):
                    item["attributes"].append({"key": "@jaeger@warnings", "value": {"arrayValue": {
                        "values": [{"stringValue": w} for w in span["warnings"]]}}})
                out.append(item)
            resource_spans.append({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {}, "spans": out}]})
    return {"result": {"resourceSpans": resource_spans}}


def summary_of(trace: dict[str, Any]) -> dict[str, Any]:
    """What ``/api/v3/trace-summaries`` says about a trace."""
    spans = trace["spans"]
    services: dict[str, dict[str, Any]] = {}
    ids = {s["spanID"] for s in spans}
    roots = [s for s in spans if not any(r["spanID"] in ids for r in s.get("references") or ())]
    root = min(roots or spans, key=lambda s: (s["startTime"], -s["duration"]))
    errors = 0
    for span in spans:
        name = trace["processes"][span["processID"]]["serviceName"]
        entry = services.setdefault(name, {"name": name, "spanCount": 0, "errorSpanCount": 0})
        entry["spanCount"] += 1
        if any(t["key"] == "error" and t["value"] in (True, "true") for t in span.get("tags") or ()):
            entry["errorSpanCount"] += 1
            errors += 1
    return {
        "traceId": trace["traceID"],
        "rootServiceName": trace["processes"][root["processID"]]["serviceName"],
        "rootOperationName": root["operationName"],
        "minStartTimeUnixNano": str(min(s["startTime"] for s in spans) * 1000),
        "maxEndTimeUnixNano": str(max(s["startTime"] + s["duration"] for s in spans) * 1000),
        "spanCount": len(spans), "errorSpanCount": errors, "orphanSpanCount": 0,
        "services": list(services.values()),
    }


# ---------------------------------------------------------------------------------------------------------------
# The server


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = JSON


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def go_error(status: int, document: Any) -> Reply:
    """What Go's ``http.Error(w, json, status)`` sends: the JSON as text/plain, with a newline."""
    return Reply(status, (json.dumps(document) + "\n").encode(), TEXT)


def v1_error(status: int, message: str) -> Reply:
    return go_error(status, {"data": None, "total": 0, "limit": 0, "offset": 0,
                             "errors": [{"code": status, "msg": message}]})


def v3_error(status: int, message: str) -> Reply:
    return go_error(status, {"error": {"httpCode": status, "message": message}})


NOT_FOUND_PAGE = Reply(404, b"404 page not found\n", TEXT)


class JaegerReplay:
    def __init__(self, api: str = "v3", summaries: bool = True, base_path: str = "") -> None:
        self.api = api
        self.summaries = summaries
        self.base_path = base_path.rstrip("/")
        self.traces: list[dict[str, Any]] = []
        self.overrides: dict[str, Reply | Callable[[Request], Reply | None]] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.connections: list[socket.socket] = []  # accepted, for kill()
        # bytes of a body sent before the server dies mid-answer (negative: dies before answering at all)
        self.cut: Callable[[Request], int | None] | None = None

    # -- data ------------------------------------------------------------------------------------------------

    def add(self, trace: dict[str, Any], start_us: int | None = None) -> dict[str, Any]:
        trace = shifted(trace, start_us) if start_us is not None else copy.deepcopy(trace)
        with self.lock:
            self.traces = [t for t in self.traces if _key(t["traceID"]) != _key(trace["traceID"])] + [trace]
        return trace

    def override(self, route: str, reply: Reply | Callable[[Request], Reply | None]) -> None:
        """Answer ``route`` (a path after base_path, without query) with ``reply``; a callable may return
        None to fall back to the normal answer."""
        self.overrides[route] = reply

    def hits(self, route: str) -> list[Request]:
        return [r for r in self.requests if r.path == route]

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self, port: int = 0) -> JaegerReplay:
        """Serve on ``port`` (0: a free one; a stopped replay's own port to come back where it was)."""
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                path = unquote(parts.path)
                request = Request(path, query, {k.lower(): v for k, v in self.headers.items()})
                replay.requests.append(request)
                reply = replay.answer(request)
                cut = replay.cut(request) if replay.cut is not None else None
                if cut is not None and cut < 0:  # the server dies with the request received, unanswered
                    replay.kill()
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body if cut is None else reply.body[:cut])
                if cut is not None:  # the server dies in the middle of its answer
                    self.wfile.flush()
                    replay.kill()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True

            def process_request(self, request: Any, client_address: Any) -> None:
                replay.connections.append(request)
                super().process_request(request, client_address)

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def kill(self) -> None:
        """Gone at once, as a killed process: no new connections, and every open one (keep-alive too) reset."""
        server, self.server = self.server, None
        if server is None:
            return
        server.server_close()  # the listening socket; serve_forever's thread ends at its next poll
        threading.Thread(target=server.shutdown, daemon=True).start()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    # -- routing ---------------------------------------------------------------------------------------------

    def answer(self, request: Request) -> Reply:
        if not request.path.startswith(self.base_path + "/"):
            return NOT_FOUND_PAGE
        route = request.path[len(self.base_path):]
        override = self.overrides.get(route)
        if override is not None:
            reply = override(request) if callable(override) else override
            if reply is not None:
                return reply
        with self.lock:
            traces = list(self.traces)
        v1, v3 = self.api == "v1", self.api == "v3"
        if v1 and route == "/api/services":
            names = self._services(traces)
            return Reply(200, json.dumps({"data": names, "total": len(names), "limit": 0, "offset": 0,
                                          "errors": None}).encode())
        if v1 and route == "/api/traces":
            return self._v1_search(traces, request.query)
        if route.startswith("/api/traces/"):  # kept by every version
            found = self._by_id(traces, route.rsplit("/", 1)[1])
            if found is None:
                return v1_error(404, "trace not found")
            return Reply(200, json.dumps({"data": [found], "total": 0, "limit": 0, "offset": 0,
                                          "errors": None}).encode())
        if v3 and route == "/api/v3/services":
            return Reply(200, json.dumps({"services": self._services(traces)}).encode())
        if v3 and route == "/api/v3/traces":
            found_or_error = self._v3_search(traces, request.query)
            if isinstance(found_or_error, Reply):
                return found_or_error
            if not found_or_error:
                return v3_error(404, "No traces found")
            return Reply(200, json.dumps(to_otlp(found_or_error)).encode())
        if v3 and route.startswith("/api/v3/traces/"):
            found = self._by_id(traces, route.rsplit("/", 1)[1])
            if found is None:
                return v3_error(404, "trace not found")
            return Reply(200, json.dumps(to_otlp([found])).encode())
        if v3 and self.summaries and route == "/api/v3/trace-summaries":
            found_or_error = self._v3_search(traces, request.query)
            if isinstance(found_or_error, Reply):
                return found_or_error
            return Reply(200, json.dumps({"summaries": [summary_of(t) for t in found_or_error]}).encode())
        return NOT_FOUND_PAGE

    @staticmethod
    def _services(traces: list[dict[str, Any]]) -> list[str]:
        return sorted({p["serviceName"] for t in traces for p in t["processes"].values()})

    @staticmethod
    def _by_id(traces: list[dict[str, Any]], trace_id: str) -> dict[str, Any] | None:
        return next((t for t in traces if _key(t["traceID"]) == _key(trace_id)), None)

    @staticmethod
    def _matching(traces: list[dict[str, Any]], service: str, start: int, end: int,
                  limit: int) -> list[dict[str, Any]]:
        out = []
        for trace in traces:
            pids = {pid for pid, p in trace["processes"].items() if p["serviceName"] == service}
            if any(s["processID"] in pids and start <= s["startTime"] <= end for s in trace["spans"]):
                out.append(trace)
        return out[:limit] if limit > 0 else out

    def _v1_search(self, traces: list[dict[str, Any]], query: dict[str, str]) -> Reply:
        if not query.get("service"):
            return v1_error(400, "parameter 'service' is required")
        try:
            start, end, limit = int(query["start"]), int(query["end"]), int(query.get("limit", "20"))
        except (KeyError, ValueError) as exc:
            return v1_error(400, f"unable to parse param: {exc}")
        found = self._matching(traces, query["service"], start, end, limit)
        return Reply(200, json.dumps({"data": found, "total": 0, "limit": 0, "offset": 0,
                                      "errors": None}).encode())

    def _v3_search(self, traces: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]] | Reply:
        low, high = query.get("query.start_time_min"), query.get("query.start_time_max")
        if not low or not high:
            return v3_error(400, "query.start_time_min and query.start_time_max are required")
        try:
            start = int(datetime.fromisoformat(low).timestamp() * 1e6)
            end = int(datetime.fromisoformat(high).timestamp() * 1e6)
            limit = int(query.get("query.search_depth") or query.get("query.num_traces") or "0")
        except ValueError as exc:
            return v3_error(400, f"malformed parameter query.start_time_min: {exc}")
        return self._matching(traces, query.get("query.service_name", ""), start, end, limit)
