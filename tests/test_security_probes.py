"""The proof of the security checks: the example config's checks against the real demo on PostgreSQL with its
security on, every hole closed, then each hole opened alone and all together (``POST /admin/faults
{"vulnerable": [...]}``), then closed again; the same through the daemon, its metrics, log and index page."""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter import metrics
from exporter.config.loading import parse_config
from exporter.demo.faults import HOLES
from exporter.demo.launcher import demo_tokens
from exporter.jobs import JobContext, Outcome, TraceLink
from exporter.probes.api import ApiProbe
from exporter.probes.api_target import ApiTarget
from exporter.store import MetricStore
from tests.daemon_process import DaemonProcess
from tests.servers import Postgres, wait_for
from tests.test_demo import DemoProcess

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "tripo04os.yaml"
KEY = "the-probe-tests-signing-key-0123456789"

# The detection table: the checks of the example config that each hole must fail, and no other (docs/security.md).
DETECTS: dict[str, set[tuple[str, str]]] = {
    "sqli": {("list_orders", "injection")},
    "idor": {("get_order", "object_authorization")},
    "auth_bypass": {("update_trip_status", "token_tampering")},
    "no_rate_limit": {("update_trip_status", "rate_limit"), ("update_trip_status", "anonymous_rate_limit")},
    "xss": {("order_page", "xss")},
    "csrf": {("order_page", "csrf")},
}
ALL = set().union(*DETECTS.values())


def detection_table() -> str:
    """The table docs/security.md shows: a row per hole, a column per check of the example config."""
    checks = metrics.SECURITY_CHECKS  # the example config has each of them
    lines = ["| hole | " + " | ".join(f"`{c}`" for c in checks) + " |", "|---" * (len(checks) + 1) + "|"]
    for hole in HOLES:
        found = {check for _, check in DETECTS[hole]}
        lines.append(f"| `{hole}` | " + " | ".join("fails" if c in found else "holds" for c in checks) + " |")
    return "\n".join(lines)


@dataclass
class Stack:
    demo: DemoProcess
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def stack(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo on PostgreSQL (the sqli hole needs SQL), its security on, with the tokens run --demo would mint."""
    postgres.psql("DROP DATABASE IF EXISTS security_probes WITH (FORCE)")
    postgres.psql("CREATE DATABASE security_probes")
    env = {**os.environ, "DEMO_SECURITY": "on", "DEMO_SIGNING_KEY": KEY}
    demo = DemoProcess(tmp_path_factory.mktemp("security") / "demo.log", "--postgres",
                       postgres.dsn("security_probes"), env=env)
    _, tokens = demo_tokens({"DEMO_SIGNING_KEY": KEY}, time.time())
    yield Stack(demo, tokens)
    demo.stop()
    postgres.psql("DROP DATABASE IF EXISTS security_probes WITH (FORCE)")


def example_api(url: str) -> dict[str, Any]:
    """The example config's api target, as YAML data, on a short interval."""
    api: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())["api"][0]
    api.update(base_url=url, interval="4s", timeout="3s")
    return api


def target_of(api: dict[str, Any], tokens: dict[str, str]) -> ApiTarget:
    return parse_config({"api": [api]}, "test.yaml", env=tokens).api[0]


def checked(target: ApiTarget) -> set[tuple[str, str]]:
    return {(e.name, check) for e in target.endpoints if e.security is not None
            for check in metrics.SECURITY_CHECKS if getattr(e.security, check) is not None}


def failing(store: MetricStore, target: ApiTarget) -> set[tuple[str, str]]:
    values = {key: store.get(metrics.SECURITY_CHECK_SUCCESS, target=target.name, endpoint=key[0], check=key[1])
              for key in checked(target)}
    assert None not in values.values(), values
    return {key for key, value in values.items() if value == 0}


async def admin(url: str, method: str, body: Any = None) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.request(method, "/admin/faults", json=body)
        assert answer.status_code == 200, answer.text


