"""Runs every job on its interval, and keeps the set of jobs in step with the config.

It knows jobs only through :class:`exporter.jobs.Job` and the registry's :class:`exporter.jobs.JobKind`: it
bounds each run by the target's deadline, never runs a job twice at once, and turns every outcome (including
exceptions) into metrics and one log line. A run due while the job's previous run is still going is skipped and
counted (``result="skipped"``); how late each run starts against its schedule is reported to the scheduler's
``late`` callback. Each job's first run comes at a fixed point of its interval (:func:`phase`), so that jobs
started together do not all run together.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from exporter import metrics
from exporter.config.base import JobTarget
from exporter.config.schema import Config
from exporter.jobs import Job, JobContext, JobKind, TraceLink, ignore_lateness
from exporter.logs import event
from exporter.secrets import mask_url
from exporter.store import StoreCollector

log = logging.getLogger(__name__)
logging.getLogger("apscheduler").setLevel(logging.ERROR)  # a skipped run is counted and logged here, once

RESULTS = ("success", "failure", "error", "timeout", "skipped")


@dataclass
class LastRun:
    result: str = "pending"
    finished_at: float | None = None
    duration: float | None = None
    cause: str = ""  # the job's own (Outcome.cause), or the scheduler's: a timeout, an exception


def job_key(kind: JobKind[Any], entry: JobTarget) -> str:
    return f"{kind.section}/{entry.name}"


class _Runner(Protocol):
    @property
    def entry(self) -> JobTarget: ...


def changed_keys(runners: Mapping[str, _Runner], wanted: Mapping[str, tuple[JobKind[Any], JobTarget]]) -> list[str]:
    """The keys of ``runners`` whose job ``wanted`` lacks, or has with another target entry: those jobs go."""
    return [key for key, runner in runners.items() if wanted.get(key, (None, None))[1] != runner.entry]


def stable_fraction(key: str) -> float:
    """A number in [0, 1) that depends on ``key`` alone, the same in every process and release."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


# Jobs added together have their first runs spread over their interval, or over this many seconds when the
# interval is longer: the data of a job that runs every 5 minutes is not held back for minutes after a start.
FIRST_RUNS_WITHIN = 15.0


def phase(key: str, interval: float) -> float:
    """Seconds after a job is added that its first run is due: a fixed point of its interval (of the first
    :data:`FIRST_RUNS_WITHIN` seconds), the same for the same key, so that runs are spread and stay so."""
    return stable_fraction(f"phase:{key}") * min(interval, FIRST_RUNS_WITHIN)


class JobRunner:
    """One scheduled job: runs it under its target's deadline and records the outcome."""

    def __init__(self, kind: JobKind[Any], entry: JobTarget, job: Job, context: JobContext) -> None:
        self.kind = kind
        self.entry = entry
        self.job = job
        self.context = context
        self.labels = {"collector": kind.section, "target": entry.name}
        self.last = LastRun()
        self.running: asyncio.Task[None] | None = None
        self.due: datetime | None = None  # when the run being started was due
        store = context.store
        for result in RESULTS:
            store.ensure_counter(metrics.JOB_RUNS, result=result, **self.labels)
        store.ensure_histogram(metrics.JOB_DURATION, **self.labels)

    @property
    def collector(self) -> str:
        return self.kind.section

    async def run(self) -> None:
        self.running = asyncio.current_task()
        if self.due is not None:
            self.context.late(max(0.0, (datetime.now(UTC) - self.due).total_seconds()))
            self.due = None
        try:
            await self._run_once()
        finally:
            self.running = None

    def cause(self) -> str:
        """Why the last run did not succeed (or what failed in one that did), whatever the log level."""
        return self.last.cause

    def skipped(self) -> None:
        self.context.store.inc(metrics.JOB_RUNS, 1.0, result="skipped", **self.labels)
        event(log, logging.WARNING, "job_skipped", collector=self.collector, target=self.entry.name,
              cause="its previous run was still going when the next one was due")

    async def _run_once(self) -> None:
        store = self.context.store
        deadline = self.entry.deadline
        started = time.perf_counter()
        error: str | None = None
        try:
            async with asyncio.timeout(deadline):
                outcome = await self.job.run()
            result = "success" if outcome.up else "failure"
        except TimeoutError:
            result = "timeout"
            error = f"run did not finish within {deadline:g}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = "error"
            error = mask_url(f"{type(exc).__name__}: {exc}")
        up = result == "success"
        duration = time.perf_counter() - started
        store.observe(metrics.JOB_DURATION, duration, **self.labels)
        store.inc(metrics.JOB_RUNS, 1.0, result=result, **self.labels)
        store.set(metrics.TARGET_UP, 1.0 if up else 0.0, **self.labels)
        now = time.time()
        if result in ("success", "failure"):
            store.set(metrics.JOB_LAST_SUCCESS, now, **self.labels)
        self.last = LastRun(result, now, duration, error if error is not None else mask_url(outcome.cause))
        if error is not None:
            event(log, logging.WARNING, "job_failed", collector=self.collector, target=self.entry.name,
                  result=result, cause=error, duration_seconds=round(duration, 4))
        else:
            event(log, logging.DEBUG, "job_done", collector=self.collector, target=self.entry.name,
                  result=result, duration_seconds=round(duration, 4))


