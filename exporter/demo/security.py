"""The demo's security: its admin routes always, and with ``DEMO_SECURITY=on`` signed per-user tokens, cookie
sessions with CSRF tokens, rate limits and a body size limit on ``/api/v1/*`` and ``/web/*``, so that the API
probe's security checks have something real to find, and holes (:data:`exporter.demo.faults.HOLES`) to find when
they are opened.

- ``/admin/*`` wants ``Authorization: Bearer $DEMO_ADMIN_TOKEN`` when that is set (401 otherwise), and answers
  loopback callers only when it is not (403).
- A token is a JWT (HS256) signed with ``DEMO_SIGNING_KEY`` (a random key when unset), with its user (``sub``),
  role (``dispatcher`` or ``rider``; a rider's user is its rider id) and expiry (``exp``). ``run --demo`` mints
  them (:func:`mint_token`); ``POST /admin/tokens`` mints one for anybody who may use the admin routes. No token,
  or one whose signature, algorithm or expiry is wrong: 401 (``auth_bypass``: signature and expiry unchecked).
- ``POST /web/session`` with a token sets it as the ``demo_session`` cookie. A state change authenticated by that
  cookie needs the session's CSRF token (the form field ``csrf_token`` or the ``X-CSRF-Token`` header), else 403
  (``csrf``: not checked).
- Trip status changes and notifications are the dispatcher's: a rider gets 403.
- Each user may send ``DEMO_RATE_LIMIT`` requests (``N/window``, default ``20/1s``) per route and window, and each
  client address without a valid token ``DEMO_ANONYMOUS_RATE_LIMIT`` (default ``10/1s``); then 429 with
  ``Retry-After`` (``no_rate_limit``: neither applies).
- A body larger than ``DEMO_MAX_BODY_BYTES`` (default 65 536): 413.

The owner check on orders and the HTML escaping are the app's (:mod:`exporter.demo.app`): they need its data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exporter.config.units import parse_duration
from exporter.demo.faults import Faults

ROLES = ("dispatcher", "rider")
DISPATCHER_ONLY = (("PATCH", re.compile(r"^/api/v1/trips/\d+$")), ("POST", re.compile(r"^/api/v1/notifications$")))
GUARDED = ("/api/v1/", "/web/")
SESSION_COOKIE = "demo_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MIN_KEY_BYTES = 16
DEFAULT_TOKEN_TTL = 30 * 86400.0  # DEMO_TOKEN_TTL: how long the tokens run --demo and /admin/tokens mint last
# what the ASGI scope carries to the app
CALLER = "demo.caller"
SESSION = "demo.session"  # the session token when the caller came with the cookie


# ---------------------------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Caller:
    user: str
    role: str

    @property
    def rider_id(self) -> int | None:
        """The rider a rider's token speaks for; None for a dispatcher, who may act for any rider."""
        return int(self.user) if self.role == "rider" else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_b64(document: dict[str, Any]) -> str:
    return _b64(json.dumps(document, separators=(",", ":")).encode())


def _signature(key: bytes, signing_input: str) -> str:
    return _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def _valid_user(user: str, role: str) -> bool:
    return role in ROLES and bool(user) and (role != "rider" or (user.isdigit() and 0 < int(user) < 2**31))


def mint_token(key: bytes, user: str, role: str, expires_at: float) -> str:
    """A JWT (HS256) for ``user`` in ``role`` until ``expires_at`` (unix time). A rider's user is its rider id."""
    if not _valid_user(user, role):
        raise ValueError(f"expected a dispatcher with any name or a rider whose user is its rider id, got "
                         f"user {user!r} with role {role!r}")
    signing_input = (f"{_json_b64({'alg': 'HS256', 'typ': 'JWT'})}."
                     f"{_json_b64({'sub': user, 'role': role, 'exp': int(expires_at)})}")
    return f"{signing_input}.{_signature(key, signing_input)}"


