"""``perf-exporter bench --k6-operator N --kubeconfig FILE``: the TestRun's lifecycle through the Kubernetes API
(the real ``kubernetes`` client) against tests/k8s_api.py, a small API server that plays k6-operator by running
the runners as local k6 processes with the command line the operator gives its pods. No cluster runs here. The
runners send to a real Prometheus, and the run is judged from it as ``--segments`` is."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.k8s_api import TOKEN, FakeKubernetes
from tests.servers import Demo, RemoteWritePrometheus, free_port
from tests.test_load_segments import LENIENT_TARGETS, bench, run_file

REPO = Path(__file__).resolve().parent.parent
VERBS = {"POST": "create", "DELETE": "delete"}


@pytest.fixture
def targets_file(tmp_path: Path) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(LENIENT_TARGETS)
    return path


def documented_rbac() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of the Role in docs/load.md's "Beyond one machine"."""
    text = (REPO / "docs" / "load.md").read_text()
    block = re.search(r"```yaml\n(kind: Role\n.*?)```", text, re.S)
    assert block, "docs/load.md has no Role for bench --kubeconfig"
    role = yaml.safe_load(block.group(1))
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def rbac_of(calls: list[tuple[str, str]]) -> set[tuple[str, str, str]]:
    out = set()
    for method, path in calls:
        parts = path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        resource_at = parts.index("namespaces") + 2
        resource = parts[resource_at]
        verb = VERBS.get(method) or ("get" if len(parts) > resource_at + 1 else "list")
        out.add((group, resource, verb))
    return out


