"""pg_stat_statements as interval deltas: what each statement did between two collections.

pg_stat_statements holds counters that only grow, until ``pg_stat_statements_reset()`` empties the view or
an entry is evicted (``pg_stat_statements.max`` is full) and later re-created from zero. The collector keeps
its own counters and adds these deltas to them, so they never go down and never count the same work twice:

- first snapshot: a baseline, no deltas (its history happened before we watched);
- a statement seen before: current - previous;
- a statement not seen before: everything it has (it was created during the interval);
- a statement whose counters went down, or whose ``stats_since`` (PostgreSQL 17) moved: it was evicted and
  re-created, so everything it has is new;
- a reset (``pg_stat_statements_info.stats_reset`` moved, PostgreSQL 14+): every statement's counters are new.

Evictions are told apart from resets by ``pg_stat_statements_info.dealloc``. An entry evicted and re-created
within one interval that has already outgrown its old counters cannot be detected before PostgreSQL 17: its
delta then undercounts (never overcounts) that interval.
"""

from __future__ import annotations

import bisect
import heapq
import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# (datname, user, queryid). queryid "" stands for the statements the role may not see (``<insufficient
# privilege>``): PostgreSQL hides their queryid, so they are only ever counted as "other".
StatementKey = tuple[str, str, str]
HIDDEN_QUERYID = ""
OTHER_QUERYID = "other"


class Counters(NamedTuple):
    """One statement's cumulative counters, or their increase over an interval (a tuple: thousands are made
    per collection)."""

    calls: float = 0.0
    exec_seconds: float = 0.0
    rows: float = 0.0
    blocks_hit: float = 0.0
    blocks_read: float = 0.0
    temp_blocks_written: float = 0.0

    def minus(self, other: Counters) -> Counters:
        return Counters._make(map(operator.sub, self, other))

    def plus(self, other: Counters) -> Counters:
        return Counters._make(map(operator.add, self, other))

    def any_below(self, other: Counters) -> bool:
        """True if any counter is lower than ``other``'s: the entry was emptied since."""
        return any(map(operator.lt, self, other))

    @property
    def mean_seconds(self) -> float | None:
        return self.exec_seconds / self.calls if self.calls > 0 else None


class Entry(NamedTuple):
    counters: Counters
    stats_since: float | None = None  # PostgreSQL 17+: when this entry started counting


@dataclass(frozen=True)
class Snapshot:
    """pg_stat_statements at one instant, summed per key (a statement's top-level and nested rows together)."""

    entries: Mapping[StatementKey, Entry]
    stats_reset: float | None = None  # pg_stat_statements_info (PostgreSQL 14+)
    dealloc: float | None = None


@dataclass(frozen=True)
class IntervalChange:
    deltas: dict[StatementKey, Counters]
    reset: bool = False  # the view was reset during the interval
    evictions: float = 0.0  # entries evicted during the interval (0 when unknown)


def sum_rows(rows: Iterable[tuple[StatementKey, Counters, float | None]]) -> dict[StatementKey, Entry]:
    """Several rows may share a key (``toplevel`` true and false since PostgreSQL 14): add them up."""
    out: dict[StatementKey, Entry] = {}
    for key, counters, since in rows:
        found = out.get(key)
        if found is None:
            out[key] = Entry(counters, since)
        else:
            latest = max((s for s in (found.stats_since, since) if s is not None), default=None)
            out[key] = Entry(found.counters.plus(counters), latest)
    return out


def monotonic_delta(previous: float | None, current: float) -> float:
    """The increase of a cumulative counter: 0 on first sight, the whole value after a reset."""
    if previous is None:
        return 0.0
    return current if current < previous else current - previous


def interval_deltas(previous: Snapshot | None, current: Snapshot) -> IntervalChange:
    """What every statement in ``current`` did since ``previous``; never negative, never counted twice."""
    if previous is None:
        return IntervalChange({})
    reset = (current.stats_reset is not None and previous.stats_reset is not None
             and current.stats_reset != previous.stats_reset)
    evictions = 0.0
    if not reset and current.dealloc is not None and previous.dealloc is not None:
        evictions = monotonic_delta(previous.dealloc, current.dealloc)
    deltas: dict[StatementKey, Counters] = {}
    old = {} if reset else previous.entries
    for key, entry in current.entries.items():
        before = old.get(key)
        if before is None:
            deltas[key] = entry.counters
            continue
        recreated = entry.counters.any_below(before.counters) or (
            entry.stats_since is not None and before.stats_since is not None
            and entry.stats_since != before.stats_since)
        deltas[key] = entry.counters if recreated else entry.counters.minus(before.counters)
    return IntervalChange(deltas, reset, evictions)


