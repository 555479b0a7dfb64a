"""Prometheus native histograms as the HTTP API returns them, added up and read for quantiles here.

k6's remote-write output sends each Trend as a native histogram (exponential buckets: with schema ``s`` every
bucket is ``(2^((i-1)/2^s), 2^(i/2^s)]``, plus a zero bucket). Histograms of one schema add bucket by bucket; of
different schemas, the finer ones are first merged down to the coarsest, as Prometheus does. A quantile is found
in the bucket the rank falls into and placed within it exponentially (Prometheus 3's ``histogram_quantile`` for
native histograms; 2.x placed it linearly, which differs by under half a bucket's width).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ZERO_RULE = 3  # the zero bucket's boundary rule in the API's JSON: closed on both sides


@dataclass(frozen=True)
class NativeHistogram:
    """Observations by exponential bucket: ``buckets`` maps a bucket's index at ``schema`` to its count; what fell
    at or below ``zero_threshold`` (and at or below 0) is ``zero_count``."""

    count: float
    total: float  # the sum of the observations
    schema: int | None = None  # None: no bucket above the zero bucket
    buckets: Mapping[int, float] | None = None
    zero_count: float = 0.0
    zero_threshold: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None

    def bounds(self, index: int) -> tuple[float, float]:
        assert self.schema is not None
        base = 2.0 ** (2.0 ** -self.schema)
        return base ** (index - 1), base**index

    def reduced(self, schema: int) -> NativeHistogram:
        """The same observations in the coarser buckets of ``schema``."""
        if self.schema is None or schema >= self.schema:
            return self
        shift = 2 ** (self.schema - schema)
        out: dict[int, float] = {}
        for index, count in (self.buckets or {}).items():
            coarse = -((-index) // shift)  # ceil(index / shift): bucket i of the finer schema lies in this one
            out[coarse] = out.get(coarse, 0.0) + count
        return NativeHistogram(self.count, self.total, schema, out, self.zero_count, self.zero_threshold)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1); None without observations."""
        if self.count <= 0 or not 0 <= q <= 1:
            return None
        rank = q * self.count
        seen = self.zero_count
        if rank <= seen and self.zero_count > 0:
            return self.zero_threshold * (rank / self.zero_count)
        for index in sorted(self.buckets or {}):
            count = (self.buckets or {})[index]
            if count <= 0:
                continue
            if seen + count >= rank:
                lower, upper = self.bounds(index)
                fraction = (rank - seen) / count
                return float(lower * (upper / lower) ** fraction)
            seen += count
        if self.buckets:
            return self.bounds(max(self.buckets))[1]
        return self.zero_threshold


def _schema_of(lower: float, upper: float) -> int:
    """The schema whose bucket ``(lower, upper]`` is: upper/lower = 2^(2^-schema)."""
    return round(-math.log2(math.log2(upper / lower)))


def from_api(obj: Mapping[str, Any]) -> NativeHistogram:
    """One histogram as the query API writes it: ``{"count", "sum", "buckets": [[rule, lower, upper, count]]}``
    (numbers as strings)."""
    count, total = float(obj.get("count", 0)), float(obj.get("sum", 0))
    schema: int | None = None
    buckets: dict[int, float] = {}
    zero_count = zero_threshold = 0.0
    for rule, low, high, n in obj.get("buckets") or []:
        lower, upper, value = float(low), float(high), float(n)
        if (int(rule) == ZERO_RULE and lower <= 0 <= upper) or upper <= 0:
            zero_count += value  # the zero bucket, and anything below it (durations are never negative)
            zero_threshold = max(zero_threshold, upper)
            continue
        if schema is None:
            schema = _schema_of(lower, upper)
        index = round(math.log2(upper) * 2.0**schema)
        buckets[index] = buckets.get(index, 0.0) + value
    return NativeHistogram(count, total, schema, buckets, zero_count, zero_threshold)


def added(histograms: Iterable[NativeHistogram]) -> NativeHistogram:
    """The sum of several histograms: what ``sum()`` over their series gives in PromQL."""
    items = list(histograms)
    schemas = [h.schema for h in items if h.schema is not None]
    schema = min(schemas) if schemas else None
    buckets: dict[int, float] = {}
    count = total = zero_count = zero_threshold = 0.0
    for h in items:
        count += h.count
        total += h.total
        zero_count += h.zero_count
        zero_threshold = max(zero_threshold, h.zero_threshold)
        if schema is not None:
            for index, n in (h.reduced(schema).buckets or {}).items():
                buckets[index] = buckets.get(index, 0.0) + n
    return NativeHistogram(count, total, schema, buckets, zero_count, zero_threshold)
