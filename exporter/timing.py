"""How far a timing taken on this process's event loop can be from the truth, and how late the loop runs.

A probe's duration runs from the moment its request was written to the moment the loop handed its last bytes to
the protocol. The bytes may have arrived earlier: while the loop thread was running other code (scrapes, other
probes, a collector, the garbage collector) or waiting for a CPU. :class:`BusyClock` reads both from the kernel
for the loop's thread (``/proc/thread-self/schedstat``: time on a CPU and time runnable but waiting for one), so
their sum over a request is an upper bound of the time the process can have added to it. A timing whose bound is
too large for it (:func:`trusted`) is discarded and counted, never reported as the platform's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

# A timing is kept when the process can have added at most this much to it, or at most this share of it: 1 ms
# is below the smallest latency bucket (5 ms) and the 1 ms the benchmark compares with blackbox_exporter; 5 %
# of a slow answer changes no bucket it lands in by more than one of its neighbours' spacing.
MAX_ERROR_SECONDS = 0.001
MAX_ERROR_SHARE = 0.05


def trusted(duration: float, error_bound: float) -> bool:
    """Whether a duration measured with this error bound says something about the server."""
    return error_bound <= MAX_ERROR_SECONDS or error_bound <= MAX_ERROR_SHARE * duration


class BusyClock:
    """Nanoseconds the calling thread has spent on a CPU or waiting for one, from the kernel's schedstat.

    Where schedstat cannot be read, CPU time alone (``time.thread_time_ns``): the bound then misses the waits
    for a CPU, and :attr:`counts_cpu_waits` says so."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.read_ns: Callable[[], int] = time.thread_time_ns
        try:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            self._schedstat()
            self.read_ns = self._schedstat
        except (OSError, ValueError, IndexError):
            self.close()
        self.counts_cpu_waits = self._fd is not None

    def _schedstat(self) -> int:
        assert self._fd is not None
        cpu, waited, _ = os.pread(self._fd, 96, 0).split(b" ", 2)
        return int(cpu) + int(waited)

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
    import threading

    ident = threading.get_ident()
    clock = _clocks.get(ident)
    if clock is None:
        clock = _clocks[ident] = BusyClock()
    return clock


async def watch_loop_delay(observe: Callable[[float], None], every: float = 0.1) -> None:
    """Sleep ``every`` seconds again and again, and observe how late each wake-up came: the delay any callback of
    the loop waits for, at that moment. Runs until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        observe(max(0.0, loop.time() - due))
