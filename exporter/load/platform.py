"""The platform measured while the load runs: the config's PostgreSQL, Redis and Jaeger collectors, run in this
process by the exporter's own scheduler on a short interval, read at the end of the warm-up and after the run
(:mod:`exporter.load.platform_figures` turns the readings into the run window's numbers)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import msgspec

from exporter import metrics
from exporter.config.schema import Config
from exporter.load.platform_figures import Reading, SeriesKey, platform_report
from exporter.registry import kinds
from exporter.scheduler import Scheduler
from exporter.store import StoreCollector

if TYPE_CHECKING:
    from exporter.load.run import Platform

LOAD_INTERVAL_SECONDS = 3.0  # a load run lasts seconds to minutes: the collectors' own 15-30 s is too coarse
LOAD_TIMEOUT_SECONDS = 2.5
FIRST_RUN_SECONDS = 5.0


def platform_config(config: Config) -> Config:
    """The config's watched kinds only (the registry's ``watch``: not the API, whose measurement is the load
    itself), on the load interval."""
    update: dict[str, list[Any]] = {}
    for kind in kinds():
        if kind.section not in type(config).model_fields:
            continue
        update[kind.section] = [entry.model_copy(update={
            "interval": min(float(entry.interval), LOAD_INTERVAL_SECONDS),
            "timeout": min(float(entry.timeout), LOAD_TIMEOUT_SECONDS)}) for entry in config.section(kind.section)
        ] if kind.watch else []
    return config.model_copy(update=update)


def reading(stores: StoreCollector) -> dict[SeriesKey, float]:
    """Every sample the collectors hold now, read from their stores (no exposition text in between)."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
            for family in stores.collect() for sample in family.samples}


def _runs(current: Reading) -> float:
    return sum(v for (name, _), v in current.items() if name == f"{metrics.JOB_RUNS.name}_total"
               or name == metrics.JOB_RUNS.name)


class PlatformWatch:
    """Start with :meth:`start`; :meth:`mark_start` at the end of the warm-up, :meth:`sample` every poll,
    :meth:`finish` after the run (it waits for one more collection, then stops the collectors)."""

    def __init__(self, config: Config) -> None:
        self.config = platform_config(config)
        self.stores = StoreCollector()
        self.scheduler = Scheduler(self.stores)
        self.start_reading: Reading | None = None
        self.started_at: float | None = None
        self.during: list[Reading] = []

    @property
    def active(self) -> bool:
        return bool(self.config.jobs())

    async def start(self) -> None:
        """Start the collectors and wait (a few seconds at most) for each one's first run, so the reading at
        the start of the measured phase has every series to subtract."""
        if not self.active:
            return
        await self.scheduler.apply(self.config)
        self.scheduler.start()
        await self._collections(len(self.config.jobs()), FIRST_RUN_SECONDS)

    async def _collections(self, runs: int, within: float) -> None:
        """Wait until ``runs`` more job runs have finished, or ``within`` seconds."""
        target = _runs(self.read()) + runs
        deadline = time.monotonic() + within
        while _runs(self.read()) < target and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    def read(self) -> dict[SeriesKey, float]:
        return reading(self.stores)

    def mark_start(self) -> None:
        """The measured phase starts now; only the first call counts."""
        if self.active and self.started_at is None:
            self.start_reading = self.read()
            self.started_at = time.monotonic()

    def sample(self) -> None:
        if self.active:
            self.during.append(self.read())

    async def finish(self) -> Platform | None:
        if not self.active:
            return None
        try:
            await self._collections(len(self.config.jobs()), LOAD_INTERVAL_SECONDS * 2 + 1)
            end = self.read()
        finally:
            await self.scheduler.shutdown(grace=2.0)
        from exporter.load.run import Platform
        from exporter.reports import areas, run_facts
        from exporter.reports.model import Window
        from exporter.reports.readings import ReadingsQuery

        start = self.start_reading or {}
        seconds = time.monotonic() - self.started_at if self.started_at is not None else 0.0
        facts = run_facts.measured(start, end, self.during, self.config.targets, seconds)
        figures = platform_report(start, end, [*self.during, end])
        watched = list({kind.area.name: kind.area for kind, _ in self.config.jobs() if kind.area}.values())
        ctx = areas.AreaContext(ReadingsQuery(start, end, self.during), Window(0.0, seconds), self.config.targets, {})
        return Platform(**msgspec.structs.asdict(figures),
                        collectors=[f"{kind.section}/{entry.name}" for kind, entry in self.config.jobs()],
                        facts=facts, areas=areas.generic_figures(watched, ctx))