@dataclass
class Scenario:
    opened: list[set[tuple[str, str]]]  # what failed after each run with the holes open
    closed: list[set[tuple[str, str]]]  # and after each run once they were closed
    findings: list[str]


RATE_WINDOW = 1.1  # the demo's rate-limit window (1 s) and a margin: the daemon's runs are 4 s apart
_last_run = [0.0]


async def run_spaced(probe: ApiProbe) -> Outcome:
    """One run of the api job, a rate-limit window after the last one ended, as the daemon's interval keeps them:
    a run right after another's bursts would meet the limit they left (a 429 for its unauthenticated request)."""
    await asyncio.sleep(max(0.0, _last_run[0] + RATE_WINDOW - time.monotonic()))
    try:
        return await probe.run()
    finally:
        _last_run[0] = time.monotonic()


def open_and_close(stack: Stack, target: ApiTarget, holes: list[str], expected: set[tuple[str, str]]) -> Scenario:
    """Opens the holes, runs the api job until the expected checks fail (two runs at most), closes them, runs it
    until every check holds again (two runs at most)."""
    store = MetricStore()

    async def go() -> Scenario:
        probe = ApiProbe(target, JobContext(store, TraceLink()))
        scenario = Scenario([], [], [])
        try:
            await admin(stack.demo.url, "POST", {"vulnerable": holes})
            try:
                while len(scenario.opened) < 2 and (not scenario.opened or scenario.opened[-1] != expected):
                    outcome = await run_spaced(probe)
                    scenario.opened.append(failing(store, target))
                scenario.findings = probe.findings()
                assert all(f in outcome.cause for f in scenario.findings)  # the run's outcome names each
            finally:
                await admin(stack.demo.url, "DELETE")
            while len(scenario.closed) < 2 and (not scenario.closed or scenario.closed[-1]):
                await run_spaced(probe)
                scenario.closed.append(failing(store, target))
        finally:
            await probe.close()
        return scenario

    return asyncio.run(go())


def test_with_every_hole_closed_every_check_of_the_example_holds(stack: Stack) -> None:
    """What ``run --demo`` shows: each endpoint and the journey succeed, and each security check holds."""
    target = target_of(example_api(stack.demo.url), stack.tokens)
    scenario = open_and_close(stack, target, [], set())
    assert scenario.opened == [set()], scenario
    assert checked(target) >= ALL and len(checked(target)) == 11


@pytest.mark.parametrize("holes", [[hole] for hole in HOLES] + [list(HOLES)], ids=[*HOLES, "all"])
def test_each_hole_fails_exactly_its_checks_within_two_runs_and_closing_it_restores_them(
        stack: Stack, holes: list[str]) -> None:
    target = target_of(example_api(stack.demo.url), stack.tokens)
    expected = set().union(*(DETECTS[hole] for hole in holes))
    scenario = open_and_close(stack, target, holes, expected)
    assert scenario.opened[-1] == expected, scenario
    assert len(scenario.findings) == len(expected) and all(
        any(f.startswith(f"{endpoint} {check}: ") for f in scenario.findings) for endpoint, check in expected)
    assert scenario.closed[-1] == set(), scenario


@pytest.mark.parametrize("method", ["error", "boolean", "time"])
def test_each_injection_method_alone_finds_the_sqli_hole(stack: Stack, method: str) -> None:
    api = example_api(stack.demo.url)
    api["endpoints"] = [e for e in api["endpoints"] if e["name"] == "list_orders"]
    api["endpoints"][0]["security"] = {"injection": {"query": {"status": "created"}, "methods": [method]}}
    api.pop("journeys")
    target = target_of(api, stack.tokens)
    scenario = open_and_close(stack, target, ["sqli"], {("list_orders", "injection")})
    assert scenario.opened[-1] == {("list_orders", "injection")}, scenario
    assert f"{method}-based" in scenario.findings[0], scenario.findings
    assert scenario.closed[-1] == set(), scenario


