"""Benchmark: what the generated rules cost Prometheus, and how long generating and unit-testing them takes.

Prints, all measured in the same run:

- render time of ``perf-exporter render rules`` and ``render dashboards`` for the example config;
- wall time of the shipped promtool unit tests (two files at a time);
- rule evaluation cost in a real Prometheus 2.42: the production rules (30-day SLO window) loaded while it
  scrapes a synthetic exporter whose series grow every second like the real daemon's (``--endpoints`` API
  endpoints with histograms and outcome counters, PostgreSQL, Redis and trace histograms), evaluated every
  ``--eval`` seconds for ``--seconds``: the mean and max of ``prometheus_rule_group_last_duration_seconds`` per
  group, the series the rules record, and evaluation failures (must be 0).

No peer is measured: Sloth, the generator whose rule names we follow, is not packaged for this machine.

    .venv/bin/python bench/bench_rules.py [--endpoints 50] [--seconds 40] [--eval 2]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.quiet_http import QuietHandler
from exporter import metrics
from exporter.config.loading import load_config
from exporter.slo.render import dashboard_outputs, rule_outputs, to_yaml
from exporter.slo.rules import rule_groups
from exporter.store import StoreCollector
from tests.servers import Prometheus, free_port

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "tripo04os.yaml"


def synthetic_exporter(endpoints: int) -> tuple[ThreadingHTTPServer, threading.Event]:
    """A /metrics endpoint whose series grow every second, like the daemon's."""
    collector = StoreCollector()
    api, pg, cache, traces = (collector.add(k) for k in ("api", "pg", "redis", "jaeger"))
    names = ["create_order", *(f"endpoint_{i:03d}" for i in range(endpoints - 1))]
    rng = random.Random(7)
    lock = threading.Lock()
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1.0):
            with lock:
                for name in names:
                    labels = {"target": "gateway", "endpoint": name, "method": "GET"}
                    for _ in range(5):
                        api.observe(metrics.HTTP_REQUEST_DURATION, rng.lognormvariate(-2.5, 0.8), **labels)
                        outcome = "http_5xx" if rng.random() < 0.005 else "success"
                        api.inc(metrics.HTTP_REQUESTS, 1.0, outcome=outcome, **labels)
                for db in ("tripo04os", "postgres"):
                    pg.observe(metrics.PG_QUERY_DURATION, rng.lognormvariate(-5, 1), 40, target="main", datname=db)
                cache.inc(metrics.REDIS_HITS, 90, target="cache")
                cache.inc(metrics.REDIS_MISSES, 10, target="cache")
                for op in ("POST /api/v1/orders", "GET /api/v1/orders/{id}"):
                    traces.observe(metrics.TRACE_DURATION, rng.lognormvariate(-2, 0.6), target="tracing",
                                   service="gateway", operation=op)

    with lock:
        for name in names:
            api.ensure_histogram(metrics.HTTP_REQUEST_DURATION, target="gateway", endpoint=name, method="GET")
            for outcome in metrics.HTTP_OUTCOMES:
                api.ensure_counter(metrics.HTTP_REQUESTS, target="gateway", endpoint=name, method="GET",
                                   outcome=outcome)
    threading.Thread(target=tick, daemon=True).start()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            with lock:
                body = collector.render().encode()
            self.reply(body, "text/plain; version=0.0.4")

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, stop


def own_metrics(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus's own /metrics (it does not scrape itself here)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def query(url: str, promql: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}),
                                timeout=10) as response:
        return list(json.loads(response.read())["data"]["result"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--eval", type=float, default=2)
    args = parser.parse_args()
    for binary in ("prometheus", "promtool"):
        if shutil.which(binary) is None:
            print(f"{binary} is not installed (Debian package prometheus)", file=sys.stderr)
            return 1
    config = load_config(EXAMPLE, env={})

    started = time.perf_counter()
    rules = rule_outputs(config)
    render_rules = time.perf_counter() - started
    started = time.perf_counter()
    dashboard_outputs(config)
    render_dashboards = time.perf_counter() - started
    print(f"render rules:      {render_rules * 1000:8.1f} ms ({len(rules)} files)")
    print(f"render dashboards: {render_dashboards * 1000:8.1f} ms")

    tests = sorted((REPO / "rules" / "tests").glob("*.test.yml"))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(lambda f: subprocess.run(["promtool", "test", "rules", f.name], cwd=f.parent,
                                                       capture_output=True).returncode, tests))
    print(f"promtool unit tests: {time.perf_counter() - started:6.1f} s wall for {len(tests)} files "
          f"(2 at a time), failures: {sum(1 for c in codes if c)}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rules_dir = root / "rules"
        rules_dir.mkdir()
        groups = rule_groups(config)
        for stem, content in groups.items():
            (rules_dir / f"{stem}.rules.yml").write_text(to_yaml(content))
        server, stop = synthetic_exporter(args.endpoints)
        prometheus = Prometheus(root / "prometheus", yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": f"{args.eval}s"},
            "rule_files": [str(rules_dir / "*.rules.yml")],
            "scrape_configs": [{"job_name": "perf-exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{server.server_address[1]}"]}]}],
        })).start()
        samples: dict[str, list[float]] = {}
        try:
            deadline = time.monotonic() + args.seconds
            warmup = time.monotonic() + min(10.0, args.seconds / 3)
            while time.monotonic() < deadline:
                time.sleep(args.eval)
                if time.monotonic() < warmup:
                    continue
                for labels, value in own_metrics(prometheus.url)["prometheus_rule_group_last_duration_seconds"]:
                    samples.setdefault(labels["rule_group"].split(";")[-1], []).append(value)
            failures = sum(v for _, v in own_metrics(prometheus.url)["prometheus_rule_evaluation_failures_total"])
            recorded = query(prometheus.url, 'count({__name__=~"slo:.*|target.*:.*"})')
            scraped = query(prometheus.url, 'scrape_samples_scraped{job="perf-exporter"}')
        finally:
            prometheus.stop()
            stop.set()
            server.shutdown()
    print(f"rule evaluation in Prometheus 2.42, {args.endpoints} endpoints "
          f"({scraped[0]['value'][1] if scraped else '?'} scraped samples), every {args.eval:g}s:")
    for group, values in sorted(samples.items()):
        rules_in = next(len(g["groups"][0]["rules"]) for g in groups.values() if g["groups"][0]["name"] == group)
        print(f"  {group:26s} {rules_in:4d} rules  mean {statistics.mean(values) * 1000:7.2f} ms  "
              f"max {max(values) * 1000:7.2f} ms  ({len(values)} samples)")
    print(f"  recorded series: {recorded[0]['value'][1] if recorded else 0}, "
          f"evaluation failures: {failures:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
