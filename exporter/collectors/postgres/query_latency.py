"""The database's query P95 from pg_stat_statements, with bounds that say when the figures cannot decide it.

pg_stat_statements keeps, per statement and since the entry was created (or reset), the number of calls, their
total, their mean and their *population* standard deviation, and the fastest and slowest call (since
``minmax_stats_since`` on PostgreSQL 17). Two readings of a statement therefore give, for the calls between them:

- the count ``n`` and the sum ``S`` (differences of ``calls`` and ``total_exec_time``);
- the sum of squares ``Q``: cumulatively ``calls * (stddev^2 + mean^2)`` (= ``calls * stddev^2 + total^2 /
  calls``, the form used here, consistent with ``total``), so ``Q = Q2 - Q1``; hence the interval's mean ``S/n``
  and variance ``Q/n - (S/n)^2``;
- bounds on every call of the interval: the cumulative ``min`` is at most, the cumulative ``max`` at least, any call
  of the interval; when ``max`` went up (or the entry is new in the interval) one call of the interval took exactly
  that long, and likewise for ``min``. Such a call is taken out as an exact point, the rest keeps its moments.

Three figures come out of one interval, over all the statements' calls together:

- **estimate**: each statement's calls follow a lognormal with the interval's mean and variance (clipped to its
  ``[min, max]``), mixed by calls; its 95th percentile. Exact for statements with one call or no spread. A
  statement whose variance is at least half the most its ``[min, max]`` allows must have its calls crowd at both
  ends (nine at 10 ms, one at 300 ms): a lognormal would put its P95 at 144 ms there, so such a statement is
  modelled as calls at ``min`` and ``max`` in the proportion its mean needs, the rest at its mean;
- **upper bound**: the P95 of *any* set of calls with these counts, means, variances and bounds is at most this.
  Per statement the share of calls at or above ``x`` is at most Cantelli's ``var / (var + (x - mean)^2)``, at
  most Markov's ``(mean - min) / (x - min)``, and 0 from ``max`` on;
- **lower bound**: the P95 is at least this. Per statement the share above ``x`` is at least
  ``(mean - x) / (max - x)`` and ``(E[X^2] - x^2) / (max^2 - x^2)`` (nothing exceeds ``max``), and 1 below
  ``min``.

:meth:`QueryP95.status` says ``met`` only when the upper bound is within the target, ``missed`` when the lower bound
is above it, and ``unknown`` otherwise; :attr:`QueryP95.uncertain` is true unless the bounds keep the true P95 within
20 % of the estimate. Pure functions; the collector hands them plain data.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from operator import itemgetter
from typing import NamedTuple

from exporter.collectors.postgres.statements import Counters, Entry, StatementKey

QUANTILE = 0.95
TOLERANCE = 0.2  # the estimate is "certain" when the bounds keep the true P95 within 20 % of it
_EPS = 2.220446049250313e-16
# Allowance for rounding in PostgreSQL's running sums (it keeps the sum of squared deviations of every call since
# the entry began): n * eps of the cumulative sum of squares, n the entry's calls (recursive summation's bound).
_ROUNDING = 4 * _EPS
_CROWDED = 0.5  # a statement whose variance is at least this share of the most [lo, hi] allows: not a lognormal
_SIGMAS = 5.0  # a lognormal's mass beyond 5 sigma is below 3e-7 of its calls: treated as 0 and 1
_REL = 1e-3  # the estimate's search stops when the bracket is this narrow (relative, in log x) ...
_COUNT_REL = 1e-5  # ... or when the count at one end is within this share of the calls to count
_BOUND_REL = 1e-2  # the bounds' searches: 1 %, each end a valid bound anyway


class Spread(NamedTuple):
    """One statement's cumulative figures beyond :class:`Counters`, from one reading (seconds)."""

    sumsq: float  # sum of squared call durations: calls * stddev^2 + total^2 / calls (s^2)
    min: float  # fastest call since minmax_since (or since the entry began)
    max: float  # slowest call since then
    minmax_since: float | None = None  # PostgreSQL 17: when min and max started counting


def cumulative_sumsq(calls: float, total: float, stddev: float) -> float:
    """The sum of squares pg_stat_statements implies: its stddev is the population one over ``calls``."""
    return calls * stddev * stddev + total * total / calls if calls > 0 else 0.0


class Component(NamedTuple):
    """Calls of one statement in one interval that share moments and bounds (seconds, seconds^2)."""

    calls: float
    mean: float
    var: float  # best value of the variance
    var_low: float  # the variance is at least this ...
    var_high: float  # ... and at most this (rounding allowance; inf when the figures are inconsistent)
    lo: float  # no call took less
    hi: float  # no call took more (inf when unknown)


