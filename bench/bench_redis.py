"""Benchmark: the Redis collector against prometheus-redis-exporter, on one Redis holding 100,000 keys.

Prints, all measured in the same run:

- collection cost: our ``RedisCollector.run()`` (PING, INFO, SLOWLOG LEN, two queues, SCAN + PTTL sampling of
  ``scan_budget`` keys) against a redis_exporter scrape (which collects when scraped), as wall time and as the
  Redis CPU each one costs the server, with ratios;
- scrape cost: ``GET /metrics`` of the perf-exporter daemon (watching the same Redis) against redis_exporter's;
- Redis's own latency: ``redis-benchmark`` p99 without and with our key sampling running back to back beside it
  (the worst case: the daemon samples once per interval), alternated to spread the machine's noise.

    .venv/bin/python bench/bench_redis.py [--keys 100000] [--runs 60] [--scrapes 200] [--budget 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measures import percentile
from exporter.collectors.redis.collector import RedisCollector, RedisTarget
from exporter.jobs import JobContext, TraceLink
from exporter.store import MetricStore
from tests.servers import Redis, free_port, http_ok, wait_for

PATTERNS = ["order:*", "session:*", "driver:location:*"]
QUEUES = ["trip:location:updates", "notifications:outbox"]


def redis_cpu(app: redis.Redis) -> float:
    info = app.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def fill(app: redis.Redis, keys: int) -> None:
    """``keys`` keys under three patterns plus a few others; half the sessions with a TTL; two queues."""
    orders, sessions = keys // 2, keys * 3 // 10
    drivers = keys - orders - sessions - 100
    app.execute_command("DEBUG", "POPULATE", orders, "order")
    app.execute_command("DEBUG", "POPULATE", sessions, "session")
    app.execute_command("DEBUG", "POPULATE", drivers, "driver:location")
    pipe = app.pipeline(transaction=False)
    for i in range(0, sessions, 2):
        pipe.expire(f"session:{i}", 3600)
    for i in range(98):
        pipe.set(f"config:{i}", "x")
    pipe.rpush(QUEUES[1], *[f"n{i}" for i in range(50)])
    for i in range(100):
        pipe.xadd(QUEUES[0], {"lat": str(i)})
    pipe.execute()
    app.xgroup_create(QUEUES[0], "dispatch", id="0")


def collector(url: str, budget: int) -> RedisCollector:
    cfg = RedisTarget.model_validate({"name": "cache", "url": url, "interval": "15s", "timeout": "5s",
                                      "key_patterns": PATTERNS, "scan_budget": budget, "queues": QUEUES})
    return RedisCollector(cfg, JobContext(MetricStore(), TraceLink()))


def time_collections(url: str, budget: int, runs: int, app: redis.Redis) -> tuple[list[float], float, float]:
    """(wall ms per run, our CPU ms per run, Redis CPU ms per run)."""
    async def go() -> tuple[list[float], float, float]:
        job = collector(url, budget)
        try:
            assert await job.run()  # connect and take the baselines
            wall: list[float] = []
            cpu_before, server_before = time.process_time(), redis_cpu(app)
            for _ in range(runs):
                started = time.perf_counter()
                assert await job.run()
                wall.append((time.perf_counter() - started) * 1000)
            cpu = (time.process_time() - cpu_before) * 1000 / runs
            server = (redis_cpu(app) - server_before) * 1000 / runs
            return wall, cpu, server
        finally:
            await job.close()
    return asyncio.run(go())


def time_scrapes(url: str, scrapes: int, app: redis.Redis | None = None) -> tuple[list[float], float]:
    """(wall ms per scrape, Redis CPU ms per scrape when ``app`` is given)."""
    wall: list[float] = []
    with httpx.Client(timeout=30) as client:
        assert client.get(url).status_code == 200
        server_before = redis_cpu(app) if app is not None else 0.0
        for _ in range(scrapes):
            started = time.perf_counter()
            response = client.get(url)
            wall.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        server = (redis_cpu(app) - server_before) * 1000 / scrapes if app is not None else 0.0
    return wall, server


def benchmark_p99(port: int, requests: int) -> float:
    """redis-benchmark's p99 latency (ms) over GET and SET."""
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "get,set", "-n", str(requests), "-c", "10",
                          "-r", "100000", "--csv"], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return max(float(row["p99_latency_ms"]) for row in rows)


