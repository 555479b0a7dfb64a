"""The rest of the platform over a load run's window, from two readings of the exporter's own series (one at
the end of the warm-up, one after the run) and the queue lengths read meanwhile: database time, cache hit rate,
queue depth and trace durations. Pure: the readings are plain ``{(series name, labels): value}`` mappings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from exporter import metrics

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Reading = Mapping[SeriesKey, float]


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


def database(start: Reading, end: Reading, during: Sequence[Reading] = ()) -> dict[str, Any] | None:
    """Statement time and calls over the window, and the query P95: the highest of the collector's per-interval
    estimates (and of their upper bounds) during the run, beside the mean-placed histogram's figure, which places
    each call at its statement's mean and so can hide a slow tail."""
    seconds = _delta(start, end, metrics.PG_STATEMENT_EXEC.name)
    calls = _delta(start, end, metrics.PG_STATEMENT_CALLS.name)
    if seconds is None and calls is None:
        return None
    family = metrics.PG_QUERY_DURATION.name
    readings = [*during, end]
    return {"statementSeconds": round(seconds or 0.0, 6), "statementCalls": int(calls or 0),
            "meanStatementMs": _ms(seconds / calls) if seconds is not None and calls else None,
            "queryP95Ms": _ms(_highest(readings, metrics.PG_QUERY_P95.name)),
            "queryP95UpperBoundMs": _ms(_highest(readings, metrics.PG_QUERY_P95_UPPER.name)),
            "queryP95Source": f"highest {metrics.PG_QUERY_P95.name} (estimated from pg_stat_statements) during "
                              "the run",
            "queryP95MeanPlacedMs": _ms(histogram_quantile(0.95, _bucket_deltas(start, end, family)))}


def cache(start: Reading, end: Reading) -> dict[str, Any] | None:
    hits = _delta(start, end, metrics.REDIS_HITS.name)
    misses = _delta(start, end, metrics.REDIS_MISSES.name)
    if hits is None or misses is None:
        return None
    lookups = hits + misses
    return {"hits": int(hits), "misses": int(misses), "hitRate": round(hits / lookups, 4) if lookups else None}


def queues(readings: Sequence[Reading]) -> dict[str, dict[str, float]]:
    """Each queue's length over the run: first, highest and last reading."""
    series: dict[str, list[float]] = {}
    for reading in readings:
        for (name, labels), value in reading.items():
            if name == metrics.REDIS_QUEUE_LENGTH.name:
                series.setdefault(dict(labels).get("queue", ""), []).append(value)
    return {queue: {"first": values[0], "max": max(values), "last": values[-1]} for queue, values in series.items()}


def traces(start: Reading, end: Reading) -> dict[str, Any] | None:
    family = metrics.TRACE_DURATION.name
    buckets = _bucket_deltas(start, end, family)
    count = buckets[-1][1] if buckets else 0.0
    if not buckets:
        return None
    total = _delta(start, end, f"{family}_sum") or 0.0
    return {"traces": int(count), "meanMs": _ms(total / count) if count else None,
            "p95Ms": _ms(histogram_quantile(0.95, buckets))}


def platform_report(start: Reading, end: Reading, during: Sequence[Reading]) -> dict[str, Any]:
    return {"database": database(start, end, during), "cache": cache(start, end), "queues": queues(during),
            "traces": traces(start, end)}