# A Spread as read, a plain tuple (thousands are read per collection; a Spread is made only when needed).
SpreadRow = tuple[float, float, float, float | None]


@dataclass
class IntervalLatency:
    """Every call of an interval: exact points (value -> calls), spread components, and the durations of the
    statements called once (each exact)."""

    points: dict[float, float]
    components: list[Component]
    singles: list[float] = field(default_factory=list)

    @property
    def calls(self) -> float:
        return len(self.singles) + math.fsum(self.points.values()) + math.fsum(c.calls for c in self.components)


def _add_point(points: dict[float, float], value: float, calls: float) -> None:
    points[value] = points.get(value, 0.0) + calls


def add_statement(out: IntervalLatency, calls: float, total: float, entry: Entry, current: SpreadRow,
                  previous: SpreadRow | None) -> None:
    """Add one statement's calls of the interval to ``out``.

    ``calls``/``total``: its interval deltas (from :func:`exporter.collectors.postgres.statements.interval_deltas`);
    ``entry``: its current reading; ``current``/``previous``: its :class:`Spread` now and at the previous reading
    (``None`` when it has none). A delta equal to the whole entry means the entry began in the interval.
    """
    if calls <= 0:
        return
    if calls == 1:  # one call: it took exactly the total
        out.singles.append(max(total, 0.0))
        return
    cum = entry.counters
    whole = previous is None or (calls == cum.calls and total == cum.exec_seconds)
    sumsq_now, lo, hi, since_now = current  # a Spread, or the plain tuple the collector keeps
    if whole:
        sumsq = sumsq_now
        allowance = _ROUNDING * cum.calls * sumsq_now
        partial = since_now is not None and entry.stats_since is not None and since_now > entry.stats_since
        lo_seen = hi_seen = not partial
    else:
        assert previous is not None
        sumsq_then, lo_then, hi_then, since_then = previous
        sumsq = sumsq_now - sumsq_then
        allowance = _ROUNDING * cum.calls * (sumsq_now + sumsq_then)
        partial = since_now != since_then
        hi_seen, lo_seen = hi > hi_then, lo < lo_then
    mean = total / calls
    slack = 1e-9 * abs(mean) + 1e-12
    if partial or not lo - slack <= mean <= hi + slack:  # min and max do not cover the interval's calls
        lo, hi, lo_seen, hi_seen = 0.0, math.inf, False, False
    n = calls
    if hi_seen:  # one call took exactly the new maximum
        _add_point(out.points, hi, 1.0)
        n, total, sumsq = n - 1, total - hi, sumsq - hi * hi
        allowance += 4 * _EPS * hi * hi
    if lo_seen and n >= 1 and lo < hi:
        _add_point(out.points, lo, 1.0)
        n, total, sumsq = n - 1, total - lo, sumsq - lo * lo
        allowance += 4 * _EPS * lo * lo
    if n < 0.5:
        return
    if n < 1.5:  # one call left: it took exactly what is left
        _add_point(out.points, min(max(total, lo), hi), 1.0)
        return
    mean = min(max(total / n, lo), hi)
    var = sumsq / n - mean * mean
    tolerance = (allowance + 4 * _EPS * (abs(sumsq) + total * total / n)) / n
    var_low, var_high = var - tolerance, var + tolerance
    cap = (hi - mean) * (mean - lo) if hi < math.inf else math.inf  # Bhatia-Davis: no more spread than [lo, hi]
    if not var_high >= 0 or var_low > cap * (1 + 1e-9) + tolerance:  # (a NaN sum fails the first test too)
        # the sums contradict each other (an entry evicted and re-created unseen): trust no variance
        var, var_low, var_high = (cap if cap < math.inf else mean * mean), 0.0, math.inf
    var = min(max(var, 0.0), cap)
    var_low = min(max(var_low, 0.0), var)
    var_high = min(var_high, cap)
    if var_high <= 0.0:
        _add_point(out.points, mean, n)
    else:
        out.components.append(Component(n, mean, var, var_low, var_high, lo, hi))


