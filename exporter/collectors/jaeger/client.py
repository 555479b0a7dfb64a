"""Jaeger's query HTTP API, both forms: api_v3 (current) and v1 (Jaeger <= 2.20 and 1.x).

Every response body is read up to ``max_response_bytes`` and read as JSON whatever its Content-Type says
(Jaeger sends its error bodies as ``text/plain`` JSON): trace and summary bodies are decoded straight into typed
data (:mod:`exporter.collectors.jaeger.v1`, :mod:`~exporter.collectors.jaeger.otlp`,
:mod:`~exporter.collectors.jaeger.summaries`), and any other body (services, errors) is parsed only when it is
read. What comes back is plain data for :mod:`exporter.collectors.jaeger.traces`. Two kinds of failure:

- :class:`JaegerUnreachable`: no HTTP answer (refused, reset, timed out): the target is down.
- :class:`JaegerError`: an HTTP answer that is not what the API documents (an error status, HTML, truncated
  JSON, a body too large): bad data.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from exporter.collectors.jaeger.decoding import BodyNotJson, Skip, TraceDataError
from exporter.collectors.jaeger.otlp import otlp_response, traces_from_otlp
from exporter.collectors.jaeger.summaries import facts_from_summaries
from exporter.collectors.jaeger.target import JaegerTarget
from exporter.collectors.jaeger.traces import Trace, TraceFacts, trace_key
from exporter.collectors.jaeger.v1 import V1Found, V1Response, found_in_v1, traces_from_v1, v1_response
from exporter.http_client import base_headers, ssl_context
from exporter.secrets import safe_url

Api = Literal["v3", "v1"]
T = TypeVar("T")


class JaegerUnreachable(Exception):
    """No HTTP answer from Jaeger."""


class JaegerError(Exception):
    """An answer from Jaeger that cannot be used."""


class ResponseTooLarge(JaegerError):
    pass


@dataclass
class Answer:
    status: int
    body: bytes | bytearray
    _parsed: tuple[Any, str | None] | None = field(default=None, repr=False)

    def _parse(self) -> tuple[Any, str | None]:
        if self._parsed is None:
            self._parsed = _parse(self.body)
        return self._parsed

    @property
    def document(self) -> Any:
        """The body as plain JSON (parsed on first use), or None when it is not JSON."""
        return self._parse()[0]

    @property
    def problem(self) -> str | None:
        """Why the body is not usable JSON."""
        return self._parse()[1]


@contextmanager
def bulk_objects() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects that hold no cycles (a parsed body
    and its spans): its passes over a growing heap would cost about as much as the parsing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rfc3339(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error_message(answer: Answer) -> str:
    """Jaeger's own message from an error body: v1 ``{"errors": [{"code", "msg"}]}`` or api_v3
    ``{"error": {"httpCode", "message"}}``; else why the body is unusable."""
    doc = answer.document
    if isinstance(doc, dict):
        errors = doc.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in errors[:3])
        error = doc.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(doc.get("message"), str):
            return str(doc["message"])
    return answer.problem or "unexpected body"


def _is_data_not_found(answer: Answer) -> bool:
    """A 404 that is Jaeger's answer about data (no traces, trace not found), not an unknown route."""
    return answer.status == 404 and isinstance(answer.document, dict) and (
        "error" in answer.document or "errors" in answer.document or "data" in answer.document)


