"""End to end with the real binaries: Prometheus scrapes a running exporter that probes the demo target (backed by
real PostgreSQL and Redis), evaluates our rules and sends to a real Alertmanager, whose webhook posts land in a
small HTTP server here.

The rules are rendered from the same generator as the shipped ones, at 1/30 of their windows and ``for:``
durations (5 minutes become 10 seconds), so the whole cycle takes about two minutes. Faults set on the demo make
the matching alerts fire and reach Alertmanager; clearing them resolves them; every dashboard panel's query
returns data from that Prometheus.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import child_process, metrics
from exporter.config.loading import load_config
from exporter.slo.dashboards import dashboards
from exporter.slo.render import to_yaml
from exporter.slo.rules import ERROR_RATIO_TARGET, HIT_RATIO, RuleOptions, quantile_record, rule_groups
from tests.daemon_process import DaemonProcess
from tests.servers import Alertmanager, Postgres, Prometheus, Redis, free_port, http_ok, wait_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "tripo04os.yaml"
SCALE = 1 / 30

# The faults of the issue and the alert each must fire (by name, with the labels it must carry).
FAULTS = {"latency_ms": 800, "error_rate": 0.05, "cache": "off", "slow_query": True}
EXPECTED = {
    "ApiLatencyP95High": {"target": "gateway", "severity": "warning"},
    "ApiErrorRateHigh": {"target": "gateway", "severity": "warning"},
    "CacheHitRateLow": {"target": "cache", "severity": "warning"},
    "DatabaseQueryP95High": {"target": "main", "severity": "warning"},
}
# Every request 800 ms slow burns the P95 budget 20x: the page fires too. It is not waited out after the faults
# clear, because a burn-rate alert rightly keeps paging while its 6h/30m windows (12m/60s here) still carry the
# burn; the promtool tests prove when each burn-rate alert stops.
PAGE = ("ApiLatencyP95ErrorBudgetBurn", {"target": "gateway", "severity": "critical", "slo": "api-latency-p95"})

pytestmark = pytest.mark.skipif(
    any(shutil.which(b) is None for b in ("prometheus", "prometheus-alertmanager", "redis-server")),
    reason="needs prometheus, prometheus-alertmanager and redis-server (scripts/test.sh installs them)")


# -- a webhook receiver ------------------------------------------------------------------------------------------


@dataclass
class Notification:
    at: float
    status: str
    labels: dict[str, str]


@dataclass
class Webhook:
    """Records every alert Alertmanager posts, one entry per alert in each notification."""

    received: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> ThreadingHTTPServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    for alert in body["alerts"]:
                        hook.received.append(Notification(time.monotonic(), alert["status"], alert["labels"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def since(self, start: float) -> list[Notification]:
        with self.lock:
            return [n for n in self.received if n.at >= start]


# -- the stack ---------------------------------------------------------------------------------------------------


def e2e_config(demo_url: str, dsn: str, redis_url: str) -> dict[str, Any]:
    """The shipped example config, pointed at the test's servers, with short intervals and more requests per run
    (so a 5 % error rate shows in every 10-second window)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    api = data["api"][0]
    api.update(base_url=demo_url, interval="4s", timeout="3s")
    volume = {"create_order": 6, "get_order": 30, "update_location": 10}
    for endpoint in api["endpoints"]:
        if "security" in endpoint:  # the demo runs open here: one cheap check each keeps the security panel's series
            endpoint["security"] = {"unauthenticated": 401}
        if endpoint["name"] in volume:
            endpoint["requests"] = endpoint["concurrency"] = volume[endpoint["name"]]
    data["postgres"][0].update(dsn=dsn, interval="2s", timeout="1500ms")
    data["redis"][0].update(url=redis_url, interval="2s", timeout="1s")
    data["jaeger"][0].update(url=demo_url, interval="2s", timeout="1500ms", lookback="30s", settle="1s")
    return data


