"""The guide's security checklist as probes (exporter.probes.security) against the real demo, with its security on
(DEMO_SECURITY=on: tokens with roles, a role check, a rate limit, input validation) and off (the default), where
every check must then fail; and the verdicts on the answers a broken server gives."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter import metrics
from exporter.config.loading import load_config
from exporter.jobs import JobContext, TraceLink
from exporter.probes.api import ApiProbe
from exporter.probes.api_target import ApiTarget
from exporter.probes.security import XSS_CANARY, verdict_injection, verdict_rate_limit, verdict_status
from exporter.store import MetricStore
from tests.servers import Process, free_port, wait_for

DISPATCHER = {"Authorization": "Bearer demo-dispatcher-token"}
RIDER = {"Authorization": "Bearer demo-rider-token"}
CHECKS = ("unauthenticated", "lower_role", "rate_limit", "injection")
REPO = Path(__file__).resolve().parent.parent


def start_demo(tmp_path: Path, secured: bool) -> tuple[Process, str]:
    port = free_port()
    env = {**os.environ, "DEMO_SECURITY": "on" if secured else "off", "DEMO_RATE_LIMIT": "20/1s"}
    process = Process([sys.executable, "-m", "exporter", "demo", "--listen", f"127.0.0.1:{port}"],
                      tmp_path / f"demo-{secured}.log", env=env).start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not process.alive():
            raise RuntimeError(process.log())
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)

    wait_for(healthy, timeout=30, what="demo /health")
    return process, url


@pytest.fixture
def demos(tmp_path: Path) -> Iterator[dict[bool, str]]:
    started = {secured: start_demo(tmp_path, secured) for secured in (True, False)}
    yield {secured: url for secured, (_, url) in started.items()}
    for process, _ in started.values():
        process.stop()


def probe_config(url: str) -> dict[str, Any]:
    security = {"unauthenticated": 401, "lower_role": {"headers": RIDER, "expect": 403},
                "rate_limit": {"requests": 40, "within": "1s"}, "injection": True}
    return {"name": "gateway", "base_url": url, "interval": "15s", "timeout": "5s", "headers": DISPATCHER,
            "endpoints": [
                {"name": "update_trip_status", "method": "PATCH", "path": "/api/v1/trips/1",
                 "json": {"status": "en_route"}, "expect_status": [200], "security": security},
                {"name": "create_order", "method": "POST", "path": "/api/v1/orders",
                 "json": {"rider_id": 7, "pickup": "Alexanderplatz 1", "dropoff": "Flughafen BER"},
                 "expect_status": [201], "security": {"unauthenticated": 401, "injection": True}}]}


def run_probe(url: str) -> MetricStore:
    store = MetricStore()

    async def main() -> None:
        probe = ApiProbe(ApiTarget.model_validate(probe_config(url)), JobContext(store, TraceLink()))
        try:
            await probe.run()
        finally:
            await probe.close()

    asyncio.run(main())
    return store


def check(store: MetricStore, endpoint: str, name: str) -> float | None:
    return store.get(metrics.SECURITY_CHECK_SUCCESS, target="gateway", endpoint=endpoint, check=name)


def test_the_secured_demo_passes_every_check_and_the_open_one_fails_them(demos: dict[bool, str]) -> None:
    secured = run_probe(demos[True])
    for name in CHECKS:
        assert check(secured, "update_trip_status", name) == 1, name
    assert check(secured, "create_order", "unauthenticated") == 1
    assert check(secured, "create_order", "injection") == 1
    # the probe itself, with the dispatcher's token, still succeeds: the checks come after it
    assert secured.get(metrics.PROBE_SUCCESS, target="gateway", probe="update_trip_status") == 1

    open_demo = run_probe(demos[False])
    for name in ("unauthenticated", "lower_role", "rate_limit"):
        assert check(open_demo, "update_trip_status", name) == 0, name
    assert check(open_demo, "create_order", "injection") == 0  # the open demo echoes the pickup back


def test_verdicts_on_what_a_broken_server_answers() -> None:
    assert verdict_status(401, 401) == (True, "")
    assert verdict_status(200, 401) == (False, "expected HTTP 401, got HTTP 200")
    assert verdict_status(None, 403)[0] is False
    assert verdict_rate_limit([200, 200, 429], 429, 0.2, 1.0)[0]
    assert verdict_rate_limit([200, 200, 200], 429, 0.2, 1.0) == (
        False, "no HTTP 429 in a burst of 3 within 1s (answers: 200)")
    assert "HTTP 503" in verdict_rate_limit([429, 503], 429, 0.2, 1.0)[1]  # a limit that fails open is no limit
    assert "longer than its window" in verdict_rate_limit([429], 429, 2.5, 1.0)[1]
    assert verdict_injection([("query", 400, b"{}"), ("body", 422, b"{}")]) == (True, "")
    assert verdict_injection([("query", 500, b"error")])[1] == "query: expected a 4xx, got HTTP 500"
    reflected = verdict_injection([("body", 400, f"bad input: {XSS_CANARY}".encode())])
    assert reflected == (False, "body: the canary came back in the response (HTTP 400)")


def test_the_example_config_against_the_secured_demo_passes_every_probe_and_check(demos: dict[bool, str]) -> None:
    """What ``run --demo`` does (it starts the demo with DEMO_SECURITY=on): the example's token is let in, every
    endpoint and the journey succeed, and the checks of its ``security:`` block all pass."""
    config = load_config(REPO / "examples" / "tripo04os.yaml", env={"TEST_BASE_URL": demos[True]})
    target = config.api[0]
    store = MetricStore()

    async def main() -> None:
        probe = ApiProbe(target, JobContext(store, TraceLink()))
        try:
            await probe.run()
        finally:
            await probe.close()

    asyncio.run(main())
    for name in [e.name for e in target.endpoints] + [j.name for j in target.journeys]:
        assert store.get(metrics.PROBE_SUCCESS, target=target.name, probe=name) == 1, name
    checked = [e for e in target.endpoints if e.security is not None]
    assert checked
    for endpoint in checked:
        for name in CHECKS:
            assert store.get(metrics.SECURITY_CHECK_SUCCESS, target=target.name, endpoint=endpoint.name,
                             check=name) == 1, (endpoint.name, name)


def test_the_security_alert_fires_on_a_lasting_failure_only() -> None:
    out = subprocess.run(["promtool", "test", "rules", "security.test.yml"], capture_output=True, text=True,
                         cwd=REPO / "rules" / "security" / "tests", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
