"""``perf-exporter bench --segments N``: one run as N real k6 processes (one execution segment each) against the
real demo, their samples sent to a real Prometheus (Debian's 2.42) by remote write as native histograms, and
the run judged once from Prometheus. Short runs: a few VUs for a few seconds, pushed every second."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.child_process import OWNER_FILE, remove_stale_dirs
from exporter.history.sql import History
from exporter.load.native_histogram import from_api
from exporter.load.prometheus_receiver import DIR_PREFIX
from exporter.load.sut_lock import LOCK_DIR_ENV
from tests.processes import command_lines, running
from tests.servers import Demo, RemoteWritePrometheus, wait_for
from tests.test_load_bench import TARGETS

FAST_PUSH = {"K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s", "THINK_TIME": "0.05"}
# targets the demo keeps on a busy machine (its order creation alone takes ~200 ms), where a run must be met
LENIENT_TARGETS = "targets: {api_latency_p95: 2s, api_latency_p99: 3s, error_rate: 1%}\n"


@pytest.fixture
def targets_file(tmp_path: Path) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(TARGETS)
    return path


def bench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exporter", "bench", *args]


def bench_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **FAST_PUSH, LOCK_DIR_ENV: str(tmp_path / "locks")}


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bench_command(*args), capture_output=True, text=True, timeout=180,
                          env=bench_env(tmp_path), check=False)


def run_file(out: Path, scenario: str) -> dict[str, Any]:
    return dict(json.loads((out / f"{scenario}.json").read_text()))


def instance_summary(out: Path, scenario: str, index: int) -> dict[str, Any]:
    return dict(json.loads((out / f"{scenario}.instance-{index}.k6-summary.json").read_text())["metrics"])


def prometheus_sum(url: str, expr: str) -> dict[str, Any]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}).json()
    assert body["status"] == "success", body
    return dict(body["data"]["result"][0]["histogram"][1])


def test_three_segments_are_judged_as_one_run_from_the_summed_histograms(
        demo: Demo, prometheus: RemoteWritePrometheus, tmp_path: Path) -> None:
    targets_file = tmp_path / "lenient.yaml"
    targets_file.write_text(LENIENT_TARGETS)
    out = tmp_path / "reports"
    done = bench(tmp_path, "mixed", "--segments", "3", "--prometheus-rw", prometheus.url, "--base-url", demo.url,
                 "--config.file", str(targets_file), "--vus", "6", "--duration", "4s", "--warmup", "1s", "--out",
                     str(out))
    assert done.returncode in (0, 2), done.stderr  # 2 only when other work saturated this machine's CPU
    assert f"3 instances (segments), samples to Prometheus 2.42.0+ds at {prometheus.url}" in done.stderr
    run = run_file(out, "mixed")
    distributed = run["distributed"]
    assert distributed["mode"] == "segments" and distributed["prometheusVersion"] == "2.42.0+ds"
    instances = distributed["instances"]
    assert [(i["instance"], i["segment"]) for i in instances] == [("1", "0:1/3"), ("2", "1/3:2/3"), ("3", "2/3:1")]
    # every request each k6 made reached Prometheus, and the run counts exactly the measured ones of all three
    for i in instances:
        assert i["requestsSent"] == i["requestsMade"] == instance_summary(out, "mixed", int(i["instance"]))[
            "http_reqs"]["count"], i
    measured = [instance_summary(out, "mixed", n)["http_reqs{phase:measure}"]["count"] for n in (1, 2, 3)]
    assert run["measured"]["requests"] == run["summary"]["totalRequests"] == sum(measured)
    assert sum(i["requestsSent"] for i in instances) > sum(measured)  # the warm-up was sent, and left out
    # P95 and P99 are the quantiles of the instances' histograms added up: Prometheus' own sum() of the same series
    summed = from_api(prometheus_sum(
        prometheus.url, f'sum(k6_http_req_duration_seconds{{testid="{distributed["runId"]}",phase="measure"}})'))
    assert summed.count == run["measured"]["requests"]
    assert run["measured"]["p95_ms"] == pytest.approx(summed.quantile(0.95) * 1000, rel=1e-9)
    assert run["measured"]["p99_ms"] == pytest.approx(summed.quantile(0.99) * 1000, rel=1e-9)
    assert run["measured"]["avg_ms"] == pytest.approx(summed.mean * 1000, rel=1e-9)
    # per stage, per part of the mix, per endpoint, as a single run has them
    assert [s["name"] for s in run["stages"]] == ["1"] and run["stages"][0]["requests"] == sum(measured)
    parts = {p["name"]: p["requests"] for p in run["parts"]}
    assert sum(parts.values()) == sum(measured)
    for part, share in {"order_creation": 0.4, "trip_update": 0.3, "location_update": 0.2,
                        "notification": 0.1}.items():  # iterationInTest is unique across segments
        assert abs(run["shares"][part] - share) <= 0.02, run["shares"]
    endpoints = {e["name"]: e for e in run["endpoints"]}
    assert sum(e["requests"] for e in endpoints.values()) == sum(measured)
    assert endpoints["create_order"]["phases_ms"]["wait"] > 0
    # the targets, the report and its recommendations, the history entry
    findings = {f["key"]: f for f in run["verdict"]["findings"]}
    assert findings["api_latency_p95"]["samples"] == sum(measured)
    assert findings["api_latency_p95"]["observed"] == run["measured"]["p95_ms"]
    assert (out / "report" / "report.md").exists()
    history = History(out / "history.sqlite")
    try:
        [stored] = history.runs("mixed")
    finally:
        history.close()
    assert stored.repeats[0].figures[("measured", "p95_ms")] == pytest.approx(run["measured"]["p95_ms"])
    assert run["timeline"] and run["timeline"][-1]["requests"] == sum(measured)


def test_a_latency_fault_fails_the_combined_verdict_naming_p95(faulty_demo: Demo, targets_file: Path,
                                                               tmp_path: Path) -> None:
    faulty_demo.faults({"latency_ms": 600})
    out = tmp_path / "reports"
    done = bench(tmp_path, "api", "--segments", "3", "--base-url", faulty_demo.url, "--config.file", str(targets_file),
                 "--vus", "3", "--duration", "3s", "--warmup", "1s", "--out", str(out), "--no-history")
    run = run_file(out, "api")
    assert run["distributed"]["prometheus"].startswith("http://127.0.0.1:")  # one bench started for the run
    missed = {f["key"] for f in run["verdict"]["findings"] if not f["met"]}
    assert {"api_latency_p95", "endpoints.create_order.api_latency_p95"} <= missed
    assert run["measured"]["p95_ms"] >= 600
    assert "api_latency_p95: " in done.stderr
    if run["generator"]["machineCpu"] > 0.9:  # other work saturated this machine: said, not counted
        assert (done.returncode, run["verdict"]["status"]) == (2, "inconclusive"), done.stderr
    else:
        assert (done.returncode, run["verdict"]["status"]) == (1, "missed"), done.stderr


def _k6_of(instance: int, run_dir: Path) -> int | None:
    """The pid of the k6 process of ``instance`` writing its summary under ``run_dir``."""
    return next((pid for pid, argv in command_lines()
                 if f"instance_id={instance}".encode() in argv and any(str(run_dir).encode() in a for a in argv)),
                None)


def test_killing_one_segment_mid_run_makes_the_verdict_inconclusive_naming_it(demo: Demo, targets_file: Path,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.Popen(bench_command("api", "--segments", "3", "--base-url", demo.url, "--config.file",
                                          str(targets_file), "--vus", "3", "--duration", "6s", "--warmup", "1s",
                                          "--out", str(out), "--no-history"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=bench_env(tmp_path))
    try:
        wait_for(lambda: _k6_of(2, out) is not None and (out / "api.instance-2.k6.log").exists(), timeout=60,
                 what="the second segment's k6")
        time.sleep(3)  # into the measured phase: it has sent samples, then it is gone
        pid = _k6_of(2, out)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "instance 2 of 3 (segment 1/3:2/3) failed: k6 exited with -9 (killed by signal 9)" in err
    run = run_file(out, "api")
    assert run["verdict"]["status"] == "inconclusive"
    [named] = [r for r in run["verdict"]["reasons"] if r.startswith("instance 2 of 3")]
    assert "failed" in named
    assert not any(r.startswith(("instance 1 ", "instance 3 ")) for r in run["verdict"]["reasons"])
    assert run["recommendations"][-1]["message"] == named


def _children_of(parent: int) -> dict[int, bytes]:
    """The processes whose parent is ``parent``: pid -> argv[0]."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found[int(entry.name)] = argv0
    return found