Jobs = Sequence[tuple[JobKind[Any], JobTarget]]


class Scheduler:
    """Owns the APScheduler instance and the live jobs; :meth:`apply` makes the jobs match a config (or the
    share of its jobs this process owns). ``late`` hears how late each run and probe started, in seconds;
    ``on_run`` is called after each run with its runner."""

    def __init__(self, stores: StoreCollector, traces: TraceLink | None = None,
                 late: Callable[[float], None] = ignore_lateness,
                 on_run: Callable[[JobRunner], None] | None = None) -> None:
        self.stores = stores
        self.runners: dict[str, JobRunner] = {}
        self.traces = traces or TraceLink()
        self.late = late
        self.on_run = on_run
        self.aps = AsyncIOScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self.aps.add_listener(self._submitted, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
        self.started = False

    def start(self) -> None:
        self.aps.start()
        self.started = True

    def _submitted(self, submission: JobSubmissionEvent) -> None:
        runner = self.runners.get(submission.job_id)
        if runner is None:
            return
        if submission.code == EVENT_JOB_MAX_INSTANCES:
            runner.skipped()
        elif submission.scheduled_run_times:
            runner.due = submission.scheduled_run_times[-1]

    async def apply(self, config: Config | Jobs) -> None:
        """Start new jobs, restart changed ones, stop removed ones (their series go with them). A job whose
        target entry is unchanged keeps running with its state, whatever else changed."""
        jobs = config.jobs() if isinstance(config, Config) else config
        wanted = {job_key(kind, entry): (kind, entry) for kind, entry in jobs}
        for key in changed_keys(self.runners, wanted):
            await self._remove(key)
        for key, (kind, entry) in wanted.items():
            if key not in self.runners:
                self._add(key, kind, entry)

    def _add(self, key: str, kind: JobKind[Any], entry: JobTarget) -> None:
        store = self.stores.add(key)
        context = JobContext(store, self.traces, self.late)
        runner = self.runners[key] = JobRunner(kind, entry, kind.build(entry, context), context)
        interval = float(entry.interval)
        first = datetime.now(UTC) + timedelta(seconds=phase(key, interval))
        self.aps.add_job(self._run, IntervalTrigger(seconds=interval, start_date=first), args=(runner,), id=key,
                         name=key, max_instances=1, coalesce=True)

    async def _run(self, runner: JobRunner) -> None:
        await runner.run()
        if self.on_run is not None and self.runners.get(job_key(runner.kind, runner.entry)) is runner:
            self.on_run(runner)

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
        for runner in self.runners.values():
            if runner.running in pending:
                event(log, logging.WARNING, "job_cancelled", collector=runner.collector, target=runner.entry.name,
                      cause=f"still running after the {grace:g}s shutdown grace period")
                runner.running.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for runner in self.runners.values():
            await self._close(runner)
        return len(pending)