@dataclass
class Stack:
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: Webhook
    exporter: DaemonProcess
    demo_url: str
    config: Any

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def alert_states(self) -> dict[str, set[str]]:
        with urllib.request.urlopen(f"{self.prometheus.url}/api/v1/alerts", timeout=10) as response:
            alerts = json.loads(response.read())["data"]["alerts"]
        states: dict[str, set[str]] = {}
        for alert in alerts:
            states.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
        return states

    def faults(self, method: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.demo_url}/admin/faults", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200


def _demo(port: int, dsn: str, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"127.0.0.1:{port}",
                             "--postgres", dsn, "--redis", redis_url, "--log.level", "warning"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=dict(os.environ))


@pytest.fixture(scope="module")
def stack(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("alerting-e2e")
    postgres.psql("DROP DATABASE IF EXISTS alerting_e2e")
    postgres.psql("CREATE DATABASE alerting_e2e")
    postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname="alerting_e2e")
    dsn = postgres.dsn("alerting_e2e")
    redis = Redis(root / "redis").start()
    demo_port = free_port()
    demo_url = f"http://127.0.0.1:{demo_port}"
    demo = _demo(demo_port, dsn, redis.url, root / "demo.log")
    webhook = Webhook()
    hook_server = webhook.serve()
    exporter: DaemonProcess | None = None
    prometheus: Prometheus | None = None
    alertmanager: Alertmanager | None = None
    try:
        wait_for(lambda: demo.poll() is not None or http_ok(f"{demo_url}/health"), timeout=60, what="demo ready")
        assert demo.poll() is None, (root / "demo.log").read_text()[-3000:]

        data = e2e_config(demo_url, dsn, redis.url)
        config_path = root / "perf-exporter.yaml"
        config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        config = load_config(config_path)
        rules_dir = root / "rules"
        rules_dir.mkdir()
        for stem, content in rule_groups(config, RuleOptions(scale=SCALE)).items():
            (rules_dir / f"{stem}.rules.yml").write_text(to_yaml(content))
        exporter = DaemonProcess(config_path, root / "exporter.log").wait_ready()

        hook_port = hook_server.server_address[1]
        alertmanager = Alertmanager(root / "alertmanager", yaml.safe_dump({
            "route": {"receiver": "webhook", "group_by": ["..."], "group_wait": "1s", "group_interval": "1s",
                      "repeat_interval": "1h"},
            "receivers": [{"name": "webhook", "webhook_configs": [
                {"url": f"http://127.0.0.1:{hook_port}/", "send_resolved": True}]}],
        })).start()
        prometheus = Prometheus(root / "prometheus", yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            "scrape_configs": [{"job_name": "perf-exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
        })).start()
        yield Stack(prometheus, alertmanager, webhook, exporter, demo_url, config)
    finally:
        for server in (prometheus, alertmanager):
            if server is not None:
                server.stop()
        if exporter is not None:
            exporter.stop()
        child_process.stop(demo, grace=15)
        hook_server.shutdown()
        redis.stop()
        postgres.psql("DROP DATABASE IF EXISTS alerting_e2e WITH (FORCE)")


# -- the tests ---------------------------------------------------------------------------------------------------

def _diagnosis(stack: Stack) -> str:
    return (f"alerts in Prometheus: {stack.alert_states()}\nwebhook: "
            f"{[(n.status, n.labels.get('alertname')) for n in stack.webhook.received][-40:]}\n"
            f"exporter log:\n{stack.exporter.log()[-3000:]}")