def verify_token(key: bytes, token: str, now: float, check_signature: bool = True) -> Caller | None:
    """The caller a token speaks for, or None: not a JWT, not HS256, a wrong signature, expired, or claims that
    name no valid user. Without ``check_signature`` (the auth_bypass hole) only the claims are read."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    if check_signature:
        if header.get("alg") != "HS256" or not hmac.compare_digest(
                _signature(key, f"{parts[0]}.{parts[1]}"), parts[2]):
            return None
        expires = claims.get("exp")
        if isinstance(expires, bool) or not isinstance(expires, int | float) or expires <= now:
            return None
    user, role = claims.get("sub"), claims.get("role")
    if not isinstance(user, str) or not isinstance(role, str) or not _valid_user(user, role):
        return None
    return Caller(user, role)


def csrf_token(key: bytes, session: str) -> str:
    """The CSRF token of a cookie session: derived from it, so the demo keeps no session state (and its workers
    agree)."""
    return hmac.new(key, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Limit:
    requests: int
    window: float


def _limit(environ: Mapping[str, str], name: str, default: Limit) -> Limit:
    text = environ.get(name)
    if not text:
        return default
    count, _, window = text.partition("/")
    try:
        limit = Limit(int(count), parse_duration(window or "1s"))
    except ValueError:
        limit = Limit(0, 0.0)
    if limit.requests < 1 or limit.window <= 0:
        raise ValueError(f"{name}: expected N/window such as 50/1s, got {text!r}")
    return limit


@dataclass(frozen=True)
class DemoSecurity:
    key: bytes = field(repr=False)
    limit: Limit = Limit(20, 1.0)
    anonymous_limit: Limit = Limit(10, 1.0)
    max_body_bytes: int = 65_536
    token_ttl: float = DEFAULT_TOKEN_TTL  # what /admin/tokens gives when asked for no ttl
    key_generated: bool = False


def security_from_env(environ: Mapping[str, str]) -> DemoSecurity | None:
    """The settings of ``DEMO_SECURITY=on``, or None (off). Raises ValueError naming the variable (never its
    value when it is a secret)."""
    if environ.get("DEMO_SECURITY", "off").lower() not in ("on", "1", "true", "yes"):
        return None
    if "DEMO_TOKENS" in environ:
        raise ValueError("DEMO_TOKENS: fixed tokens are gone; tokens are signed with DEMO_SIGNING_KEY "
                         "(docs/demo.md: getting a token)")
    key_text = environ.get("DEMO_SIGNING_KEY", "")
    if key_text and len(key_text.encode()) < MIN_KEY_BYTES:
        raise ValueError(f"DEMO_SIGNING_KEY: expected at least {MIN_KEY_BYTES} bytes, got {len(key_text.encode())}")
    body = environ.get("DEMO_MAX_BODY_BYTES", "65536")
    if not body.isdigit() or int(body) < 1024:
        raise ValueError(f"DEMO_MAX_BODY_BYTES: expected a whole number of bytes, at least 1024, got {body!r}")
    try:
        ttl = parse_duration(environ.get("DEMO_TOKEN_TTL") or "30d")
    except ValueError as exc:
        raise ValueError(f"DEMO_TOKEN_TTL: {exc}") from None
    return DemoSecurity(key=key_text.encode() if key_text else secrets.token_bytes(32),
                        limit=_limit(environ, "DEMO_RATE_LIMIT", Limit(20, 1.0)),
                        anonymous_limit=_limit(environ, "DEMO_ANONYMOUS_RATE_LIMIT", Limit(10, 1.0)),
                        max_body_bytes=int(body), token_ttl=ttl, key_generated=not key_text)


# ---------------------------------------------------------------------------------------------------------------
# The middleware


class RateLimiter:
    """A sliding window log per key: at most ``limit.requests`` let through in any ``limit.window`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seen: dict[tuple[str, ...], deque[float]] = {}

    def limited(self, key: tuple[str, ...], limit: Limit) -> bool:
        now = self.clock()
        seen = self.seen.setdefault(key, deque())
        while seen and seen[0] <= now - limit.window:
            seen.popleft()
        if len(seen) >= limit.requests:
            return True
        seen.append(now)
        if len(self.seen) > 10_000:  # keys of callers long gone
            self.seen = {k: v for k, v in self.seen.items() if v and v[-1] > now - limit.window}
        return False


_ID = re.compile(r"/\d+(?=/|$)")


def route_of(method: str, path: str) -> str:
    """The route a request is limited on: ids do not make routes of their own."""
    return f"{method} {_ID.sub('/{id}', path)}"


def is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0]).split("%")[0]).is_loopback
    except ValueError:
        return False


class BodyTooLarge(Exception):
    pass


class DemoGuard:
    """ASGI middleware in front of the demo app: the admin routes' guard always, the rest with ``security``.
    ``faults`` tells which holes are open, at each request."""

    def __init__(self, app: ASGIApp, faults: Callable[[], Faults], security: DemoSecurity | None,
                 admin_token: str | None) -> None:
        self.app = app
        self.faults = faults
        self.security = security
        self.admin_token = admin_token or None
        self.limiter = RateLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.startswith("/admin/") and not await self._admin_allowed(scope, headers, send):
            return
        security = self.security
        if security is None or not path.startswith((*GUARDED, "/admin/")):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive, headers, security.max_body_bytes)
        except BodyTooLarge:
            await _reply(send, 413, {"error": f"the body is larger than {security.max_body_bytes} bytes"})
            return
        if path.startswith("/admin/"):
            await self.app(scope, _replay(body), send)
            return
        await self._guarded(scope, headers, body, send, security)

    async def _admin_allowed(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        if self.admin_token is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.admin_token.encode()):
                return True
            await _reply(send, 401, {"error": "the admin routes want the DEMO_ADMIN_TOKEN bearer token"},
                         [(b"www-authenticate", b"Bearer")])
            return False
        if is_loopback(scope):
            return True
        await _reply(send, 403, {"error": "the admin routes answer loopback callers only (or set DEMO_ADMIN_TOKEN)"})
        return False

    async def _guarded(self, scope: Scope, headers: dict[str, str], body: bytes, send: Send,
                       security: DemoSecurity) -> None:
        faults = self.faults()
        method, path = str(scope["method"]), str(scope["path"])
        route = route_of(method, path)
        limits = not faults.hole("no_rate_limit")
        caller, session = self._caller(headers, path, security.key, not faults.hole("auth_bypass"))
        if caller is None:
            client = scope.get("client")
            address = str(client[0]) if client else "unknown"
            if limits and self.limiter.limited(("anonymous", address, route), security.anonymous_limit):
                await _too_many(send, security.anonymous_limit)
                return
            await _reply(send, 401, {"error": "unauthorized"}, [(b"www-authenticate", b"Bearer")])
            return
        if limits and self.limiter.limited(("user", caller.user, route), security.limit):
            await _too_many(send, security.limit)
            return
        if caller.role != "dispatcher" and any(method == m and p.match(path) for m, p in DISPATCHER_ONLY):
            await _reply(send, 403, {"error": "forbidden for role " + caller.role})
            return
        if session is not None and method not in SAFE_METHODS and not faults.hole("csrf"):
            sent = headers.get(CSRF_HEADER) or _form_field(headers, body, CSRF_FIELD)
            if not sent or not hmac.compare_digest(sent.encode(), csrf_token(security.key, session).encode()):
                await _reply(send, 403, {"error": "missing or wrong CSRF token"})
                return
        state = {**scope, CALLER: caller, SESSION: session}
        await self.app(state, _replay(body), send)

    @staticmethod
    def _caller(headers: dict[str, str], path: str, key: bytes,
                check_signature: bool) -> tuple[Caller | None, str | None]:
        """Who calls, and the session token when they came with the session cookie rather than a bearer token."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return verify_token(key, token.strip(), time.time(), check_signature), None
        if path.startswith("/web/"):
            session = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
            if session:
                caller = verify_token(key, session, time.time(), check_signature)
                return caller, session if caller is not None else None
        return None, None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _form_field(headers: dict[str, str], body: bytes, name: str) -> str | None:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    values = parse_qs(body.decode("latin-1")).get(name)
    return values[0] if values else None


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
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


async def _too_many(send: Send, limit: Limit) -> None:
    await _reply(send, 429, {"error": "too many requests"},
                 [(b"retry-after", str(max(1, math.ceil(limit.window))).encode())])


async def _reply(send: Send, status: int, document: dict[str, Any],
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(document).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