@dataclass
class StickyTop:
    """The statements exported one by one: the top ``size`` by execution time of each interval, each kept for
    ``hold`` seconds after it was last in the top, so series do not come and go with every collection and
    ``rate()`` keeps working. At most ``2 * size`` statements are kept (the least recently top ones go first).
    """

    size: int
    hold: float
    last_top: dict[StatementKey, float] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        return 2 * self.size

    def update(self, scores: Mapping[StatementKey, float], now: float) -> set[StatementKey]:
        """``scores``: execution seconds per statement in this interval (in total, on the first collection).
        Returns the set to export now."""
        candidates = ((score, key) for key, score in scores.items() if key[2] != HIDDEN_QUERYID and score > 0)
        top = [key for _, key in heapq.nsmallest(self.size, candidates, key=lambda item: (-item[0], item[1]))]
        for key in top:
            self.last_top[key] = now
        for key in [k for k, seen in self.last_top.items() if now - seen > self.hold]:
            del self.last_top[key]
        if len(self.last_top) > self.limit:
            rank = {key: i for i, key in enumerate(top)}
            keep = sorted(self.last_top, key=lambda k: (-self.last_top[k], rank.get(k, len(rank)), k))
            self.last_top = {k: self.last_top[k] for k in keep[:self.limit]}
        return set(self.last_top)


@dataclass(frozen=True)
class Split:
    exported: dict[StatementKey, Counters]
    other: dict[tuple[str, str], Counters]  # (datname, user) -> summed deltas of the statements not exported


def split_exported(deltas: Mapping[StatementKey, Counters], exported: set[StatementKey]) -> Split:
    mine: dict[StatementKey, Counters] = {}
    rest: dict[tuple[str, str], list[Counters]] = defaultdict(list)
    for key, delta in deltas.items():
        if key in exported:
            mine[key] = delta
        else:
            rest[(key[0], key[1])].append(delta)
    other = {pair: Counters._make(map(math.fsum, zip(*items, strict=True))) for pair, items in rest.items()}
    return Split(mine, other)


def duration_observations(deltas: Mapping[StatementKey, Counters]) -> dict[str, list[tuple[float, float]]]:
    """The approximation behind ``perf_pg_query_duration_seconds``: per database, each statement's calls of
    the interval as (interval mean, calls). pg_stat_statements keeps no distribution, only sums: a histogram
    built from these places every call of a statement in the bucket of that statement's interval mean. It is
    exact when each statement's calls of an interval fall in one bucket, and it hides spread within a
    statement (one whose calls take 10 ms and 400 ms alternately is counted as 205 ms twice)."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (datname, _user, _queryid), delta in deltas.items():
        mean = delta.mean_seconds
        if mean is not None:
            out[datname].append((mean, delta.calls))
    return dict(out)


def per_bucket(observations: Iterable[tuple[float, float]], buckets: tuple[float, ...],
               ) -> list[tuple[float, float]]:
    """The same observations merged per histogram bucket: (weighted mean, count) for each bucket that has any.
    Observing these gives the same bucket counts and the same sum as observing every one of them, in at most
    ``len(buckets) + 1`` observations instead of one per statement."""
    totals: dict[int, list[float]] = {}
    for value, count in observations:
        slot = totals.setdefault(bisect.bisect_left(buckets, value), [0.0, 0.0])
        slot[0] += value * count
        slot[1] += count
    out: list[tuple[float, float]] = []
    for index in sorted(totals):
        total, count = totals[index]
        if count <= 0:
            continue
        value = total / count
        # rounding must not move the mean out of its bucket: (lower, upper]
        if index < len(buckets):
            value = min(value, buckets[index])
        if index > 0 and value <= buckets[index - 1]:
            value = math.nextafter(buckets[index - 1], math.inf)
        out.append((value, count))
    return out


def slow_statement_counts(deltas: Mapping[StatementKey, Counters], threshold: float) -> dict[str, int]:
    """Per database, the statements whose mean over the interval was above ``threshold`` seconds."""
    out: dict[str, int] = defaultdict(int)
    for (datname, _user, queryid), delta in deltas.items():
        mean = delta.mean_seconds
        out[datname] += 1 if queryid != HIDDEN_QUERYID and mean is not None and mean > threshold else 0
    return dict(out)
