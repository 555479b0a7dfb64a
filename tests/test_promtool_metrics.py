"""``promtool check metrics`` finds nothing to say about the daemon's /metrics: the demo's config with every
collector reaching a real PostgreSQL and a real Redis 7 (``INFO latencystats``), so every family that can have
series has them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess
from tests.servers import Postgres, Redis, free_port, wait_for

PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is installed by scripts/test.sh")
def test_promtool_check_metrics_finds_nothing_on_the_demos_metrics(postgres: Postgres, redis_server: Redis,
                                                                   tmp_path: Path) -> None:
    assert PROMTOOL is not None
    env = {"DEMO_LISTEN": f"127.0.0.1:{free_port()}", "DATABASE_URL": postgres.dsn(), "REDIS_URL": redis_server.url,
           "DEMO_DATABASE_URL": postgres.dsn(), "DEMO_REDIS_URL": redis_server.url}
    daemon = DaemonProcess(None, tmp_path / "daemon.log", ("--demo",), env=env)
    try:
        daemon.wait_ready(timeout=60)
        wanted = ('perf_redis_command_latency_seconds{target="cache",cmd="get",percentile="p99"}',
                  'perf_pg_statement_calls_total{target="main"', 'perf_http_requests_total{target="gateway"')
        wait_for(lambda: all(w in daemon.get("/metrics")[1] for w in wanted), timeout=60,
                 what="series of every collector")
        status, text = daemon.get("/metrics")
    finally:
        daemon.stop()
    assert status == 200
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
