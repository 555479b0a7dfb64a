"""The daemon as users run it: a real process, scraped over HTTP, reloaded and stopped with signals."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess
from tests.http_target import HttpTarget, SilentServer
from tests.servers import wait_for


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


def api_config(name: str, url: str, interval: str = "1s", timeout: str = "500ms", path: str = "/json") -> str:
    return f"""
api:
  - name: {name}
    base_url: {url}
    interval: {interval}
    timeout: {timeout}
    endpoints:
      - {{name: probe, path: {path}}}
"""


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[object]:
    started: list[DaemonProcess] = []

    def start(config_text: str | None, *extra: str) -> tuple[DaemonProcess, Path]:
        cfg = tmp_path / "cfg.yaml"
        if config_text is not None:
            cfg.write_text(config_text)
        daemon = DaemonProcess(cfg if config_text is not None else None, tmp_path / f"daemon{len(started)}.log",
                               extra)
        started.append(daemon)
        return daemon, cfg

    yield start
    for daemon in started:
        daemon.stop()


def test_metrics_show_the_probe_results_and_job_health(daemon_factory, target: HttpTarget) -> None:
    daemon, _ = daemon_factory(api_config("gw", target.url))
    daemon.wait_ready()
    daemon.wait_value("perf_http_requests_total", lambda v: v >= 1, target="gw", endpoint="probe", method="GET",
                      outcome="success")
    assert daemon.value("perf_target_up", collector="api", target="gw") == 1
    assert daemon.value("perf_job_runs_total", collector="api", target="gw", result="success") >= 1
    assert daemon.value("perf_job_last_success_timestamp_seconds", collector="api", target="gw") > time.time() - 60
    assert daemon.value("perf_config_last_reload_successful") == 1
    assert daemon.value("process_resident_memory_bytes") > 0
    assert daemon.value("perf_exporter_asyncio_tasks") >= 2  # at least the web server's task and the stop wait
    status, page = daemon.get("/")
    assert status == 200 and "gw" in page and "/metrics" in page
    assert daemon.get("/-/healthy")[0] == 200


def test_a_bad_reload_keeps_the_old_config_running(daemon_factory, target: HttpTarget) -> None:
    daemon, cfg = daemon_factory(api_config("gw", target.url))
    daemon.wait_ready()
    daemon.wait_value("perf_target_up", lambda v: v == 1, collector="api", target="gw")
    loaded_at = daemon.value("perf_config_last_reload_success_timestamp_seconds")
    cfg.write_text(api_config("gw", target.url, interval="often"))
    status, body = daemon.post("/-/reload")
    assert status == 500
    assert f"{cfg}: api[0].interval: expected a duration like '5s', got 'often'" in body
    assert daemon.value("perf_config_last_reload_successful") == 0
    assert daemon.value("perf_config_last_reload_success_timestamp_seconds") == loaded_at  # the last good one
    before = daemon.value("perf_job_runs_total", collector="api", target="gw", result="success")
    daemon.wait_value("perf_job_runs_total", lambda v: v > before, collector="api", target="gw", result="success")
    assert "config_reload_failed" in daemon.log()


def test_sighup_reload_stops_removed_targets_and_their_series_disappear(daemon_factory, target: HttpTarget) -> None:
    daemon, cfg = daemon_factory(api_config("old", target.url))
    daemon.wait_ready()
    daemon.wait_value("perf_http_requests_total", lambda v: v >= 1, target="old", endpoint="probe", method="GET",
                      outcome="success")
    loaded_at = daemon.value("perf_config_last_reload_success_timestamp_seconds")
    assert loaded_at is not None and loaded_at <= time.time()
    cfg.write_text(api_config("new", target.url))
    signalled_at = time.time()
    daemon.signal(signal.SIGHUP)
    daemon.wait_value("perf_http_requests_total", lambda v: v >= 1, target="new", endpoint="probe", method="GET",
                      outcome="success")
    samples = daemon.samples()
    assert not [key for key in samples if ("target", "old") in key[1]]
    assert daemon.value("perf_config_last_reload_successful") == 1
    reloaded_at = daemon.value("perf_config_last_reload_success_timestamp_seconds")
    assert reloaded_at is not None and loaded_at < reloaded_at and signalled_at <= reloaded_at <= time.time()


def test_sigterm_lets_the_running_probe_finish_and_exits_0(daemon_factory, target: HttpTarget) -> None:
    daemon, _ = daemon_factory(api_config("gw", target.url, interval="10s", timeout="5s", path="/delay/1500"))
    daemon.wait_ready()
    wait_for(lambda: target.server.in_flight == 1, timeout=25, what="probe request in flight")
    assert daemon.stop() == 0
    log = daemon.log()
    assert "event=stopped runs_cancelled=0" in log
    assert "Traceback" not in log and "CancelledError" not in log


def test_a_run_that_overruns_its_deadline_ends_as_a_timeout_with_one_log_line(daemon_factory,
                                                                            target: HttpTarget) -> None:
    # each request is within its own 2 s timeout, but three of them in a row (3 s) overrun the run's deadline,
    # 90 % of the 3 s interval: 2.7 s
    daemon, _ = daemon_factory(f"""
api:
  - name: slow
    base_url: {target.url}
    interval: 3s
    timeout: 2s
    endpoints:
      - {{name: probe, path: /delay/1000, requests: 3}}
