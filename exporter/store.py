"""Where jobs write their series, and how a scrape turns them into the Prometheus text format.

Each job owns one :class:`MetricStore`. :class:`StoreCollector` holds the live stores: a job that is removed
takes its series with it. A scrape only reads what jobs last wrote, and it is cheap: every store counts writes per
family, and the text of a family is rendered again only when one of its stores wrote to it since the last scrape.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.metrics import BY_NAME, FAMILIES, Family, Kind

Labels = tuple[str, ...]
K = TypeVar("K", bound=Labels)


class LabelError(ValueError):
    """A series written with a label set its family does not declare. Raised by the write, inside the job that
    wrote it (the scheduler turns it into that job's error run), so it never reaches a scrape."""


def _label_error(family: Family, given: str) -> LabelError:
    return LabelError(f"{family.name} takes labels ({', '.join(family.labels)}), got {given}")


def _named(labels: Mapping[str, object]) -> str:
    return "(" + ", ".join(f"{name}={value!r}" for name, value in labels.items()) + ")"


def _getter(family: Family) -> Callable[[dict[str, str]], Labels]:
    names = family.labels
    if not names:
        return lambda labels: ()
    if len(names) == 1:
        name = names[0]
        return lambda labels: (labels[name],)
    return itemgetter(*names)


_GETTERS: dict[Family, Callable[[dict[str, str]], Labels]] = {}


def _key(family: Family, labels: dict[str, str]) -> Labels:
    """The series key of named labels, in the family's label order, if the names are exactly the family's."""
    getter = _GETTERS.get(family) or _GETTERS.setdefault(family, _getter(family))
    try:
        key = getter(labels)
    except KeyError:
        raise _label_error(family, _named(labels)) from None
    if len(labels) != len(key):
        raise _label_error(family, _named(labels))
    return key


def _check_values(family: Family, key: Labels, labels: dict[str, str]) -> None:
    """Check that every value of a key built by :func:`_key` is a str. Writes call it only for a series they
    create: the keys already stored were checked when they were created."""
    for value in key:
        if not isinstance(value, str):
            raise _label_error(family, _named(labels))


def _check_tuple(family: Family, key: object) -> None:
    """Check a tuple key (``replace``, ``remove_where``): one str per label name, in the family's order."""
    if not (isinstance(key, tuple) and len(key) == len(family.labels) and all(isinstance(v, str) for v in key)):
        raise _label_error(family, repr(key))


@dataclass
class HistogramState:
    counts: list[float]
    total: float = 0.0
    count: float = 0.0

    def cumulative(self) -> list[float]:
        out: list[float] = []
        running = 0.0
        for n in self.counts:
            running += n
            out.append(running)
        return out


@dataclass
class MetricStore:
    """Series one job owns. Counters and histograms accumulate; gauges hold what was last set.

    Writes name their labels (``store.inc(family, 1.0, target="a", outcome="success")``) and are checked
    against ``family.labels`` when they create a series: a wrong label set raises :class:`LabelError` in the
    job that wrote it. ``replace`` and ``remove_where`` take tuple keys in the family's label order (hot paths
    with thousands of series), checked the same way."""

    values: dict[Family, dict[Labels, float]] = field(default_factory=dict)
    histograms: dict[Family, dict[Labels, HistogramState]] = field(default_factory=dict)
    versions: dict[Family, int] = field(default_factory=dict)
    serial: int = 0  # unique per store over the process's life, for the render cache
    prefixes: dict[Family, dict[Labels, tuple[str, ...]]] = field(default_factory=dict)
    shown: dict[Family, tuple[int, ...]] = field(default_factory=dict)  # bucket indices exported, when not all

    def show_buckets(self, family: Family, bounds: Iterable[float]) -> None:
        """Export only these bounds of the family's buckets (each one of them) in this store's histograms. The
        counts stay whole: each exported bucket counts every observation at or below its bound."""
        wanted = set(bounds)
        indices = tuple(i for i, b in enumerate(family.buckets) if b in wanted)
        if len(indices) != len(wanted):
            raise ValueError(f"{family.name}: {sorted(wanted)} are not all bounds of {family.buckets}")
        self.shown[family] = indices
        self.prefixes.pop(family, None)
        self._touch(family)

    def _touch(self, family: Family) -> None:
        self.versions[family] = self.versions.get(family, 0) + 1

    def inc(self, family: Family, amount: float = 1.0, /, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{family.name}: counters only go up (got {amount})")
        key = _key(family, labels)
        series = self.values.setdefault(family, {})
        current = series.get(key)
        if current is None:
            _check_values(family, key, labels)
            current = 0.0
        series[key] = current + amount
        self._touch(family)

    def inc_many(self, family: Family, amounts: Mapping[K, float]) -> None:
        """Add each amount to its counter series, which starts at 0 if new: :meth:`inc` for a hot path with
        thousands of series, keyed by tuples in the family's label order like :meth:`replace`."""
        series = self.values.setdefault(family, {})
        for key, amount in amounts.items():
            if amount < 0:
                raise ValueError(f"{family.name}: counters only go up (got {amount} for {key!r})")
            current = series.get(key)
            if current is None:
                _check_tuple(family, key)
                current = 0.0
            series[key] = current + amount
        self._touch(family)

    def set(self, family: Family, value: float, /, **labels: str) -> None:
        key = _key(family, labels)
        series = self.values.setdefault(family, {})
        if key not in series:
            _check_values(family, key, labels)
        series[key] = float(value)
        self._touch(family)

    def replace(self, family: Family, series: Mapping[K, float]) -> None:
        """Set a gauge family to exactly these series: whatever is not in ``series`` disappears."""
        old = self.values.get(family, {})
        new: dict[Labels, float] = {}
        for key, value in series.items():
            if key not in old:
                _check_tuple(family, key)
            new[key] = float(value)
        self.values[family] = new
        self.prefixes.pop(family, None)
        self._touch(family)

    def observe(self, family: Family, value: float, count: float = 1.0, /, **labels: str) -> None:
        key = _key(family, labels)
        series = self.histograms.setdefault(family, {})
        state = series.get(key)
        if state is None:
            _check_values(family, key, labels)
            state = series[key] = HistogramState([0.0] * len(family.buckets))
        index = bisect.bisect_left(family.buckets, value)
        if index < len(state.counts):
            state.counts[index] += count
        state.total += value * count
        state.count += count
        self._touch(family)

    def observe_many(self, family: Family, observations: Mapping[K, Iterable[float]]) -> None:
        """Observe each value into its histogram series: :meth:`observe` for a hot path with thousands of values,
        keyed by tuples in the family's label order like :meth:`replace`."""
        series = self.histograms.setdefault(family, {})
        buckets = family.buckets
        for key, values in observations.items():
            state = series.get(key)
            if state is None:
                _check_tuple(family, key)
                state = series[key] = HistogramState([0.0] * len(buckets))
            counts = state.counts
            for value in values:
                index = bisect.bisect_left(buckets, value)
                if index < len(counts):
                    counts[index] += 1.0
                state.total += value
                state.count += 1.0
        self._touch(family)

    def ensure_counter(self, family: Family, /, **labels: str) -> None:
        """Expose a counter at 0 before its first event, so rate() sees the first increment."""
        key = _key(family, labels)
        series = self.values.setdefault(family, {})
        if key not in series:
            _check_values(family, key, labels)
            series[key] = 0.0
        self._touch(family)

    def ensure_histogram(self, family: Family, /, **labels: str) -> None:
        key = _key(family, labels)
        series = self.histograms.setdefault(family, {})
        if key not in series:
            _check_values(family, key, labels)
            series[key] = HistogramState([0.0] * len(family.buckets))
        self._touch(family)

    def remove(self, family: Family, /, **labels: str) -> None:
        key = _key(family, labels)
        _check_values(family, key, labels)
        self.values.get(family, {}).pop(key, None)
        self.histograms.get(family, {}).pop(key, None)
        self.prefixes.get(family, {}).pop(key, None)
        self._touch(family)

    def remove_where(self, family: Family, keep: Iterable[Labels]) -> None:
        """Drop every series of ``family`` whose labels are not in ``keep``."""
        wanted = set(keep)
        values, histograms = self.values.get(family, {}), self.histograms.get(family, {})
        for key in wanted:
            if key not in values and key not in histograms:  # stored keys were checked when written
                _check_tuple(family, key)
        for table in (self.values, self.histograms):
            series = table.get(family)
            if series:
                for labels in [k for k in series if k not in wanted]:
                    del series[labels]
        self.prefixes.pop(family, None)
        self._touch(family)

    def get(self, family: Family, /, **labels: str) -> float | None:
        key = _key(family, labels)
        _check_values(family, key, labels)
        return self.values.get(family, {}).get(key)


# ---------------------------------------------------------------------------------------------------------------
# Text exposition (format 0.0.4)


def _value(v: float) -> str:
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if v != v:
        return "NaN"
    return repr(float(v))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: tuple[str, ...], values: Labels) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def _prefixes(family: Family, labels: Labels, shown: tuple[int, ...] | None = None) -> tuple[str, ...]:
    """The text before each value of one series: one per line it renders to (``shown``: the bucket indices
    exported, when not all)."""
    base = _label_text(family.labels, labels)
    name = family.name
    if family.kind is not Kind.HISTOGRAM:
        return (f"{name}{{{base}}} " if base else f"{name} ",)
    sep = "," if base else ""
    suffix = f"{{{base}}}" if base else ""
    bounds = family.buckets if shown is None else [family.buckets[i] for i in shown]
    buckets = [f'{name}_bucket{{{base}{sep}le="{_value(b)}"}} ' for b in bounds]
    return (*buckets, f'{name}_bucket{{{base}{sep}le="+Inf"}} ', f"{name}_count{suffix} ", f"{name}_sum{suffix} ")


def _header(family: Family) -> str:
    help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.kind.value}\n"


