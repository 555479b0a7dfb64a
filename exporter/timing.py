"""How far a timing taken on this process's event loop can be from the truth, and how late the loop runs.

A probe's duration runs from the moment its request was written to the moment the loop handed its last bytes to
the protocol. The bytes may have arrived earlier: while the loop thread was running other code (scrapes, other
probes, a collector, the garbage collector) or waiting for a CPU. :class:`BusyClock` reads both from the kernel
for the loop's thread (its CPU time, and the run delay of ``/proc/thread-self/schedstat``).

From the bytes' arrival to their hand-over the thread was never idle (it would have woken for them), so the
busy time between the earliest moment they can have arrived and the hand-over bounds what the process added.
That moment is when the wait for events that returned them began, if it slept (nothing was ready then), or else
when the wait before it returned (they were not ready then). :class:`TimedSelector` notes it for each wait
(loops made by :func:`new_event_loop`, which ``perf-exporter run`` and the probe workers use); on another loop
the bound is the busy time since the request was written, larger for a long request. A timing whose bound is
too large for it (:func:`trusted`) is discarded and counted, never reported as the platform's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable
from pathlib import Path

from exporter import metrics
from exporter.store import MetricStore

# A timing is kept when the process can have added at most this much to it, or at most this share of it: 1 ms
# is below the smallest latency bucket (5 ms) and the 1 ms the benchmark compares with blackbox_exporter; 5 %
# of a slow answer changes no bucket it lands in by more than one of its neighbours' spacing.
MAX_ERROR_SECONDS = 0.001
MAX_ERROR_SHARE = 0.05


def trusted(duration: float, error_bound: float) -> bool:
    """Whether a duration measured with this error bound says something about the server."""
    return error_bound <= MAX_ERROR_SECONDS or error_bound <= MAX_ERROR_SHARE * duration


class BusyClock:
    """Nanoseconds the calling thread has spent on a CPU (``CLOCK_THREAD_CPUTIME_ID``, exact to now) or runnable
    but waiting for one (the run delay of the kernel's schedstat, complete whenever the thread itself reads it).

    Where schedstat cannot be read, CPU time alone: the bound then misses the waits for a CPU."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.read_ns: Callable[[], int] = time.thread_time_ns
        try:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            self.waited_ns()
            self.read_ns = self._busy_ns
        except (OSError, ValueError, IndexError):
            self.close()

    def _busy_ns(self) -> int:
        return time.thread_time_ns() + self.waited_ns()

    def waited_ns(self) -> int:
        """Time spent runnable but waiting for a CPU (0 where schedstat cannot be read)."""
        if self._fd is None:
            return 0
        return int(os.pread(self._fd, 96, 0).split(b" ", 2)[1])

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


_clocks: dict[int, BusyClock] = {}


def busy_clock() -> BusyClock:
    """The calling thread's clock (each thread has its own schedstat)."""
    ident = threading.get_ident()
    clock = _clocks.get(ident)
    if clock is None:
        clock = _clocks[ident] = BusyClock()
    return clock


# A wait for events that took this much longer than the thread's busy time in it was asleep: no descriptor was
# ready when it began (an epoll wait returns at once when one is).
SLEPT_NS = 20_000


class TimedSelector(selectors.DefaultSelector):
    """The loop's selector, noting for each wait for events the busy clock at the earliest moment the events it
    returns can have arrived: when the wait began if it slept, else when the wait before it returned."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = busy_clock()
        self.returned_ns = self.floor_ns = self.clock.read_ns()
        _selectors[threading.get_ident()] = self

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        busy, wall = self.clock.read_ns(), time.perf_counter_ns()
        ready = super().select(timeout)
        busy_after, wall_after = self.clock.read_ns(), time.perf_counter_ns()
        slept = (wall_after - wall) - (busy_after - busy) > SLEPT_NS
        self.floor_ns = busy if slept else self.returned_ns
        self.returned_ns = busy_after
        return ready

    def close(self) -> None:
        if _selectors.get(threading.get_ident()) is self:
            del _selectors[threading.get_ident()]
        super().close()


_selectors: dict[int, TimedSelector] = {}


def arrival_floor_ns() -> int | None:
    """The busy clock at the earliest moment bytes handed over now can have arrived (:class:`TimedSelector`);
    None on a loop without one."""
    selector = _selectors.get(threading.get_ident())
    return selector.floor_ns if selector is not None else None


def new_event_loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(TimedSelector())


class TimedEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Every loop of the process made by :func:`new_event_loop` (``asyncio.run`` included)."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return new_event_loop()


def install() -> None:
    asyncio.set_event_loop_policy(TimedEventLoopPolicy())


class _InFlight:
    """Timed requests of this process written and not yet answered (exporter.probes.wire counts them). Work
    that holds the loop for milliseconds (a probe worker rendering a job's series) waits for a moment with none,
    so that no answer arrives meanwhile and has its timing discarded."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if self.count == 0:
                self._idle.set()
        return self._idle

    def started(self) -> None:
        self.count += 1
        if self._idle is not None:
            self._idle.clear()

    def ended(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def none(self) -> None:
        """Return when no request of this process is in flight."""
        while self.count:
            await self._event().wait()


IN_FLIGHT = _InFlight()


class ProcessWatch:
    """One process's own timing series in ``store``, labelled ``process``: how late its loop wakes up
    (:meth:`watch`, sampled every ``every`` seconds), how late its runs and probes start (:meth:`late`), and how
    long its loop thread waited for a CPU."""

    def __init__(self, store: MetricStore, process: str, every: float = 0.1) -> None:
        self.store = store
        self.process = process
        self.every = every
        store.ensure_histogram(metrics.EVENT_LOOP_DELAY, process=process)
        store.ensure_histogram(metrics.SCHEDULE_LAG, process=process)
        store.ensure_counter(metrics.CPU_WAIT, process=process)

    def late(self, seconds: float) -> None:
        self.store.observe(metrics.SCHEDULE_LAG, seconds, process=self.process)

    async def watch(self) -> None:
        """Runs until cancelled."""
        loop = asyncio.get_running_loop()
        clock = busy_clock()
        waited = clock.waited_ns()
        while True:
            due = loop.time() + self.every
            await asyncio.sleep(self.every)
            self.store.observe(metrics.EVENT_LOOP_DELAY, max(0.0, loop.time() - due), process=self.process)
            now_waited = clock.waited_ns()
            if now_waited > waited:
                self.store.inc(metrics.CPU_WAIT, (now_waited - waited) / 1e9, process=self.process)
                waited = now_waited


def process_age_seconds() -> float:
    """Seconds since this process started (from /proc; 0 where it cannot be read)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started)


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process (from /proc; 0 where it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
