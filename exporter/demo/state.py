"""What the demo's routes share: its store, cache, trace buffer, faults and the requests it has received."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from exporter.demo.cache import Cache
from exporter.demo.faults import Faults
from exporter.demo.security import DemoSecurity
from exporter.demo.spans import TraceBuffer
from exporter.demo.storage import Store
from exporter.logs import event

log = logging.getLogger(__name__)


@dataclass
class DemoState:
    store: Store
    cache: Cache
    buffer: TraceBuffer = field(default_factory=TraceBuffer)
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)
    down: set[str] = field(default_factory=set)  # backends last seen failing, to log each outage once
    lock_holder: tuple[asyncio.Task[None], asyncio.Event] | None = None  # lock_contention's transaction
    security: DemoSecurity | None = None  # DEMO_SECURITY=on
    received: int = 0  # requests received, /admin/* left out: what a load test sent, to check its count against

    def backend_failed(self, backend: str, cause: str) -> None:
        if backend not in self.down:
            self.down.add(backend)
            event(log, logging.WARNING, "demo_backend_unavailable", backend=backend, cause=cause)

    def backend_ok(self, backend: str) -> None:
        if backend in self.down:
            self.down.discard(backend)
            event(log, logging.INFO, "demo_backend_recovered", backend=backend)

    async def hold_trip_locks(self, on: bool) -> None:
        """Start or stop the transaction that keeps the trips' row locks (the lock_contention fault)."""
        if on and self.lock_holder is None:
            stop = asyncio.Event()
            self.lock_holder = (asyncio.create_task(self.store.hold_trip_locks(stop)), stop)
        elif not on and self.lock_holder is not None:
            task, stop = self.lock_holder
            self.lock_holder = None
            stop.set()
            await task