class JaegerApi:
    """One Jaeger query service. ``api`` is found on first use (unless configured) and again after a failure."""

    def __init__(self, cfg: JaegerTarget) -> None:
        self.cfg = cfg
        base_path = "/" + cfg.base_path.strip("/") if cfg.base_path.strip("/") else ""
        self.base = cfg.url + base_path
        headers = {"Accept": "application/json", **base_headers(cfg)}
        if cfg.tenant:
            headers[cfg.tenant_header] = cfg.tenant
        verify: Any = ssl_context(cfg.tls) if cfg.url.startswith("https") else True
        self.client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(cfg.timeout), verify=verify,
                                        follow_redirects=True,
                                        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))
        self.api: Api | None = None if cfg.api == "auto" else cfg.api
        self.has_summaries: bool | None = None  # unknown until asked
        self._services_answer: Answer | None = None  # detection's answer, used once by services()

    async def close(self) -> None:
        await self.client.aclose()

    def forget(self) -> None:
        """After a failure: find out again which API the server speaks (it may have been upgraded)."""
        if self.cfg.api == "auto":
            self.api = None
        self.has_summaries = None

    # -- transport -------------------------------------------------------------------------------------------

    async def get(self, path: str, params: dict[str, str | int] | None = None) -> Answer:
        url = self.base + path
        limit = self.cfg.max_response_bytes
        try:
            async with self.client.stream("GET", url, params=params) as response:
                header = response.headers.get("content-length")
                declared = int(header) if header is not None and header.isdigit() else None
                if declared is not None and declared > limit:
                    raise ResponseTooLarge(f"{path}: response of {declared} bytes is larger than "
                                           f"max_response_bytes ({limit})")
                # the body is written into one buffer of the declared size as it arrives (a search answer can be
                # tens of MB: holding its chunks and then joining them would take its size twice); a compressed
                # body's declared size is not its decoded one
                plain = not response.headers.get("content-encoding")
                body = bytearray(declared if declared is not None and plain else 0)
                size = 0
                async for chunk in response.aiter_bytes():
                    end = size + len(chunk)
                    if end > limit:
                        raise ResponseTooLarge(f"{path}: response is larger than max_response_bytes ({limit})")
                    body[size:end] = chunk
                    size = end
                status = response.status_code
        except httpx.TransportError as exc:
            raise JaegerUnreachable(f"{safe_url(url)}: {type(exc).__name__}: {exc or 'no answer'}") from None
        if size < len(body):
            del body[size:]  # shorter than declared (h11 raises for that; kept exact all the same)
        return Answer(status, body)

    def _fail(self, path: str, answer: Answer) -> JaegerError:
        return JaegerError(f"{path}: HTTP {answer.status}: {_error_message(answer)}")

    # -- which API -------------------------------------------------------------------------------------------

    async def detect(self) -> Api:
        if self.api is not None:
            return self.api
        v3 = await self.get("/api/v3/services")
        if v3.status == 200 and isinstance(v3.document, dict) and "services" in v3.document:
            self.api, self._services_answer = "v3", v3
            return "v3"
        v1 = await self.get("/api/services")
        if v1.status == 200 and isinstance(v1.document, dict) and "data" in v1.document:
            self.api, self._services_answer = "v1", v1
            return "v1"
        raise JaegerError(f"neither api_v3 (/api/v3/services: HTTP {v3.status}: {_error_message(v3)}) nor v1 "
                          f"(/api/services: HTTP {v1.status}: {_error_message(v1)}) answered")

    # -- routes ----------------------------------------------------------------------------------------------

    async def services(self) -> list[str]:
        api = await self.detect()
        path = "/api/v3/services" if api == "v3" else "/api/services"
        answer, self._services_answer = self._services_answer or await self.get(path), None
        if answer.status != 200 or not isinstance(answer.document, dict):
            raise self._fail(path, answer)
        names = answer.document.get("services" if api == "v3" else "data") or []
        if not isinstance(names, list):
            raise JaegerError(f"{path}: the service list is not a list")
        return sorted({str(n) for n in names})

    def _search_params(self, api: Api, service: str, start: int, end: int, limit: int) -> dict[str, str | int]:
        if api == "v1":
            return {"service": service, "start": start, "end": end, "limit": limit, "lookback": "custom"}
        # query.num_traces is the older name of query.search_depth; each server reads the one it knows
        return {"query.service_name": service, "query.start_time_min": _rfc3339(start),
                "query.start_time_max": _rfc3339(end), "query.search_depth": limit, "query.num_traces": limit}

    async def summaries(self, service: str, start: int, end: int, limit: int) -> list[TraceFacts] | None:
        """Trace summaries in the window (api_v3 servers that have them), or None when the server has none."""
        if await self.detect() != "v3" or self.has_summaries is False:
            return None
        path = "/api/v3/trace-summaries"
        answer = await self.get(path, self._search_params("v3", service, start, end, limit))
        if answer.status in (404, 405, 501) and not _is_data_not_found(answer):
            self.has_summaries = False  # an older server: the route does not exist
            return None
        self.has_summaries = True
        if answer.status == 404:
            return []  # "No traces found"
        if answer.status != 200:
            raise self._fail(path, answer)
        try:
            with bulk_objects():
                return facts_from_summaries(answer.body)
        except BodyNotJson:
            raise self._fail(path, answer) from None
        except TraceDataError as exc:
            raise JaegerError(f"{path}: {exc}") from None

    async def search(self, service: str, start: int, end: int, limit: int,
                     skip: Skip | None = None) -> tuple[list[Trace] | list[V1Found], int, list[str]]:
        """Whole traces in the window: (traces not skipped, traces returned, errors Jaeger reported in a 200).
        v1 traces come counted but not read whole (:class:`V1Found`): the collector reads its sample whole."""
        api = await self.detect()
        path = "/api/v3/traces" if api == "v3" else "/api/traces"
        answer = await self.get(path, self._search_params(api, service, start, end, limit))
        if api == "v3" and _is_data_not_found(answer):
            return [], 0, []  # api_v3 says "No traces found" with a 404
        if api == "v3":
            return self._traces(path, api, answer, skip)
        return self._decoded(path, answer, lambda: self._found_v1(path, answer, skip))

    def _found_v1(self, path: str, answer: Answer, skip: Skip | None) -> tuple[list[V1Found], int, list[str]]:
        return _read_v1(path, answer, lambda v1: found_in_v1(answer.body, v1, skip))

    async def trace(self, trace_id: str) -> Trace | None:
        """One trace by ID, or None when Jaeger does not have it (yet)."""
        api = await self.detect()
        path = ("/api/v3/traces/" if api == "v3" else "/api/traces/") + quote(trace_id, safe="")
        answer = await self.get(path)
        if _is_data_not_found(answer):
            return None
        traces, _, errors = self._traces(path, api, answer, None)
        wanted = trace_key(trace_id)
        found = [t for t in traces if t.key == wanted and t.spans]
        if not found and errors:
            raise JaegerError(f"{path}: {'; '.join(errors)}")
        return found[0] if found else None

    def _traces(self, path: str, api: Api, answer: Answer, skip: Skip | None) -> tuple[list[Trace], int, list[str]]:
        return self._decoded(path, answer, lambda: self._read_traces(path, api, answer, skip))

    def _decoded(self, path: str, answer: Answer, read: Callable[[], T]) -> T:
        """``read()`` of a 200 answer's body; a body that is not JSON, or not of the shape Jaeger documents, is
        the answer's own failure."""
        if answer.status != 200:
            raise self._fail(path, answer)
        try:
            with bulk_objects():
                return read()
        except BodyNotJson:
            raise self._fail(path, answer) from None
        except TraceDataError as exc:
            if not isinstance(answer.document, dict):
                raise self._fail(path, answer) from None
            raise JaegerError(f"{path}: not a trace response: {exc}") from None

    def _read_traces(self, path: str, api: Api, answer: Answer,
                     skip: Skip | None) -> tuple[list[Trace], int, list[str]]:
        if api == "v3":
            otlp = otlp_response(answer.body)
            if not otlp.has_result:
                raise JaegerError(f"{path}: HTTP 200 without 'result': {_error_message(answer)}")
            skipped: set[str] = set()

            def skip_and_count(key: str) -> bool:
                if skip is not None and skip(key):
                    skipped.add(key)
                    return True
                return False

            traces = traces_from_otlp(otlp, skip_and_count)
            return traces, len(traces) + len(skipped), []
        return _read_v1(path, answer, lambda v1: traces_from_v1(v1, skip))


def _read_v1(path: str, answer: Answer, read: Callable[[V1Response], Iterable[T]]) -> tuple[list[T], int, list[str]]:
    """What ``read`` finds in a v1 response's envelope, how many traces it holds, and the errors Jaeger reported
    in it."""
    v1 = v1_response(answer.body)
    if not v1.has_data:
        raise JaegerError(f"{path}: HTTP 200 without 'data': {_error_message(answer)}")
    found = list(read(v1))
    return found, len(v1.data or ()), [_error_message(answer)] if v1.errors else []


def _parse(body: bytes | bytearray) -> tuple[Any, str | None]:
    if not body.strip():
        return None, "empty body"
    if body.lstrip()[:1] == b"<":
        return None, "an HTML page instead of JSON"
    try:
        return json.loads(body), None
    except ValueError as exc:
        text = body[:80].decode("utf-8", "replace").strip()
        return None, f"not JSON ({exc.__class__.__name__} at {getattr(exc, 'pos', '?')}): {text!r}"