def interval_latency(deltas: Mapping[StatementKey, Counters], entries: Mapping[StatementKey, Entry],
                     current: Mapping[StatementKey, SpreadRow], previous: Mapping[StatementKey, SpreadRow],
                     q: float = QUANTILE) -> IntervalLatency:
    """Every statement's calls of the interval, for quantiles from ``q`` up. ``deltas``: interval_deltas'
    output; ``entries``: the current snapshot; ``current``/``previous``: the spreads read with it and with the
    previous snapshot.

    A statement whose every call took at most ``max``, where ``max`` is below a floor the ``q`` quantile cannot
    be under (fewer than ``q`` of all calls could be faster: the calls' minimums say so), is counted as its calls
    at ``max``: every figure :func:`query_p95` finds lies above it, where such a statement counts all its calls
    whatever their spread. Most statements of a busy server are such, and cost no modelling."""
    # Counters by position (calls, exec_seconds): thousands per collection
    out = IntervalLatency({}, [], [d[1] for d in deltas.values() if d[0] == 1])
    several = [(k, d, current.get(k), previous.get(k)) for k, d in deltas.items() if d[0] > 1]
    if not several:
        return out
    floor = _floor(q, out.singles, [(r[1] if r is not None and _bounded(r, b) else 0.0, d.calls)
                                    for _, d, r, b in several])
    for key, delta, raw, before in several:
        n = delta.calls
        if raw is not None and raw[2] <= floor and delta.exec_seconds <= n * raw[2] and _bounded(raw, before):
            _add_point(out.points, raw[2], n)
            continue
        # read without spread (should not happen): nothing but the mean is known
        add_statement(out, n, delta.exec_seconds, entries[key], _UNKNOWN if raw is None else raw, before)
    return out


_UNKNOWN = Spread(math.nan, 0.0, math.inf)


def _bounded(current: SpreadRow, previous: SpreadRow | None) -> bool:
    """Whether min and max cover every call since the previous reading (not reset in between, PostgreSQL 17)."""
    return current[3] is None or (previous is not None and current[3] == previous[3])


def _floor(q: float, singles: list[float], lows: list[tuple[float, float]]) -> float:
    """A duration the ``q`` quantile is not below: at the ``q`` share of calls ordered by their lower bounds."""
    merged = sorted(chain(zip(singles, repeat(1.0)), lows))
    running = list(accumulate(map(itemgetter(1), merged)))
    i = bisect.bisect_left(running, q * running[-1] * (1 - 1e-12))  # as query_p95 counts
    return merged[min(i, len(merged) - 1)][0]


# -- the three figures ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryP95:
    estimate: float
    lower: float
    upper: float
    calls: float

    def status(self, target: float) -> str:
        """``met`` when even the upper bound is within ``target``, ``missed`` when even the lower bound is above
        it, else ``unknown``: the figures pg_stat_statements keeps cannot decide."""
        if self.upper <= target:
            return "met"
        if self.lower > target:
            return "missed"
        return "unknown"

    @property
    def uncertain(self) -> bool:
        """True unless the bounds keep the true P95 within 20 % of the estimate."""
        return not (self.lower * (1 + TOLERANCE) >= self.estimate and self.upper * (1 - TOLERANCE) <= self.estimate)


# An item of a cumulative function: (calls, from, to, *parameters); below ``from`` it counts 0, from ``to`` on
# all its calls, in between calls * share(item, x).
Item = tuple[float, ...]


def _lognormal_share(item: Item, x: float) -> float:
    _, _, _, mu, scale = item
    return 0.5 * math.erfc((mu - math.log(x)) / scale)


def _upper_share(item: Item, x: float) -> float:
    """At least this share of the calls took at most ``x``: 1 - Cantelli's and Markov's bounds on the rest."""
    _, _, _, mean, var, lo = item
    d = x - mean
    if d <= 0:
        return 0.0
    above = var / (var + d * d) if var < math.inf else 1.0
    if x > lo:
        above = min(above, (mean - lo) / (x - lo))
    return 1.0 - above


def _lower_share(item: Item, x: float) -> float:
    """At most this share of the calls took at most ``x``: nothing exceeds ``hi``, so the mean and the mean
    square need enough calls above ``x``."""
    _, _, _, mean, square, hi = item
    above = 0.0
    if x < mean:
        above = (mean - x) / (hi - x)
    if x * x < square:
        above = max(above, (square - x * x) / (hi * hi - x * x))
    return 1.0 - min(above, 1.0)


