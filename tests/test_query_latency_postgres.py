"""Ground truth for the database query P95: workloads of ``pg_sleep`` whose per-call durations are known, run on
a real PostgreSQL between two collections, against what the collector reports.

The interval also holds the collector's own statements (a dozen catalogue reads of a few milliseconds): they are
counted as calls faster than any of the workload's, from the histogram's call count, so the true P95 is that of
every call PostgreSQL executed in the interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from exporter import metrics
from exporter.collectors.postgres.queries import statement_queries
from tests.servers import Postgres
from tests.test_postgres_collector import Harness, execute, scenario

DB = "perf_p95test"
TARGET = 0.1  # the guide's "Database Query P95 < 100 ms"
TOLERANCE = 0.2


def sleep(seconds: float, shape: int) -> str:
    """A pg_sleep call whose normalised statement is its own: ``shape`` extra constant columns."""
    return f"SELECT pg_sleep({seconds})" + "".join(f", {i}" for i in range(shape))


@dataclass(frozen=True)
class Workload:
    name: str
    before: tuple[str, ...]  # run before the baseline collection: the statements' history (cumulative min/max)
    during: tuple[tuple[str, float], ...]  # (statement, its duration) run between the two collections

    @property
    def durations(self) -> list[float]:
        return [seconds for _, seconds in self.during]


def repeat(seconds: float, shape: int, times: int) -> tuple[tuple[str, float], ...]:
    return ((sleep(seconds, shape), seconds),) * times


WORKLOADS = (
    # the issue's example: one normalised statement, nine calls of 10 ms to one of 300 ms
    Workload("mixed arguments, new statement", (), repeat(0.01, 11, 27) + repeat(0.3, 11, 3)),
    Workload("mixed arguments, seen before", (sleep(0.3, 12), sleep(0.01, 12)),
             repeat(0.01, 12, 27) + repeat(0.3, 12, 3)),
    Workload("four statements, 2-250 ms", (sleep(0.002, 13), sleep(0.02, 14), sleep(0.12, 15), sleep(0.25, 16)),
             repeat(0.002, 13, 40) + repeat(0.02, 14, 20) + repeat(0.12, 15, 6) + repeat(0.25, 16, 2)),
    Workload("10 ms, then 150 ms halfway", (sleep(0.01, 17),), repeat(0.01, 17, 15) + repeat(0.15, 17, 15)),
    Workload("all fast (20-60 ms)", (sleep(0.06, 18), sleep(0.02, 19)),
             repeat(0.02, 18, 20) + repeat(0.06, 18, 5) + repeat(0.03, 19, 20)),
)


@dataclass(frozen=True)
class Outcome:
    workload: str
    true_p95: float
    today: float | None  # histogram_quantile over perf_pg_query_duration_seconds
    estimate: float
    lower: float
    upper: float
    calls: float

    @property
    def status(self) -> str:
        if self.upper <= TARGET:
            return "met"
        return "missed" if self.lower > TARGET else "unknown"

    @property
    def uncertain(self) -> bool:
        return not (self.lower * (1 + TOLERANCE) >= self.estimate and self.upper * (1 - TOLERANCE) <= self.estimate)


def true_p95(durations: list[float]) -> float:
    ordered = sorted(durations)
    return ordered[math.ceil(0.95 * len(ordered) - 1e-9) - 1]  # (0.95 * 20 is 19.000000000000004)


def histogram_p95(h: Harness) -> tuple[float | None, float]:
    """Prometheus's histogram_quantile(0.95) over the collector's histogram (all databases), and its count."""
    counts: dict[float, float] = {}
    for labels, value in h.samples(f"{metrics.PG_QUERY_DURATION.name}_bucket").items():
        le = dict(labels)["le"]
        bound = math.inf if le == "+Inf" else float(le)
        counts[bound] = counts.get(bound, 0.0) + value
    buckets = sorted(counts.items())
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None, 0.0
    rank, lower, below = 0.95 * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower, total
            return lower + (bound - lower) * (rank - below) / (count - below), total
        lower, below = bound, count
    return lower, total


def run_workload(pg: Postgres, workload: Workload) -> Outcome:
    if not pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'").strip():
        pg.psql(f"CREATE DATABASE {DB}")
    dsn = pg.dsn(DB)
    found: dict[str, float] = {}

    async def body(h: Harness) -> None:
        await execute(dsn, *workload.before)
        assert await h.run()  # the baseline
        assert h.value(metrics.PG_QUERY_P95.name) is None  # nothing is known before an interval
        await execute(dsn, *(statement for statement, _ in workload.during))
        assert await h.run()
        for name, family in (("estimate", metrics.PG_QUERY_P95), ("upper", metrics.PG_QUERY_P95_UPPER),
                             ("lower", metrics.PG_QUERY_P95_LOWER)):
            value = h.value(family.name)
            assert value is not None, family.name
            found[name] = value

    h = scenario(pg.dsn(), body, databases=[DB])
    today, calls = histogram_p95(h)
    own = calls - len(workload.during)  # the collector's own statements in the interval
    assert 0 <= own < 40
    truth = true_p95(workload.durations + [0.0] * int(own))
    return Outcome(workload.name, truth, today, found["estimate"], found["lower"], found["upper"], calls)


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
def test_reported_p95_is_within_20_percent_or_flagged_and_never_wrongly_met(postgres: Postgres,
                                                                           workload: Workload) -> None:
    outcome = run_workload(postgres, workload)
    # pg_sleep takes a little longer than asked: the bounds hold with that margin
    assert outcome.lower <= outcome.true_p95 * 1.05 + 0.002
    assert outcome.upper >= outcome.true_p95
    if not outcome.uncertain:
        assert outcome.estimate == pytest.approx(outcome.true_p95, rel=TOLERANCE)
    if outcome.true_p95 > TARGET * (1 + TOLERANCE):
        assert outcome.status != "met"
    if outcome.true_p95 * 1.05 + 0.002 < TARGET and outcome.upper <= TARGET:
        assert outcome.status == "met"


def test_the_issue_example_is_missed_where_the_mean_placed_histogram_passes(postgres: Postgres) -> None:
    # nine calls of 10 ms to one of 300 ms, a statement new in the interval (a shape of its own)
    outcome = run_workload(postgres, Workload("issue example", (), repeat(0.01, 20, 27) + repeat(0.3, 20, 3)))
    assert outcome.true_p95 == 0.3
    assert outcome.today is not None and outcome.today < TARGET  # today's number passes wrongly
    assert outcome.estimate == pytest.approx(0.3, rel=TOLERANCE) and outcome.upper >= 0.3
    assert outcome.status != "met"


def test_the_spread_columns_follow_the_installed_extension_version() -> None:
    pg12 = statement_queries("public", {"calls", "total_time"}, has_info=False).counters.as_string(None)
    assert '"stddev_time"' in pg12 and '"min_time"' in pg12 and '"max_time"' in pg12
    pg15 = statement_queries("public", {"calls", "total_exec_time"}, has_info=True).counters.as_string(None)
    assert '"stddev_exec_time"' in pg15 and '"max_exec_time"' in pg15 and "minmax_stats_since" not in pg15
    pg17 = statement_queries("public", {"calls", "total_exec_time", "stats_since", "minmax_stats_since"},
                             has_info=True).counters.as_string(None)
    assert "max(s.minmax_stats_since)" in pg17
