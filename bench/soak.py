"""Soak: the daemon against the demo (on a real PostgreSQL and Redis) for a long time at compressed intervals,
while faults cycle, watching what would leak or freeze.

Started here: a PostgreSQL 15 with pg_stat_statements, a Redis, the demo on both (security off), a "Jaeger" that
answers garbage (half-truncated JSON, HTML, wrong shapes, in turn), and the daemon with every job at a 1-2 s
interval. Every ``--fault-every`` seconds the next fault of the cycle starts: PostgreSQL restarted (``pg_ctl stop
-m fast``, then ``-m immediate``), Redis restarted, the demo's latency, errors and ``cache: off``, then all cleared.

Printed over time: the daemon's RSS, open file descriptors and asyncio tasks (``perf_exporter_asyncio_tasks``),
and the p99 of the script's own scrapes of /metrics (one a second). Checked: no counter sample (``*_total``,
histogram ``_bucket``/``_count``/``_sum``) ever goes down while its series stays; no job's runs stop
(``perf_job_runs_total`` of every job grows in every window of 15 s); RSS at the end within 10 % of RSS after the
warm-up. Exit 0 when every check holds, 1 otherwise.

    .venv/bin/python bench/soak.py                         # 30 minutes, a fault every 60 s
    .venv/bin/python bench/soak.py --duration 120 --fault-every 15   # the tests' 2-minute version
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measures import percentile, rss_mb
from bench.quiet_http import QuietHandler
from tests.servers import Postgres, Process, Redis, free_port, http_ok, wait_for

GARBAGE = [b'{"data": [{"traceID": "a", "spans": [', b"<html>502 Bad Gateway</html>", b'{"data": 7}',
           b'{"result": {"resourceSpans": "x"}}', b"\x00\xff", b'{"data": [], "errors": [{"code": 500}]}']
STALE_WINDOW = 15.0
RSS_TOLERANCE = 0.10

Key = tuple[str, frozenset[tuple[str, str]]]


class GarbageJaeger:
    """An HTTP server that answers every request with the next body of GARBAGE."""

    def __init__(self) -> None:
        turn = iter(range(1 << 62))

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.reply(GARBAGE[next(turn) % len(GARBAGE)])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config(demo: str, pg: Postgres, redis: Redis, jaeger: str) -> str:
    return f"""
api:
  - name: gateway
    base_url: {demo}
    interval: 1s
    timeout: 800ms
    endpoints:
      - {{name: health, path: /health}}
      - {{name: create_order, method: POST, path: /api/v1/orders, json: {{rider_id: 7}}, expect_status: [201],
         traceparent: true}}
      - {{name: get_order, path: /api/v1/orders/1, requests: 3}}
      - {{name: update_location, method: POST, path: /api/v1/trips/1/location,
         json: {{driver_id: 42, lat: 52.52, lon: 13.40}}, expect_status: [202]}}
postgres:
  - name: main
    dsn: {pg.dsn()}
    interval: 2s
    timeout: 1500ms
    queries: [{{name: orders, sql: "select count(*) from orders"}}]
redis:
  - name: cache
    url: {redis.url}
    interval: 1s
    timeout: 800ms
jaeger:
  - name: demo
    url: {demo}
    interval: 2s
    timeout: 1500ms
    settle: 1s
    lookback: 30s
  - name: garbage
    url: {jaeger}
    interval: 2s
    timeout: 1500ms
    settle: 1s
    lookback: 30s
