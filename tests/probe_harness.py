"""Builds a real ApiProbe job from a config dict, with a fresh registry to read its series back."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.config.loading import parse_config
from exporter.jobs import JobContext, Outcome, TraceLink
from exporter.probes.api import ApiProbe
from exporter.store import StoreCollector
from exporter.timing import new_event_loop


class ProbeHarness:
    def __init__(self, target: dict[str, Any]) -> None:
        target = {"name": "t", "interval": "3s", "timeout": "2s", **target}
        config = parse_config({"api": [target]}, "test.yaml")
        self.cfg = config.api[0]
        self.stores = StoreCollector()
        self.registry = CollectorRegistry()
        self.registry.register(self.stores)
        self.traces = TraceLink()
        self.sent = self.traces.inbox("tracing")  # what a trace collector named "tracing" would be handed
        self.context = JobContext(self.stores.add("api/t"), self.traces)
        self.probe = ApiProbe(self.cfg, self.context)

    def run(self, times: int = 1) -> Outcome:
        async def go() -> Outcome:
            outcome = Outcome(False, "not run")
            try:
                for _ in range(times):
                    outcome = await self.probe.run()
            finally:
                await self.probe.close()
            return outcome

        with asyncio.Runner(loop_factory=new_event_loop) as runner:  # as the daemon's: exporter.timing
            return runner.run(go())

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"target": "t", **labels})

    def requests(self, endpoint: str, outcome: str, method: str = "GET") -> float | None:
        return self.value("perf_http_requests_total", endpoint=endpoint, method=method, outcome=outcome)
