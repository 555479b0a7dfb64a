"""The config's ``targets:`` as SLO definitions: what counts as an event, what counts as a bad one, and the objective.

Every SLO is a ratio of bad events to all events, so one set of recording rules, burn-rate alerts and dashboard
panels serves them all:

- a percentile target ("P95 < 500 ms") becomes "at least 95 % of events within 0.5 s", counted from the histogram
  bucket whose upper bound is the threshold (config.Targets makes sure there is one, so the SLO is exact);
- the error-rate target counts every probe request whose outcome is not ``success`` as bad: a 4xx or 5xx, and just
  as much a timeout, a refused connection, an unexpected status or a failed body assertion, because each is a
  request the user did not get a correct answer to in time;
- the cache hit-rate target counts a keyspace miss as bad (objective 80 % means a 20 % miss budget);
- the database's histogram places each statement's calls at the statement's mean (pg_stat_statements keeps no
  durations), so its counts are approximate: its threshold alerts read an estimate of the P95 and bounds that
  the true P95 lies between (:class:`Estimated`), and never stay silent while the bounds cannot show it met.

The metric names come from exporter.metrics by reference; nothing here retypes them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from exporter import metrics
from exporter.config.targets import Targets
from exporter.config.units import format_duration, parse_duration
from exporter.metrics import Family

if TYPE_CHECKING:
    from exporter.config.schema import Config


def le_matcher(bound: float) -> str:
    """The ``le`` matcher for one bucket bound, valid on Prometheus 2 (``le="1.0"``, as client_python writes it)
    and Prometheus 3 (which normalises whole numbers to ``le="1"``)."""
    if float(bound).is_integer():
        return f'le=~"{int(bound)}(\\\\.0)?"'
    return f'le="{float(bound)!r}"'


@dataclass(frozen=True)
class Matcher:
    """One label matcher, written as PromQL (:attr:`promql`) and applied to a series' labels (:meth:`matches`),
    so that Prometheus and a bench run's own readings select the same series."""

    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    @property
    def promql(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value) is not None
        return found if self.op == "=~" else not found


SUCCESS = "success"
# The error-rate SLO's bad event: a probe request whose outcome is anything but success.
BAD_OUTCOME = Matcher("outcome", "!=", SUCCESS)


def selector(*matchers: str | Matcher) -> str:
    inner = ", ".join(m.promql if isinstance(m, Matcher) else m for m in matchers if m)
    return f"{{{inner}}}" if inner else ""


def regex_of(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names))


def seconds_text(seconds: float) -> str:
    """A threshold as people say it: ``500 ms``, ``1 s``."""
    return f"{round(seconds * 1000):g} ms" if seconds < 1 else f"{seconds:g} s"


def percent_text(ratio: float) -> str:
    return f"{round(ratio * 100, 4):g} %"


@dataclass(frozen=True)
class Indicator:
    """PromQL for the rate of bad events and of all events, grouped by ``by``, over a window (``fn``: ``rate`` or
    ``increase``)."""

    by: tuple[str, ...]

    def bad(self, window: str, fn: str = "rate") -> str:
        raise NotImplementedError

    def total(self, window: str, fn: str = "rate") -> str:
        raise NotImplementedError

    def _sum(self, fn: str, series: str, window: str) -> str:
        return f"sum by ({', '.join(self.by)}) ({fn}({series}[{window}]))"


@dataclass(frozen=True)
class LatencyIndicator(Indicator):
    """Events are observations of ``family``; bad ones are above ``threshold`` (a bucket bound)."""

    family: Family = metrics.HTTP_REQUEST_DURATION
    threshold: float = 0.5
    matchers: tuple[Matcher, ...] = ()

    def total(self, window: str, fn: str = "rate") -> str:
        return self._sum(fn, f"{self.family.name}_count{selector(*self.matchers)}", window)

    def good(self, window: str, fn: str = "rate") -> str:
        return self._sum(fn, f"{self.family.name}_bucket{selector(*self.matchers, le_matcher(self.threshold))}",
                         window)

    def bad(self, window: str, fn: str = "rate") -> str:
        return f"({self.total(window, fn)} - {self.good(window, fn)})"

    def quantile(self, q: float, window: str) -> str:
        """The ``q`` quantile of the events, by ``by``, over ``window`` (interpolated within a bucket)."""
        by = ", ".join((*self.by, "le"))
        return (f"histogram_quantile({q:g}, sum by ({by}) "
                f"(rate({self.family.name}_bucket{selector(*self.matchers)}[{window}])))")


