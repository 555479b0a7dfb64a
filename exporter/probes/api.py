"""The API probe job: every endpoint and journey of one ``api:`` target, each run.

The target's requests share kept-alive connections per origin (:mod:`exporter.probes.wire`); an endpoint has a
semaphore sized to its concurrency in front of them, and a request that finds no free connection opens one rather
than wait. A duration the probe's own process can have inflated by more than :func:`exporter.timing.trusted`
allows is not observed: it is counted in ``perf_http_timings_discarded_total`` instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from exporter import metrics
from exporter.http_client import base_headers, shared_ssl_context
from exporter.jobs import JobContext, Outcome, SentTrace
from exporter.logs import event
from exporter.probes.api_target import ApiTarget, Endpoint, Journey
from exporter.probes.http import Measurement, Request, Target, json_body, measure, resolve_time
from exporter.probes.journey import MissingVariable, StepRequest, capture, fill, steps_of
from exporter.probes.security import SecurityChecks
from exporter.probes.wire import Pools
from exporter.timing import trusted

log = logging.getLogger(__name__)

Probed = tuple[bool, str | None]  # one probe: whether it reached the target, and what failed (None: nothing)


def new_traceparent() -> tuple[str, str]:
    trace_id = os.urandom(16).hex()
    return trace_id, f"00-{trace_id}-{os.urandom(8).hex()}-01"


class ApiProbe:
    def __init__(self, cfg: ApiTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.context = context
        self.store = context.store
        self.endpoints = {e.name: e for e in cfg.endpoints}
        self.journeys = {j.name: steps_of(j, self.endpoints) for j in cfg.journeys}
        verify = functools.partial(shared_ssl_context, cfg.tls)
        self.headers = base_headers(cfg)
        self.base = Target.base(cfg.base_url)
        self.pools = Pools(verify)
        self.semaphores = {e.name: asyncio.Semaphore(e.concurrency) for e in cfg.endpoints}
        self.security = SecurityChecks(cfg, self.headers, verify(), self.store) \
            if any(e.security is not None for e in cfg.endpoints) else None
        self._declare_series(cfg.endpoints, cfg.journeys)

    def _declare_series(self, endpoints: list[Endpoint], journeys: list[Journey]) -> None:
        t = self.cfg.name
        if self.cfg.buckets is not None:
            for family in (metrics.HTTP_REQUEST_DURATION, metrics.JOURNEY_DURATION, metrics.JOURNEY_STEP_DURATION):
                self.store.show_buckets(family, self.cfg.buckets)
        self.store.ensure_counter(metrics.HTTP_TIMINGS_DISCARDED, target=t)
        for e in endpoints:
            self.store.ensure_histogram(metrics.HTTP_REQUEST_DURATION, target=t, endpoint=e.name, method=e.method)
            for outcome in metrics.HTTP_OUTCOMES:
                self.store.ensure_counter(metrics.HTTP_REQUESTS, target=t, endpoint=e.name, method=e.method,
                                           outcome=outcome)
        for j in journeys:
            self.store.ensure_histogram(metrics.JOURNEY_DURATION, target=t, journey=j.name)
            for outcome in metrics.HTTP_OUTCOMES:
                self.store.ensure_counter(metrics.JOURNEY_RUNS, target=t, journey=j.name, outcome=outcome)

    def spread(self) -> float:
        """Probes of one run start spread over this many seconds rather than all at once: responses that
        arrive together queue on the event loop, and that queueing would be measured as server time."""
        probes = len(self.cfg.endpoints) + len(self.journeys)
        if probes <= 1:
            return 0.0
        return max(0.0, min(self.cfg.interval * 0.5, self.cfg.deadline - self.cfg.timeout - 0.1))

    async def run(self) -> Outcome:
        resolve, resolve_error = await resolve_time(self.cfg.base_url)
        probes = [*(functools.partial(self._probe_endpoint, e, resolve, resolve_error) for e in self.cfg.endpoints),
                  *(functools.partial(self._probe_journey, name, resolve_error) for name in self.journeys)]
        step = self.spread() / len(probes) if probes else 0.0

        loop = asyncio.get_running_loop()
        start = loop.time()

        async def after(delay: float, probe: Callable[[], Awaitable[Probed]]) -> Probed:
            if delay:
                await asyncio.sleep(delay)
                self.context.late(max(0.0, loop.time() - start - delay))
            return await probe()

        results = await asyncio.gather(*(after(i * step, probe) for i, probe in enumerate(probes)))
        problems = [problem for _, problem in results if problem]
        return Outcome(any(reached for reached, _ in results), "; ".join([*problems, *self.findings()]))

    def findings(self) -> list[str]:
        """The security checks failing now, each with its cause."""
        return self.security.findings() if self.security is not None else []

    async def close(self) -> None:
        self.pools.close()
        if self.security is not None:
            await self.security.close()

    def _request(self, method: str, path: str, headers: dict[str, str], query: dict[str, Any],
                 body: Any) -> Request:
        return Request(method, self.base.joined(path, query), {**self.headers, **headers},
                       None if body is None else json_body(body))

    def _observe(self, family: metrics.Family, m: Measurement, **labels: str) -> bool:
        """Observe the measurement's duration if the process cannot have inflated it (else count it as
        discarded); whether it was observed."""
        assert m.duration is not None
        if trusted(m.duration, m.error_bound):
            self.store.observe(family, m.duration, **labels)
            return True
        self.store.inc(metrics.HTTP_TIMINGS_DISCARDED, 1.0, target=self.cfg.name)
        return False

    # -- endpoints -------------------------------------------------------------------------------------------

    async def _probe_endpoint(self, endpoint: Endpoint, resolve: float, resolve_error: str | None) -> Probed:
        semaphore = self.semaphores[endpoint.name]
        timeout = endpoint.timeout or self.cfg.timeout

        async def one() -> Measurement:
            if resolve_error is not None:
                return Measurement(outcome="connect_error", error=resolve_error)
            headers = dict(endpoint.headers)
            if endpoint.traceparent:
                trace_id, headers["traceparent"] = new_traceparent()
                self.context.traces.send(SentTrace(trace_id, self.cfg.name, endpoint.name, time.time()),
                                         to=self.cfg.trace_collectors)
            request = self._request(endpoint.method, endpoint.path, headers, endpoint.query, endpoint.body)
            async with semaphore:
                return await measure(self.pools, request, timeout=timeout, max_body_bytes=self.cfg.max_body_bytes,
                                     follow_redirects=self.cfg.follow_redirects,
                                     max_redirects=self.cfg.max_redirects, expect_status=endpoint.expect_status,
                                     expect=endpoint.expect)

        measurements = [await one()] if endpoint.requests == 1 else \
            await asyncio.gather(*(one() for _ in range(endpoint.requests)))
        t, name = self.cfg.name, endpoint.name
        last_timed = True
        for m in measurements:
            self.store.inc(metrics.HTTP_REQUESTS, 1.0, target=t, endpoint=name, method=endpoint.method,
                           outcome=m.outcome)
            if m.duration is not None:
                last_timed = self._observe(metrics.HTTP_REQUEST_DURATION, m, target=t, endpoint=name,
                                           method=endpoint.method)
        last = measurements[-1]
        if self.cfg.phases and last_timed:  # an untrusted request's phases are the process's as much as its
            phases = {"resolve": resolve, **last.phases} if last.phases else {"resolve": resolve}
            for phase in metrics.HTTP_PHASES:
                self.store.set(metrics.HTTP_PHASE_DURATION, phases.get(phase, 0.0), target=t, endpoint=name,
                               phase=phase)
        self.store.set(metrics.HTTP_REDIRECTS, last.redirects, target=t, endpoint=name)
        self.store.set(metrics.HTTP_RESPONSE_SIZE, last.size, target=t, endpoint=name)
        ok = all(m.outcome == "success" for m in measurements)
        self.store.set(metrics.PROBE_SUCCESS, 1.0 if ok else 0.0, target=t, probe=name)
        problem = None
        if not ok:
            failed = next(m for m in measurements if m.outcome != "success")
            failures = sum(1 for m in measurements if m.outcome != "success")
            cause = failed.error or failed.outcome
            event(log, logging.INFO, "probe_failed", target=t, probe=name, outcome=failed.outcome,
                  failed=failures, requests=len(measurements), cause=cause)
            problem = f"probe_failed: {name}: {cause}"
        if self.security is not None and endpoint.security is not None and resolve_error is None:
            await self.security.run(endpoint)
        return any(m.reached for m in measurements), problem

    # -- journeys --------------------------------------------------------------------------------------------

    async def _probe_journey(self, name: str, resolve_error: str | None) -> Probed:
        variables: dict[str, Any] = {}
        total = 0.0
        outcome, cause, reached, timed = "success", None, False, True
        for step in self.journeys[name]:
            if resolve_error is not None:
                outcome, cause = "connect_error", resolve_error
                break
            m, problem = await self._journey_step(step, variables)
            reached = reached or m.reached
            if m.duration is not None:
                total += m.duration
                timed = self._observe(metrics.JOURNEY_STEP_DURATION, m, target=self.cfg.name, journey=name,
                                      step=step.label) and timed
            if problem is not None or m.outcome != "success":
                outcome = m.outcome if m.outcome != "success" else "assertion_failed"
                cause = f"step {step.label}: {problem or m.error or m.outcome}"
                break
        t = self.cfg.name
        self.store.inc(metrics.JOURNEY_RUNS, 1.0, target=t, journey=name, outcome=outcome)
        if outcome == "success" and timed:
            self.store.observe(metrics.JOURNEY_DURATION, total, target=t, journey=name)
        self.store.set(metrics.PROBE_SUCCESS, 1.0 if outcome == "success" else 0.0, target=t, probe=name)
        if cause is not None:
            event(log, logging.INFO, "journey_failed", target=t, journey=name, outcome=outcome, cause=cause)
            return reached, f"journey_failed: {name}: {cause}"
        return reached, None

    async def _journey_step(self, step: StepRequest, variables: dict[str, Any]) -> tuple[Measurement, str | None]:
        try:
            request = self._request(step.method, str(fill(step.path, variables)), fill(step.headers, variables),
                                    fill(step.query, variables), fill(step.body, variables))
        except MissingVariable as exc:
            return Measurement(outcome="assertion_failed", error=str(exc)), str(exc)
        m = await measure(self.pools, request, timeout=self.cfg.timeout, max_body_bytes=self.cfg.max_body_bytes,
                          follow_redirects=self.cfg.follow_redirects, max_redirects=self.cfg.max_redirects,
                          expect_status=step.expect_status, expect=step.expect, keep_body=bool(step.capture))
        if m.outcome != "success":
            return m, None
        captured, problem = capture(m.body, step.capture)
        variables.update(captured)
        return m, problem
