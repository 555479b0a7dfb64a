"""Probe workers (--probe-workers N): the jobs run in worker processes and the serving process shows their series
as its own; reloads, a worker's death, traces between workers and shutdown are handled."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon_process import DaemonProcess
from tests.http_target import HttpTarget
from tests.processes import running
from tests.servers import Demo, wait_for


def api(name: str, url: str, *paths: str) -> str:
    endpoints = "".join(f"\n      - {{name: {p.strip('/').replace('/', '_')}, path: {p}}}" for p in paths)
    return (f"  - name: {name}\n    base_url: {url}\n    interval: 500ms\n    timeout: 400ms\n"
            f"    endpoints:{endpoints}\n")


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


@pytest.fixture
def workers_daemon(tmp_path: Path, target: HttpTarget) -> Iterator[tuple[DaemonProcess, Path]]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("api:\n" + "".join(api(f"t{i}", target.url, "/json", "/status/200") for i in range(4)))
    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", ("--probe-workers", "2"))
    try:
        yield daemon.wait_ready(), cfg
    finally:
        daemon.stop()


def test_the_serving_process_shows_every_workers_series_once_with_their_timing(
        workers_daemon: tuple[DaemonProcess, Path]) -> None:
    daemon, _ = workers_daemon
    assert len(children(daemon.proc.pid)) == 2
    for i in range(4):
        daemon.wait_value("perf_job_runs_total", lambda v: v >= 2, collector="api", target=f"t{i}", result="success")
    status, text = daemon.get("/metrics")
    assert status == 200
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names)), "a family's samples are not all under one HELP and TYPE"
    assert text.count("# TYPE perf_http_requests_total counter") == 1
    for process in ("main", "probe-0", "probe-1"):
        daemon.wait_value("perf_exporter_event_loop_delay_seconds_count", lambda v: v > 0, process=process)
    for process in ("probe-0", "probe-1"):  # each worker runs some of the jobs, and says how late they started
        daemon.wait_value("perf_exporter_schedule_lag_seconds_count", lambda v: v > 0, process=process)
    _, page = daemon.get("/")
    for i in range(4):
        assert f"<td>t{i}</td>" in page
    assert page.count("class='success'") == 4


def test_a_reload_keeps_unchanged_jobs_counting_and_drops_removed_ones(
        workers_daemon: tuple[DaemonProcess, Path], target: HttpTarget) -> None:
    daemon, cfg = workers_daemon
    kept = {"collector": "api", "target": "t0", "result": "success"}
    before = daemon.wait_value("perf_job_runs_total", lambda v: v >= 3, **kept)
    cfg.write_text("api:\n" + api("t0", target.url, "/json", "/status/200") + api("t1", target.url, "/json")
                   + api("t9", target.url, "/json"))
    status, _ = daemon.post("/-/reload")
    assert status == 200
    assert daemon.value("perf_job_runs_total", **kept) >= before  # not restarted: nothing counts from 0 again
    daemon.wait_value("perf_job_runs_total", lambda v: v >= 1, collector="api", target="t9", result="success")
    samples = daemon.samples()
    targets = {dict(labels).get("target") for name, labels in samples if name == "perf_http_requests_total"}
    assert targets == {"t0", "t1", "t9"}
    endpoints = {dict(labels)["endpoint"] for name, labels in samples
                 if name == "perf_http_requests_total" and dict(labels)["target"] == "t1"}
    assert endpoints == {"json"}, "the changed target's dropped endpoint went with it"


def test_a_worker_that_dies_is_started_again_with_its_jobs(workers_daemon: tuple[DaemonProcess, Path]) -> None:
    daemon, _ = workers_daemon
    first = children(daemon.proc.pid)
    daemon.wait_value("perf_job_runs_total", lambda v: v >= 2, collector="api", target="t0", result="success")
    os.kill(first[0], signal.SIGKILL)  # a child of the daemon this test started
    wait_for(lambda: "event=worker_exited" in daemon.log(), timeout=10, what="worker_exited logged")
    wait_for(lambda: len([p for p in children(daemon.proc.pid) if p not in first]) == 1, timeout=20,
             what="a new worker")
    for i in range(4):  # every job runs again, the dead worker's among them
        runs = daemon.wait_value("perf_job_runs_total", lambda v: v >= 1, collector="api", target=f"t{i}",
                                 result="success")
        daemon.wait_value("perf_job_runs_total", lambda v, r=runs: v > r, collector="api", target=f"t{i}",
                          result="success")


def test_sigterm_stops_the_workers_with_the_daemon(workers_daemon: tuple[DaemonProcess, Path]) -> None:
    daemon, _ = workers_daemon
    workers = children(daemon.proc.pid)
    assert daemon.stop() == 0
    assert not running(workers)
    assert "event=stopped" in daemon.log() and "Traceback" not in daemon.log()


def test_a_probes_trace_reaches_the_trace_collector_in_another_worker(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "demo.log")
    demo_url = demo.url
    daemon = None
    try:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(f"""api:
  - name: gateway
    base_url: {demo_url}
    interval: 1s
    timeout: 900ms
    endpoints:
      - {{name: create_order, method: POST, path: /api/v1/orders, traceparent: true,
          json: {{rider_id: 7, pickup: Alexanderplatz 1, dropoff: Flughafen BER}}}}
jaeger:
  - {{name: tracing, url: {demo_url}, interval: 1s, timeout: 900ms, settle: 500ms, lookback: 1m}}
""")
        daemon = DaemonProcess(cfg, tmp_path / "daemon.log", ("--probe-workers", "2")).wait_ready()
        # two jobs of equal weight on two workers: the probe's trace has to cross from one to the other
        spans = daemon.wait_value("perf_trace_probe_spans", lambda v: v >= 1, timeout=40, target="tracing",
                                  probe_target="gateway", probe="create_order")
        assert spans >= 1
    finally:
        if daemon is not None:
            daemon.stop()
        demo.stop()


def test_auto_counts_no_more_cpus_than_the_containers_cpu_limit(tmp_path: Path) -> None:
    from exporter.workers import usable_cpus

    cpu_max = tmp_path / "cpu.max"
    everything = len(os.sched_getaffinity(0))
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == everything
    cpu_max.write_text("50000 100000\n")  # half a CPU: one process
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("150000 100000\n")  # a limit of 1.5 CPUs: two, where there are two
    assert usable_cpus(cpu_max) == min(2, everything)
