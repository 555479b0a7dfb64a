"""The serving process's probe workers: processes that each run a share of the jobs (exporter.worker).

Jobs are shared by weight (about the requests a run sends, per second), each new job going to the least loaded
worker, and a job stays with its worker across reloads while its entry is unchanged. The serving process keeps
what each worker last sent: sample lines per job and family (in :class:`exporter.store.StoreCollector`) and
each job's last run for the index page. A worker that dies is logged and started again with its jobs; their
counters start again from 0, as after a restart of the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.config.base import JobTarget
from exporter.jobs import JobKind
from exporter.logs import event
from exporter.scheduler import LastRun, changed_keys, job_key
from exporter.store import StoreCollector
from exporter.worker_messages import Assign, Assigned, Dropped, Stop, Stopped, Traces, Update, frame, read_frame

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0
ASSIGN_TIMEOUT = 30.0


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: those it may run on, and no more than its cgroup's CPU quota (a
    container's CPU limit) rounded up."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def load(entry: JobTarget) -> float:
    """Requests per second, about: what a job adds to a worker's work."""
    return entry.weight / float(entry.interval)


@dataclass
class RemoteRunner:
    """A job that runs in a worker, as the index page shows it."""

    kind: JobKind[Any]
    entry: JobTarget
    worker: int
    last: LastRun = field(default_factory=LastRun)

    @property
    def collector(self) -> str:
        return self.kind.section

    def cause(self) -> str:
        return self.last.cause


@dataclass
class _Process:
    index: int
    proc: asyncio.subprocess.Process
    reader: asyncio.Task[None] | None = None
    stopped: asyncio.Future[int] | None = None
    assigned: asyncio.Event = field(default_factory=asyncio.Event)


class ProbeWorkers:
    def __init__(self, count: int, stores: StoreCollector, log_level: str, log_format: str) -> None:
        self.count = count
        self.stores = stores
        self.log_level = log_level
        self.log_format = log_format
        self.runners: dict[str, RemoteRunner] = {}
        self.processes: dict[int, _Process] = {}
        self.stopping = False

    def assigned(self, index: int) -> tuple[tuple[str, JobTarget], ...]:
        return tuple((r.kind.section, r.entry) for r in self.runners.values() if r.worker == index)

    async def start(self) -> None:
        for index in range(self.count):
            await self._spawn(index)

    async def _spawn(self, index: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exporter.worker", str(index), self.log_level, self.log_format,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 30)
        worker = self.processes[index] = _Process(index, proc)
        worker.reader = asyncio.create_task(self._read(worker))
        jobs = self.assigned(index)
        if jobs:
            self._send(worker, Assign(jobs))

    def _send(self, worker: _Process, message: object) -> None:
        stdin = worker.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(frame(message))

    async def apply(self, jobs: Sequence[tuple[JobKind[Any], JobTarget]]) -> None:
        """Share ``jobs`` among the workers: unchanged ones stay where they run, new ones go to the least
        loaded worker."""
        wanted = {job_key(kind, entry): (kind, entry) for kind, entry in jobs}
        for key in changed_keys(self.runners, wanted):
            del self.runners[key]
        loads = [0.0] * self.count
        for runner in self.runners.values():
            loads[runner.worker] += load(runner.entry)
        for key, (kind, entry) in sorted(wanted.items(), key=lambda item: -load(item[1][1])):
            if key not in self.runners:
                worker = min(range(self.count), key=lambda i: loads[i])
                loads[worker] += load(entry)
                self.runners[key] = RemoteRunner(kind, entry, worker)
        for index, process in self.processes.items():
            process.assigned.clear()
            self._send(process, Assign(self.assigned(index)))
        with contextlib.suppress(ConnectionError):
            for process in self.processes.values():
                if process.proc.stdin is not None:
                    await process.proc.stdin.drain()
        # the jobs' series (at 0) are here before the daemon says it is ready or reloaded
        waits = [asyncio.create_task(p.assigned.wait()) for p in self.processes.values()]
        _, late = await asyncio.wait(waits, timeout=ASSIGN_TIMEOUT)
        for task in late:
            task.cancel()
        if late:
            event(log, logging.WARNING, "workers_slow_to_start_jobs", workers=len(late),
                  cause=f"no word from {len(late)} probe workers within {ASSIGN_TIMEOUT:g}s; their jobs start late")

    async def _read(self, worker: _Process) -> None:
        assert worker.proc.stdout is not None
        try:
            while True:
                message = await read_frame(worker.proc.stdout)
                self._received(worker, message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:  # a frame that is not ours: the worker cannot be trusted any more
            event(log, logging.ERROR, "worker_channel_broken", worker=worker.index, cause=f"{type(exc).__name__}: "
                  f"{exc}")
            worker.proc.kill()
        code = await worker.proc.wait()
        if worker.stopped is not None and not worker.stopped.done():
            worker.stopped.set_result(0)
        if self.stopping:
            return
        event(log, logging.ERROR, "worker_exited", worker=worker.index, exit_code=code,
              cause=f"probe worker {worker.index} exited; starting it again with its "
                    f"{len(self.assigned(worker.index))} jobs (their counters start from 0)")
        for key, runner in self.runners.items():
            if runner.worker == worker.index:
                self.stores.drop(key)
        await asyncio.sleep(RESTART_DELAY)
        if not self.stopping:
            await self._spawn(worker.index)

    def _received(self, worker: _Process, message: object) -> None:
        if isinstance(message, Update):
            runner = self.runners.get(message.key)
            if runner is not None and runner.worker != worker.index:
                return  # moved away by a reload; what the old worker still says is stale
            self.stores.put_lines(message.key, message.lines)
            if runner is not None and message.last is not None:
                runner.last = message.last
        elif isinstance(message, Assigned):
            worker.assigned.set()
        elif isinstance(message, Dropped):
            runner = self.runners.get(message.key)
            if runner is None or runner.worker == worker.index:
                self.stores.drop(message.key)
        elif isinstance(message, Traces):
            for other in self.processes.values():
                if other is not worker:
                    self._send(other, message)
        elif isinstance(message, Stopped) and worker.stopped is not None and not worker.stopped.done():
            worker.stopped.set_result(message.cancelled)

    def pids(self) -> list[int]:
        return [worker.proc.pid for worker in self.processes.values()]

    async def shutdown(self, grace: float) -> int:
        """Ask every worker to stop (each gives its running jobs ``grace`` seconds); how many runs were
        cancelled."""
        self.stopping = True
        loop = asyncio.get_running_loop()
        for worker in self.processes.values():
            worker.stopped = loop.create_future()
            self._send(worker, Stop(grace))
        cancelled = 0
        for worker in self.processes.values():
            assert worker.stopped is not None
            try:
                cancelled += await asyncio.wait_for(asyncio.shield(worker.stopped), grace + 5)
            except (TimeoutError, asyncio.CancelledError):
                worker.proc.kill()
            with contextlib.suppress(ProcessLookupError):
                if worker.proc.stdin is not None:
                    worker.proc.stdin.close()
            await worker.proc.wait()
            if worker.reader is not None:
                await asyncio.gather(worker.reader, return_exceptions=True)
        return cancelled
