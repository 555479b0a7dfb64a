"""The one registry of job kinds. Adding a collector is one new module (its target model and job class), one
entry here, and its metric families in :mod:`exporter.metrics`; everything else reads this list.

The entries name their job classes and SLO builders by import path (:func:`lazy`): the config layer needs the
target models only, so ``check-config`` and ``--version`` import no probe, no collector's job code and not the
Grafana SDK; a job class is imported when the scheduler first builds one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from exporter.collectors.jaeger.target import JaegerTarget
from exporter.collectors.postgres.target import PostgresTarget
from exporter.collectors.redis.target import RedisTarget
from exporter.jobs import JobKind, SloArea
from exporter.metrics import HTTP_REQUESTS, PG_QUERY_DURATION, REDIS_HITS, TRACE_DURATION
from exporter.probes.api_target import ApiTarget


def lazy(path: str) -> Callable[..., Any]:
    """``"package.module:name"`` as a callable that imports the module on its first call."""
    module, _, name = path.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = path
    return call


def _area(name: str, title: str, events: str, sli: str, slos: str, records: str, issue: str) -> SloArea:
    """One of the guide's areas: its SLOs, records, dashboard and report module named by import path."""
    return SloArea(name, title, events, sli, lazy(f"exporter.slo.slos:{slos}"), lazy(f"exporter.slo.rules:{records}"),
                   lazy(f"exporter.slo.dashboards:{name}"), issue, f"exporter.reports.areas.{name}")


_KINDS: list[JobKind[Any]] = [
    JobKind("api", ApiTarget, lazy("exporter.probes.api:ApiProbe"), _area(
        "api", "API", "probe requests", HTTP_REQUESTS.name, "api_slos", "api_records", "slow_api"), watch=False),
    JobKind("postgres", PostgresTarget, lazy("exporter.collectors.postgres.collector:PostgresCollector"), _area(
        "database", "Database", "statement executions", f"{PG_QUERY_DURATION.name}_count", "database_slos",
        "latency_records", "database")),
    JobKind("redis", RedisTarget, lazy("exporter.collectors.redis.collector:RedisCollector"), _area(
        "cache", "Cache", "key lookups", REDIS_HITS.name, "cache_slos", "cache_records", "cache")),
    JobKind("jaeger", JaegerTarget, lazy("exporter.collectors.jaeger.collector:JaegerCollector"), _area(
        "tracing", "Tracing", "traces", f"{TRACE_DURATION.name}_count", "tracing_slos", "latency_records", "trace")),
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
