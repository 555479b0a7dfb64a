"""The platform measured while the load runs: the config's PostgreSQL, Redis and Jaeger collectors run in the
bench process against a demo backed by a real PostgreSQL and Redis, and the run's report has the window's
database time, cache hit rate, queue depth and trace durations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Postgres, Process, Redis, free_port, http_ok, wait_for


@pytest.fixture
def backed_demo(postgres: Postgres, fresh_redis: Redis, tmp_path: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}"
    process = Process([sys.executable, "-m", "exporter", "demo", "--listen", url[len("http://"):],
                       "--postgres", postgres.dsn(), "--redis", fresh_redis.url], tmp_path / "demo.log").start()
    wait_for(lambda: not process.alive() or http_ok(f"{url}/health"), timeout=60, what="demo with backends")
    assert process.alive(), process.log()
    yield url
    process.stop()


def test_a_run_reports_database_time_cache_hit_rate_queue_depth_and_traces(
        backed_demo: str, postgres: Postgres, fresh_redis: Redis, tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(f"""\
postgres:
  - {{name: main, dsn: "{postgres.dsn()}", interval: 5s, timeout: 2s}}
redis:
  - name: cache
    url: {fresh_redis.url}
    interval: 5s
    timeout: 1s
    queues: ["trip:location:updates"]
jaeger:
  - {{name: tracing, url: "{backed_demo}", interval: 5s, timeout: 2s, settle: 1s, lookback: 1m}}
""")
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "exporter", "bench", "api", "--base-url", backed_demo, "--config",
                           str(config), "--vus", "3", "--duration", "4s", "--warmup", "1s", "--out", str(out)],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "THINK_TIME": "0.05"})
    assert done.returncode in (0, 1, 2), done.stderr
    platform = json.loads((out / "api.json").read_text())["platform"]
    assert sorted(platform["collectors"]) == ["jaeger/tracing", "postgres/main", "redis/cache"]
    assert platform["database"]["statementCalls"] > 0
    assert platform["database"]["statementSeconds"] > 0
    cache = platform["cache"]
    assert cache["hits"] + cache["misses"] > 0
    assert 0 <= cache["hitRate"] <= 1
    assert platform["queues"]["trip:location:updates"]["max"] >= 0
    assert platform["traces"]["traces"] > 0
    assert platform["traces"]["p95Ms"] > 0


def test_bench_demo_loads_the_demo_on_its_embedded_postgresql_and_valkey_and_profiles_them(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "exporter", "bench", "db-profiling", "--demo", "--vus", "2",
                           "--duration", "3s", "--warmup", "1s", "--out", str(out)], capture_output=True, text=True,
                          timeout=240, check=False, env={**os.environ, "THINK_TIME": "0.05"})
    assert done.returncode in (0, 1, 2), done.stderr
    assert "storage postgresql, cache redis" in done.stderr
    body = json.loads((out / "db-profiling.json").read_text())
    assert body["summary"]["totalRequests"] > 0 and body["measured"]["error_rate"] == 0
    assert body["platform"]["database"]["statementCalls"] > 0
    assert body["platform"]["cache"]["hits"] + body["platform"]["cache"]["misses"] > 0
