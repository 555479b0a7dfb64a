"""The rest of the platform over a load run's window, from two readings of the exporter's own series (one at
the end of the warm-up, one after the run) and the queue lengths read meanwhile: database time, cache hit rate,
queue depth and trace durations. Pure: the readings are plain ``{(series name, labels): value}`` mappings."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

from exporter import metrics

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Reading = Mapping[SeriesKey, float]


class DatabaseFigures(msgspec.Struct, frozen=True, rename="camel"):
    statement_seconds: float
    statement_calls: int
    mean_statement_ms: float | None
    query_p95_ms: float | None
    query_p95_upper_bound_ms: float | None
    query_p95_source: str
    query_p95_mean_placed_ms: float | None


class CacheFigures(msgspec.Struct, frozen=True, rename="camel"):
    hits: int
    misses: int
    hit_rate: float | None


class QueueFigures(msgspec.Struct, frozen=True):
    first: float
    max: float
    last: float


class TraceFigures(msgspec.Struct, frozen=True, rename="camel"):
    traces: int
    mean_ms: float | None
    p95_ms: float | None


def _sum(reading: Reading, name: str) -> float | None:
    values = [v for (n, _), v in reading.items() if n == name]
    return sum(values) if values else None


def _delta(start: Reading, end: Reading, name: str) -> float | None:
    after = _sum(end, name)
    if after is None:
        return None
    return max(0.0, after - (_sum(start, name) or 0.0))


def _bucket_deltas(start: Reading, end: Reading, family: str) -> list[tuple[float, float]]:
    """Cumulative bucket counts over the window, summed across label sets, as (upper bound, count)."""
    bounds: dict[float, float] = {}
    for reading, sign in ((end, 1.0), (start, -1.0)):
        for (name, labels), value in reading.items():
            if name != f"{family}_bucket":
                continue
            le = dict(labels).get("le", "+Inf")
            bound = math.inf if le == "+Inf" else float(le)
            bounds[bound] = bounds.get(bound, 0.0) + sign * value
    return sorted((b, max(0.0, c)) for b, c in bounds.items())


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's estimate: linear within the bucket the rank falls in; the highest finite bound if the rank
    is in +Inf."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 3) if seconds is not None else None


def _highest(readings: Sequence[Reading], name: str) -> float | None:
    values = [v for reading in readings for (n, _), v in reading.items() if n == name and math.isfinite(v)]
    return max(values) if values else None


def database(start: Reading, end: Reading, during: Sequence[Reading] = ()) -> DatabaseFigures | None:
    """Statement time and calls over the window, and the query P95: the highest of the collector's per-interval
    estimates (and of their upper bounds) during the run, beside the mean-placed histogram's figure, which places
    each call at its statement's mean and so can hide a slow tail."""
    seconds = _delta(start, end, metrics.PG_STATEMENT_EXEC.name)
    calls = _delta(start, end, metrics.PG_STATEMENT_CALLS.name)
    if seconds is None and calls is None:
        return None
    family = metrics.PG_QUERY_DURATION.name
    readings = [*during, end]
    return DatabaseFigures(round(seconds or 0.0, 6), int(calls or 0),
                           _ms(seconds / calls) if seconds is not None and calls else None,
                           _ms(_highest(readings, metrics.PG_QUERY_P95.name)),
                           _ms(_highest(readings, metrics.PG_QUERY_P95_UPPER.name)),
                           f"highest {metrics.PG_QUERY_P95.name} (estimated from pg_stat_statements) during the run",
                           _ms(histogram_quantile(0.95, _bucket_deltas(start, end, family))))


def cache(start: Reading, end: Reading) -> CacheFigures | None:
    hits = _delta(start, end, metrics.REDIS_HITS.name)
    misses = _delta(start, end, metrics.REDIS_MISSES.name)
    if hits is None or misses is None:
        return None
    lookups = hits + misses
    return CacheFigures(int(hits), int(misses), round(hits / lookups, 4) if lookups else None)


def queues(readings: Sequence[Reading]) -> dict[str, QueueFigures]:
    """Each queue's length over the run: first, highest and last reading; named ``target/queue`` where two Redis
    targets have a queue of that name."""
    series: dict[tuple[str, str], list[float]] = {}
    for reading in readings:
        for (name, labels), value in reading.items():
            if name == metrics.REDIS_QUEUE_LENGTH.name:
                names = dict(labels)
                series.setdefault((names.get("target", ""), names.get("queue", "")), []).append(value)
    shared = Counter(queue for _, queue in series)
    return {(f"{target}/{queue}" if shared[queue] > 1 else queue): QueueFigures(values[0], max(values), values[-1])
            for (target, queue), values in series.items()}


def traces(start: Reading, end: Reading) -> TraceFigures | None:
    family = metrics.TRACE_DURATION.name
    buckets = _bucket_deltas(start, end, family)
    count = buckets[-1][1] if buckets else 0.0
    if not buckets:
        return None
    total = _delta(start, end, f"{family}_sum") or 0.0
    return TraceFigures(int(count), _ms(total / count) if count else None, _ms(histogram_quantile(0.95, buckets)))


class PlatformFigures(msgspec.Struct, frozen=True):
    """The run window's database, cache, queue and trace figures (each None when no collector of it ran)."""

    database: DatabaseFigures | None
    cache: CacheFigures | None
    queues: dict[str, QueueFigures]
    traces: TraceFigures | None


def platform_report(start: Reading, end: Reading, during: Sequence[Reading]) -> PlatformFigures:
    return PlatformFigures(database(start, end, during), cache(start, end), queues(during), traces(start, end))