""")
    daemon.wait_ready()
    job = {"collector": "api", "target": "slow"}
    daemon.wait_value("perf_job_runs_total", lambda v: v >= 1, timeout=30, result="timeout", **job)
    assert daemon.value("perf_target_up", **job) == 0
    assert daemon.value("perf_job_runs_total", result="success", **job) == 0
    # the run was ended at its deadline: every observed run lasted between 2.5 s and 5 s
    count = daemon.value("perf_job_duration_seconds_count", **job)
    assert count is not None and count >= 1
    assert daemon.value("perf_job_duration_seconds_bucket", le="2.5", **job) == 0
    assert daemon.value("perf_job_duration_seconds_bucket", le="5.0", **job) == count

    def timeout_lines() -> list[str]:
        return [line for line in daemon.log().splitlines() if "event=job_failed" in line and "target=slow" in line]

    # one line per timed-out run, naming the job, the outcome and the deadline it overran
    wait_for(lambda: len(timeout_lines()) == daemon.value("perf_job_runs_total", result="timeout", **job),
             timeout=10, what="one job_failed line per timeout")
    assert all("collector=api" in line and "result=timeout" in line
               and 'cause="run did not finish within 2.7s"' in line for line in timeout_lines())
    assert daemon.stop() == 0


def test_sigterm_cancels_a_run_that_outlasts_the_grace_period_and_says_so(daemon_factory,
                                                                         target: HttpTarget) -> None:
    # the request would take 30 s; SIGTERM gives running jobs 10 s (exporter.daemon.SHUTDOWN_GRACE_SECONDS)
    daemon, _ = daemon_factory(api_config("gw", target.url, interval="60s", timeout="40s", path="/delay/30000"))
    daemon.wait_ready()
    wait_for(lambda: target.server.in_flight == 1, timeout=25, what="probe request in flight")
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=25) == 0, "the daemon waited for the run instead of cancelling it"
    log = daemon.log()
    assert "event=stopping grace_seconds=10" in log
    assert "event=stopped runs_cancelled=1" in log
    cancelled = [line for line in log.splitlines() if "event=job_cancelled" in line]
    assert len(cancelled) == 1 and "collector=api" in cancelled[0] and "target=gw" in cancelled[0]
    assert "Traceback" not in log


def test_a_scrape_never_waits_for_a_hanging_target(daemon_factory) -> None:
    with SilentServer() as silent:
        daemon, _ = daemon_factory(api_config("hang", f"http://127.0.0.1:{silent.port}", interval="30s",
                                              timeout="20s"))
        daemon.wait_ready()
        wait_for(lambda: len(silent.accepted) > 0, timeout=25, what="probe connected")
        started = time.monotonic()
        status, _ = daemon.get("/metrics", timeout=5)
        assert status == 200
        assert time.monotonic() - started < 5
        assert daemon.value("perf_job_runs_total", collector="api", target="hang", result="timeout") == 0
        assert daemon.value("perf_http_requests_total", target="hang", endpoint="probe", method="GET",
                            outcome="timeout") == 0, "the probe is still waiting for its answer"
        assert daemon.stop() == 0


def test_an_invalid_config_at_start_exits_1_naming_the_key(daemon_factory, tmp_path: Path) -> None:
    daemon, cfg = daemon_factory("api:\n  - {name: g, base_url: 'http://x:1', endpoints: [{name: h, path: /}], "
                                 "timeout: fast}\n")
    assert daemon.proc.wait(30) == 1
    assert f"{cfg}: api[0].timeout: expected a duration like '5s', got 'fast'" in daemon.log()


def test_secrets_never_reach_the_logs(daemon_factory, target: HttpTarget) -> None:
    daemon, _ = daemon_factory("""
api:
  - name: gw
    base_url: http://user:url-pass-4242@127.0.0.1:1
    interval: 1s
    timeout: 500ms
    bearer_token: tok-secret-9876
    endpoints: [{name: probe, path: /}]
""", "--log.level", "debug")
    daemon.wait_ready()
    daemon.wait_value("perf_http_requests_total", lambda v: v >= 2, target="gw", endpoint="probe", method="GET",
                      outcome="connect_error")
    daemon.stop()
    log = daemon.log()
    assert "probe_failed" in log
    assert "url-pass-4242" not in log and "tok-secret-9876" not in log


def test_without_a_config_the_built_in_default_probes_the_guides_defaults(daemon_factory, target: HttpTarget,
                                                                        tmp_path: Path) -> None:
    """Nothing else runs: Redis and Jaeger at the guide's defaults are down, which is measured, not fatal."""
    from tests.servers import free_port

    daemon = DaemonProcess(None, tmp_path / "default.log", ("--log.format", "json"),
                           env={"TEST_BASE_URL": target.url, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                                "JAEGER_HOST": f"http://127.0.0.1:{free_port()}"})
    try:
        daemon.wait_ready()
        # the target answers (404 for /health): reached, so up
        assert daemon.wait_value("perf_target_up", lambda v: v == 1, collector="api", target="gateway") == 1
        assert daemon.wait_value("perf_target_up", collector="redis", target="cache") == 0
        assert daemon.wait_value("perf_target_up", collector="jaeger", target="tracing") == 0
        assert target.server.seen and target.server.seen[0][1] == "/health"
    finally:
        assert daemon.stop() == 0
    lines = [line for line in daemon.log().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["event"] for line in lines), "--log-format json: one JSON object a line"
