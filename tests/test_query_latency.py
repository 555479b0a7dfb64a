"""The database query P95 from pg_stat_statements' sums: estimate, bounds and status, on data alone.

Readings are made the way pg_stat_statements makes them: cumulative calls, total, population stddev, min and max
of every call since the entry began."""

from __future__ import annotations

import math
import random

import pytest

from exporter import metrics
from exporter.collectors.postgres.query_latency import (
    IntervalLatency,
    QueryP95,
    Spread,
    add_statement,
    cumulative_sumsq,
    interval_latency,
    mean_placed_p95,
    query_p95,
)
from exporter.collectors.postgres.statements import Counters, Entry, Snapshot, duration_observations, interval_deltas

TARGET = 0.1


def reading(durations: list[float], minmax_since: float | None = None) -> tuple[Counters, Spread]:
    """What pg_stat_statements shows for a statement whose calls so far took ``durations`` seconds."""
    n, total = len(durations), math.fsum(durations)
    mean = total / n
    stddev = math.sqrt(max(0.0, math.fsum(d * d for d in durations) / n - mean * mean))  # population
    return (Counters(calls=n, exec_seconds=total),
            Spread(cumulative_sumsq(n, total, stddev), min(durations), max(durations), minmax_since))


def true_p95(durations: list[float]) -> float:
    """The smallest duration that at least 95 % of the calls do not exceed."""
    ordered = sorted(durations)
    return ordered[math.ceil(0.95 * len(ordered) - 1e-9) - 1]  # (0.95 * 20 is 19.000000000000004)


def interval(statements: list[tuple[list[float], list[float]]]) -> tuple[QueryP95, list[float]]:
    """Each statement's calls before the previous reading and during the interval -> the P95 (through
    interval_latency, as the collector computes it) and every call of the interval."""
    deltas, entries, current, previous = {}, {}, {}, {}
    during_all: list[float] = []
    for i, (before, during) in enumerate(statements):
        key = ("db", "app", str(i))
        counters, current[key] = reading(before + during)
        entries[key] = Entry(counters)
        deltas[key] = counters
        if before:
            old_counters, previous[key] = reading(before)
            deltas[key] = counters.minus(old_counters)
        during_all += during
    result = query_p95(interval_latency(deltas, entries, current, previous))
    assert result is not None
    return result, during_all


def test_the_stddev_pg_stat_statements_keeps_gives_back_the_sum_of_squares() -> None:
    durations = [0.01, 0.02, 0.3, 0.04]
    _, spread = reading(durations)
    assert spread.sumsq == pytest.approx(math.fsum(d * d for d in durations))


def test_two_readings_give_the_mean_and_variance_of_the_calls_between_them() -> None:
    before = [0.005, 0.6, 0.7]  # calls before the interval must not leak into it
    during = [0.01, 0.02, 0.03, 0.04, 0.05]
    old, previous = reading(before)
    new, current = reading(before + during)
    out = IntervalLatency({}, [])
    delta = new.minus(old)
    add_statement(out, delta.calls, delta.exec_seconds, Entry(new), current, previous)
    # the cumulative max and min were not reached in the interval: no exact points, one component
    assert out.points == {}
    (component,) = out.components
    assert component.calls == 5
    assert component.mean == pytest.approx(0.03)
    assert component.var == pytest.approx(0.0002)  # population variance of 10..50 ms
    assert component.lo <= 0.01 and component.hi >= 0.05  # bounds from the cumulative min and max


def test_the_issue_example_new_in_the_interval_is_exact_and_missed() -> None:
    # nine calls of 10 ms and one of 300 ms: today's histogram says 39 ms, the true P95 is 300 ms
    calls = [0.01] * 9 + [0.3]
    result, during = interval([([], calls)])
    assert true_p95(during) == 0.3
    assert result.estimate == pytest.approx(0.3, rel=1e-3)
    assert result.lower == pytest.approx(0.3, rel=0.01) and result.upper == pytest.approx(0.3, rel=0.01)
    assert result.status(TARGET) == "missed"
    assert not result.uncertain
    today = mean_placed_p95(duration_observations(
        {("db", "app", "1"): reading(calls)[0]})["db"], metrics.PG_QUERY_DURATION.buckets)
    assert today is not None and today < TARGET  # the number that passes wrongly


def test_the_issue_example_seen_before_is_unknown_never_met() -> None:
    # the same mix, but the statement's max was reached before the interval: only the sums say anything
    calls = [0.01] * 9 + [0.3]
    result, during = interval([(list(calls), list(calls))])
    assert result.lower <= true_p95(during) <= result.upper
    assert result.status(TARGET) == "unknown"
    assert result.uncertain


def test_a_max_below_the_target_proves_it_met() -> None:
    rng = random.Random(1)
    statements = [([rng.uniform(0.001, 0.09) for _ in range(50)], [rng.uniform(0.001, 0.09) for _ in range(200)])
                  for _ in range(5)]
    result, _ = interval(statements)
    assert result.upper <= 0.09
    assert result.status(TARGET) == "met"


def test_a_min_above_the_target_proves_it_missed() -> None:
    result, during = interval([([0.2, 0.3], [0.25, 0.22, 0.28, 0.4])])
    assert result.lower >= 0.2
    assert result.status(TARGET) == "missed"
    assert result.lower <= true_p95(during) <= result.upper


def test_huge_variance_with_few_calls_is_flagged_uncertain() -> None:
    result, during = interval([([0.001, 2.0], [0.001, 0.002, 0.9, 0.003])])
    assert result.uncertain
    assert result.lower <= true_p95(during) <= result.upper
    assert result.status(TARGET) != "met"


