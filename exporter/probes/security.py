"""The guide's security checklist as probes: each endpoint with a ``security:`` block
(exporter.probes.security_target) gets the checks it names, every run, after its own requests:

- ``unauthenticated``: the request without the target's credentials must get that status (401);
- ``lower_role``: with a lower role's headers instead, that status (403);
- ``token_tampering``: a valid token let in; it with its signature changed, unsigned, with changed claims, and an
  expired one: 401;
- ``object_authorization``: user A's requests for an object user B just created: 403 or 404;
- ``injection``: SQL injection judged by the server's behaviour (error-, boolean- and time-based);
- ``xss``: a unique marker never comes back unescaped in a page;
- ``csrf``: a cookie-authenticated state change without a CSRF token is refused;
- ``rate_limit`` and ``anonymous_rate_limit``: a burst with (and without) credentials meets a 429, no 5xx.

Each check is one series of ``perf_security_check_success{target, endpoint, check}``; a failing one logs one
``security_check_failed`` line with its cause (again only when the cause changes), and its cause stays in
:meth:`SecurityChecks.findings` until it holds again. Checks run on a client of their own, so bursts do not sit
in the probe's connection pool or timings. What each check sends and how it judges are pure functions in
exporter.probes.security_verdicts.
"""

from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import SecretStr

from exporter import metrics
from exporter.logs import event
from exporter.probes.api_target import ApiTarget, Endpoint
from exporter.probes.journey import MissingVariable, capture, fill
from exporter.probes.security_target import (
    CheckRequest,
    Csrf,
    Injection,
    ObjectAuthorization,
    TokenTampering,
    Xss,
)
from exporter.probes.security_verdicts import (
    SLEEP_SHAPES,
    Answer,
    ObjectAttempt,
    Verdict,
    answer_shape,
    boolean_finding,
    boolean_payloads,
    error_finding,
    error_payloads,
    sleep_payload,
    tampered_tokens,
    time_finding,
    verdict_csrf,
    verdict_injection,
    verdict_object_authorization,
    verdict_rate_limit,
    verdict_status,
    verdict_token_tampering,
    verdict_xss,
    xss_markers,
)
from exporter.store import MetricStore

log = logging.getLogger(__name__)

CREDENTIAL_HEADERS = re.compile(r"^(authorization|cookie|x-api-key|api-key|x-auth-token|proxy-authorization)$",
                                re.IGNORECASE)
MAX_BODY_BYTES = 1_000_000  # what a check reads of an answer