@dataclass(frozen=True)
class OutcomeIndicator(Indicator):
    """Events are increments of a counter with an outcome label; bad ones are every outcome but ``success``."""

    family: Family = metrics.HTTP_REQUESTS
    matchers: tuple[Matcher, ...] = ()

    def total(self, window: str, fn: str = "rate") -> str:
        return self._sum(fn, f"{self.family.name}{selector(*self.matchers)}", window)

    @property
    def bad_matchers(self) -> tuple[Matcher, ...]:
        return (*self.matchers, BAD_OUTCOME)

    def bad(self, window: str, fn: str = "rate") -> str:
        return self._sum(fn, f"{self.family.name}{selector(*self.bad_matchers)}", window)


@dataclass(frozen=True)
class HitMissIndicator(Indicator):
    """Events are cache lookups (hits + misses); bad ones are misses."""

    hits: Family = metrics.REDIS_HITS
    misses: Family = metrics.REDIS_MISSES

    def total(self, window: str, fn: str = "rate") -> str:
        return f"({self.good(window, fn)} + {self.bad(window, fn)})"

    def good(self, window: str, fn: str = "rate") -> str:
        return self._sum(fn, self.hits.name, window)

    def bad(self, window: str, fn: str = "rate") -> str:
        return self._sum(fn, self.misses.name, window)


@dataclass(frozen=True)
class Estimated:
    """A percentile that cannot be counted, only estimated (the database's: pg_stat_statements keeps sums, not
    durations), with gauges of its estimate and of bounds the true value lies between, per collection interval.
    Its threshold alert reads the estimate, and a second alert fires while the bounds cannot show it met."""

    estimate: Family
    upper: Family
    lower: Family
    source: str  # where the numbers come from, for dashboards and alert text


@dataclass(frozen=True)
class Slo:
    area: str  # rule group, dashboard and sloth_service: api, database, cache, tracing
    name: str  # sloth_slo, e.g. latency-p95 or create-order-latency-p95
    alert: str  # CamelCase prefix of its alerts, e.g. ApiLatencyP95
    title: str  # the guide's row name, e.g. "API P95 Response Time"
    objective: float  # share of good events, e.g. 0.95
    indicator: Indicator
    target_text: str  # the guide's way of stating it, e.g. "< 500 ms"
    description: str  # what the objective means, for annotations and docs
    kind: str  # latency, errors or cache (which runbook and threshold alert)
    quantile: float | None = None  # for latency SLOs: 0.95 or 0.99
    threshold: float | None = None  # latency threshold in seconds, or the hit/error ratio
    endpoint: str | None = None  # set for per-endpoint overrides
    excluded_endpoints: tuple[str, ...] = field(default_factory=tuple)
    estimated: Estimated | None = None  # for a percentile the histogram only approximates
    key: str = ""  # its ``targets:`` key (api_latency_p95; endpoints.create_order.api_latency_p95): a report's row

    @property
    def floor(self) -> bool:
        """Whether the target is a floor (a hit rate above it), not a ceiling (a latency or error rate below it)."""
        return isinstance(self.indicator, HitMissIndicator)

    @property
    def sloth_id(self) -> str:
        return f"{self.area}-{self.name}"

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 10)

    def labels(self) -> dict[str, str]:
        return {"sloth_id": self.sloth_id, "sloth_service": self.area, "sloth_slo": self.name}


