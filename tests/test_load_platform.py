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
from typing import Any

import pytest

from tests.bench_checks import healthy
from tests.servers import Demo, Postgres, Redis


@pytest.fixture
def backed_demo(postgres: Postgres, fresh_redis: Redis, tmp_path: Path) -> Iterator[str]:
    demo = Demo(tmp_path / "demo.log", "--postgres", postgres.dsn(), "--redis", fresh_redis.url, timeout=60)
    yield demo.url
    demo.stop()


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
    done = subprocess.run([sys.executable, "-m", "exporter", "bench", "api", "--base-url", backed_demo, "--config.file",
                           str(config), "--vus", "3", "--duration", "4s", "--warmup", "1s", "--out", str(out)],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "THINK_TIME": "0.05"})
    body = json.loads((out / "api.json").read_text())
    healthy(done, body)
    platform = body["platform"]
    endpoints = {e["name"]: e for e in body["endpoints"]}
    assert sorted(platform["collectors"]) == ["jaeger/tracing", "postgres/main", "redis/cache"]
    # every order created is an INSERT; a statement of the demo takes microseconds to milliseconds
    database = platform["database"]
    assert database["statementCalls"] >= endpoints["create_order"]["requests"] >= 1
    assert 1e-6 < database["statementSeconds"] / database["statementCalls"] < 0.1
    # every order read looks in the cache first (the collector reads the counters a few seconds apart: the
    # warm-up's last reads may fall in the window, never fewer than the measured phase's)
    cache = platform["cache"]
    assert cache["hits"] + cache["misses"] >= endpoints["get_order"]["requests"] >= 1
    assert cache["hitRate"] == round(cache["hits"] / (cache["hits"] + cache["misses"]), 4)
    queue = platform["queues"]["trip:location:updates"]
    assert queue["max"] >= max(queue["first"], queue["last"])
    # the traces the gateway sent while the load ran: no slower at P95 than the slowest request k6 saw
    assert platform["traces"]["traces"] >= 1
    assert 0.1 < platform["traces"]["p95Ms"] <= max(e["p99_ms"] for e in endpoints.values()) * 1.5


def test_bench_demo_loads_the_demo_on_its_embedded_postgresql_and_valkey_and_profiles_them(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "exporter", "bench", "db-profiling", "--demo", "--vus", "2",
                           "--duration", "3s", "--warmup", "1s", "--out", str(out)], capture_output=True, text=True,
                          timeout=240, check=False, env={**os.environ, "THINK_TIME": "0.05"})
    assert "storage postgresql, cache redis" in done.stderr
    body = json.loads((out / "db-profiling.json").read_text())
    healthy(done, body)
    assert body["summary"]["totalRequests"] == body["measured"]["requests"] >= 1 and body["measured"]["error_rate"] == 0
    reads = sum(e["requests"] for e in body["endpoints"] if e["name"] == "get_order")
    assert body["platform"]["database"]["statementCalls"] >= 1
    assert body["platform"]["cache"]["hits"] + body["platform"]["cache"]["misses"] >= reads


def test_a_runs_report_names_the_cause_it_added_against_a_baseline_run(
        backed_demo: str, postgres: Postgres, fresh_redis: Redis, tmp_path: Path) -> None:
    """A run keeps what its collectors saw (statements, each route's breakdown): its report diagnoses as a report
    from Prometheus does. The second run, with the gateway 600 ms slower, is weighed against the first."""
    import urllib.request

    import yaml

    from tests.test_alerting_e2e import EXAMPLE

    data = yaml.safe_load(EXAMPLE.read_text())
    data["api"][0].update(base_url=backed_demo)
    data["api"][0].pop("headers")
    data["postgres"][0].update(dsn=postgres.dsn(), interval="3s", timeout="2s")
    data["redis"][0].update(url=fresh_redis.url, interval="3s", timeout="1s")
    data["jaeger"][0].update(url=backed_demo, interval="2s", timeout="1500ms", settle="1s", lookback="30s")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))

    def bench(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
        done = subprocess.run([sys.executable, "-m", "exporter", "bench", "api", "--base-url", backed_demo,
                               "--config.file", str(config), "--vus", "2", "--duration", "6s", "--warmup", "2s",
                                   "--out",
                               str(out), *extra], capture_output=True, text=True, timeout=180, check=False,
                              env={**os.environ, "THINK_TIME": "0.3"})
        assert done.returncode in (0, 1, 2), done.stderr  # 2: other work saturated the machine
        return done.returncode, json.loads((out / "report" / "performance-summary.json").read_text())

    _, healthy = bench(tmp_path / "healthy")
    run = json.loads((tmp_path / "healthy" / "api.json").read_text())
    routes = {(r["service"], r["operation"]) for r in run["platform"]["facts"]["routes"]}
    assert ("api-gateway", "GET /api/v1/orders/{id}") in routes
    assert healthy["bottlenecks"] == []
    request = urllib.request.Request(f"{backed_demo}/admin/faults", data=json.dumps({"latency_ms": 600}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()
    try:
        code, slow = bench(tmp_path / "slow", "--baseline", str(tmp_path / "healthy"))
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{backed_demo}/admin/faults", method="DELETE"),
                               timeout=10).close()
    if code == 2:  # the generator was saturated: its latencies judge nothing, and no cause is made of them
        assert not any(r["area"] == "api" for r in slow["recommendations"]), slow["bottlenecks"]
        return
    top = slow["bottlenecks"][0]
    assert top["causeKind"] == "service-time" and top["where"] == "api-gateway", top
    assert top["share"] > 0.9 and all("since the baseline" in s["sharesOf"] for s in top["symptoms"])
