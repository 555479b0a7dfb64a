"""End to end: the demo on real PostgreSQL and Redis under a steady k6 load, the real daemon probing and
profiling it, a real Prometheus scraping the daemon, and reports over short windows of that Prometheus, each
compared with a healthy baseline recorded first (bench/diagnosis_stack.py, the diagnosis benchmark's stack).

A healthy window has every target met and is quiet: no bottleneck, nothing HIGH or MEDIUM. A fault's report names
its documented true cause (docs/demo.md) with the share of the excess it explains: the issue's three faults at
once each for what it explains, serial calls over the calls' own time, a lock wait and short-lived cache entries
together.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.diagnosis_stack import HEALTHY, TRUTHS, Case, Stack, Verdict, describe, diagnosis_stack
from exporter.reports.command import ReportOptions, build, write
from exporter.reports.recommendations import HIGH, MEDIUM, chain_kind
from tests.servers import Postgres
from tests.test_report_files import validate_files

BASELINE_S = 40.0

pytestmark = pytest.mark.skipif(
    any(shutil.which(b) is None for b in ("prometheus", "redis-server")),
    reason="needs prometheus and redis-server (scripts/test.sh installs them)")


@pytest.fixture(scope="module")
def stack(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with diagnosis_stack(postgres, tmp_path_factory.mktemp("report-e2e")) as running:
        import time

        time.sleep(10)  # the load and the collectors' first rounds
        running.record_baseline(BASELINE_S)
        yield running


def case(stack: Stack, *knobs: str) -> Verdict:
    verdict = stack.run_case(Case(" + ".join(knobs) or "healthy", knobs) if knobs else HEALTHY)
    return verdict


def test_a_healthy_window_meets_every_target_and_is_quiet(stack: Stack) -> None:
    verdict = case(stack)
    report = verdict.report
    assert all(r.status == "met" for r in report.rows), describe(verdict)
    # it names no cause and raises nothing above LOW; create_order's own 300 ms target sits close to its
    # healthy P95 (~250 ms here), and a machine busy with the other tests can push it over: that is a real
    # miss, said LOW and unexplained, never a cause
    assert {r.priority for r in report.findings.recommendations} <= {"LOW"}, describe(verdict)
    assert all(r.kind == "unexplained" for r in report.findings.top(3)), describe(verdict)
    # written in every format; the JSON files are valid against the shipped schema
    out = stack.root / "healthy"
    paths = write(report, out, ("json", "md", "html"))
    validate_files(out)
    assert {p.name for p in paths} >= {"api.json", "database.json", "cache.json", "tracing.json",
                                       "performance-summary.json", "report.md", "report.html"}
    summary = json.loads((out / "performance-summary.json").read_text())
    assert [row["Status"] for row in summary["targets"]] == ["met"] * 6
    if not report.findings.top(3):
        assert summary["bottlenecks"] == [] and "None: every target is met." in (out / "report.md").read_text()
    # the database P95 says how it was measured
    db = next(r for r in report.rows if r.key == "db_query_p95")
    assert db.current.precision in ("estimate", "approximate")


def test_the_issues_three_faults_are_each_named_for_what_they_explain(stack: Stack) -> None:
    verdict = case(stack, "latency_ms", "slow_query", "cache_off")
    assert verdict.all_in_top3 and not verdict.wrong_high, describe(verdict)
    recs = {r.kind: r for r in verdict.report.findings.recommendations if not r.housekeeping}
    gateway, index, cache = recs["service-time"], recs["scanning-statement"], recs["cache-not-filled"]
    assert gateway.priority == HIGH and gateway.where == "api-gateway"
    # the index is advised for what the statement explains: order creation, and the database's P95; never the
    # other endpoints, which do not run it
    assert {s.what.split(" ")[0] for s in index.symptoms if s.issue == "Slow API endpoints"} <= {"create_order"}
    assert index.command is not None and "rider_id" in index.command
    assert all(s.share >= 0.2 for s in index.symptoms)
    assert "order:*" in cache.where and "driver:location" not in cache.message
    for r in (gateway, index, cache):
        assert all(e.source.startswith(("prometheus: ", "hypopg: ")) for e in r.evidence)
        assert len(r.diagnosis) == 4 and all(step.found for step in r.diagnosis)
    # every order read misses: GET order:{id} then the database read, which the serial-siblings counters flag;
    # a sample trace from Jaeger tells it is cache-aside, and no advice parallelises it
    groups = [g for t in verdict.report.observed.facts.tracing for g in t.serial
              if g.service == "order-service" and g.operation == "get_order" and g.sample]
    assert {chain_kind(g.sample)[0] for g in groups} <= {"cache-aside"}
    assert not any("side by side" in r.solution and "get_order" in r.solution and "do not" not in r.solution
                   for r in verdict.report.findings.recommendations)


def test_calls_made_one_after_another_are_the_cause_not_the_calls_themselves(stack: Stack) -> None:
    verdict = case(stack, "serial_calls")
    assert verdict.top1_right, describe(verdict)
    top = verdict.top[0]
    # the serial calls explain most of the excess (alone: ~90 %; a machine busy with other work adds time of
    # its own that no cause explains)
    assert top.solution.startswith("parallelize independent operations") and (top.share or 0) > 0.6
    assert not any(r.kind == "service-time" for r in verdict.report.findings.recommendations), describe(verdict)


def test_a_lock_wait_and_short_lived_cache_entries_are_both_named(stack: Stack) -> None:
    verdict = case(stack, "lock_contention", "cache_ttl_seconds")
    assert verdict.all_in_top3 and not verdict.wrong_high, describe(verdict)
    lock = next(r for r in verdict.top if TRUTHS["lock_contention"].named_by(r))
    assert lock.priority in (HIGH, MEDIUM) and "pg_blocking_pids" in (lock.command or "")
    assert "idle in transaction" in " ".join(e.text for e in lock.evidence)


def test_the_report_command_writes_the_files_and_says_no_data_for_an_empty_window(stack: Stack,
                                                                                  tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "exporter", "report", "--prometheus", stack.prometheus.url,
                          "--config.file", str(stack.config_path), "--from", "2001-01-01T00:00:00Z", "--to",
                          "2001-01-01T00:10:00Z", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    summary = json.loads((tmp_path / "performance-summary.json").read_text())
    assert {row["Status"] for row in summary["targets"]} == {"no data"}
    assert all(row["reason"] for row in summary["targets"])
    validate_files(tmp_path)
    report = build(ReportOptions(prometheus=stack.prometheus.url, window="10s"), stack.config.targets)
    assert report.window.seconds == pytest.approx(10, abs=0.5)
