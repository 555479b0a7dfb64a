"""Infrastructure rules and dashboard (node_exporter): shipped as rendered, checked and unit-tested by promtool, and
every panel query answered by a real Prometheus scraping a real node_exporter and a real daemon."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.loading import load_config
from exporter.slo import infrastructure
from exporter.slo.dashboards import as_json
from exporter.slo.render import dashboard_outputs, rule_outputs
from tests.daemon_process import DaemonProcess
from tests.servers import Process, Prometheus, free_port, http_ok, wait_for

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
EXAMPLE = REPO / "examples" / "tripo04os.yaml"
NODE_EXPORTER = "prometheus-node-exporter"


def test_shipped_infrastructure_files_are_what_render_writes() -> None:
    config = load_config(EXAMPLE, env={})
    rules, grafana = rule_outputs(config), dashboard_outputs(config)
    for path in (infrastructure.RULES_PATH, infrastructure.TESTS_PATH, infrastructure.RUNBOOKS_PATH):
        assert (RULES / path).read_text() == rules[path], f"rules/{path}: run perf-exporter render rules"
    path = infrastructure.DASHBOARD_PATH
    assert (REPO / "grafana" / path).read_text() == grafana[path], f"grafana/{path}: run perf-exporter render " \
                                                                    "dashboards"


def test_the_guides_high_database_cpu_is_an_alert_above_90_percent() -> None:
    rules = infrastructure.infrastructure_rules()["groups"][0]["rules"]
    cpu = next(r for r in rules if r.get("alert") == "HostCpuHigh")
    assert cpu["expr"].endswith("> 0.9") and "High Database CPU" in cpu["annotations"]["summary"]
    assert {r["alert"] for r in rules if "alert" in r} == {"HostCpuHigh", "HostMemoryHigh", "HostDiskSpaceLow",
                                                           "HostDiskBusy"}


def test_every_alert_links_to_its_runbook_section() -> None:
    anchors = set(re.findall(r"^## (\w+)$", (RULES / infrastructure.RUNBOOKS_PATH).read_text(), re.MULTILINE))
    for rule in yaml.safe_load((RULES / infrastructure.RULES_PATH).read_text())["groups"][0]["rules"]:
        if "alert" in rule:
            assert rule["alert"] in anchors
            assert rule["annotations"]["runbook_url"] == \
                f"rules/{infrastructure.RUNBOOKS_PATH}#{rule['alert'].lower()}"


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_silent() -> None:
    tests = yaml.safe_load((RULES / infrastructure.TESTS_PATH).read_text())["tests"]
    cases: dict[str, set[bool]] = {}
    for case in tests:
        for check in case["alert_rule_test"]:
            cases.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    assert cases == {name: {True, False} for name in infrastructure.RUNBOOKS}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")
def test_the_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = _promtool("check", "rules", infrastructure.RULES_PATH, cwd=RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", infrastructure.TESTS_PATH, cwd=RULES)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")
def test_the_unit_tests_fail_against_rules_with_another_threshold(tmp_path: Path) -> None:
    rules = (RULES / infrastructure.RULES_PATH).read_text()
    (tmp_path / "tests").mkdir()
    (tmp_path / "infrastructure.rules.yml").write_text(rules.replace("> 0.9\n", "> 0.97\n"))
    shutil.copy(RULES / infrastructure.TESTS_PATH, tmp_path / "tests" / "infrastructure.test.yml")
    tested = _promtool("test", "rules", "tests/infrastructure.test.yml", cwd=tmp_path)
    assert tested.returncode != 0
    for alert in ("HostCpuHigh", "HostMemoryHigh", "HostDiskBusy"):
        assert f"alertname: {alert}" in tested.stdout + tested.stderr


# ---------------------------------------------------------------------------------------------------------------
# A real node_exporter, a real daemon, a real Prometheus scraping both


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if shutil.which(NODE_EXPORTER) is None:
        pytest.fail(f"{NODE_EXPORTER} is not installed; run the README's test command, which installs it")
    root = tmp_path_factory.mktemp("infrastructure")
    node_port = free_port()
    node = Process([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{node_port}"], root / "node.log").start()
    daemon = DaemonProcess(None, root / "daemon.log")
    server: Prometheus | None = None
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{node_port}/metrics"), timeout=20, what="node_exporter")
        daemon.wait_ready()
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [
            {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]},
            {"job_name": "perf-exporter", "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}]}]}
        server = Prometheus(root / "prometheus", yaml.safe_dump(config)).start()
        yield server
    finally:
        if server is not None:
            server.stop()
        daemon.stop()
        node.stop()


def query(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(p["title"], [t["expr"] for t in p["targets"]]) for p in dashboard["panels"] if p["type"] != "row"]


def test_every_infrastructure_panel_query_returns_data(prometheus: Prometheus) -> None:
    dashboard = as_json(infrastructure.infrastructure_dashboard())
    panels = panel_queries(dashboard)
    assert len(panels) >= 15

    def concrete(expr: str) -> str:
        return expr.replace("$__rate_interval", "15s").replace('"$instance"', '".*"')

    last: list[list[str]] = [[]]

    def all_have_data() -> bool:
        last[0] = [f"{title}: {expr}" for title, exprs in panels for expr in exprs
                   if not query(prometheus, concrete(expr))]
        return not last[0]

    try:
        wait_for(all_have_data, timeout=60, interval=1, what="data in every infrastructure panel")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nqueries without data: {last[0]}") from None
    # the exporter's process panels show the exporter only, not node_exporter's or Prometheus's own process
    rss = query(prometheus, concrete(next(e for t, es in panels if t == "Exporter memory" for e in es)))
    assert {r["metric"]["job"] for r in rss} == {"perf-exporter"}


# ---------------------------------------------------------------------------------------------------------------
# The report's infrastructure section


def test_the_reports_infrastructure_section_reads_node_exporter_over_the_window(prometheus: Prometheus) -> None:
    import time

    from exporter.reports.infrastructure import infrastructure_section
    from exporter.reports.model import Window
    from exporter.reports.prometheus import PrometheusClient

    client = PrometheusClient(prometheus.url)
    try:
        section: dict[str, Any] = {}

        def measured() -> bool:
            now = time.time()
            section.update(infrastructure_section(lambda expr: client.vector(expr, now), Window(now - 20, now)))
            return all(f["status"] != "no data" for f in section["readings"].values())

        wait_for(measured, timeout=60, interval=1, what="every infrastructure reading over the window")
    finally:
        client.close()
    readings = section["readings"]
    cpu = readings["cpu_busy_max"]
    assert cpu["limit"] == infrastructure.CPU_BUSY and cpu["source"].startswith("prometheus: ")
    ((instance, busy),) = cpu["byInstance"].items()  # the one node_exporter of this machine
    assert 0 < busy <= 1 and cpu["status"] == ("missed" if busy > infrastructure.CPU_BUSY else "met")
    if cpu["status"] == "missed":
        assert cpu["reason"] == f"{instance} at {busy:.1%}, above {infrastructure.CPU_BUSY:.0%}"
    assert readings["network_received"]["status"] == "measured"
    assert section["status"] in ("met", "missed")
    assert section["missed"] == [k for k, f in readings.items() if f["status"] == "missed"]


def test_without_node_exporter_the_section_is_no_data_with_the_reason() -> None:
    from exporter.reports.infrastructure import infrastructure_section, judged, readings
    from exporter.reports.model import Window

    section = infrastructure_section(lambda expr: [], Window(0, 60))
    assert section["status"] == "no data" and "node_exporter" in section["reason"]
    cpu = next(r for r in readings(Window(0, 60)) if r.key == "cpu_busy_max")
    assert judged(cpu, {"db:9100": 0.95})["status"] == "missed"
    assert "db:9100 at 95.0%" in judged(cpu, {"db:9100": 0.95, "app:9100": 0.2})["reason"]
    assert judged(cpu, {"db:9100": 0.5})["status"] == "met"