def test_a_reset_of_min_and_max_on_postgresql_17_drops_them_and_keeps_the_bounds_honest() -> None:
    before = [0.01] * 20
    during = [0.01] * 18 + [0.5, 0.6]
    old, previous = reading(before, minmax_since=100.0)
    new, _ = reading(before + during)
    # min/max were reset just before the last two calls: they cover those two only
    current = Spread(cumulative_sumsq(new.calls, new.exec_seconds, math.sqrt(
        math.fsum(d * d for d in before + during) / new.calls - (new.exec_seconds / new.calls) ** 2)),
        0.5, 0.6, 200.0)
    out = IntervalLatency({}, [])
    delta = new.minus(old)
    add_statement(out, delta.calls, delta.exec_seconds, Entry(new, 1.0), current, previous)
    result = query_p95(out)
    assert result is not None
    assert result.lower <= true_p95(during) <= result.upper
    assert all(c.lo == 0 and c.hi == math.inf for c in out.components)


def test_interval_latency_reads_the_collectors_snapshots() -> None:
    key = ("db", "app", "7")
    single = ("db", "app", "8")
    before, during = [0.02] * 10, [0.02] * 5 + [0.2] * 5
    old, old_spread = reading(before)
    new, new_spread = reading(before + during)
    one_old, one_old_spread = reading([0.05])
    one_new, one_new_spread = reading([0.05, 0.07])
    change = interval_deltas(Snapshot({key: Entry(old), single: Entry(one_old)}),
                             Snapshot({key: Entry(new), single: Entry(one_new)}))
    latency = interval_latency(change.deltas, {key: Entry(new), single: Entry(one_new)},
                               {key: new_spread, single: one_new_spread}, {key: old_spread, single: one_old_spread})
    assert latency.calls == 11
    assert latency.singles == [pytest.approx(0.07)]  # one call: exactly its duration
    assert any(v == pytest.approx(0.2) for v in latency.points)  # the new maximum: one call took exactly that
    result = query_p95(latency)
    assert result is not None and result.status(TARGET) == "missed"


@pytest.mark.parametrize("seed", range(40))
def test_on_random_workloads_the_bounds_hold_and_met_is_never_wrong(seed: int) -> None:
    """Mixtures of lognormal, bimodal and shifting statements: the true P95 is always between the bounds, the
    status is never "met" when the true P95 is above the target, and the estimate is within 20 % of the truth
    unless it is flagged uncertain."""
    rng = random.Random(seed)

    def calls(n: int) -> list[float]:
        kind = rng.choice(["lognormal", "bimodal", "constant", "shift"])
        median = math.exp(rng.uniform(math.log(0.002), math.log(0.4)))
        if kind == "lognormal":
            return [rng.lognormvariate(math.log(median), rng.uniform(0.05, 1.2)) for _ in range(n)]
        if kind == "bimodal":
            slow = median * rng.uniform(3, 40)
            return [slow if rng.random() < rng.uniform(0.01, 0.2) else median for _ in range(n)]
        if kind == "constant":
            return [median] * n
        half = n // 2
        return [median] * half + [median * rng.uniform(2, 20)] * (n - half)

    statements = []
    for _ in range(rng.randint(1, 6)):
        before = calls(rng.choice([0, 1, 5, 50])) if rng.random() < 0.7 else []
        statements.append((before, calls(rng.choice([1, 2, 10, 100, 500]))))
    result, during = interval(statements)
    truth = true_p95(during)
    assert result.lower * (1 - 1e-6) <= truth <= result.upper * (1 + 1e-6)
    for target in (truth * 0.5, truth / 1.2 * 0.999, truth * 0.99):
        assert result.status(target) != "met"
    if not result.uncertain:
        assert result.estimate == pytest.approx(truth, rel=0.2)


def test_sums_that_contradict_each_other_keep_only_what_they_still_prove() -> None:
    # an entry evicted and re-created unseen before PostgreSQL 17: the differences mix two entries' sums
    old, previous = reading([0.5] * 40)
    new, current = reading([0.01] * 30 + [0.4] * 20)
    delta = new.minus(old)  # 10 calls, and an exec time the old entry's history makes meaningless
    out = IntervalLatency({}, [])
    add_statement(out, delta.calls, max(delta.exec_seconds, 0.0), Entry(new), current, previous)
    result = query_p95(out)
    assert result is not None
    assert all(math.isfinite(v) for v in (result.estimate, result.lower, result.upper))
    assert all(c.var_high == math.inf for c in out.components)  # its variance is not trusted
    # and a statement read without its spread at all still gives a figure, not an exception
    missing = interval_latency({("db", "app", "9"): Counters(5, 0.5)}, {("db", "app", "9"): Entry(Counters(5, 0.5))},
                               {}, {})
    assert query_p95(missing) is not None


def test_nineteen_calls_of_twenty_are_95_percent() -> None:
    # twenty statements called once: the P95 is the 19th fastest call, exactly (0.95 * 20 is not quite 19)
    result, during = interval([([], [0.01 + i * 0.001]) for i in range(19)] + [([], [0.3])])
    assert true_p95(during) == pytest.approx(0.028)
    assert result.lower == result.estimate == result.upper == pytest.approx(0.028)
    assert result.status(TARGET) == "met"


def test_no_calls_gives_no_figure() -> None:
    assert query_p95(IntervalLatency({}, [])) is None
