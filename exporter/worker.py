"""A probe worker: the process that runs a share of the daemon's jobs (exporter.workers starts it).

It runs the jobs it is assigned with its own scheduler and event loop, and after each run hands the serving
process the job's sample lines, rendered here (only the families the run wrote), its last run and its cause.
So the serving process only joins text when scraped, and a scrape never waits for a probe nor a probe for a
scrape. Traces its probes start go to the serving process, which hands them to the other workers.

    python -m exporter.worker INDEX LOG_LEVEL LOG_FORMAT     (frames on stdin and stdout, logs on stderr)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence

from exporter import registry
from exporter.jobs import SentTrace, TraceLink
from exporter.logs import setup_logging
from exporter.scheduler import JobRunner, Scheduler, job_key
from exporter.store import MetricStore, StoreCollector, sample_lines
from exporter.timing import IN_FLIGHT, ProcessWatch, new_event_loop
from exporter.worker_messages import Assign, Assigned, Dropped, Stop, Stopped, Traces, Update, frame, read_frame

OWN_EVERY = 1.0  # seconds between updates of the worker's own series


class RelayedTraceLink(TraceLink):
    """Hands a sent trace to this process's trace collectors and to ``forward`` (the other processes')."""

    def __init__(self, forward: Callable[[SentTrace, tuple[str, ...]], None]) -> None:
        super().__init__()
        self.forward = forward

    def send(self, trace: SentTrace, to: Sequence[str] = ()) -> None:
        super().send(trace, to)
        self.forward(trace, tuple(to))

    def deliver(self, trace: SentTrace, to: Sequence[str]) -> None:
        super().send(trace, to)


class Worker:
    def __init__(self, index: int, out: asyncio.WriteTransport) -> None:
        self.name = f"probe-{index}"
        self.out = out
        self.stores = StoreCollector()
        self.own = self.stores.add(self.name)
        self.watch = ProcessWatch(self.own, self.name)
        self.traces = RelayedTraceLink(self._forward)
        self.scheduler = Scheduler(self.stores, self.traces, self.watch.late, on_run=self._ran)
        self.sent: dict[str, dict[str, int]] = {}  # key -> family name -> store version last sent
        self.publishing: set[asyncio.Task[None]] = set()

    def _send(self, message: object) -> None:
        if not self.out.is_closing():
            self.out.write(frame(message))

    def _forward(self, trace: SentTrace, to: tuple[str, ...]) -> None:
        self._send(Traces(((trace, to),)))

    async def _changed_lines(self, key: str, store: MetricStore) -> dict[str, bytes]:
        """The lines of the families written since the last update, each rendered at a moment when no probe
        request of this worker is in flight (a job's family takes milliseconds: an answer arriving meanwhile
        would wait for it)."""
        sent = self.sent.setdefault(key, {})
        lines = {}
        for family in list(store.versions):
            if sent.get(family.name) != store.versions.get(family):
                await IN_FLIGHT.none()
                lines[family.name] = sample_lines(family, store)
                sent[family.name] = store.versions[family]
        return lines

    async def _publish(self, key: str, runner: JobRunner) -> None:
        store = self.stores.stores.get(key)
        if store is None:
            return
        lines = await self._changed_lines(key, store)
        if self.scheduler.runners.get(key) is runner:  # not removed meanwhile
            self._send(Update(key, lines, runner.last))

    def _ran(self, runner: JobRunner) -> None:
        task = asyncio.create_task(self._publish(job_key(runner.kind, runner.entry), runner))
        self.publishing.add(task)
        task.add_done_callback(self.publishing.discard)

    async def assign(self, message: Assign) -> None:
        gc.unfreeze()  # what removed jobs held can be collected again
        before = dict(self.scheduler.runners)
        await self.scheduler.apply([(registry.kind(section), entry) for section, entry in message.jobs])
        for key, runner in before.items():
            if self.scheduler.runners.get(key) is not runner:  # removed, or restarted with a new entry
                self.sent.pop(key, None)
                self._send(Dropped(key))
        for key, runner in self.scheduler.runners.items():
            if key not in self.sent:  # new or restarted: its series at 0 before its first run
                await self._publish(key, runner)
        self._send(Assigned())
        # What the jobs hold lives as long as they do: out of the collector's sight, a full collection no longer
        # walks it (with thousands of endpoints, a pause of tens of milliseconds that answers would wait for).
        gc.collect()
        gc.freeze()

    async def publish_own(self) -> None:
        while True:
            lines = await self._changed_lines(self.name, self.own)
            if lines:
                self._send(Update(self.name, lines))
            await asyncio.sleep(OWN_EVERY)

    async def serve(self, reader: asyncio.StreamReader) -> None:
        self.scheduler.start()
        background = [asyncio.create_task(self.watch.watch()), asyncio.create_task(self.publish_own())]
        cancelled = 0
        try:
            while True:
                try:
                    message = await read_frame(reader)
                except asyncio.IncompleteReadError:  # the serving process is gone
                    cancelled = await self.scheduler.shutdown(0)
                    return
                if isinstance(message, Assign):
                    await self.assign(message)
                elif isinstance(message, Traces):
                    for trace, to in message.sent:
                        self.traces.deliver(trace, to)
                elif isinstance(message, Stop):
                    cancelled = await self.scheduler.shutdown(message.grace)
                    self._send(Stopped(cancelled))
                    return
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)


async def main_async(index: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # a stray print goes to the log, never into the frames
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, channel)
    worker = Worker(index, out)
    await worker.serve(reader)
    out.close()


def main(argv: list[str]) -> int:
    index, level, log_format = int(argv[0]), argv[1], argv[2]
    setup_logging(level, log_format)
    # The serving process decides when to stop (it sends Stop); Ctrl-C in a terminal reaches the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main_async(index))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