def _snake_to_kebab(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _quantile_name(q: float) -> str:
    return f"p{round(q * 100):d}"


def api_slos(targets: Targets) -> list[Slo]:
    """API latency (P95, P99) and error rate, each with per-endpoint overrides split out into their own SLO:
    the target-wide SLO leaves out the endpoints that have their own figure for it."""
    slos: list[Slo] = []
    fam = metrics.HTTP_REQUEST_DURATION
    for q, key, default in ((0.95, "api_latency_p95", targets.api_latency_p95),
                            (0.99, "api_latency_p99", targets.api_latency_p99)):
        pname = _quantile_name(q)
        overrides = {e: getattr(o, key) for e, o in sorted(targets.endpoints.items()) if getattr(o, key) is not None}
        excluded = Matcher("endpoint", "!~", regex_of(list(overrides))) if overrides else None
        slos.append(Slo(
            area="api", name=f"latency-{pname}", alert=f"ApiLatency{pname.upper()}",
            title=f"API {pname.upper()} Response Time", objective=q,
            indicator=LatencyIndicator(by=("target",), family=fam, threshold=default,
                                       matchers=(excluded,) if excluded else ()),
            target_text=f"< {seconds_text(default)}",
            description=f"{percent_text(q)} of probe requests within {seconds_text(default)}",
            kind="latency", quantile=q, threshold=default, excluded_endpoints=tuple(overrides), key=key))
        for endpoint, value in overrides.items():
            slos.append(Slo(
                area="api", name=f"{_snake_to_kebab(endpoint)}-latency-{pname}",
                alert=f"ApiLatency{pname.upper()}", title=f"API {pname.upper()} Response Time ({endpoint})",
                objective=q,
                indicator=LatencyIndicator(by=("target", "endpoint"), family=fam, threshold=value,
                                           matchers=(Matcher("endpoint", "=", endpoint),)),
                target_text=f"< {seconds_text(value)}",
                description=f"{percent_text(q)} of {endpoint} probe requests within {seconds_text(value)}",
                kind="latency", quantile=q, threshold=value, endpoint=endpoint, key=f"endpoints.{endpoint}.{key}"))
    overrides = {e: o.error_rate for e, o in sorted(targets.endpoints.items()) if o.error_rate is not None}
    excluded = Matcher("endpoint", "!~", regex_of(list(overrides))) if overrides else None
    slos.append(Slo(
        area="api", name="errors", alert="ApiErrorRate", title="Error Rate", objective=1 - targets.error_rate,
        indicator=OutcomeIndicator(by=("target",), matchers=(excluded,) if excluded else ()),
        target_text=f"< {percent_text(targets.error_rate)}",
        description=f"at most {percent_text(targets.error_rate)} of probe requests fail (any outcome but "
                    "success counts as a failure)",
        kind="errors", threshold=targets.error_rate, excluded_endpoints=tuple(overrides), key="error_rate"))
    for endpoint, value in overrides.items():
        slos.append(Slo(
            area="api", name=f"{_snake_to_kebab(endpoint)}-errors", alert="ApiErrorRate",
            title=f"Error Rate ({endpoint})", objective=1 - value,
            indicator=OutcomeIndicator(by=("target", "endpoint"), matchers=(Matcher("endpoint", "=", endpoint),)),
            target_text=f"< {percent_text(value)}",
            description=f"at most {percent_text(value)} of {endpoint} probe requests fail",
            kind="errors", threshold=value, endpoint=endpoint, key=f"endpoints.{endpoint}.error_rate"))
    return slos


def database_slos(targets: Targets) -> list[Slo]:
    return [Slo(
        area="database", name="query-latency-p95", alert="DatabaseQueryP95", title="Database Query P95",
        objective=0.95,
        indicator=LatencyIndicator(by=("target",), family=metrics.PG_QUERY_DURATION, threshold=targets.db_query_p95),
        target_text=f"< {seconds_text(targets.db_query_p95)}",
        description=f"95 % of statement executions within {seconds_text(targets.db_query_p95)}",
        kind="latency", quantile=0.95, threshold=targets.db_query_p95, key="db_query_p95",
        estimated=Estimated(metrics.PG_QUERY_P95, metrics.PG_QUERY_P95_UPPER, metrics.PG_QUERY_P95_LOWER,
                            "pg_stat_statements, estimated"))]


def cache_slos(targets: Targets) -> list[Slo]:
    return [Slo(
        area="cache", name="hit-rate", alert="CacheHitRate", title="Cache Hit Rate",
        objective=targets.cache_hit_rate, indicator=HitMissIndicator(by=("target",)),
        target_text=f"> {percent_text(targets.cache_hit_rate)}",
        description=f"at least {percent_text(targets.cache_hit_rate)} of key lookups hit",
        kind="cache", threshold=targets.cache_hit_rate, key="cache_hit_rate")]


def tracing_slos(targets: Targets) -> list[Slo]:
    return [Slo(
        area="tracing", name="trace-latency-p95", alert="TraceP95", title="Trace P95 Duration", objective=0.95,
        indicator=LatencyIndicator(by=("target",), family=metrics.TRACE_DURATION, threshold=targets.trace_p95),
        target_text=f"< {seconds_text(targets.trace_p95)}",
        description=f"95 % of traces complete within {seconds_text(targets.trace_p95)}",
        kind="latency", quantile=0.95, threshold=targets.trace_p95, key="trace_p95")]


def all_slos(config: Config) -> list[Slo]:
    """Every SLO of every registered area, in registry order (the guide's Performance Targets table)."""
    return [slo for area in config.areas() for slo in area.slos(config.targets)]


def scaled(window: str, scale: float) -> str:
    """A Prometheus duration ``scale`` times ``window`` (``'1h'`` at 1/30 -> ``'2m'``)."""
    seconds = parse_duration(window) * scale
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    whole = round(seconds)
    return format_duration(whole) if math.isclose(whole, seconds) else f"{math.ceil(seconds * 1000)}ms"
