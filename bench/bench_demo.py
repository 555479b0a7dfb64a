"""Benchmark: what the bundled demo target sustains, so load scenarios and alert checks know its limits.

Starts ``perf-exporter demo`` (in memory, or with a temporary PostgreSQL and Redis with ``--backends``), then
for each API endpoint runs a closed loop of ``--concurrency`` clients for ``--duration`` seconds and prints
requests per second, latency p50/p95/p99 as the client saw it, and the demo's CPU time per request. Then it
times the Jaeger query API over the full trace buffer (2 000 traces): a v3 search of 500 traces, the same as
summaries, and a v1 search, with response sizes. There is no peer exporter to compare with: the figures are
absolute.

    .venv/bin/python bench/bench_demo.py [--duration 5] [--concurrency 8] [--backends]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measures import cpu_seconds, percentile, rss_mb
from tests.servers import Postgres, Redis, free_port, http_ok, wait_for

ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("health", "GET", "/health", None),
    ("create_order", "POST", "/api/v1/orders", {"rider_id": 7}),
    ("get_order", "GET", "/api/v1/orders/1", None),
    ("update_trip_status", "PATCH", "/api/v1/trips/1", {"status": "en_route"}),
    ("update_location", "POST", "/api/v1/trips/1/location", {"driver_id": 42, "lat": 52.5, "lon": 13.4}),
    ("send_notification", "POST", "/api/v1/notifications", {"user_id": 7, "message": "hi"}),
]


async def closed_loop(url: str, method: str, path: str, body: Any, duration: float,
                      concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code >= 400
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def timed_get(url: str, path: str, rounds: int = 5) -> tuple[float, int, int]:
    """(median seconds, status, body bytes)."""
    times, status, size = [], 0, 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
            status, size = response.status_code, len(response.content)
    return sorted(times)[len(times) // 2], status, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backends", action="store_true", help="with a temporary PostgreSQL and Redis")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        root = Path(tmp)
        extra: list[str] = []
        pg = rd = None
        if args.backends:
            pg = Postgres(root / "pg").init().start()
            pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            rd = Redis(root / "redis").start()
            extra = ["--postgres", pg.dsn(), "--redis", rd.url]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        demo = subprocess.Popen([sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"127.0.0.1:{port}",
                                 "--log.level", "warning", *extra])
        try:
            wait_for(lambda: http_ok(f"{url}/health"), timeout=60, what="demo /health")
            print(f"demo ({'postgresql + redis' if args.backends else 'memory'}): answering /health "
                  f"{time.perf_counter() - started:.2f} s after start, RSS {rss_mb(demo.pid):.0f} MB")
            print(f"{'endpoint':<20} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
                  f"{'errors':>7} {'demo CPU ms/req':>16}")
            for name, method, path, body in ENDPOINTS:
                cpu_before = cpu_seconds(demo.pid)
                latencies, errors = asyncio.run(closed_loop(url, method, path, body, args.duration,
                                                            args.concurrency))
                cpu = cpu_seconds(demo.pid) - cpu_before
                print(f"{name:<20} {len(latencies) / args.duration:>8.0f} "
                      f"{percentile(latencies, 0.5) * 1000:>8.2f} {percentile(latencies, 0.95) * 1000:>8.2f} "
                      f"{percentile(latencies, 0.99) * 1000:>8.2f} {errors:>7} "
                      f"{cpu * 1000 / max(1, len(latencies)):>16.2f}")
            print(f"after the load: RSS {rss_mb(demo.pid):.0f} MB (2 000 traces kept)")
            window = "query.start_time_min=2000-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z"
            for label, path in (
                    ("v3 traces, 500", f"/api/v3/traces?query.service_name=api-gateway&{window}"
                                       "&query.search_depth=500"),
                    ("v3 summaries, 500", f"/api/v3/trace-summaries?query.service_name=api-gateway&{window}"
                                          "&query.search_depth=500"),
                    ("v1 traces, 500", "/api/traces?service=api-gateway&limit=500")):
                seconds, status, size = timed_get(url, path)
                print(f"jaeger {label:<20} {seconds * 1000:8.1f} ms  HTTP {status}  {size / 1e6:.2f} MB")
        finally:
            demo.terminate()
            demo.wait(15)
            if pg is not None:
                pg.stop()
            if rd is not None:
                rd.stop()


if __name__ == "__main__":
    main()