class SamplingLoop:
    """Our collector running every ``pace`` seconds (0: back to back) in a thread of its own, until stopped."""

    def __init__(self, url: str, budget: int, pace: float) -> None:
        self.url, self.budget, self.pace = url, budget, pace
        self.stop = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=lambda: asyncio.run(self._loop()))

    async def _loop(self) -> None:
        job = collector(self.url, self.budget)
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                assert await job.run()
                self.runs += 1
                await asyncio.sleep(max(0.0, self.pace - (time.perf_counter() - started)))
        finally:
            await job.close()

    def __enter__(self) -> SamplingLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=60, help="our collections timed")
    parser.add_argument("--scrapes", type=int, default=200, help="scrapes of each exporter timed")
    parser.add_argument("--budget", type=int, default=1000, help="scan_budget")
    parser.add_argument("--bench-requests", type=int, default=50_000, help="per redis-benchmark round")
    parser.add_argument("--rounds", type=int, default=5, help="redis-benchmark rounds of each kind")
    parser.add_argument("--pace", type=float, default=0.1,
                        help="seconds between sampling runs in the paced rounds (the daemon's default: 15)")
    args = parser.parse_args()
    peer = shutil.which("prometheus-redis-exporter")
    work = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    server = Redis(work / "redis").start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        app = redis.Redis.from_url(server.url)
        fill(app, args.keys)
        total_keys = app.dbsize()

        print(f"Redis {app.info('server')['redis_version']} with {total_keys} keys; scan_budget {args.budget}, "
              f"{len(PATTERNS)} patterns, {len(QUEUES)} queues")
        (work / "cfg.yaml").write_text(
            f"redis:\n  - name: cache\n    url: {server.url}\n    interval: 2s\n    timeout: 1s\n"
            f"    key_patterns: {PATTERNS}\n    scan_budget: {args.budget}\n    queues: {QUEUES}\n")
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "exporter", "run", "--config.file", str(work / "cfg.yaml"),
                                       "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warning"]))
        ours = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: 'perf_redis_up{target="cache"} 1' in httpx.get(ours).text, what="perf-exporter daemon")
        peer_url = ""
        if peer:
            peer_port = free_port()
            procs.append(subprocess.Popen([peer, f"--redis.addr=redis://127.0.0.1:{server.port}",
                                           f"--web.listen-address=127.0.0.1:{peer_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            peer_url = f"http://127.0.0.1:{peer_port}/metrics"
            wait_for(lambda: http_ok(peer_url), what="redis_exporter")

        # Three alternated blocks of each measurement, so the shared machine's changing load hits all alike.
        sampled: list[float] = []
        info_only: list[float] = []
        our_scrape: list[float] = []
        theirs: list[float] = []
        cpu = server_cpu = info_cpu = info_server_cpu = their_server_cpu = 0.0
        blocks = 3
        for _ in range(blocks):
            wall, c, sc = time_collections(server.url, args.budget, args.runs // blocks, app)
            sampled += wall
            cpu, server_cpu = cpu + c / blocks, server_cpu + sc / blocks
            wall, c, sc = time_collections(server.url, 0, args.runs // blocks, app)
            info_only += wall
            info_cpu, info_server_cpu = info_cpu + c / blocks, info_server_cpu + sc / blocks
            our_scrape += time_scrapes(ours, args.scrapes // blocks)[0]
            if peer_url:
                wall, sc = time_scrapes(peer_url, args.scrapes // blocks, app)
                theirs += wall
                their_server_cpu += sc / blocks

        def line(name: str, values: list[float], extra: str) -> None:
            print(f"  {name:<44} p50 {percentile(values, 0.5):6.2f} ms, p99 {percentile(values, 0.99):6.2f} ms "
                  f"({len(values)}){extra}")

        print("collection (wall time; CPU per collection)")
        line(f"perf-exporter, sampling {args.budget} keys", sampled,
             f"; our CPU {cpu:.2f} ms, Redis CPU {server_cpu:.3f} ms")
        line("perf-exporter, INFO only (scan_budget 0)", info_only,
             f"; our CPU {info_cpu:.2f} ms, Redis CPU {info_server_cpu:.3f} ms")
        if theirs:
            line("redis_exporter (a scrape collects)", theirs, f"; Redis CPU {their_server_cpu:.3f} ms")
        print("scrape (GET /metrics)")
        line("perf-exporter (serves the last collection)", our_scrape, "")
        if theirs:
            line("redis_exporter", theirs, "")
            p50 = percentile(theirs, 0.5)
            print("ratios ours/redis_exporter (p50)")
            print(f"  collection with sampling {percentile(sampled, 0.5) / p50:.2f}, INFO only "
                  f"{percentile(info_only, 0.5) / p50:.2f}; scrape {percentile(our_scrape, 0.5) / p50:.2f}; "
                  f"Redis CPU {server_cpu / their_server_cpu:.2f} with sampling, "
                  f"{info_server_cpu / their_server_cpu:.2f} INFO only")
        else:
            print("redis_exporter: not installed (Debian package prometheus-redis-exporter); no ratio")
        for proc in procs:  # leave Redis alone for the latency rounds
            proc.terminate()
            proc.wait(10)
        procs.clear()

        # Rounds alternate (none, paced, back to back) so the machine's changing load spreads over all three,
        # and each round's rise is taken against the run without sampling just before it. The slow log records
        # every command that held the server 0.25 ms or more.
        app.config_set("slowlog-log-slower-than", 250)
        app.config_set("slowlog-max-len", 100_000)
        app.slowlog_reset()
        app.config_resetstat()
        paces = {"without sampling": None, f"sampling every {args.pace:g}s": args.pace, "back to back": 0.0}
        p99s: dict[str, list[float]] = {name: [] for name in paces}
        rates: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, pace in paces.items():
                if pace is None:
                    p99s[name].append(benchmark_p99(server.port, args.bench_requests))
                    continue
                started = time.perf_counter()
                with SamplingLoop(server.url, args.budget, pace) as loop:
                    p99s[name].append(benchmark_p99(server.port, args.bench_requests))
                rates[name] = loop.runs / (time.perf_counter() - started)
        slow: dict[str, list[float]] = {}
        for entry in app.slowlog_get(100_000):
            slow.setdefault(entry["command"].split(b" ")[0].decode().lower(), []).append(entry["duration"] / 1000)
        stats = app.info("commandstats")
        base = p99s["without sampling"]
        print(f"redis-benchmark p99 (GET/SET, 10 clients, {args.bench_requests} requests; {args.rounds} alternated "
              "rounds; rise: median of each round against the round without sampling before it)")
        for name, values in p99s.items():
            rate = f" ({rates[name]:.1f} runs/s)" if name in rates else ""
            rise = (f", rise {statistics.median(v - b for v, b in zip(values, base, strict=True)):+.3f} ms"
                    if name in rates else "")
            print(f"  {name + rate:<36} {statistics.median(values):.3f} ms{rise}  rounds: "
                  + ", ".join(f"{v:.3f}" for v in values))
        print("server time per call (INFO commandstats, mean) and calls holding it >= 0.25 ms (slow log)")
        for cmd in ("evalsha", "scan", "info", "get", "set"):
            stat = stats.get(f"cmdstat_{cmd}")
            if stat:
                held = slow.get(cmd, [])
                print(f"  {cmd:<8} {stat['usec_per_call']:8.1f} us over {stat['calls']} calls; >= 0.25 ms: "
                      f"{len(held)}" + (f" (max {max(held):.2f} ms)" if held else ""))
        print("  (a GET or SET held >= 0.25 ms means redis-server was waiting for a CPU: the machine's load)")
        print("goals: p99 rise < 1 ms with sampling running (the daemon samples once per interval, 15 s by default)")
        return 0
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
