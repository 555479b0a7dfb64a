"""Comparisons on data: tolerances, the test on repeats, verdicts, exit codes and the four outputs."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET

import pytest

from exporter.history.compare import (
    IMPROVEMENT,
    INCONCLUSIVE,
    REGRESSION,
    UNCHANGED,
    Tolerance,
    compare_figure,
    compare_figures,
    exit_code,
    mann_whitney_greater,
)
from exporter.history.compare_output import ScenarioComparison, as_json, junit, markdown, table

TOL = Tolerance()  # 10 %, 5 ms, half a point, alpha 0.05


def test_150ms_more_on_every_repeat_is_a_regression_with_the_tests_p_value() -> None:
    c = compare_figure("get_order", "p95_ms", [10.2, 11.0, 10.6], [160.1, 161.3, 159.8], TOL)
    assert c.verdict == REGRESSION
    assert c.p_value == pytest.approx(0.05)  # 3 against 3, completely apart: 1 of the 20 splits
    assert c.change == pytest.approx((160.1 - 10.6) / 10.6)


def test_a_difference_must_pass_both_the_relative_and_the_absolute_tolerance() -> None:
    # +50 % but only +2 ms: below --min-delta 5ms
    assert compare_figure("health", "p95_ms", [4.0], [6.0], TOL).verdict == UNCHANGED
    # +6 ms but only +3 % of 200 ms: below --tolerance 10 %
    assert compare_figure("create_order", "p95_ms", [200.0], [206.0], TOL).verdict == UNCHANGED
    # both passed: single runs have no spread, the tolerances decide
    single = compare_figure("create_order", "p95_ms", [200.0], [260.0], TOL)
    assert single.verdict == REGRESSION and "single runs" in single.reason


def test_repeats_that_overlap_are_within_the_noise_not_a_regression() -> None:
    c = compare_figure("get_order", "p95_ms", [10.0, 40.0, 12.0, 35.0, 11.0], [38.0, 13.0, 41.0, 12.5, 36.0], TOL)
    assert c.verdict == UNCHANGED and "within the noise" in c.reason
    assert c.p_value is not None and c.p_value > 0.05


def test_too_few_repeats_for_the_test_and_overlapping_is_inconclusive() -> None:
    c = compare_figure("get_order", "p95_ms", [10.0, 30.0, 12.0], [28.0], TOL)  # 1 against 3: p >= 1/4
    assert c.verdict == INCONCLUSIVE and "--repeat" in c.reason
    apart = compare_figure("get_order", "p95_ms", [10.0, 11.0, 12.0], [160.0], TOL)
    assert apart.verdict == REGRESSION


def test_fewer_requests_per_second_and_a_lower_hit_rate_are_regressions_more_are_improvements() -> None:
    assert compare_figure("measured", "requests_per_second", [100, 101, 99], [60, 61, 59], TOL).verdict == REGRESSION
    assert compare_figure("measured", "cache_hit_rate", [0.9, 0.91, 0.9], [0.6, 0.61, 0.6], TOL).verdict == REGRESSION
    assert compare_figure("measured", "p95_ms", [100, 101, 99], [60, 61, 59], TOL).verdict == IMPROVEMENT


def test_an_error_rate_rise_of_2_points_is_a_regression_a_tenth_of_a_point_is_not() -> None:
    assert compare_figure("measured", "error_rate", [0.0, 0.0, 0.0], [0.02, 0.021, 0.019], TOL).verdict == REGRESSION
    assert compare_figure("measured", "error_rate", [0.0], [0.001], TOL).verdict == UNCHANGED


def test_a_figure_on_one_side_only_is_inconclusive_and_exit_codes_follow_the_worst_verdict() -> None:
    results = compare_figures({("a", "p95_ms"): [10.0]}, {("b", "p95_ms"): [10.0]}, TOL)
    assert [r.verdict for r in results] == [INCONCLUSIVE, INCONCLUSIVE]
    assert exit_code(results) == 2
    ok = compare_figures({("a", "p95_ms"): [10.0]}, {("a", "p95_ms"): [10.5]}, TOL)
    assert exit_code(ok) == 0
    assert exit_code(ok, missed=["api_latency_p95: P95 612 ms >= 500 ms"]) == 1
    assert exit_code([*results, compare_figure("a", "p95_ms", [10.0], [100.0], TOL)]) == 1


def test_mann_whitney_exact_p_values_match_the_tables() -> None:
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]) == pytest.approx(1 / 20)
    assert mann_whitney_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(1 / 252)
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]) == pytest.approx(1.0)
    # ties count half: identical samples are no evidence either way
    assert mann_whitney_greater([5, 5, 5], [5, 5, 5]) == pytest.approx(1.0)
    # large samples: the normal approximation is used and agrees in direction
    assert mann_whitney_greater(list(range(20)), [v + 10 for v in range(20)]) < 0.01


def _healthy(rng: random.Random, level: float, n: int) -> list[float]:
    return [level * rng.lognormvariate(0, 0.08) for _ in range(n)]


def test_ten_comparisons_of_healthy_repeats_give_no_false_regression() -> None:
    """Figures spread like the demo's short runs (8 % CV; P95 around 10 ms, P99 around 14 ms, 20 req/s)."""
    rng = random.Random(13)
    for _ in range(10):
        base, cur = {}, {}
        for endpoint in ("measured", "get_order", "create_order"):
            for metric, level in (("p50_ms", 6.0), ("p95_ms", 10.0), ("p99_ms", 14.0), ("avg_ms", 6.5),
                                  ("requests_per_second", 20.0)):
                base[(endpoint, metric)] = _healthy(rng, level, 3)
                cur[(endpoint, metric)] = _healthy(rng, level, 3)
        results = compare_figures(base, cur, TOL)
        assert exit_code(results) == 0, [r for r in results if r.verdict != UNCHANGED]


