"""One timed HTTP request, its phases and its outcome.

The duration reported is the server's: from the moment the request has been written to the moment the last
body byte is read (the "wait" and "receive" phases; blackbox_exporter's "processing" and "transfer"). Opening the
connection (TCP, TLS) and writing the request are reported as their own phases and are not in the duration, so
every sample measures the same thing whether or not the connection was kept alive; time spent waiting for a pool
slot or building the request is in none of them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from exporter.secrets import mask_url


@dataclass
class Measurement:
    outcome: str
    duration: float | None = None
    status: int | None = None
    phases: dict[str, float] = field(default_factory=dict)
    redirects: int = 0
    size: int = 0
    body: bytes = b""
    error: str | None = None

    @property
    def reached(self) -> bool:
        """The server answered with HTTP, whatever it said."""
        return self.status is not None


class PhaseTrace:
    """Collects httpcore trace events of one request as perf_counter timestamps."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        # "http11.send_request_headers.started" -> "send_request_headers.started" (same for http2)
        self.marks.setdefault(name.split(".", 1)[1], time.perf_counter())

    def span(self, end: float) -> float | None:
        """Request written to body read; None if the request never went out."""
        start = self.marks.get("send_request_body.complete", self.marks.get("send_request_headers.complete"))
        if start is None:
            return None
        return max(0.0, self.marks.get("receive_response_body.complete", end) - start)

    def phases(self, end: float) -> dict[str, float]:
        m = self.marks

        def span(a: str, b: str) -> float:
            return max(0.0, m[b] - m[a]) if a in m and b in m else 0.0

        sent = m.get("send_request_body.complete", m.get("send_request_headers.complete"))
        headers_in = m.get("receive_response_headers.complete")
        return {
            "connect": span("connect_tcp.started", "connect_tcp.complete"),
            "tls": span("start_tls.started", "start_tls.complete"),
            "send": max(0.0, sent - m["send_request_headers.started"])
            if sent is not None and "send_request_headers.started" in m else 0.0,
            "wait": max(0.0, headers_in - sent) if headers_in is not None and sent is not None else 0.0,
            "receive": max(0.0, m.get("receive_response_body.complete", end) - headers_in)
            if headers_in is not None else 0.0,
        }


async def resolve_time(url: str) -> tuple[float, str | None]:
    """Time a DNS lookup of the URL's host (httpcore resolves inside connect, so it is timed apart)."""
    host = urlsplit(url).hostname or ""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return 0.0, None
    except OSError:
        pass
    started = time.perf_counter()
    try:
        await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return time.perf_counter() - started, f"cannot resolve {host!r}: {exc.strerror or exc}"
    return time.perf_counter() - started, None


def classify_status(status: int, expect_status: list[int]) -> str:
    if expect_status and status in expect_status:
        return "success"
    if 500 <= status <= 599:
        return "http_5xx"
    if 400 <= status <= 499:
        return "http_4xx"
    if not expect_status and 200 <= status <= 299:
        return "success"
    return "unexpected_status"


_MISSING = object()


def json_field(document: Any, path: str) -> Any:
    """``a.b.0.c`` into parsed JSON; a missing step gives the sentinel ``_MISSING``."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def failed_expectations(body: bytes, expect: dict[str, Any]) -> str | None:
    if not expect:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return "expected a JSON body"
    for path, wanted in expect.items():
        got = json_field(document, path)
        if got is _MISSING:
            return f"JSON field {path!r} is missing"
        if got != wanted:
            return f"JSON field {path!r} is {got!r}, expected {wanted!r}"
    return None


class BodyTooLarge(Exception):
    pass


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than max_body_bytes ({limit})")
        chunks.append(chunk)
    return b"".join(chunks)


async def measure(client: httpx.AsyncClient, request: httpx.Request, *, timeout: float, max_body_bytes: int,
                  follow_redirects: bool, max_redirects: int, expect_status: list[int],
                  expect: dict[str, Any]) -> Measurement:
    """Send ``request`` (following redirects by hand, so each hop is timed) and classify what happened."""
    total = 0.0
    redirects = 0
    result = Measurement(outcome="connect_error")
    try:
        async with asyncio.timeout(timeout):
            while True:
                trace = PhaseTrace()
                request.extensions["trace"] = trace
                response = await client.send(request, stream=True, follow_redirects=False)
                try:
                    body = await _read_limited(response, max_body_bytes)
                    end = time.perf_counter()
                finally:
                    await response.aclose()
                total += trace.span(end) or 0.0
                result = Measurement(outcome="success", duration=total, status=response.status_code,
                                     phases=trace.phases(end), redirects=redirects, size=len(body), body=body)
                if not (follow_redirects and response.next_request is not None):
                    break
                if redirects >= max_redirects:
                    result.outcome = "unexpected_status"
                    result.error = f"more than {max_redirects} redirects"
                    return result
                redirects += 1
                request = response.next_request
    except TimeoutError:
        return Measurement(outcome="timeout", redirects=redirects, error=f"no complete answer within {timeout:g}s")
    except httpx.TimeoutException as exc:
        return Measurement(outcome="timeout", redirects=redirects, error=_describe(exc))
    except BodyTooLarge as exc:
        result.outcome, result.error = "assertion_failed", str(exc)
        result.duration = None
        return result
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        return Measurement(outcome="connect_error", redirects=redirects, error=_describe(exc))
    assert result.status is not None
    result.outcome = classify_status(result.status, expect_status)
    if result.outcome == "success":
        problem = failed_expectations(result.body, expect)
        if problem is not None:
            result.outcome, result.error = "assertion_failed", problem
    elif result.error is None:
        result.error = f"HTTP {result.status}"
    return result


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return mask_url(f"{type(exc).__name__}: {text}")