"""


@dataclass
class Watch:
    """What the scrapes saw."""

    last: dict[Key, float] = field(default_factory=dict)
    went_down: list[str] = field(default_factory=list)
    scrape_seconds: list[tuple[float, float]] = field(default_factory=list)  # (time, seconds)
    runs: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)

    def scrape(self, client: httpx.Client, now: float) -> dict[Key, float] | None:
        started = time.perf_counter()
        try:
            response = client.get("/metrics")
        except httpx.HTTPError:
            return None
        self.scrape_seconds.append((now, time.perf_counter() - started))
        current: dict[Key, float] = {}
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                current[(s.name, frozenset(s.labels.items()))] = s.value
        for key, value in current.items():
            name = key[0]
            counter = name.endswith(("_total", "_bucket", "_count", "_sum")) and not name.startswith(
                ("process_", "python_"))
            if counter and key in self.last and value < self.last[key]:
                self.went_down.append(f"{name}{dict(key[1])}: {self.last[key]:g} -> {value:g}")
            if name == "perf_job_runs_total":
                labels = dict(key[1])
                job = (labels["collector"], labels["target"])
                total = sum(v for (n, ls), v in current.items() if n == name and
                            dict(ls)["collector"] == job[0] and dict(ls)["target"] == job[1])
                series = self.runs.setdefault(job, [])
                if not series or series[-1][0] != now:
                    series.append((now, total))
        self.last = current  # a series that disappears starts again from what it shows when it comes back
        return current

    def stale_jobs(self, start: float, end: float) -> list[str]:
        """Jobs whose run count did not grow in some window of STALE_WINDOW seconds between start and end."""
        stale = []
        for job, series in sorted(self.runs.items()):
            t = start
            while t + STALE_WINDOW <= end:
                inside = [v for (at, v) in series if t <= at <= t + STALE_WINDOW]
                if len(inside) < 2 or inside[-1] <= inside[0]:
                    stale.append(f"{job[0]}/{job[1]} between {t:.0f}s and {t + STALE_WINDOW:.0f}s")
                    break
                t += STALE_WINDOW
        return stale


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800)")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults (default 60)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before RSS is taken as the baseline "
                                                                    "(default: a tenth of the duration, 10..120)")
    parser.add_argument("--print-every", type=float, default=None, help="seconds between lines (default 60, "
                                                                         "10 below 5 minutes)")
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else min(120.0, max(10.0, args.duration / 10))
    print_every = args.print_every or (10.0 if args.duration < 300 else 60.0)

    root = Path(tempfile.mkdtemp(prefix="perf-soak-"))
    pg = Postgres(root / "pg").init().start()
    pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    redis = Redis(root / "redis").start()
    jaeger = GarbageJaeger()
    demo_port = free_port()
    demo_url = f"http://127.0.0.1:{demo_port}"
    demo = Process([sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"127.0.0.1:{demo_port}",
                    "--postgres",
                    pg.dsn(), "--redis", redis.url, "--log.level", "warning"], root / "demo.log",
                   env={**os.environ, "DEMO_SECURITY": "off"}).start()
    daemon: Process | None = None
    try:
        wait_for(lambda: http_ok(f"{demo_url}/health"), timeout=60, what="demo ready")
        (root / "soak.yaml").write_text(config(demo_url, pg, redis, jaeger.url))
        port = free_port()
        daemon = Process([sys.executable, "-m", "exporter", "run", "--config.file", str(root / "soak.yaml"),
                          "--web.listen-address",
                          f"127.0.0.1:{port}", "--log.level", "warning"], root / "daemon.log").start()
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{url}/-/ready"), timeout=60, what="daemon ready")
        assert daemon.proc is not None
        return soak(args.duration, args.fault_every, warmup, print_every, url, daemon.proc.pid, pg, redis,
                    demo_url)
    finally:
        if daemon is not None:
            daemon.stop()
        demo.stop()
        jaeger.stop()
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def faults(pg: Postgres, redis: Redis, demo: str) -> list[tuple[str, Callable[[], None]]]:
    def set_faults(body: dict[str, Any]) -> Callable[[], None]:
        def apply() -> None:
            httpx.post(f"{demo}/admin/faults", json=body, timeout=5)
        return apply

    def restart_pg(mode: str) -> Callable[[], None]:
        def apply() -> None:
            pg._as_owner([str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "-m", mode, "-w", "stop"])
            assert pg.process is not None and pg.process.proc is not None
            pg.process.proc.wait(15)
            time.sleep(2)  # down for a moment: collections meanwhile fail
            pg.start()
        return apply

    def restart_redis() -> None:
        redis.stop()
        time.sleep(2)
        redis.start()

    def clear_faults() -> None:
        httpx.delete(f"{demo}/admin/faults", timeout=5)

    return [("postgres restart (fast)", restart_pg("fast")), ("demo latency 300 ms", set_faults(
        {"latency_ms": 300})), ("postgres restart (immediate)", restart_pg("immediate")),
            ("demo errors 30 %", set_faults({"latency_ms": 0, "error_rate": 0.3})), ("redis restart", restart_redis),
            ("demo cache off", set_faults({"error_rate": 0, "cache": "off"})),
            ("faults cleared", clear_faults)]


def soak(duration: float, fault_every: float, warmup: float, print_every: float, url: str, pid: int,
         pg: Postgres, redis: Redis, demo: str) -> int:
    watch = Watch()
    cycle = faults(pg, redis, demo)
    started = time.monotonic()
    next_fault, next_print, fault_index = fault_every, print_every, 0
    baseline_rss: float | None = None
    tasks = float("nan")
    print(f"{'t (s)':>6} {'RSS MB':>7} {'fds':>5} {'tasks':>6} {'scrape p99 ms':>14}  fault", flush=True)
    fault_name = "-"
    with httpx.Client(base_url=url, timeout=10) as client:
        while (now := time.monotonic() - started) < duration:
            current = watch.scrape(client, now)
            if current is not None:
                tasks = current.get(("perf_exporter_asyncio_tasks", frozenset()), tasks)
            rss = rss_mb(pid)
            watch.samples.append({"t": now, "rss": rss, "fds": open_fds(pid), "tasks": tasks})
            if baseline_rss is None and now >= warmup:
                baseline_rss = rss
            if now >= next_fault:
                fault_name, apply = cycle[fault_index % len(cycle)]
                fault_index += 1
                next_fault += fault_every
                threading.Thread(target=apply, daemon=True).start()  # a restart takes seconds: keep scraping
            if now >= next_print:
                window = [s for (at, s) in watch.scrape_seconds if at > now - print_every]
                p99 = percentile(window, 0.99) * 1000 if window else float("nan")
                print(f"{now:6.0f} {rss:7.1f} {open_fds(pid):5d} {tasks:6.0f} {p99:14.1f}  {fault_name}", flush=True)
                next_print += print_every
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started - now)))
    end = time.monotonic() - started
    scrapes = [s for (_, s) in watch.scrape_seconds]
    after = [s for s in watch.samples if s["t"] >= warmup]
    last_rss = statistics.median(s["rss"] for s in after[-max(1, len(after) // 5):]) if after else float("nan")
    first_rss = baseline_rss if baseline_rss is not None else float("nan")
    growth = last_rss / first_rss - 1 if first_rss == first_rss else float("nan")
    stale = watch.stale_jobs(warmup, end)
    summary = {
        "duration_s": round(end), "faults": fault_index, "scrapes": len(scrapes),
        "scrape_p99_ms": round(percentile(scrapes, 0.99) * 1000, 1) if scrapes else None,
        "scrape_p50_ms": round(percentile(scrapes, 0.5) * 1000, 1) if scrapes else None,
        "rss_after_warmup_mb": round(first_rss, 1), "rss_end_mb": round(last_rss, 1),
        "rss_growth": round(growth, 3), "fds_first_last": [after[0]["fds"], after[-1]["fds"]] if after else None,
        "tasks_first_last": [after[0]["tasks"], after[-1]["tasks"]] if after else None,
        "counters_down": watch.went_down[:10], "counters_down_count": len(watch.went_down), "stale_jobs": stale,
    }
    print("summary " + json.dumps(summary), flush=True)
    ok = not watch.went_down and not stale and growth <= RSS_TOLERANCE
    print("soak: " + ("every check held" if ok else "FAILED: " + "; ".join(
        [*([f"{len(watch.went_down)} counter samples went down"] if watch.went_down else []),
         *([f"stale: {', '.join(stale)}"] if stale else []),
         *([f"RSS grew {growth:.1%}"] if growth > RSS_TOLERANCE else [])])), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
