"""The demo's security as a client meets it (DEMO_SECURITY=on): signed tokens with an expiry, owner checks, rate
limits with and without credentials, a body limit, cookie sessions with CSRF tokens, escaped pages, its admin
routes; and each hole ``POST /admin/faults {"vulnerable": [...]}`` opens, closed again by ``DELETE``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from exporter.demo.cache import MemoryCache
from exporter.demo.routes import build_app
from exporter.demo.security import DemoGuard, DemoSecurity, mint_token, security_from_env, verify_token
from exporter.demo.state import DemoState
from exporter.demo.storage import MemoryStore
from tests.test_demo import DemoProcess, demo

__all__ = ["demo"]  # the demo with its security off (the default)
KEY = "the-test-demos-signing-key-0123456789"


def token(user: str, role: str = "rider", expires_in: float = 3600, key: str = KEY) -> str:
    return mint_token(key.encode(), user, role, time.time() + expires_in)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


DISPATCHER = bearer(token("dispatcher", "dispatcher"))
RIDER_7, RIDER_8 = bearer(token("7")), bearer(token("8"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    env = {**os.environ, "DEMO_SECURITY": "on", "DEMO_SIGNING_KEY": KEY, "DEMO_RATE_LIMIT": "20/1s",
           "DEMO_ANONYMOUS_RATE_LIMIT": "10/1s"}
    server = DemoProcess(tmp_path_factory.mktemp("secured") / "demo.log", env=env)
    yield server
    server.stop()


@pytest.fixture
def holes(secured: DemoProcess) -> Iterator[Callable[..., None]]:
    def open_(*names: str) -> None:
        status, body, _ = secured.request("POST", "/admin/faults", {"vulnerable": list(names)})
        assert status == 200, body

    yield open_
    assert secured.request("DELETE", "/admin/faults")[0] == 200


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def forged(valid: str) -> dict[str, str]:
    """What an attacker makes of a valid token: each must be refused."""
    header, claims, signature = valid.split(".")
    raised = _b64({"sub": "dispatcher", "role": "dispatcher", "exp": int(time.time()) + 3600})
    return {"another key": token("7", key="an-attacker-s-own-key-0123456789"),
            "expired": token("7", expires_in=-1),
            "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{claims}.",
            "claims changed": f"{header}.{raised}.{signature}",
            "not a token": "demo-rider-token"}


# -- tokens -------------------------------------------------------------------------------------------------------


def test_tokens_are_jwts_that_name_their_user_and_role_until_they_expire() -> None:
    key = KEY.encode()
    valid = mint_token(key, "7", "rider", 2_000_000_000)
    assert verify_token(key, valid, now=1_999_999_999) is not None
    assert verify_token(key, valid, now=2_000_000_000) is None  # expired
    assert verify_token(b"another-key-0123456789", valid, now=0) is None
    assert verify_token(b"another-key-0123456789", valid, now=3e9, check_signature=False) is not None  # the hole
    with pytest.raises(ValueError, match="rider whose user is its rider id"):
        mint_token(key, "alice", "rider", 2_000_000_000)


def test_only_a_token_signed_with_the_demos_key_and_not_expired_lets_its_user_in(secured: DemoProcess) -> None:
    assert secured.request("GET", "/api/v1/orders/1", headers=DISPATCHER)[0] == 200
    assert secured.request("GET", "/api/v1/orders/1")[0] == 401
    for what, value in forged(token("7")).items():
        assert secured.request("GET", "/api/v1/orders", headers=bearer(value))[0] == 401, what


def test_auth_bypass_lets_forged_and_expired_tokens_in_until_closed(secured: DemoProcess, holes: Any) -> None:
    holes("auth_bypass")
    tokens = forged(token("7"))
    assert secured.request("GET", "/api/v1/orders", headers=bearer(tokens["expired"]))[0] == 200
    assert secured.request("GET", "/api/v1/orders", headers=bearer(tokens["another key"]))[0] == 200
    assert secured.request("GET", "/api/v1/orders", headers=bearer(tokens["claims changed"]))[0] == 200
    assert secured.request("GET", "/api/v1/orders", headers=bearer(tokens["not a token"]))[0] == 401
    assert secured.request("GET", "/api/v1/orders")[0] == 401  # no token at all: still refused
    assert secured.request("DELETE", "/admin/faults")[0] == 200
    assert secured.request("GET", "/api/v1/orders", headers=bearer(tokens["expired"]))[0] == 401


# -- owners -------------------------------------------------------------------------------------------------------


def test_a_rider_reaches_only_its_own_orders_and_a_dispatcher_any(secured: DemoProcess, holes: Any) -> None:
    status, order, _ = secured.request("POST", "/api/v1/orders", {"pickup": "Hauptbahnhof"}, RIDER_8)
    assert status == 201 and order["rider_id"] == 8  # a rider books for itself
    path = f"/api/v1/orders/{order['id']}"
    assert secured.request("GET", path, headers=RIDER_7)[0] == 404
    assert secured.request("POST", f"{path}/cancel", headers=RIDER_7)[0] == 404
    assert secured.request("GET", path, headers=RIDER_8)[1]["status"] == "created"  # not cancelled by rider 7
    assert secured.request("GET", path, headers=DISPATCHER)[0] == 200
    assert secured.request("POST", "/api/v1/orders", {"rider_id": 8}, RIDER_7)[0] == 403
    listed = secured.request("GET", "/api/v1/orders?status=created", headers=RIDER_7)[1]["orders"]
    assert listed and {o["rider_id"] for o in listed} == {7}
    holes("idor")
    assert secured.request("GET", path, headers=RIDER_7)[0] == 200
    assert secured.request("POST", f"{path}/cancel", headers=RIDER_7)[1]["status"] == "cancelled"


# -- limits -------------------------------------------------------------------------------------------------------


def burst(secured: DemoProcess, method: str, path: str, headers: dict[str, str], count: int,
          body: Any = None) -> tuple[list[tuple[int, dict[str, str]]], float]:
    """The answers to ``count`` requests sent together, and how long they took."""
    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: secured.request(method, path, body, headers), range(count)))
    return [(status, got) for status, _, got in answers], time.monotonic() - started


def assert_limited(answers: list[tuple[int, dict[str, str]]], took: float, passed: int, limit: int) -> None:
    """``limit`` let through (more only if the burst outlasted its 1 s window), the rest 429 with Retry-After."""
    statuses = [s for s, _ in answers]
    assert set(statuses) <= {passed, 429} and 429 in statuses, statuses
    assert statuses.count(passed) == limit if took < 0.9 else statuses.count(passed) >= limit, (statuses, took)
    assert all(got.get("retry-after") == "1" for s, got in answers if s == 429)


def test_callers_are_limited_per_route_with_and_without_credentials(secured: DemoProcess, holes: Any) -> None:
    time.sleep(1.1)  # a window of its own
    assert_limited(*burst(secured, "PATCH", "/api/v1/trips/1", {}, 15, {"status": "en_route"}), 401, 10)
    assert secured.request("GET", "/api/v1/orders/1")[0] == 401  # another route: its own limit
    assert_limited(*burst(secured, "GET", "/api/v1/orders/1", bearer(token("burst", "dispatcher")), 25), 200, 20)
    assert secured.request("GET", "/api/v1/orders/1", headers=DISPATCHER)[0] == 200  # another user: its own
    holes("no_rate_limit")
    time.sleep(1.1)
    answers, _ = burst(secured, "PATCH", "/api/v1/trips/1", {}, 15, {"status": "en_route"})
    assert {s for s, _ in answers} == {401}
    answers, _ = burst(secured, "GET", "/api/v1/orders/2", bearer(token("burst2", "dispatcher")), 25)
    assert {s for s, _ in answers} == {200}


def test_a_body_over_the_limit_is_refused_with_413(secured: DemoProcess) -> None:
    big = json.dumps({"rider_id": 7, "pickup": "x" * 70_000}).encode()
    assert secured.request("POST", "/api/v1/orders", big, DISPATCHER)[0] == 413


# -- pages, sessions, CSRF ----------------------------------------------------------------------------------------


def post(secured: DemoProcess, path: str, headers: dict[str, str],
         fields: dict[str, str] | None = None) -> httpx.Response:
    """A form post as a browser sends it, its redirect not followed."""
    return httpx.post(f"{secured.url}{path}", headers=headers, data=fields, follow_redirects=False, timeout=10)


def session(secured: DemoProcess, headers: dict[str, str]) -> dict[str, str]:
    answer = post(secured, "/web/session", headers)
    assert answer.status_code == 303 and "httponly" in answer.headers["set-cookie"].lower(), answer.headers
    return {"Cookie": answer.headers["set-cookie"].split(";")[0]}


def test_a_cookie_session_needs_its_csrf_token_to_book(secured: DemoProcess, holes: Any) -> None:
    cookie = session(secured, RIDER_7)
    status, page, _ = secured.request("GET", "/web/orders", headers=cookie)
    assert status == 200
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert csrf is not None, page
    booking = {"pickup": "Alexanderplatz 1", "dropoff": "Flughafen BER"}
    assert post(secured, "/web/orders", cookie, booking).status_code == 403
    assert post(secured, "/web/orders", cookie, {**booking, "csrf_token": "0" * 32}).status_code == 403
    assert post(secured, "/web/orders", cookie, {**booking, "csrf_token": csrf.group(1)}).status_code == 303
    assert post(secured, "/web/orders", RIDER_7, booking).status_code == 303  # a bearer token is not sent by itself
    holes("csrf")
    assert post(secured, "/web/orders", cookie, booking).status_code == 303


def test_the_order_page_escapes_what_it_shows_unless_xss_is_open(secured: DemoProcess, holes: Any) -> None:
    path = "/web/orders?status=" + urllib.parse.quote("<b>bold</b>")
    status, page, got = secured.request("GET", path, headers=RIDER_7)
    assert status == 200 and got["content-type"].startswith("text/html")
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    holes("xss")
    assert "<b>bold</b>" in secured.request("GET", path, headers=RIDER_7)[1]


# -- faults and admin ---------------------------------------------------------------------------------------------


def test_holes_combine_with_the_knobs_and_delete_closes_them_all(secured: DemoProcess) -> None:
    status, now, _ = secured.request("POST", "/admin/faults", {"vulnerable": ["xss", "csrf"], "latency_ms": 1})
    assert status == 200 and now["vulnerable"] == ["csrf", "xss"] and now["latency_ms"] == 1
    assert secured.request("POST", "/admin/faults", {"latency_ms": 0})[1]["vulnerable"] == ["csrf", "xss"]
    status, error, _ = secured.request("POST", "/admin/faults", {"vulnerable": ["xss", "rce"]})
    assert status == 422 and "unknown hole 'rce'" in error["error"], error
    status, error, _ = secured.request("POST", "/admin/faults", {"vulnerable": "xss"})
    assert status == 422 and "vulnerable: expected a list of holes" in error["error"], error
    status, error, _ = secured.request("POST", "/admin/faults", {"vulnerable": ["sqli"]})
    assert status == 422 and "'sqli' needs the demo on PostgreSQL" in error["error"], error
    assert secured.request("GET", "/admin/faults")[1]["vulnerable"] == ["csrf", "xss"]  # nothing was changed
    assert secured.request("DELETE", "/admin/faults")[1]["vulnerable"] == []


def test_admin_tokens_mints_tokens_the_api_takes(secured: DemoProcess, demo: DemoProcess) -> None:
    status, minted, _ = secured.request("POST", "/admin/tokens", {"user": "9", "role": "rider", "ttl": "1h"})
    assert status == 200 and 3500 < minted["expires_at"] - time.time() <= 3600
    assert secured.request("GET", "/api/v1/orders", headers=bearer(minted["token"]))[0] == 200
    status, error, _ = secured.request("POST", "/admin/tokens", {"user": "alice", "role": "rider"})
    assert status == 422 and "rider whose user is its rider id" in error["error"]
    assert demo.request("POST", "/admin/tokens", {"user": "9"})[0] == 404  # the demo's security is off


def _guarded_app(admin_token: str | None) -> Any:
    state = DemoState(store=MemoryStore(), cache=MemoryCache())
    return DemoGuard(build_app(state), lambda: state.faults, None, admin_token)


def _admin_status(admin_token: str | None, client: tuple[str, int], headers: dict[str, str] | None = None) -> int:
    """``GET /admin/faults`` through the real app and guard, from a client address no loopback socket can have."""
    async def ask() -> int:
        transport = httpx.ASGITransport(app=_guarded_app(admin_token), client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client_:
            return (await client_.get("/admin/faults", headers=headers)).status_code

    return asyncio.run(ask())


def test_the_admin_routes_answer_loopback_callers_unless_a_token_is_set() -> None:
    assert _admin_status(None, ("127.0.0.1", 50_000)) == 200
    assert _admin_status(None, ("::1", 50_000)) == 200
    assert _admin_status(None, ("203.0.113.7", 50_000)) == 403
    assert _admin_status("an-admin-token", ("203.0.113.7", 50_000), bearer("an-admin-token")) == 200
    assert _admin_status("an-admin-token", ("127.0.0.1", 50_000)) == 401
    assert _admin_status("an-admin-token", ("127.0.0.1", 50_000), bearer("a-wrong-token")) == 401


@pytest.mark.parametrize(("environ", "names"), [
    ({"DEMO_SIGNING_KEY": "short"}, "DEMO_SIGNING_KEY: expected at least 16 bytes"),
    ({"DEMO_RATE_LIMIT": "many"}, "DEMO_RATE_LIMIT: expected N/window"),
    ({"DEMO_ANONYMOUS_RATE_LIMIT": "0/1s"}, "DEMO_ANONYMOUS_RATE_LIMIT: expected N/window"),
    ({"DEMO_MAX_BODY_BYTES": "10"}, "DEMO_MAX_BODY_BYTES: expected a whole number of bytes, at least 1024"),
    ({"DEMO_TOKENS": "demo-rider-token:rider"}, "DEMO_TOKENS: fixed tokens are gone"),
])
def test_bad_security_settings_name_the_variable_and_never_the_key(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ValueError) as caught:
        security_from_env({"DEMO_SECURITY": "on", **environ})
    assert names in str(caught.value)
    assert "short" not in str(caught.value)


def test_without_a_signing_key_the_demo_makes_one_of_its_own() -> None:
    settings = security_from_env({"DEMO_SECURITY": "on"})
    assert isinstance(settings, DemoSecurity) and settings.key_generated and len(settings.key) == 32
    assert security_from_env({}) is None


def test_security_off_leaves_the_api_open_and_its_pages_escaped(demo: DemoProcess) -> None:
    assert demo.request("GET", "/api/v1/orders/1")[0] == 200
    status, page, _ = demo.request("GET", "/web/orders?status=%3Cb%3E")
    assert status == 200 and "&lt;b&gt;" in page  # escaping is not a security setting: only the hole lifts it
