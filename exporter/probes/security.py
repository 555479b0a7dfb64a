"""The guide's security checklist as probes: each endpoint with ``security:`` expectations is asked, every run,

- ``unauthenticated``: the request without the target's credentials (Authorization, Cookie, API-key headers) must
  get that status (401);
- ``lower_role``: with a lower role's headers instead, that status (403);
- ``rate_limit``: a burst of N requests sent together within the window must see at least one 429, and no 5xx;
- ``injection``: SQL-injection and XSS canaries in a query parameter and in every string of the JSON body must each
  get a 4xx (never a 5xx), and the canary must never come back in the body.

Each check is one series of ``perf_security_check_success{target, endpoint, check}`` and, when it fails, one log
line with what was answered. Checks run after the endpoint's own probe, on a client of their own, so the burst does
not sit in the probe's connection pool or timings.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import httpx

from exporter import metrics
from exporter.logs import event
from exporter.probes.api_target import ApiTarget, Endpoint
from exporter.store import MetricStore

log = logging.getLogger(__name__)

CREDENTIAL_HEADERS = re.compile(r"^(authorization|cookie|x-api-key|api-key|x-auth-token|proxy-authorization)$",
                                re.IGNORECASE)
SQL_CANARY = "perf-canary' OR '1'='1' --"
XSS_CANARY = "<script>alert('perf-canary-xss')</script>"
CANARIES = (SQL_CANARY, XSS_CANARY)


def verdict_status(status: int | None, expected: int) -> tuple[bool, str]:
    if status == expected:
        return True, ""
    return False, f"expected HTTP {expected}, got {'no answer' if status is None else f'HTTP {status}'}"


def verdict_rate_limit(statuses: list[int | None], expected: int, seconds: float, window: float) -> tuple[bool, str]:
    """At least one ``expected`` among the burst's answers, no 5xx, and the burst sent within the window."""
    server_errors = sorted({s for s in statuses if s is not None and s >= 500})
    if server_errors:
        return False, f"the burst got HTTP {', '.join(map(str, server_errors))}"
    if seconds > window:
        return False, f"the burst of {len(statuses)} took {seconds:.2f}s, longer than its window ({window:g}s)"
    if expected not in statuses:
        answered = sorted({str(s) for s in statuses if s is not None})
        return False, (f"no HTTP {expected} in a burst of {len(statuses)} within {window:g}s "
                       f"(answers: {', '.join(answered) or 'none'})")
    return True, ""


def verdict_injection(answers: list[tuple[str, int | None, bytes]]) -> tuple[bool, str]:
    """Every canary answered with a 4xx, none with a 5xx, none reflected in the body."""
    for where, status, body in answers:
        if status is not None and any(c.encode() in body for c in CANARIES):
            return False, f"{where}: the canary came back in the response (HTTP {status})"
        if status is None or not 400 <= status < 500:
            return False, f"{where}: expected a 4xx, got {'no answer' if status is None else f'HTTP {status}'}"
    return True, ""


def with_canary(body: Any, canary: str) -> Any:
    """The JSON body with every string replaced by the canary (a body without strings gets a field of it)."""
    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return canary
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    replaced = walk(body)
    if replaced == body:
        return {**body, "q": canary} if isinstance(body, dict) else {"q": canary}
    return replaced


class SecurityChecks:
    """The checks of one api target's endpoints."""

    def __init__(self, cfg: ApiTarget, headers: dict[str, str], verify: Any, store: MetricStore) -> None:
        self.cfg = cfg
        self.store = store
        self.headers = headers
        self.anonymous_headers = {k: v for k, v in headers.items() if not CREDENTIAL_HEADERS.match(k)}
        self.endpoints = [e for e in cfg.endpoints if e.security is not None]
        size = max((e.security.rate_limit.requests for e in self.endpoints
                    if e.security is not None and e.security.rate_limit is not None), default=4)
        self.client = httpx.AsyncClient(base_url=cfg.base_url, verify=verify, timeout=httpx.Timeout(cfg.timeout),
                                        follow_redirects=False,
                                        limits=httpx.Limits(max_connections=size, max_keepalive_connections=4))
        self.failing: dict[tuple[str, str], str] = {}  # the cause last logged, so a lasting failure logs once

    def _anonymous(self, endpoint: Endpoint) -> dict[str, str]:
        return {**self.anonymous_headers,
                **{k: v for k, v in endpoint.headers.items() if not CREDENTIAL_HEADERS.match(k)}}

    def _authorized(self, endpoint: Endpoint) -> dict[str, str]:
        return {**self.headers, **endpoint.headers}

    async def run(self, endpoint: Endpoint) -> None:
        security = endpoint.security
        if security is None:
            return
        results: dict[str, tuple[bool, str]] = {}
        if security.unauthenticated is not None:
            status = await self._status(endpoint, self._anonymous(endpoint))
            results["unauthenticated"] = verdict_status(status, security.unauthenticated)
        if security.lower_role is not None:
            status = await self._status(endpoint, {**self._anonymous(endpoint), **security.lower_role.headers})
            results["lower_role"] = verdict_status(status, security.lower_role.expect)
        if security.injection:
            results["injection"] = verdict_injection(await self._injections(endpoint))
        if security.rate_limit is not None:  # last: the burst may leave the endpoint limited for a moment
            limit = security.rate_limit
            started = time.perf_counter()
            headers = {**self._authorized(endpoint), **limit.headers}
            statuses = await asyncio.gather(*(self._status(endpoint, headers) for _ in range(limit.requests)))
            results["rate_limit"] = verdict_rate_limit(list(statuses), limit.expect, time.perf_counter() - started,
                                                       limit.within)
        t = self.cfg.name
        for check, (ok, cause) in results.items():
            self.store.set(metrics.SECURITY_CHECK_SUCCESS, 1.0 if ok else 0.0, target=t, endpoint=endpoint.name,
                           check=check)
            key = (endpoint.name, check)
            if not ok and self.failing.get(key) != cause:
                event(log, logging.WARNING, "security_check_failed", target=t, endpoint=endpoint.name, check=check,
                      cause=cause)
            if ok:
                self.failing.pop(key, None)
            else:
                self.failing[key] = cause

    async def _send(self, endpoint: Endpoint, headers: dict[str, str], body: Any = None,
                    query: dict[str, Any] | None = None) -> tuple[int | None, bytes]:
        try:
            response = await self.client.request(
                endpoint.method, endpoint.path, headers=headers,
                params=query if query is not None else endpoint.query or None,
                json=body if body is not None else endpoint.body)
        except httpx.HTTPError:
            return None, b""
        return response.status_code, response.content[:1_000_000]

    async def _status(self, endpoint: Endpoint, headers: dict[str, str]) -> int | None:
        return (await self._send(endpoint, headers))[0]

    async def _injections(self, endpoint: Endpoint) -> list[tuple[str, int | None, bytes]]:
        answers = []
        for name, canary in (("sql", SQL_CANARY), ("xss", XSS_CANARY)):
            headers = self._authorized(endpoint)
            status, body = await self._send(endpoint, headers, query={**endpoint.query, "q": canary})
            answers.append((f"{name} canary in the query", status, body))
            if endpoint.method in ("POST", "PUT", "PATCH"):
                status, body = await self._send(endpoint, headers, body=with_canary(endpoint.body, canary))
                answers.append((f"{name} canary in the body", status, body))
        return answers

    async def close(self) -> None:
        await self.client.aclose()