def test_a_testrun_is_created_followed_to_its_end_judged_from_prometheus_and_deleted(
        demo: Demo, prometheus: RemoteWritePrometheus, targets_file: Path, tmp_path: Path) -> None:
    (tmp_path / "cluster").mkdir()
    cluster = FakeKubernetes(tmp_path / "cluster").start()
    try:
        out = tmp_path / "reports"
        done = bench(tmp_path, "mixed", "--k6-operator", "2", "--kubeconfig",
                     str(cluster.kubeconfig(tmp_path / "kubeconfig")), "--prometheus-rw", prometheus.url,
                     "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "4", "--duration", "3s",
                     "--warmup", "1s", "--out", str(out))
    finally:
        cluster.stop()
    assert done.returncode in (0, 2), done.stderr  # 2 only when other work saturated this machine's CPU
    run = run_file(out, "mixed")
    distributed = run["distributed"]
    name = f"perf-mixed-{distributed['runId'].rsplit('-', 1)[-1]}"
    # the lifecycle, said as it happened
    stages = re.findall(rf"testrun/{name}: stage (\w+)", done.stderr)
    assert stages[0] in ("initialization", "initialized") and "started" in stages and stages[-1] == "finished", stages
    assert f"created configmap/{name}-scripts and testrun/{name} in namespace load at {cluster.url}" in done.stderr
    assert f"deleted testrun/{name} (its jobs and pods with it) and configmap/{name}-scripts" in done.stderr
    assert re.search(r"mixed +\d+/4s stage=\w+ vus=\d+ req/s=\d+", done.stderr)  # progress from Prometheus
    assert not cluster.config_maps and all(r.deleted for r in cluster.test_runs.values())
    # the TestRun the runners ran: the run id on every sample, no per-runner thresholds
    manifest = list(yaml.safe_load_all((out / "mixed.testrun.yaml").read_text()))[1]
    assert f"--tag testid={distributed['runId']}" in manifest["spec"]["arguments"]
    assert {e["name"]: e["value"] for e in manifest["spec"]["runner"]["env"]}["THRESHOLDS"] == "{}"
    # judged as one run from Prometheus: both runners, every measured request
    assert distributed["mode"] == "k6-operator"
    assert [(i["instance"], i["segment"], i["ended"]) for i in distributed["instances"]] == [
        ("1", "0:1/2", "job succeeded"), ("2", "1/2:1", "job succeeded")]
    assert all(i["requestsSent"] > 0 for i in distributed["instances"])
    measured = httpx.get(f"{prometheus.url}/api/v1/query", params={
        "query": f'sum(k6_http_reqs_total{{testid="{distributed["runId"]}",phase="measure"}})'}).json()
    assert run["measured"]["requests"] == int(measured["data"]["result"][0]["value"][1])
    assert {p["name"] for p in run["parts"]} == {"order_creation", "trip_update", "location_update", "notification"}
    assert (out / "report" / "report.md").exists() and (out / "history.sqlite").exists()
    # exactly the calls the documented Role allows, with the kubeconfig's token, which no output shows
    assert rbac_of(cluster.calls) == documented_rbac()
    assert cluster.tokens == {f"Bearer {TOKEN}"}
    assert TOKEN not in done.stderr + done.stdout
    assert not any(TOKEN in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_a_runner_pod_that_dies_makes_the_run_inconclusive_naming_it_and_keep_leaves_the_testrun(
        demo: Demo, prometheus: RemoteWritePrometheus, targets_file: Path, tmp_path: Path) -> None:
    (tmp_path / "cluster").mkdir()
    cluster = FakeKubernetes(tmp_path / "cluster", fail={2: 2.5}).start()
    try:
        out = tmp_path / "reports"
        done = bench(tmp_path, "api", "--k6-operator", "2", "--kubeconfig",
                     str(cluster.kubeconfig(tmp_path / "kubeconfig")), "--prometheus-rw", prometheus.url, "--keep",
                     "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration", "4s",
                     "--warmup", "1s", "--out", str(out), "--no-history")
        kept = (dict(cluster.config_maps), {n: r.deleted for n, r in cluster.test_runs.items()})
    finally:
        cluster.stop()
    assert done.returncode == 2, done.stderr
    assert "instance 2 of 2 (segment 1/2:1) failed: job failed" in done.stderr
    run = run_file(out, "api")
    assert run["verdict"]["status"] == "inconclusive"
    assert [r for r in run["verdict"]["reasons"] if r.startswith("instance ")] == [
        "instance 2 of 2 (segment 1/2:1) failed: job failed"]
    [name] = kept[1]
    assert kept[1] == {name: False} and list(kept[0]) == [f"{name}-scripts"]
    assert f"kept testrun/{name} and configmap/{name}-scripts (kubectl delete -n load testrun/{name} " \
           f"configmap/{name}-scripts)" in done.stderr


def test_an_unreachable_cluster_is_one_clear_line_without_its_token(demo: Demo, prometheus: RemoteWritePrometheus,
                                                                    targets_file: Path, tmp_path: Path) -> None:
    cluster = FakeKubernetes(tmp_path)  # never started: nothing listens on its port
    config = cluster.kubeconfig(tmp_path / "kubeconfig")
    cluster.server.server_close()
    done = bench(tmp_path, "api", "--k6-operator", "2", "--kubeconfig", str(config), "--prometheus-rw",
                 prometheus.url, "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration",
                 "1s", "--out", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    assert re.search(r"bench: could not create configmap/perf-api-\w+-scripts in namespace load at "
                     rf"{re.escape(cluster.url)}: ", done.stderr), done.stderr
    assert "Traceback" not in done.stderr and TOKEN not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--k6-operator", "2", "--kubeconfig", "KUBECONFIG"],
     "--k6-operator with --kubeconfig needs --prometheus-rw URL"),
    (["--kubeconfig", "KUBECONFIG", "--prometheus-rw", "http://127.0.0.1:9"],
     "--kubeconfig: only with --k6-operator N"),
    (["--segments", "2", "--keep"], "--keep: only with --k6-operator N --kubeconfig FILE"),
    (["--segments", "2", "--k6-operator", "2"], "--segments and --k6-operator: give one"),
])
def test_options_that_make_no_distributed_run_are_one_clear_line(args: list[str], message: str, demo: Demo,
                                                                 targets_file: Path, tmp_path: Path) -> None:
    cluster = FakeKubernetes(tmp_path)
    kubeconfig = cluster.kubeconfig(tmp_path / "kubeconfig")
    cluster.server.server_close()
    done = bench(tmp_path, "api", *[str(kubeconfig) if a == "KUBECONFIG" else a for a in args], "--base-url",
                 demo.url, "--config.file", str(targets_file), "--out", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    assert f"bench: {message}" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_kubeconfig_the_manifest_is_written_as_before(tmp_path: Path) -> None:
    done = bench(tmp_path, "api", "--k6-operator", "3", "--base-url", f"http://127.0.0.1:{free_port()}",
                 "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load_all((tmp_path / "api.testrun.yaml").read_text())