def test_demo_faults_fire_the_matching_alerts_in_alertmanager_and_clearing_them_resolves_them(
        stack: Stack) -> None:
    # on the healthy demo, every guide figure the faults will move has data and meets its target, and none of
    # the alerts is pending or firing
    targets = stack.config.targets
    healthy = {
        f"{quantile_record(metrics.HTTP_REQUEST_DURATION, ('target',), 0.95)} < {targets.api_latency_p95}",
        f"{ERROR_RATIO_TARGET} < {targets.error_rate}",
        f"{HIT_RATIO} >= {targets.cache_hit_rate}",
        f"{quantile_record(metrics.PG_QUERY_DURATION, ('target',), 0.95)} < {targets.db_query_p95}",
        f"{quantile_record(metrics.TRACE_DURATION, ('target',), 0.95)} < {targets.trace_p95}",
    }

    def baseline_problems() -> set[str]:
        problems = {q for q in healthy if not stack.query(q)}
        return problems | (set(EXPECTED) & set(stack.alert_states()))

    try:
        wait_for(lambda: not baseline_problems(), timeout=90, what="a healthy, quiet baseline", interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nnot met: {sorted(baseline_problems())}\n{_diagnosis(stack)}") from None

    started = time.monotonic()
    stack.faults("POST", FAULTS)

    def fired() -> dict[str, dict[str, str]]:
        return {n.labels["alertname"]: n.labels for n in stack.webhook.since(started)
                if n.status == "firing" and n.labels["alertname"] in EXPECTED}

    def paged() -> bool:
        name, labels = PAGE
        return any(n.status == "firing" and n.labels["alertname"] == name
                   and all(n.labels.get(k) == v for k, v in labels.items()) for n in stack.webhook.since(started))

    try:
        wait_for(lambda: set(fired()) == set(EXPECTED) and paged(), timeout=120,
                 what="every fault's alert in Alertmanager", interval=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nfired: {sorted(fired())}, paged: {paged()}\n{_diagnosis(stack)}") from None
    for name, labels in fired().items():
        assert {k: labels.get(k) for k in EXPECTED[name]} == EXPECTED[name], labels
        assert labels["slo"].startswith(("api-", "cache-", "database-"))

    firing = {frozenset(n.labels.items()) for n in stack.webhook.since(started)
              if n.status == "firing" and n.labels["alertname"] in EXPECTED}
    stack.faults("DELETE")

    def unresolved() -> set[frozenset[tuple[str, str]]]:
        """The alerts that fired whose last word from Alertmanager is not "resolved". One may already have
        resolved (and fired again) while the faults were on: a 5 % error rate over the few requests of a
        10-second window can dip under the threshold; then its resolution came before the faults cleared."""
        last: dict[frozenset[tuple[str, str]], str] = {}
        for n in stack.webhook.since(started):
            last[frozenset(n.labels.items())] = n.status
        return {labels for labels in firing if last.get(labels) != "resolved"}

    try:
        wait_for(lambda: not unresolved(), timeout=90, what="every alert resolved in Alertmanager", interval=0.5)
    except TimeoutError as exc:
        left = sorted(dict(labels)["alertname"] for labels in unresolved())
        raise AssertionError(f"{exc}\nstill firing: {left}\n{_diagnosis(stack)}") from None


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, list[str]]]:
    out = []
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            out.append((panel["title"], [t["expr"] for t in panel["targets"]]))
    return out


def test_every_dashboard_panel_query_returns_data(stack: Stack) -> None:
    built = dashboards(stack.config)

    def concrete(expr: str) -> str:
        return (expr.replace("$__rate_interval", "15s").replace('"$target"', '".*"')
                .replace('"$endpoint"', '".*"'))

    def empty_panels() -> list[str]:
        missing = []
        for name, dashboard in built.items():
            for title, exprs in panel_queries(dashboard):
                if not any(stack.query(concrete(expr)) for expr in exprs):
                    missing.append(f"{name}: {title}")
        return missing

    last: list[list[str]] = []

    def all_have_data() -> bool:
        last.append(empty_panels())
        return not last[-1]

    try:
        wait_for(all_have_data, timeout=60, what="data in every panel", interval=1)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\npanels without data: {last[-1]}") from None
