"""The report files on data: the guide's exact fields, the schema, the targets table's statuses and reasons, a
bench run as the source, and the command's errors (never a traceback, never a made-up number)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from exporter.reports.command import ReportOptions, run_report, window_of
from exporter.reports.facts import Facts, Targets
from exporter.reports.judge import build_report, judge
from exporter.reports.model import (
    APPROXIMATE,
    BUCKETED,
    ESTIMATE,
    AreaSummary,
    Figure,
    Observed,
    ReportError,
    Window,
    missing,
)
from exporter.reports.render_json import error_rate_text, json_files

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "exporter" / "reports" / "schema"


def _schemas() -> tuple[dict[str, Any], dict[str, Any], Registry]:
    area = json.loads((SCHEMA_DIR / "area-report.json").read_text())
    summary = json.loads((SCHEMA_DIR / "performance-summary.json").read_text())
    registry: Registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in (area, summary)])
    return area, summary, registry


def validate_files(directory: Path) -> None:
    """Every JSON file a report wrote into ``directory`` is valid against the shipped schema."""
    area, summary, registry = _schemas()
    for name in ("api.json", "database.json", "cache.json", "tracing.json"):
        jsonschema.Draft202012Validator(area, registry=registry).validate(json.loads((directory / name).read_text()))
    jsonschema.Draft202012Validator(summary, registry=registry).validate(
        json.loads((directory / "performance-summary.json").read_text()))


def test_the_schemas_are_valid_json_schemas() -> None:
    area, summary, _ = _schemas()
    jsonschema.Draft202012Validator.check_schema(area)
    jsonschema.Draft202012Validator.check_schema(summary)


def _observed(rows: dict[str, Figure], shares: dict[str, float | None] | None = None) -> Observed:
    src = "test"
    areas = {a: AreaSummary(a, Figure(10, "count", src), Figure(12.5, "ms", src), Figure(20, "ms", src, BUCKETED),
                            Figure(30, "ms", src, BUCKETED), Figure(0.002, "ratio", src), "requests", "failed")
             for a in ("api", "database", "cache", "tracing")}
    return Observed(Facts(60, Targets()), Window(1_700_000_000, 1_700_000_060), "prometheus", "http://x", areas,
                    rows, shares or {})


def test_area_files_hold_the_guides_fields_exactly_with_the_rest_beside_them(tmp_path: Path) -> None:
    report = build_report(_observed({}))
    files = json_files(report)
    api = files["api.json"]
    assert list(api)[:4] == ["$schema", "timestamp", "summary", "recommendations"]
    assert api["summary"] == {"totalRequests": 10, "avgResponseTime": 12.5, "p95ResponseTime": 20,
                              "p99ResponseTime": 30, "errorRate": "0.2%"}
    assert api["summarySources"]["p95ResponseTime"]["precision"] == BUCKETED
    for name, body in files.items():
        (tmp_path / name).write_text(json.dumps(body))
    validate_files(tmp_path)


def test_the_schema_rejects_a_summary_with_the_error_rate_as_a_number(tmp_path: Path) -> None:
    files = json_files(build_report(_observed({})))
    for name, body in files.items():
        (tmp_path / name).write_text(json.dumps(body))
    bad = files["api.json"]
    bad["summary"]["errorRate"] = 0.002
    (tmp_path / "api.json").write_text(json.dumps(bad))
    with pytest.raises(jsonschema.ValidationError, match=r"0\.002"):
        validate_files(tmp_path)


def test_error_rate_is_written_as_the_guide_writes_it() -> None:
    assert error_rate_text(0.002) == "0.2%"
    assert error_rate_text(0.0) == "0.0%"
    assert error_rate_text(0.0004) == "0.04%"
    assert error_rate_text(None) is None


def test_performance_summary_has_the_six_rows_and_no_data_says_why() -> None:
    report = build_report(_observed({"api_latency_p95": Figure(620.0, "ms", "prom", BUCKETED),
                                     "error_rate": Figure(0.002, "ratio", "prom")},
                                    {"api_latency_p95": 0.91}))
    summary = json_files(report)["performance-summary.json"]
    rows = {r["key"]: r for r in summary["targets"]}
    assert [r["Metric"] for r in summary["targets"]] == [
        "API P95 Response Time", "API P99 Response Time", "Database Query P95", "Cache Hit Rate",
        "Trace P95 Duration", "Error Rate"]
    assert rows["api_latency_p95"]["Status"] == "missed" and "91.00 %" in rows["api_latency_p95"]["reason"]
    assert rows["api_latency_p95"]["Current"] == "620ms" and rows["api_latency_p95"]["Target"] == "< 500ms"
    assert rows["error_rate"]["Status"] == "met" and rows["error_rate"]["Current"] == "0.2%"
    assert rows["cache_hit_rate"]["Status"] == "no data" and rows["cache_hit_rate"]["reason"]
    assert rows["cache_hit_rate"]["Current"] == "no data"


def test_a_latency_row_is_decided_by_the_share_within_the_target_bucket() -> None:
    # the interpolated P95 may sit below the bound while fewer than 95 % of requests are within it
    figure = Figure(499.0, "ms", "prom", BUCKETED)
    assert judge("api_latency_p95", True, 0.95, 0.5, figure, 0.94)[0] == "missed"
    assert judge("api_latency_p95", True, 0.95, 0.5, figure, 0.95)[0] == "met"


def test_the_database_p95_is_never_met_where_the_measurement_cannot_know() -> None:
    approx = Figure(20.0, "ms", "prom", APPROXIMATE, "statement means")
    status, reason = judge("db_query_p95", True, 0.95, 0.1, approx, None)
    assert status == "no data" and "approximate" in reason
    assert judge("db_query_p95", True, 0.95, 0.1, Figure(300.0, "ms", "p", APPROXIMATE), None)[0] == "missed"
    straddle = Figure(80.0, "ms", "prom", ESTIMATE, lower=40.0, upper=160.0)
    status, reason = judge("db_query_p95", True, 0.95, 0.1, straddle, None)
    assert status == "no data" and "cannot decide" in reason
    # one collection interval certainly above the target: missed, and the reason says it of that interval
    status, reason = judge("db_query_p95", True, 0.95, 0.1,
                           Figure(80.0, "ms", "p", ESTIMATE, lower=2.0, upper=260.0, peak_lower=240.0), None)
    assert status == "missed" and "at least one collection interval" in reason
    assert judge("db_query_p95", True, 0.95, 0.1, Figure(30.0, "ms", "p", ESTIMATE, lower=10.0, upper=90.0),
                 None)[0] == "met"
    assert judge("db_query_p95", True, 0.95, 0.1, Figure(300.0, "ms", "p", ESTIMATE, lower=120.0, upper=900.0),
                 None)[0] == "missed"
    assert judge("db_query_p95", True, 0.95, 0.1, missing("ms", "p", "no series"), None) == ("no data", "no series")


def test_window_options() -> None:
    w = window_of(ReportOptions(window="15m"), now=10_000.0)
    assert (w.start, w.end) == (9_100.0, 10_000.0)
    w = window_of(ReportOptions(start="2026-12-01T08:00:00Z", end="2026-12-01T09:00:00Z"))
    assert w.seconds == 3600
    with pytest.raises(ReportError, match="empty"):
        window_of(ReportOptions(start="2026-12-01T09:00:00Z", end="2026-12-01T08:00:00Z"))
    with pytest.raises(ReportError, match="--from: expected an ISO 8601"):
        window_of(ReportOptions(start="yesterday"))
    with pytest.raises(ReportError, match="--window"):
        window_of(ReportOptions(window="soon"))


def _run_body(timestamp: str, p95: float, hits: int, misses: int) -> dict[str, Any]:
    stage = {"name": "1", "requests": 200, "seconds": 10.0, "requests_per_second": 20.0, "avg_ms": 40.0,
             "p50_ms": 35.0, "p95_ms": p95, "p99_ms": p95 * 1.5, "error_rate": 0.0}
    return {"timestamp": timestamp, "scenario": "api", "summary": {}, "measured": {**stage, "name": "measured"},
            "shape": {"warmupSeconds": 2.0, "ranSeconds": 12.0}, "stages": [stage],
            "endpoints": [{**stage, "name": "get_order"}],
            "platform": {"database": {"statementSeconds": 1.5, "statementCalls": 300, "queryP95Ms": 12.0},
                         "cache": {"hits": hits, "misses": misses}, "queues": {},
                         "traces": {"traces": 50, "meanMs": 30.0, "p95Ms": 60.0}}}


def test_a_bench_run_is_a_source(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "api.json").write_text(json.dumps(_run_body("2026-12-01T08:00:10.000Z", 900.0, 10, 90)))
    (run / "api.k6-summary.json").write_text("{}")
    out = tmp_path / "out"
    code = run_report(ReportOptions(run=run, out=out, stream=open("/dev/null", "w")))  # noqa: SIM115
    assert code == 1
    validate_files(out)
    summary = json.loads((out / "performance-summary.json").read_text())
    rows = {r["key"]: r for r in summary["targets"]}
    assert rows["api_latency_p95"]["Status"] == "missed" and rows["api_latency_p95"]["Current"] == "900ms"
    assert "k6" in rows["api_latency_p95"]["current"]["source"]
    assert rows["cache_hit_rate"]["Status"] == "missed"
    # an approximate database P95 within the target is not "met"
    assert rows["db_query_p95"]["Status"] == "no data" and "approximate" in rows["db_query_p95"]["reason"]
    assert summary["window"]["seconds"] == 10
    assert summary["stages"][0]["p95_ms"] == 900.0
    # a run file without its collectors' facts cannot say why: unexplained, never HIGH
    issues = {r["issue"]: (r["priority"], r["causeKind"]) for r in summary["recommendations"]}
    assert issues["Slow API endpoints"] == issues["Low cache hit rate"] == ("MEDIUM", "unexplained")
    assert (out / "report.md").read_text().count("| API P95 Response Time | < 500ms | 900ms | ❌ missed") == 1


def test_the_command_fails_clearly_without_a_traceback(tmp_path: Path) -> None:
    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "exporter", "report", *args, "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=60)

    unreachable = report("--prometheus", "http://127.0.0.1:9", "--window", "5m")
    assert unreachable.returncode == 3 and "not reachable" in unreachable.stderr
    missing_run = report("--run", str(tmp_path / "nothing"))
    assert missing_run.returncode == 3 and "no such directory" in missing_run.stderr
    bad_format = report("--run", str(tmp_path), "--format", "pdf")
    assert bad_format.returncode == 3 and "unknown format 'pdf'" in bad_format.stderr
    for out in (unreachable, missing_run, bad_format):
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "o").exists()


def test_an_inconclusive_run_judges_no_api_target(tmp_path: Path) -> None:
    from exporter.reports.run import observe_runs

    body = _run_body("2026-12-01T08:00:10.000Z", 900.0, 90, 10)
    body["verdict"] = {"status": "inconclusive", "reasons": ["the machine's CPU was 100 % busy"]}
    report = build_report(observe_runs([body], Targets(), "run"))
    rows = {r.key: r for r in report.rows}
    assert rows["api_latency_p95"].status == "no data"
    assert "inconclusive" in rows["api_latency_p95"].reason and "CPU was 100 % busy" in rows["api_latency_p95"].reason
    assert rows["cache_hit_rate"].status == "met"  # the collectors' figures still count
