"""Runs every probe and collector job on its interval, and keeps the set of jobs in step with the config.

A job is anything with ``async run() -> bool`` (True: the target was reached) and ``async close()``, built from
its config entry and a :class:`JobContext`. The scheduler knows nothing else about it: it bounds each run by the
job's deadline, never runs a job twice at once, and turns every outcome (including exceptions) into metrics and one
log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exporter import metrics
from exporter.config import ApiTarget, Config, JaegerTarget, Model, PostgresTarget, RedisTarget, Targets
from exporter.logs import event
from exporter.secrets import mask_url
from exporter.store import MetricStore, StoreCollector

log = logging.getLogger(__name__)


class Job(Protocol):
    async def run(self) -> bool: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SentTrace:
    """A trace an API probe started (sent a ``traceparent`` for), for the Jaeger collector to look up."""

    trace_id: str
    target: str
    probe: str
    sent_at: float  # unix time


@dataclass
class JobContext:
    """What a job gets besides its own config entry."""

    collector: str
    target: str
    store: MetricStore
    targets: Targets
    sent_traces: deque[SentTrace] = field(default_factory=lambda: deque(maxlen=10_000))


@dataclass
class LastRun:
    result: str = "pending"
    finished_at: float | None = None
    duration: float | None = None
    error: str | None = None


JobFactory = Callable[[Any, JobContext], Job]


def _factory(collector: str) -> JobFactory:
    # Imported on demand so that a deployment without, say, Jaeger never imports its collector.
    if collector == "api":
        from exporter.probes.api import ApiProbe
        return ApiProbe
    if collector == "postgres":
        from exporter.collectors.postgres import PostgresCollector
        return PostgresCollector
    if collector == "redis":
        from exporter.collectors.redis import RedisCollector
        return RedisCollector
    if collector == "jaeger":
        from exporter.collectors.jaeger import JaegerCollector
        return JaegerCollector
    raise ValueError(f"unknown collector {collector!r}")


def job_entries(config: Config) -> dict[str, tuple[str, Model]]:
    """``collector/target`` -> (collector, config entry), for every job the config asks for."""
    entries: dict[str, tuple[str, Model]] = {}
    sections: list[tuple[str, list[ApiTarget] | list[PostgresTarget] | list[RedisTarget] | list[JaegerTarget]]] = [
        ("api", config.api), ("postgres", config.postgres), ("redis", config.redis), ("jaeger", config.jaeger)]
    for collector, items in sections:
        for item in items:
            entries[f"{collector}/{item.name}"] = (collector, item)
    return entries


def job_deadline(collector: str, entry: Any) -> float:
    """How long one run may take: the entry's timeout, except for API targets, whose timeout bounds each
    request, so the run as a whole gets most of its interval."""
    if collector == "api":
        return float(entry.interval) * 0.9
    return float(entry.timeout)


class JobRunner:
    """One scheduled job: runs it under its deadline and records the outcome."""

    def __init__(self, collector: str, entry: Any, job: Job, context: JobContext) -> None:
        self.collector = collector
        self.entry = entry
        self.job = job
        self.context = context
        self.labels = (collector, entry.name)
        self.deadline = job_deadline(collector, entry)
        self.last = LastRun()
        self.running: asyncio.Task[None] | None = None
        store = context.store
        for result in ("success", "failure", "error", "timeout"):
            store.ensure_counter(metrics.JOB_RUNS, (*self.labels, result))
        store.ensure_histogram(metrics.JOB_DURATION, self.labels)

    async def run(self) -> None:
        self.running = asyncio.current_task()
        try:
            await self._run_once()
        finally:
            self.running = None

    async def _run_once(self) -> None:
        store = self.context.store
        started = time.perf_counter()
        error: str | None = None
        try:
            async with asyncio.timeout(self.deadline):
                up = await self.job.run()
            result = "success" if up else "failure"
        except TimeoutError:
            up, result = False, "timeout"
            error = f"run did not finish within {self.deadline:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            up, result = False, "error"
            error = mask_url(f"{type(exc).__name__}: {exc}")
        duration = time.perf_counter() - started
        store.observe(metrics.JOB_DURATION, self.labels, duration)
        store.inc(metrics.JOB_RUNS, (*self.labels, result))
        store.set(metrics.TARGET_UP, self.labels, 1.0 if up else 0.0)
        now = time.time()
        if result in ("success", "failure"):
            store.set(metrics.JOB_LAST_SUCCESS, self.labels, now)
        self.last = LastRun(result, now, duration, error)
        if error is not None:
            event(log, logging.WARNING, "job_failed", collector=self.collector, target=self.entry.name,
                  result=result, cause=error, duration_seconds=round(duration, 4))
        else:
            event(log, logging.DEBUG, "job_done", collector=self.collector, target=self.entry.name,
                  result=result, duration_seconds=round(duration, 4))


class Scheduler:
    """Owns the APScheduler instance and the live jobs; :meth:`apply` makes the jobs match a config."""

    def __init__(self, stores: StoreCollector, factory: Callable[[str], JobFactory] = _factory) -> None:
        self.stores = stores
        self.factory = factory
        self.runners: dict[str, JobRunner] = {}
        self.sent_traces: deque[SentTrace] = deque(maxlen=10_000)
        self.aps = AsyncIOScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self.started = False

    def start(self) -> None:
        self.aps.start()
        self.started = True

    async def apply(self, config: Config) -> None:
        """Start new jobs, restart changed ones, stop removed ones (their series go with them)."""
        wanted = job_entries(config)
        for key in [k for k in self.runners if k not in wanted or wanted[k][1] != self.runners[k].entry
                    or self.runners[k].context.targets != config.targets]:
            await self._remove(key)
        for key, (collector, entry) in wanted.items():
            if key not in self.runners:
                self._add(key, collector, entry, config.targets)

    def _add(self, key: str, collector: str, entry: Any, targets: Targets) -> None:
        store = self.stores.add(key)
        context = JobContext(collector, entry.name, store, targets, self.sent_traces)
        job = self.factory(collector)(entry, context)
        runner = self.runners[key] = JobRunner(collector, entry, job, context)
        interval = float(entry.interval)
        first = datetime.now(UTC) + timedelta(seconds=random.uniform(0, min(1.0, interval / 10)))
        self.aps.add_job(runner.run, IntervalTrigger(seconds=interval, jitter=min(interval / 10, 5.0)), id=key,
                         name=key, max_instances=1, coalesce=True, next_run_time=first)

    async def _remove(self, key: str) -> None:
        runner = self.runners.pop(key)
        if self.aps.get_job(key) is not None:
            self.aps.remove_job(key)
        if runner.running is not None:
            runner.running.cancel()
            await asyncio.gather(runner.running, return_exceptions=True)
        await self._close(runner)
        self.stores.drop(key)

    async def _close(self, runner: JobRunner) -> None:
        try:
            await runner.job.close()
        except Exception as exc:
            event(log, logging.WARNING, "job_close_failed", collector=runner.collector, target=runner.entry.name,
                  cause=mask_url(f"{type(exc).__name__}: {exc}"))

    async def shutdown(self, grace: float) -> int:
        """Stop scheduling, give running jobs ``grace`` seconds to end, then cancel the rest and close all.
        Returns how many runs had to be cancelled."""
        if self.started:
            self.aps.pause()  # no new runs; shutting APScheduler down now would cancel the running ones
        running = [r.running for r in self.runners.values() if r.running is not None]
        pending: set[asyncio.Task[None]] = set()
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
        if self.started:
            self.aps.shutdown(wait=False)
            self.started = False
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for runner in self.runners.values():
            await self._close(runner)
        return len(pending)
