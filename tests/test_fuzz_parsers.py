"""Fuzzing the parsers of what servers send: Redis INFO (exporter.collectors.redis.info) and PostgreSQL's EXPLAIN
JSON (exporter.collectors.postgres.plans). Whatever the reply, they return data or nothing, never raise, and INFO's
counters mirrored never go down."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from exporter.collectors.postgres.plans import seq_scans
from exporter.collectors.redis.info import (
    CounterMirror,
    command_stats,
    keyspace,
    latency_percentiles,
    number,
    numbers,
)
from tests.fuzzing import FUZZ, json_values, report_inputs, tried  # noqa: F401 - report_inputs: fixture

# INFO as redis-py hands it over: field -> int, float, str, or a mapping for db0, cmdstat_get, latency_...
info_scalars = st.integers(min_value=-(2**64), max_value=2**64) | st.floats() | st.text(max_size=15)
info_values = info_scalars | st.dictionaries(st.text(max_size=10), info_scalars, max_size=6)
info_keys = st.sampled_from(["db0", "db15", "dbx", "cmdstat_get", "cmdstat_", "cmdstat_SET|x",
                             "latency_percentiles_usec_get", "latency_percentiles_usec_", "keyspace_hits",
                             "keyspace_misses", "evicted_keys", "used_memory", "run_id", "maxmemory"]) | st.text(
    max_size=25)
infos = st.dictionaries(info_keys, info_values, max_size=20)


@FUZZ
@given(infos)
def test_any_info_reply_parses_to_numbers_or_nothing(info: dict[str, Any]) -> None:
    tried(__name__, "redis INFO")
    for name in ("keyspace_hits", "used_memory", "run_id"):
        value = number(info, name)
        assert value is None or isinstance(value, float)
    assert all(isinstance(v, float) for v in numbers(info, ("keyspace_hits", "evicted_keys")).values())
    for keys, expiring in keyspace(info).values():
        assert isinstance(keys, float) and isinstance(expiring, float)
    for stat in command_stats(info).values():
        assert isinstance(stat.calls, float) and isinstance(stat.seconds, float)
    assert all(isinstance(v, float) for v in latency_percentiles(info).values())


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["run-a", "run-b", ""]),
                          st.dictionaries(st.sampled_from(["hits", "misses"]),
                                          st.floats(min_value=0, max_value=1e15) | st.integers(0, 2**53)),
                          ), max_size=12))
def test_mirrored_counters_never_go_down_whatever_the_readings(readings: list[tuple[str, dict[str, float]]]) -> None:
    tried(__name__, "counter readings")
    mirror = CounterMirror()
    for run_id, values in readings:
        for delta in mirror.advance(run_id, values).values():
            assert delta >= 0


plan_node = st.recursive(
    st.fixed_dictionaries({"Node Type": st.sampled_from(["Seq Scan", "Index Scan", "Hash Join", "x", ""])},
                          optional={"Relation Name": st.text(max_size=8) | st.none() | st.integers(),
                                    "Schema": st.text(max_size=8) | st.none(),
                                    "Alias": st.text(max_size=8), "Plan Rows": st.integers() | st.text()}),
    lambda children: st.fixed_dictionaries(
        {"Node Type": st.sampled_from(["Nested Loop", "Append", "Seq Scan"])},
        optional={"Plans": st.lists(children, max_size=3) | json_values, "Relation Name": st.text(max_size=8)}),
    max_leaves=12)
explains = st.lists(st.fixed_dictionaries({"Plan": plan_node}) | json_values, max_size=3) | json_values


@FUZZ
@given(explains)
def test_any_explain_json_gives_a_list_of_seq_scans(explain: Any) -> None:
    tried(__name__, "EXPLAIN JSON")
    scans = seq_scans(explain)
    assert isinstance(scans, list)
    for scan in scans:
        assert isinstance(scan.name, str)
