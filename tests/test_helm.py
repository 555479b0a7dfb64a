"""The Helm chart rendered without helm (tests/helm_render.py): one Deployment, or a StatefulSet whose pods run
one shard each, with the resources docs/configuration.md sizes. No cluster runs here: what a kubelet would do
with the manifests (the downward API, the pod names) is checked against its documented behaviour."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cli import _parser
from exporter.config.loading import parse_config
from exporter.sharding import Shard
from tests.helm_render import Chart, manifests

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm" / "perf-exporter"
TEMPLATES = ("configmap.yaml", "web-config-secret.yaml", "deployment.yaml", "statefulset.yaml", "service.yaml",
             "servicemonitor.yaml")


def values(**overrides: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    out = copy.deepcopy(loaded)
    out.update(overrides)
    return out


def render(vals: dict[str, Any]) -> list[dict[str, Any]]:
    chart = Chart(CHART)
    return [doc for name in TEMPLATES for doc in manifests(chart.render(name, vals))]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return found


def expand(args: list[str], env: dict[str, str]) -> list[str]:
    """What the kubelet passes: $(VAR) replaced by the container's variable."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in args]


def test_one_shard_is_a_deployment_running_every_job() -> None:
    docs = render(values())
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service"]
    deployment = of_kind(docs, "Deployment")[0]
    args = container(deployment)["args"]
    assert "--shard" not in args and "--total-shards" not in args
    parsed = _parser().parse_args(args)
    assert parsed.probe_workers == "auto" and parsed.config == Path("/etc/perf-exporter/config.yaml")
    config = yaml.safe_load(of_kind(docs, "ConfigMap")[0]["data"]["config.yaml"])
    assert parse_config(config, "configmap", env={}).api[0].name == "gateway"


def test_three_shards_are_a_statefulset_whose_pod_n_runs_shard_n() -> None:
    docs = render(values(shards=3))
    assert "Deployment" not in [d["kind"] for d in docs]
    statefulset = of_kind(docs, "StatefulSet")[0]
    assert statefulset["spec"]["replicas"] == 3
    headless = [s for s in of_kind(docs, "Service") if s["spec"].get("clusterIP") == "None"]
    assert [s["metadata"]["name"] for s in headless] == [statefulset["spec"]["serviceName"]]
    c = container(statefulset)
    env_from_pod = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"] if "valueFrom" in e}
    assert env_from_pod == {"POD_NAME": "metadata.name"}
    shards = []
    for ordinal in range(3):  # a StatefulSet names its pods <name>-<ordinal>
        pod = f"{statefulset['metadata']['name']}-{ordinal}"
        parsed = _parser().parse_args(expand(c["args"], {"POD_NAME": pod}))
        shards.append(Shard.from_flags(parsed.shard, parsed.total_shards))
    assert shards == [Shard(0, 3), Shard(1, 3), Shard(2, 3)]


def test_the_pods_resources_are_those_the_sizing_gives_for_5000_endpoints() -> None:
    resources = container(of_kind(render(values()), "Deployment")[0])["resources"]
    assert resources == values()["resources"]
    sizing = (REPO / "docs" / "configuration.md").read_text()
    row = next(line for line in sizing.splitlines() if line.startswith("| 5,000 endpoints, one pod |"))
    measured_mb = float(re.search(r"(\d+) MB peak", row).group(1))  # type: ignore[union-attr]

    def mebibytes(text: str) -> float:
        return float(text.removesuffix("Mi"))

    assert mebibytes(resources["requests"]["memory"]) >= measured_mb, "the request holds the measured peak"
    assert mebibytes(resources["limits"]["memory"]) >= 1.5 * measured_mb, "the limit leaves room for reloads"


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_to_yaml_kubernetes_reads(name: str) -> None:
    for vals in (values(), values(shards=2, serviceMonitor={"enabled": True, "interval": "15s"})):
        for doc in manifests(Chart(CHART).render(name, vals)):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys()
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_a_web_config_is_a_secret_passed_to_the_daemon_and_the_probes_log_in_through_it() -> None:
    web = {"tls_server_config": {"cert_file": "/etc/perf-exporter-web/tls.crt",
                                 "key_file": "/etc/perf-exporter-web/tls.key"},
           "basic_auth_users": {"prometheus": "$2y$10$abcdefghijklmnopqrstuv"}}
    docs = render(values(webConfig=web, webConfigFilesSecret="perf-tls", healthcheckAuthSecret="perf-probe"))
    (secret,) = of_kind(docs, "Secret")
    assert yaml.safe_load(secret["stringData"]["web.yml"]) == web
    deployment = of_kind(docs, "Deployment")[0]
    c = container(deployment)
    parsed = _parser().parse_args(c["args"])
    assert parsed.web_config_file == Path("/etc/perf-exporter-web/web.yml")
    # the kubelet's httpGet cannot log in: the probes are the healthcheck command, with the credentials' Secret
    assert c["livenessProbe"]["exec"]["command"] == ["perf-exporter", "healthcheck"]
    assert c["readinessProbe"]["exec"]["command"] == ["perf-exporter", "healthcheck", "--path", "/-/ready"]
    auth = next(e for e in c["env"] if e["name"] == "PERF_EXPORTER_HEALTHCHECK_AUTH")
    assert auth["valueFrom"]["secretKeyRef"] == {"name": "perf-probe", "key": "auth"}
    probe = _parser().parse_args(c["readinessProbe"]["exec"]["command"][1:])
    assert probe.command == "healthcheck" and probe.path == "/-/ready"
    sources = deployment["spec"]["template"]["spec"]["volumes"][1]["projected"]["sources"]
    assert [s["secret"]["name"] for s in sources] == ["perf-perf-exporter-web", "perf-tls"]
    # without a web config: plain HTTP probes, no Secret
    plain = render(values())
    assert not of_kind(plain, "Secret")
    assert container(of_kind(plain, "Deployment")[0])["livenessProbe"] == {
        "httpGet": {"path": "/-/healthy", "port": "metrics"}}
