"""Change points on synthetic histories: a 20 % step is found where it is, pure noise is left alone, and both
are measured beside a plain "10 % over the baseline" rule on the same histories (bench/bench_change_points.py
prints the same figures)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from exporter.history.change_points import change_points, welch_t_test

RUNS, STEP_AT, STEP, CV = 60, 30, 0.20, 0.05


def step_history(rng: random.Random, level: float = 100.0) -> list[float]:
    """60 runs at 5 % CV; from run 30 on (0-based), 20 % higher."""
    return [level * (1 + STEP if i >= STEP_AT else 1) * (1 + rng.gauss(0, CV)) for i in range(RUNS)]


def noise_history(rng: random.Random, level: float = 100.0) -> list[float]:
    return [level * (1 + rng.gauss(0, CV)) for _ in range(RUNS)]


def rule_flags(values: list[float], baseline_runs: int = 5, threshold: float = 0.10) -> list[int]:
    """The plain rule: the baseline is the mean of the first runs; every later run 10 % over it is flagged."""
    baseline = sum(values[:baseline_runs]) / baseline_runs
    return [i for i in range(baseline_runs, len(values)) if values[i] > baseline * (1 + threshold)]


@dataclass(frozen=True)
class Scores:
    recall: float  # step histories where a change is found within +-2 runs of the step (the first flag, for the rule)
    false_positive_rate: float  # noise histories where anything is flagged


def score(histories: int = 200, seed: int = 60) -> tuple[Scores, Scores]:
    """(detector, rule) on the same ``histories`` step histories and ``histories`` noise histories."""
    rng = random.Random(seed)
    steps = [step_history(rng) for _ in range(histories)]
    noise = [noise_history(rng) for _ in range(histories)]
    found = sum(any(abs(c.index - STEP_AT) <= 2 for c in change_points(h)) for h in steps)
    flagged = sum(bool(change_points(h)) for h in noise)
    rule_found = sum(bool(f := rule_flags(h)) and abs(f[0] - STEP_AT) <= 2 for h in steps)
    rule_flagged = sum(bool(rule_flags(h)) for h in noise)
    return (Scores(found / histories, flagged / histories), Scores(rule_found / histories, rule_flagged / histories))


def test_a_20_percent_step_after_run_30_of_60_is_found_within_2_runs_with_its_size_and_p_value() -> None:
    rng = random.Random(7)
    for _ in range(20):
        found = change_points(step_history(rng))
        near = [c for c in found if abs(c.index - STEP_AT) <= 2]
        assert near, found
        assert 12 < near[0].change_percent < 28
        assert near[0].p_value < 1e-6


def test_detector_recall_and_false_positives_on_200_histories_each_beside_the_10_percent_rule() -> None:
    detector, rule = score()
    assert detector.recall >= 0.95
    assert detector.false_positive_rate <= 0.01  # the bound: at most 1 % of pure-noise histories flagged
    # the plain rule flags most noise histories: a run 10 % above a 5 %-CV baseline is 2 sigma, common in 55 runs
    assert rule.false_positive_rate > 0.5


def test_two_steps_are_both_found_and_a_drop_is_negative() -> None:
    rng = random.Random(3)
    values = [100 * (1 + rng.gauss(0, CV)) for _ in range(30)] + [130 * (1 + rng.gauss(0, CV)) for _ in range(30)]
    values += [90 * (1 + rng.gauss(0, CV)) for _ in range(30)]
    found = change_points(values)
    assert [c.index for c in found] == pytest.approx([30, 60], abs=2)
    assert found[0].change_percent > 0 > found[1].change_percent


def test_short_or_flat_histories_have_no_change_point() -> None:
    assert change_points([]) == []
    assert change_points([100.0, 101.0, 99.0]) == []
    assert change_points([100.0] * 40) == []


def test_welch_t_test_matches_published_values() -> None:
    # x = 1..5, y = 3..7: t = -2, df = 8, two-sided p = 0.0805
    assert welch_t_test([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx(0.0805, abs=5e-4)
    assert welch_t_test([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
