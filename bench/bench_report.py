"""Benchmark: ``perf-exporter report`` over 24 hours of a real Prometheus holding 50 endpoints at 15 s resolution.

The history is written as OpenMetrics (the daemon's own families: per endpoint the request-duration histogram with
its 20 buckets and the outcome counters; plus a database, a cache and a tracing target with statements, tables,
critical path and key patterns), backfilled with ``promtool tsdb create-blocks-from openmetrics`` into a fresh
data directory, and served by a real Prometheus. Then ``perf-exporter report --window 24h`` runs as a child
process (json, md and html) and the script prints its wall time and peak RSS against the goals (< 5 s,
< 200 MB), with Prometheus's own query count for the report.

No peer is measured: the guide's reports come from its own Node scripts, which are not available here.

    .venv/bin/python bench/bench_report.py [--endpoints 50] [--hours 24] [--step 15]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from exporter import metrics
from tests.servers import Prometheus, http_ok, wait_for

REPO = Path(__file__).resolve().parent.parent


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def histogram_lines(family: str, labels: dict[str, str], buckets: tuple[float, ...], times: list[int],
                    per_step: float, median: float, rng: random.Random) -> Iterator[str]:
    """Cumulative histogram samples of one series: ``per_step`` observations per step, lognormal around
    ``median`` seconds."""
    counts = [0] * (len(buckets) + 1)
    total = 0.0
    names = [f"{family}_bucket" + _labels(**labels, le=repr(b)) for b in buckets]
    names.append(f"{family}_bucket" + _labels(**labels, le="+Inf"))
    count_name = f"{family}_count" + _labels(**labels)
    sum_name = f"{family}_sum" + _labels(**labels)
    n = max(1, round(per_step))
    for t in times:
        for _ in range(n):
            value = median * math.exp(rng.gauss(0, 0.6))
            total += value
            for i, b in enumerate(buckets):
                if value <= b:
                    counts[i] += 1
            counts[-1] += 1
        for name, c in zip(names, counts, strict=True):
            yield f"{name} {c} {t}\n"
        yield f"{count_name} {counts[-1]} {t}\n"
        yield f"{sum_name} {total:.6f} {t}\n"


def counter_lines(name: str, labels: dict[str, str], times: list[int], per_step: float) -> Iterator[str]:
    value = 0.0
    series = name + _labels(**labels)
    for t in times:
        value += per_step
        yield f"{series} {value:.6f} {t}\n"


def gauge_lines(name: str, labels: dict[str, str], times: list[int], value: float) -> Iterator[str]:
    series = name + _labels(**labels)
    for t in times:
        yield f"{series} {value} {t}\n"


def write_history(path: Path, endpoints: int, times: list[int]) -> int:
    """The OpenMetrics file; returns the number of series."""
    rng = random.Random(7)
    names = ["create_order", *(f"endpoint_{i:03d}" for i in range(endpoints - 1))]
    series = 0
    lb = metrics.LATENCY_BUCKETS
    with path.open("w") as out:
        fam = metrics.HTTP_REQUEST_DURATION.name
        out.write(f"# TYPE {fam} histogram\n")
        for i, e in enumerate(names):
            out.writelines(histogram_lines(fam, {"target": "gateway", "endpoint": e, "method": "GET"}, lb, times,
                                           3, 0.04 + 0.3 * (i == 7), rng))
            series += len(lb) + 3
        out.write(f"# TYPE {metrics.HTTP_REQUESTS.name.removesuffix('_total')} counter\n")
        for e in names:
            for outcome, share in (("success", 2.97), ("http_5xx", 0.03)):
                out.writelines(counter_lines(metrics.HTTP_REQUESTS.name, {"target": "gateway", "endpoint": e,
                                                                          "method": "GET", "outcome": outcome},
                                             times, share))
                series += 1
        fam = metrics.PG_QUERY_DURATION.name
        out.write(f"# TYPE {fam} histogram\n")
        out.writelines(histogram_lines(fam, {"target": "main", "datname": "app"}, lb, times, 20, 0.004, rng))
        series += len(lb) + 3
        fam = metrics.TRACE_DURATION.name
        out.write(f"# TYPE {fam} histogram\n")
        out.writelines(histogram_lines(fam, {"target": "tracing", "service": "api-gateway", "operation": "GET"},
                                       metrics.TRACE_BUCKETS, times, 2, 0.08, rng))
        series += len(metrics.TRACE_BUCKETS) + 3
        for name, labels_list in (
            (metrics.PG_STATEMENT_CALLS.name, [{"target": "main", "datname": "app", "user": "app",
                                                "queryid": str(q)} for q in range(20)]),
            (metrics.PG_STATEMENT_EXEC.name, [{"target": "main", "datname": "app", "user": "app",
                                               "queryid": str(q)} for q in range(20)]),
            (metrics.PG_TABLE_SEQ_SCANS.name, [{"target": "main", "datname": "app", "schema": "public",
                                                "table": f"t{i}"} for i in range(10)]),
            (metrics.REDIS_HITS.name, [{"target": "cache"}]), (metrics.REDIS_MISSES.name, [{"target": "cache"}]),
            (metrics.TRACE_CRITICAL_PATH.name, [{"target": "tracing", "service": s}
                                                for s in ("api-gateway", "order-service", "pricing-service")]),
        ):
            out.write(f"# TYPE {name.removesuffix('_total')} counter\n")
            for i, labels in enumerate(labels_list):
                out.writelines(counter_lines(name, labels, times, 1.0 + i * (0.01 if "exec" in name else 1)))
                series += 1
        out.write(f"# TYPE {metrics.PG_STATEMENT_INFO.name} gauge\n")
        for q in range(20):
            out.writelines(gauge_lines(metrics.PG_STATEMENT_INFO.name, {"target": "main", "queryid": str(q),
                                       "query": f"SELECT * FROM t{q % 10} WHERE c = $1"}, times, 1))
            series += 1
        out.write("# EOF\n")
    return series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--step", type=int, default=15)
    parser.add_argument("--profile", action="store_true", help="also profile one report in this process")
    args = parser.parse_args()
    if shutil.which("promtool") is None or shutil.which("prometheus") is None:
        print("needs promtool and prometheus (scripts/test.sh installs them)", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        end = int(time.time()) // args.step * args.step - 60
        start = end - int(args.hours * 3600)
        times = list(range(start, end + 1, args.step))
        history = root / "history.om"
        t0 = time.perf_counter()
        series = write_history(history, args.endpoints, times)
        print(f"history: {series} series x {len(times)} samples ({series * len(times) / 1e6:.1f} M samples, "
              f"{history.stat().st_size / 1e6:.0f} MB of OpenMetrics) written in {time.perf_counter() - t0:.1f} s")
        data = root / "prometheus" / "data"
        data.mkdir(parents=True)
        t0 = time.perf_counter()
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                        str(history), str(data)], check=True, capture_output=True)
        print(f"backfill: promtool tsdb create-blocks-from openmetrics in {time.perf_counter() - t0:.1f} s")
        history.unlink()
        prometheus = Prometheus(root / "prometheus", yaml.safe_dump({"global": {"scrape_interval": "15s"}}))
        prometheus.start()
        try:
            wait_for(lambda: http_ok(f"{prometheus.url}/-/ready"), timeout=60, what="prometheus ready")
            out = root / "reports"
            argv = [sys.executable, "-m", "exporter", "report", "--prometheus", prometheus.url, "--from",
                    str(start), "--to", str(end), "--out", str(out)]
            walls, cpus, rss = [], [], []
            for _ in range(3):
                t0 = time.perf_counter()
                child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                assert child.stderr is not None
                stderr = child.stderr.read()
                _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not promtool's
                child.returncode = os.waitstatus_to_exitcode(status)
                walls.append(time.perf_counter() - t0)
                cpus.append(usage.ru_utime + usage.ru_stime)
                rss.append(usage.ru_maxrss / 1024)
                if child.returncode not in (0, 1, 2):
                    print(stderr, file=sys.stderr)
                    return 1
            rss_mb = max(rss)
            if args.profile:
                import cProfile
                import pstats

                from exporter.reports.command import ReportOptions, run_report

                profile = cProfile.Profile()
                with open(os.devnull, "w") as quiet:
                    profile.runcall(run_report, ReportOptions(prometheus=prometheus.url, start=str(start),
                                                              end=str(end), out=root / "profiled", stream=quiet))
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            files = sorted(p.name for p in out.iterdir())
            wall = min(walls)
            print(f"report over {args.hours:g} h of {args.endpoints} endpoints at {args.step} s: wall {wall:.2f} s "
                  f"(best of 3; runs {', '.join(f'{w:.2f}' for w in walls)} s; goal < 5 s, ratio {wall / 5:.2f}), "
                  f"peak RSS {rss_mb:.0f} MB (goal < 200 MB, ratio {rss_mb / 200:.2f})")
            print(f"report CPU (user+sys of the child; Prometheus's own time not included): "
                  f"{', '.join(f'{c:.2f}' for c in cpus)} s; machine load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} cores")
            print(f"files: {', '.join(files)}")
            print(f"html: {(out / 'report.html').stat().st_size / 1e3:.0f} kB; the report's first line: "
                  f"{stderr.strip().splitlines()[0][:160]}")
        finally:
            prometheus.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
