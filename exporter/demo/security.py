"""The demo's security, off by default (``DEMO_SECURITY=on``): bearer tokens with roles, a role check, rate
limiting and input validation on ``/api/v1/*``, so that the API probe's security expectations have something real
to assert (the guide's checklist: authentication, authorisation, rate limiting, injection).

- No token, or an unknown one: 401. ``DEMO_TOKENS`` (``token:role,token:role``) defaults to
  ``demo-dispatcher-token:dispatcher,demo-rider-token:rider,demo-burst-token:dispatcher``.
- A rider may read and create orders, cancel them and send its location; trip status changes and notifications are
  the dispatcher's: 403.
- More than ``DEMO_RATE_LIMIT`` requests (``N/window``, default ``20/1s``) of one token (or one client address
  without a token) in a window: 429 with ``Retry-After``.
- Markup or SQL meta-syntax in a query parameter or a JSON string field: 400, and the input is not echoed.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exporter.config.units import parse_duration

DEFAULT_TOKENS = {"demo-dispatcher-token": "dispatcher", "demo-rider-token": "rider",
                  "demo-burst-token": "dispatcher"}  # the rate-limit check's own: each token has its own limit
DISPATCHER_ONLY = (("PATCH", re.compile(r"^/api/v1/trips/\d+$")), ("POST", re.compile(r"^/api/v1/notifications$")))
SUSPICIOUS = re.compile(r"<\s*/?\s*(script|img|svg|iframe)|javascript:|on\w+\s*=|'\s*(or|and)\s+'?\d|--|;\s*(drop|"
                        r"delete|insert|update|select)\b|\bunion\s+select\b", re.IGNORECASE)


@dataclass
class DemoSecurity:
    tokens: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    limit: int = 20
    window: float = 1.0


def security_from_env(environ: Mapping[str, str]) -> DemoSecurity | None:
    """The settings of ``DEMO_SECURITY=on``, or None (off). Raises ValueError naming the variable."""
    if environ.get("DEMO_SECURITY", "off").lower() not in ("on", "1", "true", "yes"):
        return None
    settings = DemoSecurity()
    if environ.get("DEMO_TOKENS"):
        pairs = [item.split(":", 1) for item in environ["DEMO_TOKENS"].split(",") if item.strip()]
        if any(len(p) != 2 or not p[0] or p[1] not in ("dispatcher", "rider") for p in pairs):
            raise ValueError("DEMO_TOKENS: expected token:role pairs (roles dispatcher, rider), comma-separated")
        settings.tokens = {token: role for token, role in pairs}
    if environ.get("DEMO_RATE_LIMIT"):
        count, _, window = environ["DEMO_RATE_LIMIT"].partition("/")
        try:
            settings.limit, settings.window = int(count), parse_duration(window or "1s")
        except ValueError:
            raise ValueError(f"DEMO_RATE_LIMIT: expected N/window such as 50/1s, got "
                             f"{environ['DEMO_RATE_LIMIT']!r}") from None
    return settings


class SecuredApi:
    """ASGI middleware in front of the demo app; only ``/api/v1/`` is guarded (health, faults and Jaeger stay open)."""

    def __init__(self, app: ASGIApp, settings: DemoSecurity) -> None:
        self.app = app
        self.settings = settings
        self.seen: dict[str, deque[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        role = self.settings.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if role is None:
            await _reply(send, 401, {"error": "unauthorized"}, [(b"www-authenticate", b"Bearer")])
            return
        if self._limited(token):
            await _reply(send, 429, {"error": "too many requests"},
                         [(b"retry-after", str(max(1, math.ceil(self.settings.window))).encode())])
            return
        method, path = scope["method"], str(scope["path"])
        if role != "dispatcher" and any(method == m and p.match(path) for m, p in DISPATCHER_ONLY):
            await _reply(send, 403, {"error": "forbidden for role " + role})
            return
        body = await _read_body(receive)
        if _suspicious(scope.get("query_string", b"").decode("latin-1"), body):
            await _reply(send, 400, {"error": "invalid input"})
            return
        await self.app(scope, _replay(body), send)

    def _limited(self, key: str) -> bool:
        now = time.monotonic()
        seen = self.seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.settings.window:
            seen.popleft()
        if len(seen) >= self.settings.limit:
            return True
        seen.append(now)
        return False


def _suspicious(query: str, body: bytes) -> bool:
    from urllib.parse import unquote_plus

    if SUSPICIOUS.search(unquote_plus(query)):
        return True
    if not body:
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False  # the app answers malformed JSON itself (422)
    return any(SUSPICIOUS.search(text) for text in _strings(document))


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*_strings(key), *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _reply(send: Send, status: int, document: dict[str, Any],
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(document).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
