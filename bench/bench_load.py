"""Benchmark: what ``perf-exporter bench`` costs on top of k6 alone, and what the demo sustains under k6.

1. The same script (``mixed.js``: one request per iteration, no think time) against a fast local target
   (Debian's nginx answering 200 to every path) through ``k6 run`` alone and through ``perf-exporter bench``
   (live progress from k6's REST API, the tagged sub-metrics, the collectors' scheduler, the report), in
   alternating rounds. Prints requests/s and P95 of both, their ratio and difference. The goal: the
   orchestration costs under 5 % of k6's requests/s and adds under 1 ms to its P95.
2. The demo's own requests/s under the same script through k6: in memory, and with PostgreSQL and Redis
   (temporary servers, as the tests start them), with one worker and with ``--workers 2``.

    .venv/bin/python bench/bench_load.py [--duration 10] [--vus 20] [--rounds 2] [--no-backends]

nginx: ``bench/nginx.py`` starts Debian's (scripts/test.sh installs it; the benchmark says so when it is missing).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.nginx import nginx, nginx_binary
from exporter.load.catalog import scenarios_dir
from exporter.load.k6_binary import find_k6
from tests.servers import Postgres, Process, Redis, free_port, http_ok, wait_for

SCRIPT = scenarios_dir() / "mixed.js"
def k6_alone(url: str, vus: int, duration: float, root: Path) -> tuple[float, float]:
    summary = root / "k6-alone.json"
    subprocess.run([str(find_k6().path), "run", "--quiet", "--no-color", "--summary-export", str(summary),
                    "--vus", str(vus), "--duration", f"{duration:g}s", str(SCRIPT)], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TEST_BASE_URL": url, "THINK_TIME": "0"})
    metrics = json.loads(summary.read_text())["metrics"]
    return float(metrics["http_reqs"]["rate"]), float(metrics["http_req_duration"]["p(95)"])


def through_bench(url: str, vus: int, duration: float, root: Path) -> tuple[float, float]:
    config = root / "targets.yaml"
    config.write_text("targets: {api_latency_p95: 500ms}\n")
    out = root / "reports"
    subprocess.run([sys.executable, "-m", "exporter", "bench", "mixed", "--base-url", url, "--config.file", str(config),
                    "--vus", str(vus), "--duration", f"{duration:g}s", "--warmup", "0s", "--out", str(out)],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "THINK_TIME": "0"})
    measured = json.loads((out / "mixed.json").read_text())["measured"]
    return float(measured["requests_per_second"]), float(measured["p95_ms"])


def orchestration_cost(args: argparse.Namespace, root: Path) -> None:
    if nginx_binary() is None:
        print("nginx is not installed: apt-get install nginx (the fast local target of this benchmark)")
        return
    with nginx(root / "nginx") as url:
        alone: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            alone.append(k6_alone(url, args.vus, args.duration, root))
            ours.append(through_bench(url, args.vus, args.duration, root))
        a_rps, a_p95 = statistics.median(r for r, _ in alone), statistics.median(p for _, p in alone)
        b_rps, b_p95 = statistics.median(r for r, _ in ours), statistics.median(p for _, p in ours)
        print(f"nginx, mixed.js, {args.vus} VUs, {args.duration:g} s, median of {args.rounds} alternating rounds")
        print(f"{'':<24} {'req/s':>10} {'P95 ms':>8}")
        print(f"{'k6 run alone':<24} {a_rps:>10.0f} {a_p95:>8.2f}")
        print(f"{'perf-exporter bench':<24} {b_rps:>10.0f} {b_p95:>8.2f}")
        print(f"ratio bench / k6: {b_rps / a_rps:.3f} of k6's requests/s (cost {100 * (1 - b_rps / a_rps):+.1f} %), "
              f"P95 {b_p95 - a_p95:+.2f} ms")
        print("rounds (k6 alone, bench): " + ", ".join(f"({a[0]:.0f}, {b[0]:.0f})" for a, b in zip(alone, ours,
                                                                                                    strict=True)))


def demo_throughput(args: argparse.Namespace, root: Path) -> None:
    setups: list[tuple[str, list[str]]] = [("memory", []), ("memory, --workers 2", ["--workers", "2"])]
    pg = rd = None
    if args.backends:
        pg = Postgres(root / "pg").init().start()
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rd = Redis(root / "redis").start()
        backends = ["--postgres", pg.dsn(), "--redis", rd.url]
        setups += [("postgresql + redis", backends), ("postgresql + redis, --workers 2", [*backends, "--workers", "2"])]
    try:
        print(f"\nthe demo under k6 (mixed.js, {args.vus} VUs, {args.duration:g} s, no think time)")
        print(f"{'demo':<34} {'req/s':>8} {'P95 ms':>8}")
        for label, extra in setups:
            url = f"http://127.0.0.1:{free_port()}"
            demo = Process([sys.executable, "-m", "exporter", "demo", "--web.listen-address", url[len("http://"):],
                            "--log.level", "warning", *extra], root / "demo.log").start()
            try:
                wait_for(functools.partial(http_ok, f"{url}/health"), timeout=60, what="demo")
                rps, p95 = k6_alone(url, args.vus, args.duration, root)
                print(f"{label:<34} {rps:>8.0f} {p95:>8.2f}")
            finally:
                demo.stop()
    finally:
        if pg is not None:
            pg.stop()
        if rd is not None:
            rd.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--vus", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-backends", dest="backends", action="store_false")
    args = parser.parse_args()
    print(f"k6: {subprocess.run([str(find_k6().path), 'version'], capture_output=True, text=True).stdout.strip()}; "
          f"{os.cpu_count()} cores shared by k6 and the target")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # nginx workers and the postgres user read below it
        orchestration_cost(args, root)
        demo_throughput(args, root)


if __name__ == "__main__":
    main()