def sample_lines(family: Family, store: MetricStore) -> bytes:
    """The sample lines of one family in one store, without HELP and TYPE (b"" when it has none)."""
    return "\n".join(_sample_lines(family, store)).encode()


def _sample_lines(family: Family, store: MetricStore) -> list[str]:
    lines: list[str] = []
    cache = store.prefixes.setdefault(family, {})
    if family.kind is Kind.HISTOGRAM:
        shown = store.shown.get(family)
        for labels, state in store.histograms.get(family, {}).items():
            prefixes = cache.get(labels) or cache.setdefault(labels, _prefixes(family, labels, shown))
            cumulative = state.cumulative()
            if shown is not None:
                cumulative = [cumulative[i] for i in shown]
            values = [*cumulative, state.count, state.count, state.total]
            lines.extend(p + _value(v) for p, v in zip(prefixes, values, strict=True))
    else:
        for labels, value in store.values.get(family, {}).items():
            prefix = (cache.get(labels) or cache.setdefault(labels, _prefixes(family, labels)))[0]
            lines.append(prefix + _value(value))
    return lines


class StoreCollector(Collector):
    """The live stores, and the sample lines of stores that live in probe workers (:meth:`put_lines`, by job
    key). :meth:`render` is the scrape's fast path: the local stores' lines of a family are rendered again only
    when one of them wrote to it, and a worker's lines are joined as they came. :meth:`collect` serves
    registry-based readers of the local stores (tests use ``registry.get_sample_value``)."""

    def __init__(self) -> None:
        self.stores: dict[str, MetricStore] = {}
        self.remote: dict[str, dict[Family, bytes]] = {}
        self._cache: dict[Family, tuple[tuple[tuple[int, int], ...], bytes]] = {}
        self._headers = {family: _header(family).encode() for family in FAMILIES}
        self._serials = itertools.count(1)

    def add(self, key: str) -> MetricStore:
        store = self.stores[key] = MetricStore(serial=next(self._serials))
        return store

    def drop(self, key: str) -> None:
        self.stores.pop(key, None)
        self.remote.pop(key, None)

    def put_lines(self, key: str, lines: Mapping[str, bytes]) -> None:
        """Replace the sample lines a store elsewhere holds for these families (by name; b"" for none)."""
        held = self.remote.setdefault(key, {})
        for name, text in lines.items():
            held[BY_NAME[name]] = text

    def render(self) -> str:
        return self.render_bytes().decode()

    def render_bytes(self) -> bytes:
        stores = list(self.stores.values())
        remote = list(self.remote.values())
        parts: list[bytes] = []
        for family in FAMILIES:
            holders = [s for s in stores if family in s.versions]
            key = tuple((s.serial, s.versions[family]) for s in holders)
            cached = self._cache.get(family)
            if cached is None or cached[0] != key:
                lines = [line for store in holders for line in _sample_lines(family, store)]
                cached = self._cache[family] = (key, "\n".join(lines).encode())
            pieces = [piece for piece in (cached[1], *(held.get(family, b"") for held in remote)) if piece]
            if pieces:
                header = self._headers.get(family) or self._headers.setdefault(family, _header(family).encode())
                parts.append(header)
                for piece in pieces:
                    parts += (piece, b"\n")
        return b"".join(parts)

    def collect(self) -> Iterator[Metric]:
        stores = list(self.stores.values())
        for family in FAMILIES:
            metric: Metric
            if family.kind is Kind.HISTOGRAM:
                hist = HistogramMetricFamily(family.name, family.help, labels=family.labels)
                found = False
                for store in stores:
                    shown = store.shown.get(family)
                    indices = shown if shown is not None else range(len(family.buckets))
                    bounds = [_value(family.buckets[i]) for i in indices] + ["+Inf"]
                    for labels, state in store.histograms.get(family, {}).items():
                        cumulative = state.cumulative()
                        counts = [*(cumulative[i] for i in indices), state.count]
                        hist.add_metric(list(labels), list(zip(bounds, counts, strict=True)), state.total)
                        found = True
                if found:
                    yield hist
                continue
            if family.kind is Kind.COUNTER:
                metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            found = False
            for store in stores:
                for labels, value in store.values.get(family, {}).items():
                    metric.add_metric(list(labels), value)
                    found = True
            if found:
                yield metric
