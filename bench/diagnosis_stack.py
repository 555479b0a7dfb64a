"""The diagnosis matrix's stack and cases: the demo on real PostgreSQL and Redis under a steady background load
(k6), the daemon probing and profiling it, a real Prometheus scraping the daemon, and a report per fault case over
a window of its own, judged against the fault's documented true cause.

Used by ``bench/bench_diagnosis.py`` (the whole matrix) and by ``tests/test_diagnosis.py`` (a few cases).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter import child_process
from exporter.load.k6_binary import find_k6
from exporter.reports.command import (
    ReportOptions,
    build,
    endpoint_requests,
    jaeger_urls,
    postgres_conninfos,
)
from exporter.reports.model import Report, Window, iso
from exporter.reports.recommendations import HIGH, Recommendation
from tests.daemon_process import DaemonProcess
from tests.servers import Postgres, Prometheus, Redis, free_port, http_ok, wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tripo04os.yaml"

# The background traffic: closed-loop VUs with a pause between requests, as users are. The mix follows the
# guide's mixed workload (orders first); reads and trip updates go to a hot set of ids.
LOAD_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
const BASE = __ENV.TEST_BASE_URL;
const J = { headers: { 'Content-Type': 'application/json' }, timeout: '20s' };
function pick(n) { return 1 + Math.floor(Math.random() * n); }
export const options = { vus: parseInt(__ENV.VUS), duration: __ENV.DURATION, discardResponseBodies: true,
                         summaryTrendStats: ['avg', 'p(95)'] };
export default function () {
  const r = Math.random();
  if (r < 0.40) {
    http.post(`${BASE}/api/v1/orders`, JSON.stringify({ rider_id: pick(5000) }), J);
  } else if (r < 0.70) {
    http.get(`${BASE}/api/v1/orders/${pick(20)}`, J);
  } else if (r < 0.85) {
    http.patch(`${BASE}/api/v1/trips/${pick(50)}`, JSON.stringify({ status: 'en_route' }), J);
  } else if (r < 0.95) {
    http.post(`${BASE}/api/v1/trips/${pick(50)}/location`,
              JSON.stringify({ driver_id: pick(800), lat: 52.52, lon: 13.405 }), J);
  } else {
    http.post(`${BASE}/api/v1/notifications`, JSON.stringify({ user_id: pick(5000), message: 'hi' }), J);
  }
  sleep(0.5);
}
"""
LOAD_VUS = 16

SETTLE_S = 8.0  # after a fault is set, before its window starts
WINDOW_S = 24.0
BASELINE_S = 60.0  # the healthy period every report compares with


# ---------------------------------------------------------------------------------------------------------------
# The truth


@dataclass(frozen=True)
class Truth:
    """A fault's documented true cause: the cause kind a report must name, and what it must be about."""

    kind: str
    about: Callable[[Recommendation], bool]
    text: str  # the true cause, in words

    def named_by(self, r: Recommendation) -> bool:
        return r.kind == self.kind and self.about(r)


def _about(*words: str) -> Callable[[Recommendation], bool]:
    def check(r: Recommendation) -> bool:
        text = " ".join((r.where, r.cause, r.solution, *(e.text for e in r.evidence)))
        return all(w in text for w in words)
    return check


TRUTHS: dict[str, Truth] = {
    "latency_ms": Truth("service-time", _about("api-gateway"), "the gateway's own work"),
    "service_latency": Truth("service-time", _about("order-service"), "order-service's own work"),
    "slow_query": Truth("scanning-statement", _about("pg_sleep", "tripo04os_demo.orders"),
                        "a slow statement scanning orders: add an index"),
    "lock_contention": Truth("lock-wait", _about("trips"), "row locks that trip updates wait on"),
    "n_plus_one": Truth("n-plus-one", _about("order_items"), "one query per order item"),
    "cache_off": Truth("cache-not-filled", _about("order:*"), "order reads not cached: nothing fills them"),
    "cache_ttl_seconds": Truth("cache-expiry", _about("order:*"), "order entries expire too soon"),
    "service_errors": Truth("service-errors", _about("pricing-service"), "errors in pricing-service"),
    "error_rate": Truth("service-errors", _about("api-gateway"), "errors in the gateway"),
    "serial_calls": Truth("serial-calls", _about("order-service", "create_order"),
                          "pricing and matching called one after the other"),
    "db_pool_size": Truth("connection-pool", lambda r: True, "requests queue for a database connection"),
    "payload_kb": Truth("payload", lambda r: True, "large responses"),
}

