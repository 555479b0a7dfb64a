"""pg_stat_statements deltas, the sticky top set, the duration approximation and plan reading, on data alone."""

from __future__ import annotations

import itertools
import json

from exporter.collectors.postgres.plans import seq_scans
from exporter.collectors.postgres.statements import (
    HIDDEN_QUERYID,
    Counters,
    Entry,
    Snapshot,
    StatementKey,
    StickyTop,
    duration_observations,
    interval_deltas,
    monotonic_delta,
    per_bucket,
    slow_statement_counts,
    split_exported,
    sum_rows,
)

A: StatementKey = ("rides", "app", "101")
B: StatementKey = ("rides", "app", "202")
C: StatementKey = ("rides", "report", "303")


def snap(entries: dict[StatementKey, Counters], stats_reset: float | None = 1000.0, dealloc: float | None = 0.0,
         since: dict[StatementKey, float] | None = None) -> Snapshot:
    return Snapshot({k: Entry(c, (since or {}).get(k)) for k, c in entries.items()}, stats_reset, dealloc)


def calls(n: float, seconds: float = 0.0) -> Counters:
    return Counters(calls=n, exec_seconds=seconds, rows=n)


# ---------------------------------------------------------------------------------------------------------------
# interval deltas


def test_first_snapshot_is_a_baseline_without_deltas() -> None:
    assert interval_deltas(None, snap({A: calls(100, 5.0)})).deltas == {}


def test_statement_seen_before_gets_the_difference() -> None:
    change = interval_deltas(snap({A: calls(100, 5.0)}), snap({A: calls(130, 6.5)}))
    assert change.deltas[A] == Counters(30, 1.5, 30)
    assert not change.reset and change.evictions == 0


def test_statement_new_in_the_interval_counts_everything_it_has() -> None:
    change = interval_deltas(snap({A: calls(100)}), snap({A: calls(100), B: calls(7, 0.7)}))
    assert change.deltas[B] == calls(7, 0.7)
    assert change.deltas[A] == Counters()


def test_reset_counts_every_statement_from_zero_even_if_it_grew_past_its_old_value() -> None:
    # B had 5 calls; after the reset it has 40: all 40 are new, not 35
    before = snap({A: calls(100), B: calls(5)}, stats_reset=1000.0)
    after = snap({A: calls(3), B: calls(40)}, stats_reset=2000.0)
    change = interval_deltas(before, after)
    assert change.reset
    assert change.deltas == {A: calls(3), B: calls(40)}


def test_evicted_and_recreated_statement_never_gives_a_negative_delta() -> None:
    before = snap({A: calls(100, 10.0)}, dealloc=4)
    after = snap({A: calls(2, 0.1)}, dealloc=5)  # no reset: A was evicted and came back
    change = interval_deltas(before, after)
    assert not change.reset and change.evictions == 1
    assert change.deltas[A] == calls(2, 0.1)


def test_recreation_is_seen_by_stats_since_on_postgresql_17() -> None:
    before = snap({A: calls(10)}, since={A: 50.0})
    after = snap({A: calls(25)}, since={A: 90.0})  # re-created, and already past its old count
    assert interval_deltas(before, after).deltas[A] == calls(25)


def test_deltas_summed_over_a_run_equal_the_work_done_across_a_reset_and_an_eviction() -> None:
    # A's real calls per interval: 10, 10, (reset) 4, 6, (evicted, recreated) 3
    seen = [snap({A: calls(50)}, 1.0), snap({A: calls(60)}, 1.0), snap({A: calls(70)}, 1.0),
            snap({A: calls(4)}, 2.0), snap({A: calls(10)}, 2.0), snap({A: calls(3)}, 2.0)]
    total = sum(interval_deltas(p, c).deltas[A].calls for p, c in itertools.pairwise(seen))
    assert total == 10 + 10 + 4 + 6 + 3


def test_toplevel_and_nested_rows_of_a_statement_are_summed() -> None:
    entries = sum_rows([(A, calls(2, 0.5), None), (A, calls(3, 0.25), None), (B, calls(1), None)])
    assert entries[A].counters == Counters(5, 0.75, 5)
    assert entries[B].counters == calls(1)


def test_monotonic_delta_starts_at_zero_and_survives_a_counter_reset() -> None:
    assert monotonic_delta(None, 500) == 0
    assert monotonic_delta(500, 520) == 20
    assert monotonic_delta(520, 7) == 7


# ---------------------------------------------------------------------------------------------------------------
# the exported set


def test_top_statements_by_interval_time_are_exported() -> None:
    top = StickyTop(size=2, hold=600)
    assert top.update({A: 5.0, B: 1.0, C: 9.0}, now=0) == {A, C}


def test_statement_stays_exported_for_the_hold_after_it_drops_out_then_goes() -> None:
    top = StickyTop(size=1, hold=600)
    top.update({A: 5.0, B: 1.0}, now=0)
    assert top.update({A: 0.1, B: 2.0}, now=30) == {A, B}  # A dropped out of the top but stays
    assert top.update({A: 0.1, B: 2.0}, now=600) == {A, B}
    assert top.update({A: 0.1, B: 2.0}, now=631) == {B}


