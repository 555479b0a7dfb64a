"""Benchmark: the PostgreSQL collector with 6,000 distinct statements in pg_stat_statements, against
prometheus-postgres-exporter running the pg_stat_statements query of its example queries.yaml, in the same run.

Prints, for us: collection time (in process; with the query P95 and, in the same rounds, without it: the
collector as before, reading pg_stat_statements in text without the spread columns and computing no P95, with
the exporter's CPU time of each and of the P95 step alone), render time of the store
(``generate_latest`` over a registry holding a StoreCollector, and the daemon's cached
``StoreCollector.render``), series count, and the daemon's RSS
and /metrics scrape time when it runs as `perf-exporter run`; for postgres_exporter: /metrics scrape time (which
is its collection), series count and RSS; and the ratios.

    .venv/bin/python bench/bench_postgres.py [--statements 6000] [--rounds 5] [--calls 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypeVar

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from psycopg import sql

from bench.measures import rss_mb
from exporter import metrics
from exporter.collectors.postgres import queries as q
from exporter.collectors.postgres.collector import PostgresCollector
from exporter.collectors.postgres.query_latency import SpreadRow
from exporter.collectors.postgres.stat_statements import StatementsView
from exporter.collectors.postgres.statements import Counters, Snapshot, StatementKey, sum_rows
from exporter.collectors.postgres.target import PostgresTarget
from exporter.jobs import JobContext, TraceLink
from exporter.store import MetricStore, StoreCollector
from tests.servers import Postgres, free_port, http_ok, pg_bindir, port_open, wait_for

HERE = Path(__file__).resolve().parent
SCRAPE_TIMEOUT = 120.0
REPO = HERE.parent


def series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def series_named(text: str, prefix: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(prefix))


def workload(statements: int) -> str:
    """``statements`` distinct statements: pg_stat_statements ignores constants, so they differ in the columns
    they read and filter on (20 columns: up to 8,000 shapes)."""
    lines = []
    for i in range(statements):
        a, b, c = i % 20, (i // 20) % 20, (i // 400) % 20
        lines.append(f"SELECT c{a} FROM wide WHERE c{b} = {i} AND c{c} = {i + 1};")
    return "\n".join(lines) + "\n"


def run_sql_file(pg: Postgres, path: Path) -> None:
    subprocess.run([str(pg_bindir() / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d",
                    "postgres", "-q", "-o", "/dev/null", "-f", str(path)], check=True,
                   env={**os.environ, "PGPASSWORD": pg.password})


SPREAD_COLUMNS = re.compile(r",\s*coalesce\(sum\(CASE WHEN s\.calls > 0.*?(?=\nFROM)", re.DOTALL)


class TimedQueryP95(StatementsView):
    """The collector's pg_stat_statements view, with the exporter CPU time its query P95 step takes
    (interval_latency and query_p95)."""

    p95_cpu: list[float]

    def _write_query_p95(self, deltas: dict[StatementKey, Counters], snapshot: Snapshot,
                         spreads: dict[StatementKey, SpreadRow]) -> None:
        started = time.process_time()
        super()._write_query_p95(deltas, snapshot, spreads)
        self.p95_cpu.append(time.process_time() - started)


class WithoutQueryP95(StatementsView):
    """The view as it was before the query P95 (commit 3758cc0): pg_stat_statements read in text format without
    the spread columns, and no P95 computed."""

    async def _read(self, datname: str, schema: str) -> tuple[Snapshot, dict[StatementKey, SpreadRow]]:
        conn = self.connection(datname)
        queries = self.queries.get((datname, schema))
        if queries is None:
            columns = {row[0] for row in await conn.rows(q.VIEW_COLUMNS, (f"{schema}.pg_stat_statements",))}
            info = await conn.rows(q.VIEW_COLUMNS, (f"{schema}.pg_stat_statements_info",))
            queries = q.statement_queries(schema, columns, bool(info))
            old = SPREAD_COLUMNS.sub("", queries.counters.as_string(None))
            queries = q.StatementQueries(sql.Composed([sql.SQL(old)]), queries.texts, queries.info)
            self.queries[(datname, schema)] = queries
        stats_reset = dealloc = None
        rows = await conn.rows(queries.counters)
        if queries.info is not None:
            info_rows = await conn.rows(queries.info)
            if info_rows:
                stats_reset, dealloc = info_rows[0]
        entries = sum_rows(((row[0], row[1], row[2]), Counters._make(row[3:9]), row[9]) for row in rows)
        return Snapshot(entries, stats_reset, dealloc), {}

    def _write_query_p95(self, deltas: dict[StatementKey, Counters], snapshot: Snapshot,
                         spreads: dict[StatementKey, SpreadRow]) -> None:
        return None


View = TypeVar("View", bound=StatementsView)


def collector_with(view: type[View], cfg: PostgresTarget, store: MetricStore) -> tuple[PostgresCollector, View]:
    """The collector, reading pg_stat_statements through ``view``."""
    collector = PostgresCollector(cfg, JobContext(store, TraceLink()))
    statements = view(cfg, collector.store, collector._connection, collector._once, collector.states)
    collector.statements = statements
    return collector, statements


async def measure_in_process(pg: Postgres, rounds: int, work: Path, top: int, calls: int = 1) -> dict[str, float]:
    cfg = PostgresTarget.model_validate({"name": "bench", "dsn": pg.dsn(), "databases": ["postgres"],
                                         "interval": "30s", "timeout": "20s", "top_statements": top})
    store = MetricStore()
    stores = StoreCollector()
    stores.stores["postgres/bench"] = store
    registry = CollectorRegistry()
    registry.register(stores)
    collector, timed = collector_with(TimedQueryP95, cfg, store)
    timed.p95_cpu = []
    # the collector as before gets a rendered store of its own, so that both pay for the same garbage
    before_stores = StoreCollector()
    before_stores.stores["postgres/bench"] = MetricStore()
    before_registry = CollectorRegistry()
    before_registry.register(before_stores)
    before, _ = collector_with(WithoutQueryP95, cfg, before_stores.stores["postgres/bench"])
    collect_times: list[float] = []
    before_times: list[float] = []
    generate_times: list[float] = []
    render_times: list[float] = []
    cpu: dict[bool, list[float]] = {True: [], False: []}  # the exporter's CPU seconds per collection, by variant
    try:
        started = time.perf_counter()
        assert await collector.run()
        first = time.perf_counter() - started
        assert await before.run()
        for i in range(rounds):
            for _ in range(calls):  # every statement is called again: 6,000 non-zero deltas to rank
                run_sql_file(pg, work)
            # both collectors see the same 6,000 deltas; which one goes first alternates
            for job in (collector, before) if i % 2 == 0 else (before, collector):
                gc.collect()  # neither pays for the other's garbage
                started, started_cpu = time.perf_counter(), time.process_time()
                assert await job.run()
                (collect_times if job is collector else before_times).append(time.perf_counter() - started)
                cpu[job is collector].append(time.process_time() - started_cpu)
            started = time.perf_counter()
            stores.render()  # after a collection: the families it wrote are rendered again
            render_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            text = generate_latest(registry).decode()
            generate_times.append(time.perf_counter() - started)
            before_stores.render()
            generate_latest(before_registry)
    finally:
        await collector.close()
        await before.close()
    p95 = store.get(metrics.PG_QUERY_P95, target="bench")
    assert p95 is not None, "no query P95 was computed"
    return {"first": first, "collect": statistics.median(collect_times), "before": statistics.median(before_times),
            "collect_cpu": statistics.median(cpu[True]), "before_cpu": statistics.median(cpu[False]),
            "p95_cpu": statistics.median(timed.p95_cpu[1:]),
            "generate": statistics.median(generate_times), "render": statistics.median(render_times),
            "series": series(text), "statement_series": series_named(text, "perf_pg_statement_calls_total")}


def scrape(url: str, rounds: int) -> tuple[float, str]:
    times, text = [], ""
    with httpx.Client(timeout=SCRAPE_TIMEOUT) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            text = response.text
    return statistics.median(times), text


def successful_runs(url: str) -> float:
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            if sample.name == "perf_job_runs_total" and sample.labels.get("collector") == "postgres" \
                    and sample.labels.get("result") == "success":
                return sample.value
    return 0.0


def measure_daemon(pg: Postgres, root: Path, rounds: int, top: int, work: Path) -> dict[str, float]:
    port = free_port()
    config = root / "perf-exporter.yaml"
    config.write_text(f"postgres:\n  - name: bench\n    dsn: {pg.dsn()}\n    databases: [postgres]\n"
                      f"    interval: 3s\n    timeout: 2500ms\n    top_statements: {top}\n")
    exe = Path(sys.executable).parent / "perf-exporter"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "exporter"]
    proc = subprocess.Popen([*argv, "run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}",
                             "--log.level", "warning"], stdout=subprocess.DEVNULL,
                            stderr=open(root / "daemon.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), 30, "perf-exporter ready")
        wait_for(lambda: successful_runs(url) >= 1, 60, "perf-exporter's first collection", interval=0.2)
        run_sql_file(pg, work)  # so that the next collection has 6,000 deltas, as in process
        wait_for(lambda: successful_runs(url) >= 3, 60, "two more collections", interval=0.2)
        seconds, text = scrape(url, rounds * 4)
        return {"scrape": seconds, "series": series(text), "rss": rss_mb(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(15)


def measure_postgres_exporter(pg: Postgres, root: Path, rounds: int) -> dict[str, float] | None:
    binary = shutil.which("prometheus-postgres-exporter")
    if binary is None:
        print("prometheus-postgres-exporter is not installed: no comparison")
        return None
    port = free_port()
    env = {**os.environ, "DATA_SOURCE_NAME": pg.dsn() + "?sslmode=disable"}  # 0.11 reads only this
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                             f"--extend.query-path={HERE / 'postgres_exporter_queries.yaml'}", "--log.level=warn"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(root / "pge.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: port_open(port), 30, "postgres_exporter listening")
        try:
            seconds, text = scrape(url, rounds)
        except httpx.TimeoutException:
            print(f"\npostgres_exporter's /metrics did not answer within {SCRAPE_TIMEOUT:g} s: no comparison "
                  f"(is the machine overloaded?)")
            return None
        return {"scrape": seconds, "series": series(text), "rss": rss_mb(proc.pid),
                "statement_series": series_named(text, "pg_stat_statements_calls")}
    finally:
        proc.terminate()
        proc.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=50, help="top_statements")
    parser.add_argument("--calls", type=int, default=1,
                        help="calls of each statement per interval (above 1, each has a spread to model)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    pg = Postgres(root / "pg").init().start()
    try:
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        columns = ", ".join(f"c{i} int" for i in range(20))
        pg.psql(f"CREATE TABLE wide ({columns}); SELECT pg_stat_statements_reset()")
        work = root / "workload.sql"
        work.write_text(workload(args.statements))
        run_sql_file(pg, work)
        distinct = int(pg.psql("SELECT count(*) FROM pg_stat_statements").strip())
        print(f"pg_stat_statements: {distinct} entries ({args.statements} generated statements)")

        ours = asyncio.run(measure_in_process(pg, args.rounds, work, args.top, args.calls))
        daemon = measure_daemon(pg, root, args.rounds, args.top, work)
        print(f"\nperf-exporter (top_statements={args.top}), median of {args.rounds}:")
        print(f"  first collection (baseline):     {ours['first'] * 1000:8.1f} ms")
        print(f"  collection (6,000 deltas):       {ours['collect'] * 1000:8.1f} ms")
        print(f"    same rounds, without query P95: {ours['before'] * 1000:7.1f} ms   (ratio "
              f"{ours['collect'] / ours['before']:.3f})")
        print(f"    exporter CPU, with / without:  {ours['collect_cpu'] * 1000:6.1f} / "
              f"{ours['before_cpu'] * 1000:.1f} ms   (ratio {ours['collect_cpu'] / ours['before_cpu']:.3f})")
        print(f"    of which the query P95 step:    {ours['p95_cpu'] * 1000:6.1f} ms CPU   "
              f"({ours['p95_cpu'] / ours['before_cpu'] * 100:.1f} % of the collection without it)")
        print(f"  render, generate_latest:         {ours['generate'] * 1000:8.2f} ms")
        print(f"  render, StoreCollector.render:   {ours['render'] * 1000:8.2f} ms")
        print(f"  series (postgres store):         {ours['series']:8.0f}"
              f"   (statement call series: {ours['statement_series']:.0f})")
        print(f"  daemon /metrics scrape:          {daemon['scrape'] * 1000:8.2f} ms")
        print(f"  daemon series (whole /metrics):  {daemon['series']:8.0f}")
        print(f"  daemon RSS:                      {daemon['rss']:8.1f} MB", flush=True)
        theirs = measure_postgres_exporter(pg, root, args.rounds)
        if theirs is not None:
            print("\nprometheus-postgres-exporter (example pg_stat_statements query), median of "
                  f"{args.rounds}:")
            print(f"  /metrics scrape (= collection):  {theirs['scrape'] * 1000:8.1f} ms")
            print(f"  series:                          {theirs['series']:8.0f}"
                  f"   (statement call series: {theirs['statement_series']:.0f})")
            print(f"  RSS:                             {theirs['rss']:8.1f} MB")
            print("\nratios (ours / postgres_exporter):")
            print(f"  scrape time, daemon /metrics:    {daemon['scrape'] / theirs['scrape']:8.3f}")
            print(f"  scrape time, generate_latest:    {ours['generate'] / theirs['scrape']:8.3f}")
            print(f"  collection vs their scrape:      {ours['collect'] / theirs['scrape']:8.3f}")
            print(f"  series:                          {daemon['series'] / theirs['series']:8.3f}")
            print(f"  RSS:                             {daemon['rss'] / theirs['rss']:8.3f}")
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