def _smallest(need: float, values: list[float], cumulative: list[float], items: list[Item],
              share: Callable[[Item, float], float], start: float, stop: float, rel: float = _REL,
              ) -> tuple[float, float, float]:
    """``(x0, x1, x)``: the exact points (``values`` sorted, ``cumulative`` their running calls) and the items
    count fewer than ``need`` calls at ``x0`` and at least ``need`` at ``x1``; ``x`` is the closest to ``need``.
    The search ends when ``x1 / x0 <= 1 + rel`` or the count at one end is within 1e-5 of ``need``.

    The items' ends alone narrow the bracket first (an item counts nothing below its from and all its calls from
    its to on), then bisection on log x: the count is monotone, so the bracket always holds the answer. Items
    entirely outside the bracket are folded into a constant as it narrows, so counts visit few items."""
    active, base = items, 0.0

    def counted(x: float) -> float:
        i = bisect.bisect_right(values, x)
        total = base + (cumulative[i - 1] if i else 0.0)
        for item in active:
            if x >= item[2]:
                total += item[0]
            elif x >= item[1]:
                total += item[0] * share(item, x)
        return total

    at_least, at_most = _step_count(values, cumulative, items, 2), _step_count(values, cumulative, items, 1)
    f0 = f1 = math.nan  # the counts at the ends, once known
    # x1: where even the items' to ends count enough; x0: where even their from ends do not
    x1 = _first_reaching(at_least, need, start, stop)
    if x1 is None:
        x1, f1 = stop, counted(stop) - need
        while f1 < 0:  # cannot happen with the stops query_p95 computes; never return an end that is not one
            if x1 > 1e9:
                return x1, math.inf, x1
            x1 *= 2
            f1 = counted(x1) - need
    reached = _first_reaching(at_most, need, start, x1)
    if reached is None or reached <= start:
        f0 = counted(start) - need
        if f0 >= 0:
            return start, start, start
        x0 = start
    else:
        x0 = reached * (1 - 1e-12)
    tolerance = _COUNT_REL * need
    y0, y1 = math.log(x0), math.log(x1)
    for step in range(100):
        if step > 0 and (y1 - y0 <= rel or min(f1, -f0) <= tolerance):
            break
        # items entirely below or above the bracket count the same anywhere in it
        x0, x1 = math.exp(y0), math.exp(y1)
        kept = []
        for item in active:
            if item[2] <= x0:
                base += item[0]
            elif item[1] <= x1:
                kept.append(item)
        active = kept
        if y1 - y0 <= rel:
            break
        y = (y0 + y1) / 2
        f = counted(math.exp(y)) - need
        if f >= 0:
            y1, f1 = y, f
        else:
            y0, f0 = y, f
    if y1 - y0 <= rel or math.isnan(f0) or math.isnan(f1):
        return math.exp(y0), math.exp(y1), math.exp((y0 + y1) / 2)
    return math.exp(y0), math.exp(y1), math.exp(y1 if f1 <= -f0 else y0)


def _step_count(values: list[float], cumulative: list[float], items: list[Item], end: int,
                ) -> Callable[[float], float]:
    """The points at or below ``x`` plus the calls of every item whose ``end`` (1: from, 2: to) is at or below
    ``x``: at most (1) and at least (2) what the items count there."""
    ends = sorted(zip(map(itemgetter(end), items), map(itemgetter(0), items), strict=True))
    at = list(map(itemgetter(0), ends))
    running = list(accumulate(map(itemgetter(1), ends)))

    def count(x: float) -> float:
        i, j = bisect.bisect_right(values, x), bisect.bisect_right(at, x)
        return (cumulative[i - 1] if i else 0.0) + (running[j - 1] if j else 0.0)

    return count


def _first_reaching(count: Callable[[float], float], need: float, start: float, stop: float) -> float | None:
    """About the smallest ``x`` in ``[start, stop]`` where ``count(x) >= need`` (from above: ``count`` reaches
    ``need`` there), or None if it never does."""
    if count(stop) < need:
        return None
    if count(start) >= need:
        return start
    y0, y1 = math.log(start), math.log(stop)
    for _ in range(60):
        if y1 - y0 <= 1e-9:
            break
        y = (y0 + y1) / 2
        if count(math.exp(y)) >= need:
            y1 = y
        else:
            y0 = y
    return math.exp(y1)


def _running(points: Mapping[float, float], singles: list[float]) -> tuple[list[float], list[float]]:
    """The exact calls' durations sorted, and the running count of calls up to each."""
    if not points:
        return sorted(singles), list(accumulate(repeat(1.0, len(singles))))
    merged = sorted(chain(zip(singles, repeat(1.0)), points.items()))
    return list(map(itemgetter(0), merged)), list(accumulate(map(itemgetter(1), merged)))