def test_exported_set_never_exceeds_twice_top_statements_however_much_the_top_churns() -> None:
    top = StickyTop(size=3, hold=3600)
    for t in range(100):
        keys = {("db", "u", str(t * 10 + i)): float(i + 1) for i in range(5)}
        exported = top.update(keys, now=float(t))
        assert len(exported) <= 6
    # the latest top is always in
    assert {("db", "u", "992"), ("db", "u", "993"), ("db", "u", "994")} <= exported


def test_hidden_statements_are_never_exported_one_by_one() -> None:
    hidden = ("rides", "other_role", HIDDEN_QUERYID)
    assert StickyTop(size=5, hold=60).update({hidden: 100.0, A: 1.0}, now=0) == {A}


def test_statements_not_exported_are_summed_per_database_and_role() -> None:
    split = split_exported({A: calls(3, 1.0), B: calls(4, 2.0), C: calls(5, 0.5)}, {A})
    assert split.exported == {A: calls(3, 1.0)}
    assert split.other == {("rides", "app"): calls(4, 2.0), ("rides", "report"): calls(5, 0.5)}


# ---------------------------------------------------------------------------------------------------------------
# durations


def test_each_statements_calls_are_observed_at_its_interval_mean() -> None:
    observed = duration_observations({A: calls(4, 0.8), B: calls(0), ("orders", "app", "9"): calls(10, 0.1)})
    assert observed == {"rides": [(0.2, 4)], "orders": [(0.01, 10)]}


def test_approximation_hides_spread_within_a_statement() -> None:
    # half the calls at 10 ms, half at 400 ms: the true p95 is 400 ms, the approximation sees 205 ms for all
    observed = duration_observations({A: Counters(calls=100, exec_seconds=50 * 0.010 + 50 * 0.400)})
    ((mean, n),) = observed["rides"]
    assert n == 100 and abs(mean - 0.205) < 1e-9


def test_slow_statements_are_those_whose_interval_mean_is_above_the_threshold() -> None:
    deltas = {A: calls(2, 0.5), B: calls(10, 0.2), C: calls(0), ("rides", "x", HIDDEN_QUERYID): calls(1, 9.0)}
    assert slow_statement_counts(deltas, 0.1) == {"rides": 1}


# ---------------------------------------------------------------------------------------------------------------
# plans


def plan(node: dict) -> list[dict]:
    return [{"Plan": node}]


def test_seq_scan_with_a_filter_is_found_with_its_schema() -> None:
    explain = plan({"Node Type": "Limit", "Plans": [
        {"Node Type": "Seq Scan", "Relation Name": "rides", "Schema": "public", "Plan Rows": 4,
         "Filter": "(rider = 42)"}]})
    (scan,) = seq_scans(explain)
    assert scan.name == "public.rides" and scan.filtered and scan.plan_rows == 4


def test_index_scans_are_not_seq_scans() -> None:
    explain = plan({"Node Type": "Index Scan", "Relation Name": "rides", "Schema": "public",
                    "Index Name": "rides_rider"})
    assert seq_scans(explain) == []


def test_parallel_and_nested_seq_scans_are_found_once_per_table() -> None:
    explain = plan({"Node Type": "Hash Join", "Plans": [
        {"Node Type": "Gather", "Plans": [
            {"Node Type": "Seq Scan", "Parallel Aware": True, "Relation Name": "trips", "Schema": "app"}]},
        {"Node Type": "Hash", "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "drivers", "Schema": "app"}]},
        {"Node Type": "Seq Scan", "Relation Name": "trips", "Schema": "app", "Subplan Name": "SubPlan 1"}]})
    assert [s.name for s in seq_scans(explain)] == ["app.trips", "app.drivers"]


def test_plan_given_as_json_text_is_read_too() -> None:
    explain = json.dumps(plan({"Node Type": "Seq Scan", "Relation Name": "t", "Schema": "s"}))
    assert [s.name for s in seq_scans(explain)] == ["s.t"]


def test_merging_observations_per_bucket_keeps_bucket_counts_and_sum() -> None:
    buckets = (0.01, 0.1, 1.0)
    observations = [(0.005, 3), (0.05, 2), (0.09, 4), (0.1, 1), (0.1000001, 5), (2.0, 1)]
    merged = per_bucket(observations, buckets)
    assert [count for _, count in merged] == [3, 7, 5, 1]
    assert abs(sum(v * c for v, c in merged) - sum(v * c for v, c in observations)) < 1e-9
    # every merged value lies in its bucket, so observing it lands where the originals did
    assert merged[1][0] <= 0.1 < merged[2][0] <= 1.0


def test_mean_exactly_on_a_bound_stays_in_that_bucket_after_merging() -> None:
    assert per_bucket([(0.1, 3), (0.1, 7)], (0.05, 0.1, 0.5)) == [(0.1, 10)]
