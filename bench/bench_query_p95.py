"""Benchmark: the database query P95 against ground truth. Each workload of ``pg_sleep`` calls with known
durations runs on a fresh PostgreSQL between two collections; the table shows the true P95 of the interval's
calls, today's figure (``histogram_quantile(0.95)`` over ``perf_pg_query_duration_seconds``, every call at its
statement's interval mean), the new estimate with its bounds (``perf_pg_query_p95_*``), the status against the
guide's 100 ms target, and whether the estimate is flagged uncertain.

    .venv/bin/python bench/bench_query_p95.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import Postgres
from tests.test_query_latency_postgres import TARGET, WORKLOADS, Outcome, run_workload


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def error(value: float | None, truth: float) -> str:
    return "-" if value is None else f"{(value - truth) / truth * 100:+.0f} %"


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-p95-"))
    pg = Postgres(root / "pg").init().start()
    outcomes: list[Outcome] = []
    try:
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for workload in WORKLOADS:
            outcomes.append(run_workload(pg, workload))
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"target: P95 < {TARGET * 1000:g} ms; durations in ms; calls include the collector's own statements\n")
    header = ("| workload | calls | true P95 | today (mean-placed histogram) | new estimate | bounds "
              "| status | uncertain |")
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        print(f"| {o.workload} | {o.calls:.0f} | {ms(o.true_p95)} | {ms(o.today)} ({error(o.today, o.true_p95)}) "
              f"| {ms(o.estimate)} ({error(o.estimate, o.true_p95)}) | [{ms(o.lower)}, {ms(o.upper)}] "
              f"| {o.status} | {'yes' if o.uncertain else 'no'} |")
    wrong = [o.workload for o in outcomes if o.status == "met" and o.true_p95 > TARGET * 1.2]
    print(f"\nwrongly met: {len(wrong)}" + (f" ({', '.join(wrong)})" if wrong else ""))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