def _results() -> list[ScenarioComparison]:
    comparisons = compare_figures({("get_order", "p95_ms"): [10.0, 11.0, 10.5], ("health", "p95_ms"): [3.0]},
                                  {("get_order", "p95_ms"): [160.0, 161.0, 159.0], ("health", "p95_ms"): [3.1]},
                                  TOL)
    return [ScenarioComparison("caching", "run 1 (caching)", "run 2 (caching)", comparisons,
                               ["api_latency_p95: P95 160 ms >= 100 ms"])]


def test_junit_names_each_figure_and_fails_the_regression_and_the_missed_target() -> None:
    root = ET.fromstring(junit(_results()))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "2" and suite.get("tests") == "3"
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == ["get_order p95_ms", "target api_latency_p95: P95 160 ms >= 100 ms"]


def test_markdown_json_and_table_name_the_endpoint_metric_and_verdict() -> None:
    results = _results()
    md = markdown(results, 1)
    assert "| get_order | p95_ms | 10.5 | 160.0 |" in md and "**regression**" in md
    body = json.loads(as_json(results, 1))
    assert body["exitCode"] == 1
    assert body["scenarios"][0]["comparisons"][0]["verdict"] == REGRESSION
    assert "get_order p95_ms" in body["headline"]
    text = table(results)
    assert "get_order" in text and "regression" in text and "missed target" in text


def test_with_five_repeats_a_shift_beyond_the_tolerance_is_found_though_the_repeats_overlap_a_little() -> None:
    base = [100.0, 104.0, 98.0, 102.0, 120.0]
    cur = [118.0, 140.0, 136.0, 142.0, 138.0]  # one current repeat below the slowest baseline one
    c = compare_figure("create_order", "p95_ms", base, cur, TOL)
    assert c.verdict == REGRESSION and c.p_value is not None and c.p_value <= 0.05
    # significant, but by less than the tolerance: unchanged
    within = compare_figure("create_order", "p95_ms", base, [v + 11 for v in base], TOL)
    assert within.verdict == UNCHANGED