def query_p95(latency: IntervalLatency, q: float = QUANTILE) -> QueryP95 | None:
    """The estimate and the bounds of the ``q`` quantile of every call in ``latency``; None without calls."""
    calls = latency.calls
    if calls <= 0:
        return None
    need = q * calls * (1 - 1e-12)  # 0.95 * 20 calls is 19.000000000000004: 19 calls are 95 % of 20
    values, cumulative = _running(latency.points, latency.singles)
    if not latency.components:  # every call exact: the quantile itself
        exact = max(values[min(bisect.bisect_left(cumulative, need), len(values) - 1)], 0.0)
        return QueryP95(exact, exact, exact, calls)
    first = values[0] if values else math.inf
    last = values[-1] if values else 0.0
    estimate_items: list[Item] = []
    upper_items: list[Item] = []
    lower_items: list[Item] = []
    unbounded: dict[float, float] = {}  # calls nothing bounds from above: for the lower bound, as fast as min
    k = math.sqrt(q / (1 - q))  # Cantelli: at most 1 - q of the calls at or above mean + k sd
    upper_stop = last
    exp, log, sqrt, log1p, root2, inf = math.exp, math.log, math.sqrt, math.log1p, math.sqrt(2), math.inf
    for n, mean, var, var_low, var_high, lo, hi in latency.components:  # thousands: plain arithmetic
        sigma2 = log1p(var / (mean * mean)) if mean > 0 else 0.0
        widest = (hi - mean) * (mean - lo)  # the variance of calls all at lo or hi
        if hi < inf and widest > 0 and var >= _CROWDED * widest:
            # the calls must crowd at both ends (a fast majority and a slow few, say): the share r = var / widest
            # at lo and hi in the proportion the mean needs, the rest at the mean, which keeps mean and variance
            r = min(var / widest, 1.0)
            p = (mean - lo) / (hi - lo)
            estimate_items.append((n * r * (1 - p), lo, lo))
            estimate_items.append((n * r * p, hi, hi))
            estimate_items.append((n * (1 - r), mean, mean))
        elif sigma2 <= 0:
            estimate_items.append((n, mean, mean))
        else:
            sigma = sqrt(sigma2)
            mu = log(mean) - sigma2 / 2
            a, b = exp(mu - _SIGMAS * sigma), exp(mu + _SIGMAS * sigma)
            a = lo if a < lo else a
            b = hi if b > hi else b
            estimate_items.append((n, a, a if b < a else b, mu, sigma * root2))
        # from here on at least q of this statement's calls are counted by _upper_share
        reach = hi
        cantelli = mean + k * sqrt(var_high) if var_high < inf else inf
        reach = cantelli if cantelli < reach else reach
        markov = lo + (mean - lo) / (1 - q)
        reach = markov if markov < reach else reach
        upper_stop = reach if reach > upper_stop else upper_stop
        upper_items.append((n, mean, hi, mean, var_high, lo))
        if hi < inf:
            lower_items.append((n, lo, hi, mean, var_low + mean * mean, hi))
        else:
            _add_point(unbounded, lo, n)
    first = min(first, min(map(itemgetter(1), estimate_items), default=first))
    estimate_stop = max(last, max(map(itemgetter(2), estimate_items), default=last))
    lower_stop = max(last, max(map(itemgetter(2), lower_items), default=last), max(unbounded, default=last))
    start = max(min(first, estimate_stop), 1e-7)
    _, _, estimate = _smallest(need, values, cumulative, estimate_items, _lognormal_share, start,
                               max(start, estimate_stop))
    _, upper, _ = _smallest(need, values, cumulative, upper_items, _upper_share, start, max(start, upper_stop),
                            _BOUND_REL)
    if unbounded:
        merged = dict(latency.points)
        for v, n in unbounded.items():
            _add_point(merged, v, n)
        values, cumulative = _running(merged, latency.singles)
    lower, _, _ = _smallest(need, values, cumulative, lower_items, _lower_share, start, max(start, lower_stop),
                            _BOUND_REL)
    estimate = min(max(estimate, lower), upper)  # what the figures prove beats what the fit assumes
    return QueryP95(estimate, lower, upper, calls)


def mean_placed_p95(observations: list[tuple[float, float]], buckets: tuple[float, ...],
                    q: float = QUANTILE) -> float | None:
    """Today's ``perf_pg_query_duration_seconds`` read by ``histogram_quantile``: ``observations`` are each
    statement's (interval mean, calls), as ``duration_observations`` gives them; linear within the bucket the rank
    falls in. For comparisons (bench, tests)."""
    counts = [0.0] * (len(buckets) + 1)
    for value, calls in observations:
        counts[bisect.bisect_left(buckets, value)] += calls
    total = sum(counts)
    if total <= 0:
        return None
    rank, seen, lower = q * total, 0.0, 0.0
    for bound, count in zip((*buckets, math.inf), counts, strict=True):
        if seen + count >= rank and count > 0:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - seen) / count
        seen += count
        lower = bound
    return lower