KNOBS: dict[str, dict[str, Any]] = {
    "latency_ms": {"latency_ms": 700},
    "service_latency": {"service_latency": {"order-service": 600}},
    "slow_query": {"slow_query": True},
    "lock_contention": {"lock_contention": True},
    "n_plus_one": {"n_plus_one": True},
    "cache_off": {"cache": "off"},
    "cache_ttl_seconds": {"cache_ttl_seconds": 1},
    "service_errors": {"service_errors": {"pricing-service": 0.5}},
    "error_rate": {"error_rate": 0.2},
    "serial_calls": {"serial_calls": True},
    "db_pool_size": {"db_pool_size": 1},
    "payload_kb": {"payload_kb": 800},
}

PAIRS: tuple[tuple[str, ...], ...] = (
    ("latency_ms", "slow_query", "cache_off"),  # the issue's report: three faults at once
    ("latency_ms", "slow_query"),
    ("service_latency", "n_plus_one"),
    ("lock_contention", "cache_ttl_seconds"),
    ("serial_calls", "payload_kb"),
    ("db_pool_size", "service_errors"),
)


@dataclass(frozen=True)
class Case:
    name: str
    knobs: tuple[str, ...]  # () for healthy

    @property
    def faults(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for knob in self.knobs:
            out.update(KNOBS[knob])
        return out

    @property
    def truths(self) -> list[Truth]:
        return [TRUTHS[k] for k in self.knobs]


HEALTHY = Case("healthy", ())
SINGLES = tuple(Case(k, (k,)) for k in KNOBS)
COMBINED = tuple(Case(" + ".join(p), p) for p in PAIRS)


@dataclass
class Verdict:
    case: Case
    report: Report
    top: list[Recommendation]
    high: list[Recommendation]
    rows_missed: list[str]
    report_seconds: float = 0.0  # how long building the report took

    @property
    def top1_right(self) -> bool:
        return bool(self.top) and any(t.named_by(self.top[0]) for t in self.case.truths)

    @property
    def all_in_top3(self) -> bool:
        return all(any(t.named_by(r) for r in self.top[:3]) for t in self.case.truths)

    @property
    def wrong_high(self) -> list[Recommendation]:
        """HIGH recommendations whose cause is none of the case's true causes."""
        return [r for r in self.high if not any(t.named_by(r) for t in self.case.truths)]

    def line(self) -> dict[str, Any]:
        top = self.top[0] if self.top else None
        return {"case": self.case.name, "truth": "; ".join(t.text for t in self.case.truths) or "(healthy)",
                "top cause": f"{top.kind}: {top.cause}" if top else "(none)",
                "fix": top.solution if top else "", "share": f"{top.share:.0%}" if top and top.share is not None
                else "", "priority": top.priority if top else "", "right": self.top1_right if self.case.knobs
                else not self.top, "missed": ", ".join(self.rows_missed)}


# ---------------------------------------------------------------------------------------------------------------
# The stack


def diagnosis_config(demo_url: str, dsn: str, redis_url: str) -> dict[str, Any]:
    """The shipped example config on the stack's servers, with short intervals."""
    data = yaml.safe_load(EXAMPLE.read_text())
    api = data["api"][0]
    api.update(base_url=demo_url, interval="4s", timeout="3s")
    api.pop("headers", None)  # the demo runs without its security here
    for endpoint in api["endpoints"]:
        endpoint.pop("security", None)
    data["postgres"][0].update(dsn=dsn, interval="2s", timeout="1500ms")
    data["redis"][0].update(url=redis_url, interval="2s", timeout="1s")
    data["jaeger"][0].update(url=demo_url, interval="2s", timeout="1500ms", lookback="20s", settle="1s")
    return data


@dataclass
class Stack:
    root: Path
    postgres: Postgres
    redis: Redis
    demo: subprocess.Popen[bytes]
    demo_url: str
    exporter: DaemonProcess
    prometheus: Prometheus
    load: subprocess.Popen[bytes]
    config_path: Path
    config: Any
    baseline: Window | None = None
    log: list[str] = field(default_factory=list)

    def faults(self, body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.demo_url}/admin/faults", data=data,
                                         method="POST" if body is not None else "DELETE",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, response.read()

    def report(self, window: Window) -> Report:
        options = ReportOptions(prometheus=self.prometheus.url, start=str(window.start), end=str(window.end))
        if self.baseline is not None:
            options.baseline_start, options.baseline_end = str(self.baseline.start), str(self.baseline.end)
        else:
            options.baseline = "0"
        return build(options, self.config.targets, jaeger_urls(self.config),
                     postgres_conninfos(self.config), endpoint_requests(self.config))

    def run_case(self, case: Case, settle_s: float = SETTLE_S, window_s: float = WINDOW_S) -> Verdict:
        self.faults(None)
        if case.knobs:
            self.faults(case.faults)
        start = time.time() + settle_s
        time.sleep(max(0.0, start + window_s - time.time()))
        time.sleep(2.5)  # the last scrapes and collections of the window reach Prometheus
        began = time.monotonic()
        report = self.report(Window(start, start + window_s))
        took = time.monotonic() - began
        findings = report.findings
        top = findings.top(3)
        high = [r for r in findings.recommendations if r.priority == HIGH]
        missed = [row.key for row in report.rows if row.status == "missed"]
        return Verdict(case, report, top, high, missed, took)

    def record_baseline(self, seconds: float = BASELINE_S) -> Window:
        """A healthy period for every later report to compare with (the last known-good period)."""
        self.faults(None)
        start = time.time()
        time.sleep(seconds)
        self.baseline = Window(start, start + seconds)
        return self.baseline


@contextmanager
def diagnosis_stack(postgres: Postgres | None = None, root: Path | None = None) -> Iterator[Stack]:
    """Start everything (a PostgreSQL of its own unless one is given), stop it all afterwards."""
    root = root or Path(tempfile.mkdtemp(prefix="diagnosis-"))
    own_postgres = postgres is None
    if postgres is None:
        postgres = Postgres(root / "postgres")
        postgres.init()
        postgres.start()
    db = "diagnosis"
    postgres.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    postgres.psql(f"CREATE DATABASE {db}")
    postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname=db)
    with_hypopg = False
    try:
        postgres.psql("CREATE EXTENSION IF NOT EXISTS hypopg", dbname=db)
        with_hypopg = True
    except RuntimeError:
        pass
    dsn = postgres.dsn(db)
    redis = Redis(root / "redis").start()
    port = free_port()
    demo_url = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen([sys.executable, "-m", "exporter", "demo", "--web.listen-address", f"127.0.0.1:{port}",
                             "--postgres", dsn, "--redis", redis.url, "--log.level", "warning"],
                            stdout=(root / "demo.log").open("wb"), stderr=subprocess.STDOUT)
    exporter: DaemonProcess | None = None
    prometheus: Prometheus | None = None
    load: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: demo.poll() is not None or http_ok(f"{demo_url}/health"), timeout=90, what="demo ready")
        if demo.poll() is not None:
            raise RuntimeError((root / "demo.log").read_text()[-3000:])
        config_path = root / "perf-exporter.yaml"
        config_path.write_text(yaml.safe_dump(diagnosis_config(demo_url, dsn, redis.url), sort_keys=False))
        from exporter.config.loading import load_config

        config = load_config(config_path)
        exporter = DaemonProcess(config_path, root / "exporter.log").wait_ready()
        prometheus = Prometheus(root / "prometheus", yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "perf-exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
        })).start()
        script = root / "load.js"
        script.write_text(LOAD_SCRIPT)
        k6 = find_k6()
        load = subprocess.Popen([str(k6.path), "run", "--quiet", "--no-summary", "--no-usage-report", str(script)],
                                env={"PATH": os.environ.get("PATH", ""), "TEST_BASE_URL": demo_url,
                                     "VUS": str(LOAD_VUS), "DURATION": "2h", "K6_NO_USAGE_REPORT": "true"},
                                stdout=(root / "load.log").open("wb"), stderr=subprocess.STDOUT)
        stack = Stack(root, postgres, redis, demo, demo_url, exporter, prometheus, load, config_path, config)
        stack.log.append(f"hypopg: {'yes' if with_hypopg else 'no'}")
        yield stack
    finally:
        if load is not None:
            child_process.stop(load)
        if prometheus is not None:
            prometheus.stop()
        if exporter is not None:
            exporter.stop()
        child_process.stop(demo, grace=15)
        redis.stop()
        if own_postgres:
            postgres.stop()
            shutil.rmtree(root, ignore_errors=True)
        else:
            postgres.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def describe(verdict: Verdict) -> str:
    """What a report said, for a failed check or the benchmark's log."""
    report = verdict.report
    rows = ", ".join(f"{r.key}={r.status}" for r in report.rows)
    recs = "\n".join(f"  {r.priority} {r.kind} [{r.where}] score={r.score:.2f} share={r.share}: {r.message[:300]}"
                     for r in report.findings.recommendations)
    return (f"case {verdict.case.name} window {iso(report.window.start)}..{iso(report.window.end)}\n"
            f"rows: {rows}\n{recs}")
