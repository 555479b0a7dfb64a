"""The one registry of job kinds. Adding a collector is one new module (its target model and job class), one
entry here, and its metric families in :mod:`exporter.metrics`; everything else reads this list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from exporter.collectors.jaeger.collector import JaegerCollector
from exporter.collectors.jaeger.target import JaegerTarget
from exporter.collectors.postgres.collector import PostgresCollector
from exporter.collectors.postgres.target import PostgresTarget
from exporter.collectors.redis.collector import RedisCollector, RedisTarget
from exporter.jobs import JobKind, SloArea
from exporter.metrics import HTTP_REQUESTS, PG_QUERY_DURATION, REDIS_HITS, TRACE_DURATION
from exporter.probes.api import ApiProbe
from exporter.probes.api_target import ApiTarget
from exporter.slo import dashboards, rules, slos

_KINDS: list[JobKind[Any]] = [
    JobKind("api", ApiTarget, ApiProbe, SloArea(
        "api", "API", "probe requests", HTTP_REQUESTS.name, slos.api_slos, rules.api_records, dashboards.api,
        "slow_api", "exporter.reports.areas.api"), watch=False),
    JobKind("postgres", PostgresTarget, PostgresCollector, SloArea(
        "database", "Database", "statement executions", f"{PG_QUERY_DURATION.name}_count", slos.database_slos,
        rules.latency_records, dashboards.database, "database", "exporter.reports.areas.database")),
    JobKind("redis", RedisTarget, RedisCollector, SloArea(
        "cache", "Cache", "key lookups", REDIS_HITS.name, slos.cache_slos, rules.cache_records, dashboards.cache,
        "cache", "exporter.reports.areas.cache")),
    JobKind("jaeger", JaegerTarget, JaegerCollector, SloArea(
        "tracing", "Tracing", "traces", f"{TRACE_DURATION.name}_count", slos.tracing_slos, rules.latency_records,
        dashboards.tracing, "trace", "exporter.reports.areas.tracing")),
]


def kinds() -> tuple[JobKind[Any], ...]:
    return tuple(_KINDS)


def areas() -> tuple[SloArea, ...]:
    """The SLO area of every registered kind that has one, in registry order."""
    return tuple(k.area for k in _KINDS if k.area is not None)


def kind(section: str) -> JobKind[Any]:
    for found in _KINDS:
        if found.section == section:
            return found
    raise KeyError(f"no job kind {section!r} (known: {', '.join(k.section for k in _KINDS)})")


@contextmanager
def registered(extra: JobKind[Any]) -> Iterator[JobKind[Any]]:
    """Register one more kind for the duration of a ``with`` block (tests and plugins)."""
    if any(k.section == extra.section for k in _KINDS):
        raise ValueError(f"a job kind {extra.section!r} is registered already")
    _KINDS.append(extra)
    try:
        yield extra
    finally:
        _KINDS.remove(extra)