class _KeepNoCookies(http.cookiejar.DefaultCookiePolicy):
    """A check sends exactly the credentials it means to: no cookie an answer set rides along on the next one."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _plain(headers: dict[str, SecretStr]) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in headers.items()}


class SecurityChecks:
    """The checks of one api target's endpoints."""

    def __init__(self, cfg: ApiTarget, headers: dict[str, str], verify: Any, store: MetricStore) -> None:
        self.cfg = cfg
        self.store = store
        self.headers = headers
        self.anonymous_headers = {k: v for k, v in headers.items() if not CREDENTIAL_HEADERS.match(k)}
        self.endpoints = [e for e in cfg.endpoints if e.security is not None]
        bursts = [b.requests for e in self.endpoints if e.security is not None
                  for b in (e.security.rate_limit, e.security.anonymous_rate_limit) if b is not None]
        size = max(bursts, default=4)
        self.client = httpx.AsyncClient(base_url=cfg.base_url, verify=verify, timeout=httpx.Timeout(cfg.timeout),
                                        follow_redirects=False,
                                        cookies=http.cookiejar.CookieJar(policy=_KeepNoCookies()),
                                        limits=httpx.Limits(max_connections=size, max_keepalive_connections=4))
        self.failing: dict[tuple[str, str], str] = {}  # (endpoint, check) -> the cause of a check that fails

    def findings(self) -> list[str]:
        """The checks failing now, each with its cause: ``endpoint check: cause``."""
        return [f"{endpoint} {check}: {cause}" for (endpoint, check), cause in sorted(self.failing.items())]

    # -- headers -----------------------------------------------------------------------------------------------

    def _anonymous(self, endpoint: Endpoint) -> dict[str, str]:
        return {**self.anonymous_headers,
                **{k: v for k, v in endpoint.headers.items() if not CREDENTIAL_HEADERS.match(k)}}

    def _authorized(self, endpoint: Endpoint) -> dict[str, str]:
        return {**self.headers, **endpoint.headers}

    def _as(self, endpoint: Endpoint, credentials: dict[str, SecretStr]) -> dict[str, str]:
        """The endpoint's headers with another user's credentials instead of the target's."""
        return {**self._anonymous(endpoint), **_plain(credentials)}

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, endpoint: Endpoint) -> None:
        security = endpoint.security
        if security is None:
            return
        name = endpoint.name
        if (expected := security.unauthenticated) is not None:
            self._record(name, "unauthenticated",
                         await self._status_check(endpoint, self._anonymous(endpoint), expected))
        if (role := security.lower_role) is not None:
            self._record(name, "lower_role",
                         await self._status_check(endpoint, self._as(endpoint, role.headers), role.expect))
        if (tampering := security.token_tampering) is not None:
            self._record(name, "token_tampering", await self._token_tampering(endpoint, tampering))
        if (objects := security.object_authorization) is not None:
            self._record(name, "object_authorization", await self._object_authorization(endpoint, objects))
        if (injection := security.injection) is not None:
            self._record(name, "injection", await self._injection(endpoint, injection))
        if (xss := security.xss) is not None:
            self._record(name, "xss", await self._xss(endpoint, xss))
        if (csrf := security.csrf) is not None:
            self._record(name, "csrf", await self._csrf(endpoint, csrf))
        # last: a burst may leave the endpoint limited for a moment
        if (limit := security.rate_limit) is not None:
            headers = {**self._authorized(endpoint), **_plain(limit.headers)}
            self._record(name, "rate_limit",
                         await self._burst(endpoint, headers, limit.requests, limit.expect, limit.within))
        if (anonymous := security.anonymous_rate_limit) is not None:
            self._record(name, "anonymous_rate_limit", await self._burst(
                endpoint, self._anonymous(endpoint), anonymous.requests, anonymous.expect, anonymous.within))

    def _record(self, endpoint: str, check: str, verdict: Verdict) -> None:
        held, cause = verdict
        t = self.cfg.name
        self.store.set(metrics.SECURITY_CHECK_SUCCESS, 1.0 if held else 0.0, target=t, endpoint=endpoint,
                       check=check)
        key = (endpoint, check)
        if held:
            self.failing.pop(key, None)
            return
        if self.failing.get(key) != cause:
            event(log, logging.WARNING, "security_check_failed", target=t, endpoint=endpoint, check=check,
                  cause=cause)
        self.failing[key] = cause

    # -- requests ----------------------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, headers: dict[str, str], query: dict[str, Any] | None = None,
                    body: Any = None, form: dict[str, str] | None = None) -> Answer:
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=headers, params=query or None, json=body,
                                                  data=form)
        except httpx.HTTPError:
            return Answer(None, b"", time.perf_counter() - started)
        return Answer(response.status_code, response.content[:MAX_BODY_BYTES], time.perf_counter() - started,
                      response.headers.get("content-type", ""))

    async def _endpoint(self, endpoint: Endpoint, headers: dict[str, str], query: dict[str, Any] | None = None,
                        body: Any = None) -> Answer:
        """The endpoint's own request, with these headers (and query or body when given)."""
        return await self._send(endpoint.method, endpoint.path, headers,
                                query if query is not None else endpoint.query,
                                body if body is not None else endpoint.body)

    async def _request(self, request: CheckRequest, headers: dict[str, str],
                       variables: dict[str, Any] | None = None) -> Answer:
        fill_in = (lambda value: fill(value, variables)) if variables else (lambda value: value)
        return await self._send(request.method, str(fill_in(request.path)), {**headers, **_plain(request.headers)},
                                fill_in(request.query), fill_in(request.body), request.form)

    async def _status_check(self, endpoint: Endpoint, headers: dict[str, str], expected: int) -> Verdict:
        return verdict_status((await self._endpoint(endpoint, headers)).status, expected)

    # -- the checks --------------------------------------------------------------------------------------------

    async def _burst(self, endpoint: Endpoint, headers: dict[str, str], requests: int, expected: int,
                     window: float) -> Verdict:
        started = time.perf_counter()
        answers = await asyncio.gather(*(self._endpoint(endpoint, headers) for _ in range(requests)))
        return verdict_rate_limit([a.status for a in answers], expected, time.perf_counter() - started, window)

    async def _token_tampering(self, endpoint: Endpoint, cfg: TokenTampering) -> Verdict:
        base = self._anonymous(endpoint)

        def bearing(token: str) -> dict[str, str]:
            return {**base, cfg.header: f"{cfg.scheme} {token}" if cfg.scheme else token}

        token = cfg.token.get_secret_value()
        valid = (await self._endpoint(endpoint, bearing(token))).status
        forged = [*tampered_tokens(token), ("an expired token", cfg.expired_token.get_secret_value())]
        answers = [(what, (await self._endpoint(endpoint, bearing(sent))).status) for what, sent in forged]
        return verdict_token_tampering(valid, answers, cfg.expect)

    async def _object_authorization(self, endpoint: Endpoint, cfg: ObjectAuthorization) -> Verdict:
        owner, other = self._as(endpoint, cfg.owner), self._as(endpoint, cfg.other)
        created = await self._request(cfg.create, owner)
        variables, problem = capture(created.body, cfg.create.capture) if created.status is not None else ({}, None)
        if problem is not None or not variables:
            return verdict_object_authorization(created.status, problem, [], None)
        try:
            attempts = [ObjectAttempt(f"{a.method} {a.path}", (await self._request(a, other, variables)).status)
                        for a in cfg.attempts]
            owner_read = (await self._request(cfg.attempts[0], owner, variables)).status
            if cfg.cleanup is not None:
                await self._request(cfg.cleanup, owner, variables)
        except MissingVariable as exc:  # the config's validator keeps this from happening
            return False, str(exc)
        return verdict_object_authorization(created.status, None, attempts, owner_read)

    async def _injection(self, endpoint: Endpoint, cfg: Injection) -> Verdict:
        headers = self._authorized(endpoint)
        body = endpoint.body if isinstance(endpoint.body, dict) else {}

        async def send(where: str, name: str, value: str) -> Answer:
            if where == "query":
                return await self._endpoint(endpoint, headers, query={**endpoint.query, name: value})
            return await self._endpoint(endpoint, headers, body={**body, name: value})

        parameters = [("query", name, value) for name, value in cfg.query.items()] + [
            ("json", name, value) for name, value in cfg.body.items()]
        baseline: Answer | None = None
        for where, name, value in parameters:
            baselines = [await send(where, name, value), await send(where, name, value)]
            baseline = baselines[0]
            if not 200 <= (baseline.status or 0) < 300:
                return verdict_injection(baseline, [])
            finding = await self._inject(cfg, baselines, functools.partial(send, where, name), value)
            if finding is not None:
                return verdict_injection(baseline, [f"{where} {name}: {finding}"])
        assert baseline is not None  # the config names at least one parameter
        return verdict_injection(baseline, [])

    async def _inject(self, cfg: Injection, baselines: list[Answer], send: Callable[[str], Awaitable[Answer]],
                      value: str) -> str | None:
        """The first finding of the configured methods for one parameter, or None."""
        baseline = baselines[0]
        if "error" in cfg.methods:
            for payload in error_payloads(value):
                finding = error_finding(baseline, payload, await send(payload))
                if finding is not None:
                    return finding
        if "boolean" in cfg.methods:
            shapes = [answer_shape(b, [value]) for b in baselines]
            for true, false in boolean_payloads(value):
                finding = boolean_finding(shapes, answer_shape(await send(true), [true]),
                                          answer_shape(await send(false), [false]), (true, false))
                if finding is not None:
                    return finding
        if "time" in cfg.methods:
            slowest = [b.seconds for b in baselines]
            for shape in SLEEP_SHAPES:
                payload = sleep_payload(shape, value, cfg.sleep)
                first = (await send(payload)).seconds
                if first - max(slowest) < 0.8 * cfg.sleep:
                    continue
                control = (await send(sleep_payload(shape, value, 0))).seconds
                second = (await send(payload)).seconds
                finding = time_finding(slowest, first, control, second, cfg.sleep, payload)
                if finding is not None:
                    return finding
        return None

    async def _xss(self, endpoint: Endpoint, cfg: Xss) -> Verdict:
        nonce = secrets.token_hex(6)
        headers = self._authorized(endpoint)
        body = endpoint.body if isinstance(endpoint.body, dict) else {}
        answers: list[tuple[str, Answer]] = []
        for marker in xss_markers(nonce):
            for name in cfg.query:
                answers.append((f"query {name}", await self._endpoint(endpoint, headers,
                                                                      query={**endpoint.query, name: marker})))
            for name in cfg.body:
                answers.append((f"json {name}", await self._endpoint(endpoint, headers, body={**body, name: marker})))
        return verdict_xss(nonce, answers)

    async def _csrf(self, endpoint: Endpoint, cfg: Csrf) -> Verdict:
        anonymous = self._anonymous(endpoint)
        try:
            login = await self.client.request(cfg.login.method, cfg.login.path,
                                              headers={**anonymous, **_plain(cfg.login.headers)},
                                              params=cfg.login.query or None, json=cfg.login.body,
                                              data=cfg.login.form)
        except httpx.HTTPError:
            return verdict_csrf(None, 0, None, None)
        cookies = {cookie.name: cookie.value for cookie in login.cookies.jar}
        if login.status_code >= 400 or not cookies:
            return verdict_csrf(login.status_code, len(cookies), None, None)
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        with_cookie = (await self._endpoint(endpoint, {**anonymous, "Cookie": cookie})).status
        forged = (await self._request(cfg.request, {**anonymous, "Cookie": cookie, "Origin": cfg.origin})).status
        return verdict_csrf(login.status_code, len(cookies), with_cookie, forged)

    async def close(self) -> None:
        await self.client.aclose()
