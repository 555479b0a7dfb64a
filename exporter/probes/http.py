"""One timed HTTP request, its phases and its outcome.

The duration reported is the server's: from the moment the request has been written to the moment its last
body byte reached the probe (the "wait" and "receive" phases; blackbox_exporter's "processing" and "transfer").
Opening the connection (TCP, TLS) and writing the request are reported as their own phases and are not in the
duration, so every sample measures the same thing whether or not the connection was kept alive. Each request
also carries the most the probe's own process can have added to its duration (``error_bound``: time its loop
thread ran other code or waited for a CPU meanwhile, :mod:`exporter.timing`); the caller discards a duration that
bound makes untrustworthy. The exchange itself is :mod:`exporter.probes.wire`'s.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import h11

from exporter.probes.wire import Answer, BodyTooLarge, Origin, Pools, WireError, exchange
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
    error_bound: float = 0.0  # seconds the probe's process can have added to ``duration``

    @property
    def reached(self) -> bool:
        """The server answered with HTTP, whatever it said."""
        return self.status is not None


async def resolve_time(url: str) -> tuple[float, str | None]:
    """Time a DNS lookup of the URL's host (:mod:`exporter.probes.wire` resolves inside its TCP connect, asyncio's
    ``create_connection``, so it is timed apart)."""
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


@dataclass(frozen=True)
class Target:
    """Where a request goes: an origin and the request target (path and query) on it."""

    origin: Origin
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WireError(f"cannot follow a redirect to {mask_url(url)!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(Origin(parts.scheme, parts.hostname, port), path)

    @classmethod
    def base(cls, url: str) -> Target:
        """A base URL as the prefix of the requests under it (:meth:`joined`): its path without the final "/", its
        query left out, as httpx's ``base_url``."""
        return cls(cls.parse(url).origin, urlsplit(url).path.rstrip("/"))

    def joined(self, path: str, query: dict[str, Any]) -> Target:
        """``path`` and ``query`` under this base (:meth:`base`)."""
        if query:
            path += ("&" if "?" in path else "?") + urlencode({k: _query_text(v) for k, v in query.items()})
        return Target(self.origin, self.path + path)

    @property
    def url(self) -> str:
        return f"{self.origin.scheme}://{self.origin.authority}{self.path}"


def _query_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def json_body(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class Request:
    method: str
    target: Target
    headers: dict[str, str]
    body: bytes | None = None  # JSON, sent with its content type

    def wire(self) -> h11.Request:
        headers = [("Host", self.target.origin.authority), ("Accept", "*/*"), *self.headers.items()]
        if self.body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(self.body)))]
        elif self.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", "0"))
        return h11.Request(method=self.method, target=self.target.path, headers=headers)


# 301/302 turn a POST into a GET, 303 anything but HEAD, as browsers and httpx do; 307/308 keep the method
def _redirected_method(status: int, method: str) -> str:
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _next_request(request: Request, answer: Answer) -> Request | None:
    location = answer.header(b"location")
    if answer.status not in (301, 302, 303, 307, 308) or location is None:
        return None
    target = Target.parse(urljoin(request.target.url, location.decode("latin-1")))
    method = _redirected_method(answer.status, request.method)
    headers = dict(request.headers)
    if target.origin != request.target.origin:
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return Request(method, target, headers, request.body if method == request.method else None)


async def measure(pools: Pools, request: Request, *, timeout: float, max_body_bytes: int, follow_redirects: bool,
                  max_redirects: int, expect_status: list[int], expect: dict[str, Any],
                  keep_body: bool = False) -> Measurement:
    """Send ``request`` (following redirects, each hop timed) and classify what happened. ``keep_body``: the
    caller reads the body (journeys capture from it); it is kept anyway when ``expect`` has to look into it."""
    keep_body = keep_body or bool(expect)
    total = bound = 0.0
    redirects = 0
    result = Measurement(outcome="connect_error")
    try:
        async with asyncio.timeout(timeout):
            while True:
                answer = await exchange(pools.pool(request.target.origin), request.wire(), request.body or b"",
                                        max_body_bytes, keep_body)
                total += answer.end - answer.sent
                bound += answer.busy
                phases = {"connect": answer.connect, "tls": answer.tls, "send": answer.send,
                          "wait": answer.first_byte - answer.sent, "receive": answer.end - answer.first_byte}
                result = Measurement(outcome="success", duration=total, status=answer.status, phases=phases,
                                     redirects=redirects, size=answer.size, body=answer.body, error_bound=bound)
                following = _next_request(request, answer) if follow_redirects else None
                if following is None:
                    break
                if redirects >= max_redirects:
                    result.outcome = "unexpected_status"
                    result.error = f"more than {max_redirects} redirects"
                    return result
                redirects += 1
                request = following
    except TimeoutError:
        return Measurement(outcome="timeout", redirects=redirects, error=f"no complete answer within {timeout:g}s")
    except BodyTooLarge as exc:
        return Measurement(outcome="assertion_failed", status=result.status, redirects=redirects, error=str(exc))
    except WireError as exc:
        return Measurement(outcome="connect_error", redirects=redirects, error=mask_url(str(exc)))
    assert result.status is not None
    result.outcome = classify_status(result.status, expect_status)
    if result.outcome == "success":
        problem = failed_expectations(result.body, expect)
        if problem is not None:
            result.outcome, result.error = "assertion_failed", problem
    elif result.error is None:
        result.error = f"HTTP {result.status}"
    return result