def test_the_order_list_binds_its_status_so_a_quote_is_just_a_character(stack: Stack) -> None:
    """A correct API may accept O'Brien: the injection check does not call that a hole (it holds above)."""
    dispatcher = {"Authorization": f"Bearer {stack.tokens['API_TOKEN']}"}
    status, body, _ = stack.demo.request("GET", "/api/v1/orders?status=O%27Brien", headers=dispatcher)
    assert status == 200 and body == {"status": "O'Brien", "orders": []}


def test_the_detection_table_in_the_docs_is_the_one_proven_here() -> None:
    assert detection_table() in (REPO / "docs" / "security.md").read_text()


# -- through the daemon -------------------------------------------------------------------------------------------


def index_cause(daemon: DaemonProcess) -> str:
    page = daemon.get("/")[1]
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells[:2] == ["api", "gateway"]:
            return cells[6]
    raise AssertionError(page)


def runs(daemon: DaemonProcess) -> float:
    return sum(daemon.value("perf_job_runs_total", collector="api", target="gateway", result=r) or 0
               for r in ("success", "failure", "error", "timeout"))


def daemon_failing(daemon: DaemonProcess, expected_series: set[tuple[str, str]]) -> set[tuple[str, str]] | None:
    samples = daemon.samples()
    values = {key: samples.get(("perf_security_check_success",
                                frozenset({"target": "gateway", "endpoint": key[0], "check": key[1]}.items())))
              for key in expected_series}
    if None in values.values():
        return None
    return {key for key, value in values.items() if value == 0}


def test_the_daemon_reports_each_failing_check_with_its_cause_and_keeps_the_tokens_to_itself(
        stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"api": [example_api("${TEST_BASE_URL}")]}))
    daemon = DaemonProcess(config, tmp_path / "daemon.log", env={**stack.tokens, "TEST_BASE_URL": stack.demo.url})
    target = target_of(example_api(stack.demo.url), stack.tokens)
    series = checked(target)
    try:
        daemon.wait_ready()
        wait_for(lambda: daemon_failing(daemon, series) == set(), timeout=30, what="every check holding")
        before = runs(daemon)
        asyncio.run(admin(stack.demo.url, "POST", {"vulnerable": list(HOLES)}))
        try:
            wait_for(lambda: daemon_failing(daemon, series) == ALL, timeout=30, what="the holes found")
            # the run under way when they opened, then two more at most
            assert runs(daemon) - before <= 3
            # the index page shows the last finished run's outcome: the run that found them, or the next
            wait_for(lambda: all(f"{e} {c}: " in index_cause(daemon) for e, c in ALL), timeout=15,
                     what="every failing check and its cause on the index page")
            seen = runs(daemon)
            wait_for(lambda: runs(daemon) >= seen + 1, timeout=15, what="one more run")
            assert daemon_failing(daemon, series) == ALL
        finally:
            asyncio.run(admin(stack.demo.url, "DELETE"))
        closed = runs(daemon)
        wait_for(lambda: daemon_failing(daemon, series) == set(), timeout=30, what="every check holding again")
        assert runs(daemon) - closed <= 3
        wait_for(lambda: index_cause(daemon) == "", timeout=15, what="a finished run without a cause")
        page, exposition = daemon.get("/")[1], daemon.get("/metrics")[1]
    finally:
        daemon.stop()
    log = daemon.log()
    lines = [line for line in log.splitlines() if "event=security_check_failed" in line]
    assert len(lines) == len(ALL), "one line per failing check, not one per run:\n" + "\n".join(lines)
    for secret in [*stack.tokens.values(), KEY]:
        for where, text in (("log", log), ("index page", page), ("metrics", exposition)):
            assert secret not in text, f"a token is in the {where}"


def test_the_security_alert_fires_on_a_lasting_failure_only() -> None:
    out = subprocess.run(["promtool", "test", "rules", "security.test.yml"], capture_output=True, text=True,
                         cwd=REPO / "rules" / "security" / "tests", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
