"""Where a run goes besides its report: a k6-operator TestRun for Kubernetes (its structure; no cluster here),
and Prometheus through remote write, as native histograms that aggregate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from exporter.config.loading import load_config
from exporter.load.k6_binary import find_k6
from exporter.slo.load_dashboard import PATH as LOAD_DASHBOARD
from exporter.slo.render import dashboard_outputs
from tests.servers import Demo, Prometheus, RemoteWritePrometheus, wait_for

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tripo04os.yaml"


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", "bench", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})}, check=False)


def test_k6_operator_testrun_carries_the_scripts_thresholds_parallelism_and_remote_write(tmp_path: Path) -> None:
    config = tmp_path / "targets.yaml"
    config.write_text("targets: {api_latency_p95: 300ms, endpoints: {create_order: {api_latency_p95: 250ms}}}\n")
    done = bench("mixed", "--k6-operator", "4", "--vus", "2000", "--duration", "10m", "--config.file", str(config),
                 "--base-url", "http://gateway.tripo04os:8020", "--prometheus-rw", "http://prometheus:9090",
                 "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    config_map, test_run = list(yaml.safe_load_all((tmp_path / "mixed.testrun.yaml").read_text()))
    assert (config_map["kind"], test_run["kind"], test_run["apiVersion"]) == ("ConfigMap", "TestRun", "k6.io/v1alpha1")
    spec = test_run["spec"]
    assert spec["parallelism"] == 4
    assert spec["script"]["configMap"] == {"name": config_map["metadata"]["name"], "file": "mixed.js"}
    assert set(config_map["data"]) == {"mixed.js", "tripo.js"}
    assert "'./tripo.js'" in config_map["data"]["mixed.js"]  # a ConfigMap is flat: no lib/ directory
    arguments = spec["arguments"].split()
    assert arguments[arguments.index("--vus") + 1] == "2000"
    assert "--out" in arguments and "experimental-prometheus-rw" in arguments
    assert not {"--address", "--summary-export"} & set(arguments)  # local-only options stay local
    env = {e["name"]: e["value"] for e in spec["runner"]["env"]}
    assert env["TEST_BASE_URL"] == "http://gateway.tripo04os:8020"
    assert env["K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM"] == "true"
    assert env["K6_PROMETHEUS_RW_SERVER_URL"] == "http://prometheus:9090/api/v1/write"
    thresholds = json.loads(env["THRESHOLDS"])
    assert "p(95)<300" in thresholds["http_req_duration{phase:measure}"]
    assert thresholds["http_req_duration{phase:measure,endpoint:create_order}"] == ["p(95)<250"]

    # The flattened scripts are what the runners execute: k6 must accept them as they are in the ConfigMap.
    flat = tmp_path / "configmap"
    flat.mkdir()
    for name, text in config_map["data"].items():
        (flat / name).write_text(text)
    inspected = subprocess.run([str(find_k6().path), "inspect", "--include-system-env-vars", "mixed.js"], cwd=flat,
                               capture_output=True, text=True, timeout=60, env={**os.environ, **env}, check=False)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["thresholds"] == thresholds


def test_a_credential_in_the_base_url_goes_to_a_secret_not_into_the_manifest(tmp_path: Path) -> None:
    done = bench("api", "--k6-operator", "2", "--base-url", "HTTPS://user:pa@ss-Zq7@gateway:8443",
                 "--prometheus-rw", "http://prometheus:9090/?token=tok-Zq7", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    manifest = (tmp_path / "api.testrun.yaml").read_text()
    assert "Zq7" not in manifest + done.stdout + done.stderr
    _, test_run = list(yaml.safe_load_all(manifest))
    env = {e["name"]: e for e in test_run["spec"]["runner"]["env"]}
    for name in ("TEST_BASE_URL", "K6_PROMETHEUS_RW_SERVER_URL"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "perf-exporter-k6-env",
                                                                          "key": name}}}
        assert f'--from-literal={name}="${name}"' in done.stderr  # the command to create it, values from the shell
    assert env["K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM"] == {"name": "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM",
                                                                 "value": "true"}


def _query(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.loads(response.read())["data"]["result"])


def test_a_run_reaches_prometheus_as_native_histograms_not_percentile_gauges(prometheus: RemoteWritePrometheus,
                                                                            tmp_path: Path) -> None:
    demo = Demo(tmp_path / "demo.log")
    url = demo.url
    try:
        config = tmp_path / "targets.yaml"
        config.write_text("targets: {api_latency_p95: 500ms}\n")
        done = bench("api", "--base-url", url, "--config.file", str(config), "--vus", "2", "--duration", "5s",
                     "--warmup", "1s", "--out", str(tmp_path / "reports"), "--prometheus-rw", prometheus.url,
                     env={"THINK_TIME": "0.05", "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s"})
        assert done.returncode in (0, 1, 2), done.stderr  # the verdict is test_load_bench's; here, its outputs
    finally:
        demo.stop()
    wait_for(lambda: bool(_query(prometheus, 'histogram_count(k6_http_req_duration_seconds{testid="api"})')),
             timeout=30, what="k6's native histogram in Prometheus")
    # Aggregatable: one quantile across every endpoint and stage, and the exact share under the 500 ms target.
    share = _query(prometheus, 'sum(histogram_fraction(0, 0.5, k6_http_req_duration_seconds{testid="api"}))'
                               ' / count(k6_http_req_duration_seconds{testid="api"})')
    within = float(share[0]["value"][1])
    k6_p95 = json.loads((tmp_path / "reports" / "api.json").read_text())["measured"]["p95_ms"]
    if abs(k6_p95 - 500) > 50:  # P95 under the target exactly when 95 % of the requests are (bucket error aside)
        assert (within >= 0.95) == (k6_p95 < 500), (within, k6_p95)
    names = {r["metric"]["__name__"] for r in _query(prometheus, '{__name__=~"k6_http_req_duration.*"}')}
    assert names == {"k6_http_req_duration_seconds"}, names  # no k6_http_req_duration_p95 style gauges

    # The "Load test" dashboard, as rendered, shows this run: every panel but the dropped iterations has data.
    dashboard = json.loads(dashboard_outputs(load_config(EXAMPLE, env={}))[LOAD_DASHBOARD])
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "2m").replace('"$testid"', '"api"')
            if panel["title"] != "Dropped iterations per second":
                assert _query(prometheus, expr), f"{panel['title']}: no data for {expr}"


def test_the_load_dashboard_queries_are_valid_promql_on_a_grid_of_unique_panels(tmp_path: Path) -> None:
    dashboard = json.loads(dashboard_outputs(load_config(EXAMPLE, env={}))[LOAD_DASHBOARD])
    assert dashboard["uid"] == "perf-load" and "perf-exporter" in dashboard["tags"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, p["title"]
        taken |= cells
    exprs = [t["expr"].replace("$__rate_interval", "1m").replace('"$testid"', '".*"')
             for p in panels for t in p.get("targets", [])]
    rules = tmp_path / "queries.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "load", "rules": [
        {"record": f"load:query_{i}:check", "expr": e} for i, e in enumerate(exprs)]}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    p95 = next(p for p in panels if p.get("title") == "P95 by endpoint")
    assert 0.5 in [s["value"] for s in p95["fieldConfig"]["defaults"]["thresholds"]["steps"]]