def _owner(directory: Path) -> int | None:
    try:
        return int((directory / OWNER_FILE).read_text())
    except (OSError, ValueError):  # another test's, being made
        return None


def test_a_killed_bench_takes_its_segments_and_its_own_prometheus_with_it(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.Popen(bench_command("api", "--segments", "2", "--base-url", demo.url, "--vus", "2",
                                          "--duration", "30s", "--out", str(out), "--no-history"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=bench_env(tmp_path))
    try:
        wait_for(lambda: _k6_of(2, out) is not None, timeout=60, what="the second segment's k6")
        children = _children_of(proc.pid)
        assert any(argv0.endswith(b"prometheus") for argv0 in children.values()), children
        assert sum(argv0.endswith(b"k6") for argv0 in children.values()) == 2, children
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not running(children), timeout=15, what="bench's k6 and Prometheus gone with it")
    finally:
        proc.kill()
    [left] = [d for d in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*") if _owner(d) == proc.pid]
    assert left in remove_stale_dirs(left.parent, DIR_PREFIX), "the next bench removes what the killed one left"


def test_a_saturated_instance_makes_the_run_inconclusive_naming_it(faulty_demo: Demo, targets_file: Path,
                                                                   tmp_path: Path) -> None:
    faulty_demo.faults({"latency_ms": 100})  # one VU then starts at most ~10 iterations a second
    out = tmp_path / "reports"
    done = bench(tmp_path, "arrival-rate", "--segments", "3", "--base-url", faulty_demo.url, "--config.file",
                 str(targets_file), "--vus", "3", "--rate", "90", "--duration", "3s", "--warmup", "1s",
                 "--out", str(out), "--no-history")
    assert done.returncode == 2, done.stderr
    run = run_file(out, "arrival-rate")
    for i in run["distributed"]["instances"]:
        assert i["droppedIterations"] > 0
        assert f"instance {i['instance']} of 3 (segment {i['segment']}) was saturated: " \
               f"{i['droppedIterations']} dropped iterations" in done.stderr
    assert run["generator"]["droppedIterations"] == sum(i["droppedIterations"] for i in run["distributed"]["instances"])


@pytest.mark.parametrize(("flags", "message"), [
    (("--enable-feature=native-histograms",),
     "Prometheus 2.42.0+ds does not accept remote write: start it with --web.enable-remote-write-receiver"),
    (("--web.enable-remote-write-receiver",),
     "Prometheus 2.42.0+ds drops native histograms unless started with --enable-feature=native-histograms "
     "(needed before 3.8)"),
])
def test_a_prometheus_that_cannot_store_the_run_is_refused_before_k6_starts(
        flags: tuple[str, ...], message: str, demo: Demo, targets_file: Path, tmp_path: Path) -> None:
    server = RemoteWritePrometheus(tmp_path / "prometheus", "global: {}\n")
    server.flags = flags
    server.start()
    try:
        done = bench(tmp_path, "api", "--segments", "2", "--prometheus-rw", f"{server.url}/api/v1/write",
                     "--base-url", demo.url, "--config.file", str(targets_file), "--out", str(tmp_path / "out"))
    finally:
        server.stop()
    assert done.returncode == 3, done.stderr
    assert f"bench: {server.url}: {message}\n" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "api.json").exists()


def test_more_segments_than_vus_is_refused(demo: Demo, targets_file: Path, tmp_path: Path) -> None:
    done = bench(tmp_path, "api", "--segments", "3", "--vus", "2", "--base-url", demo.url, "--config.file",
                 str(targets_file), "--out", str(tmp_path / "out"))
    assert done.returncode == 3, done.stderr
    assert "--segments 3: the run has 2 VUs at most, and each instance needs one at least" in done.stderr
    assert "Traceback" not in done.stderr
