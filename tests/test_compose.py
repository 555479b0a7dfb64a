"""The guide's environments as files. No Docker engine runs here, so the compose files are validated against the
Compose specification's JSON schema (tests/fixtures/compose-spec/) and checked for what they mount, publish and
name; the Prometheus and Alertmanager configs they mount are checked by promtool and amtool; and the way
without Docker (scripts/monitoring-stack.sh) runs for real: Debian's Prometheus and Alertmanager with our rules,
scraping a real daemon and node_exporter."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from exporter.slo.provisioning import DASHBOARDS_PATH, PROMETHEUS_URL
from tests.daemon_process import DaemonProcess
from tests.servers import free_port, wait_for

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.monitoring.yml")


def compose(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / name).read_text()))


def services() -> dict[str, dict[str, Any]]:
    """Both files' services: one project (the same ``name``), one network, as the guide runs them."""
    return {name: service for file in COMPOSE_FILES for name, service in compose(file)["services"].items()}


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_is_valid_against_the_compose_specification(name: str) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose(name))]
    assert errors == []


def test_the_schema_rejects_what_compose_would_reject() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    broken = compose("docker-compose.monitoring.yml")
    broken["services"]["exporter"]["depends_on"]["demo"]["condition"] = "whenever"
    broken["services"]["prometheus"]["restart_policy"] = "always"  # compose's key is `restart`
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(broken)}
    assert {path.split("/")[1] for path in paths} == {"exporter", "prometheus"}, paths


def test_both_files_are_one_project_so_the_monitoring_stack_reaches_the_test_environment() -> None:
    assert {compose(name)["name"] for name in COMPOSE_FILES} == {"tripo04os-testing"}
    names = [name for file in COMPOSE_FILES for name in compose(file)["services"]]
    assert len(names) == len(set(names)), "a service defined in both files would be replaced by the second"


def _published(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[0]) for p in service.get("ports", [])}


def test_the_guides_addresses_are_published() -> None:
    by_name = services()
    expected = {"grafana": 3000, "prometheus": 9090, "jaeger": 16686, "alertmanager": 9093, "exporter": 9469,
                "demo": 8020, "node-exporter": 9100, "postgres": 5432, "redis": 6379}
    assert {name: port for name, port in expected.items() if port in _published(by_name[name])} == expected
    grafana = by_name["grafana"]["environment"]
    assert (grafana["GF_SECURITY_ADMIN_USER"], grafana["GF_SECURITY_ADMIN_PASSWORD"]) == ("admin", "admin")
    assert by_name["postgres"]["container_name"] == "postgres-test"  # the guide's `docker exec postgres-test`


def test_every_mounted_repository_path_exists_and_grafana_gets_our_provisioning() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source}"
    mounts = dict(v.split(":")[:2] for v in services()["grafana"]["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./grafana/dashboards"] == DASHBOARDS_PATH  # where the provisioned provider looks
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", PROMETHEUS_URL).groups()  # type: ignore[union-attr]
    assert host in services() and int(port) in _published(services()[host])


def test_prometheus_scrapes_services_that_exist_and_alerts_to_the_alertmanager() -> None:
    config = yaml.safe_load((REPO / "compose" / "prometheus.yml").read_text())
    by_name = services()
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    targets += [t for a in config["alerting"]["alertmanagers"] for c in a["static_configs"] for t in c["targets"]]
    for target in targets:
        host, port = target.split(":")
        if host != "localhost":
            assert host in by_name and int(port) in _published(by_name[host]), target
    assert {job["job_name"] for job in config["scrape_configs"]} >= {"perf-exporter", "node"}


def test_the_exporter_probes_the_demo_and_profiles_the_test_environment() -> None:
    env = services()["exporter"]["environment"]
    assert env["TEST_BASE_URL"] == "http://demo:8020"
    assert "@postgres:5432/tripo04os_test" in env["DATABASE_URL"] and "redis:6379" in env["REDIS_URL"]
    demo = services()["demo"]["environment"]
    assert "@postgres:5432/" in demo["DEMO_DATABASE_URL"] and "redis:6379" in demo["DEMO_REDIS_URL"]
    assert services()["exporter"]["command"][:2] == ["run", "--config.file"]
    shipped = "/usr/share/perf-exporter/examples/tripo04os.yaml"
    assert services()["exporter"]["command"][2] == shipped
    assert f"COPY exporter/demo/tripo04os.yaml {shipped}" in (REPO / "Dockerfile").read_text()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")
def test_the_mounted_prometheus_config_loads_our_rules(tmp_path: Path) -> None:
    """promtool check config, with the container's rule paths pointed at the repository's files."""
    text = (REPO / "compose" / "prometheus.yml").read_text().replace("/etc/prometheus/rules", str(REPO / "rules"))
    (tmp_path / "prometheus.yml").write_text(text)
    out = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "infrastructure.rules.yml" in out.stdout and "health.rules.yml" in out.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (Debian package prometheus-alertmanager)")
def test_the_mounted_alertmanager_config_is_valid() -> None:
    out = subprocess.run(["amtool", "check-config", str(REPO / "compose" / "alertmanager.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------------------------
# Without Docker: scripts/monitoring-stack.sh


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_monitoring_stack_script_runs_prometheus_and_alertmanager_with_our_rules(tmp_path: Path) -> None:
    daemon = DaemonProcess(None, tmp_path / "daemon.log")
    ports = {"PROMETHEUS_PORT": free_port(), "ALERTMANAGER_PORT": free_port(), "NODE_EXPORTER_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "MONITORING_DIR": str(tmp_path / "stack"),
           "EXPORTER_TARGET": f"127.0.0.1:{daemon.port}", "SCRAPE_INTERVAL": "1s"}
    script = ["bash", str(REPO / "scripts" / "monitoring-stack.sh")]
    try:
        daemon.wait_ready()
        started = subprocess.run([*script, "start"], env=env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        prometheus = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"
        groups = {g["name"] for g in _get(f"{prometheus}/api/v1/rules")["data"]["groups"]}
        assert {"perf-exporter-health", "perf-exporter-api", "perf-exporter-infrastructure"} <= groups

        def both_scraped() -> bool:
            active = _get(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            return {t["labels"]["job"] for t in active if t["health"] == "up"} == {"perf-exporter", "node"}

        wait_for(both_scraped, timeout=30, interval=0.5, what="the exporter and node_exporter scraped")
        wait_for(lambda: bool(_get(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]),
                 timeout=30, interval=0.5, what="Prometheus sending to the Alertmanager")
        status = subprocess.run([*script, "status"], env=env, capture_output=True, text=True, timeout=30)
        assert status.stdout.count(": running") == 3, status.stdout
    finally:
        stopped = subprocess.run([*script, "stop"], env=env, capture_output=True, text=True, timeout=60)
        daemon.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    status = subprocess.run([*script, "status"], env=env, capture_output=True, text=True, timeout=30)
    assert status.stdout.count(": stopped") == 3, status.stdout
