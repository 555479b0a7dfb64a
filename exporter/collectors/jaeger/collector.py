"""The Jaeger collector: trace durations, spans, errors, slowest operations, critical path and serial siblings
of one ``jaeger:`` target, plus the lookup of the traces API probes started.

Each run (a *poll*):

1. Find out which API the server speaks (api_v3, else v1) and, unless ``services`` is set, list the services.
2. Per service, search the window ``[now - lookback, now]``. Windows of successive polls overlap, so spans that
   arrive late are not missed; a bounded memory of trace IDs makes every trace count exactly once, whichever
   poll and whichever service's search returns it. A trace whose last span ended less than ``settle`` ago is not
   counted yet: the next poll reads it again, with whatever spans arrived since.
3. With trace summaries (current api_v3), every new trace's duration, span and error counts come from its
   summary, and a random sample of ``sample`` new traces per poll is fetched whole for span durations, critical
   path and serial siblings. Without summaries, the searches return whole traces: a v1 search's are counted
   from their spans and the same sample is analysed whole (drawn as they arrive, by reservoir sampling); an
   api_v3 search's (a server without summaries) are all analysed.
4. Jaeger has no pagination: searches ask for ``limit + 1`` traces, and one that returns more than ``limit``
   (or a body above ``max_response_bytes``) is repeated on the two halves of its window, twice at most; still
   full, it counts in ``perf_trace_searches_truncated_total``.
5. Traces API probes started (``traceparent: true``) are looked up by ID once ``settle`` has passed since the
   request: each is reported once, or given up after ``PROBE_ATTEMPTS`` polls.

Unreachable Jaeger: the run returns False (``perf_target_up 0``) with one log line. An answer that is not what
the API documents (error status, HTML, truncated JSON, ``errors`` in a 200, a malformed trace): whatever else
the poll could use is still counted, then the run raises, so it counts as ``result="error"`` with one log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from exporter import metrics
from exporter.collectors.jaeger.breakdown import Component, statement_fingerprint
from exporter.collectors.jaeger.client import (
    JaegerApi,
    JaegerError,
    JaegerUnreachable,
    ResponseTooLarge,
    bulk_objects,
)
from exporter.collectors.jaeger.decoding import TraceDataError
from exporter.collectors.jaeger.target import JaegerTarget
from exporter.collectors.jaeger.traces import (
    ANOMALY_KINDS,
    SpanTimes,
    Trace,
    TraceFacts,
    analyse,
    rank_operations,
    top_keys,
)
from exporter.collectors.jaeger.v1 import V1Found
from exporter.jobs import UP, JobContext, Outcome, SentTrace, down
from exporter.logs import event

log = logging.getLogger(__name__)

MAX_SPLITS = 2  # a full search is repeated on halves of its window at most this many times over
MIN_SPLIT_WINDOW_US = 1_000_000
SEEN_CAPACITY = 200_000  # trace IDs remembered (about 100 bytes each)
PROBE_ATTEMPTS = 3  # lookups of a probe's trace before giving up
PROBE_PENDING_CAPACITY = 1_000
FETCH_CONCURRENCY = 4
OTHER = "other"
COMPONENTS_PER_OPERATION = 3  # components exported one by one: this many times top_operations, by time
STATEMENT_TEXTS = 200  # perf_trace_statement_info keeps the texts of this many statements, the latest seen


class JaegerDataError(Exception):
    """The poll met answers or traces it could not use; raised at the end of the run."""


class _NoSummaries(Exception):
    """The server turned out to have no trace summaries."""


@dataclass
class PendingProbe:
    sent: SentTrace
    attempts: int = 0


@dataclass
class Poll:
    """What one poll found, before it is written to the store."""

    facts: list[TraceFacts] = field(default_factory=list)  # counted traces (summaries or whole)
    whole: list[TraceFacts] = field(default_factory=list)  # whole traces analysed
    summarised: list[TraceFacts] = field(default_factory=list)  # counted from summaries: the sample's pool
    # v1 traces counted from their spans, drawn at random into the sample read whole (reservoir sampling):
    # (index of its facts in ``facts``, the trace)
    drawn: list[tuple[int, V1Found]] = field(default_factory=list)
    offered: int = 0
    span_times: SpanTimes = field(default_factory=lambda: SpanTimes(metrics.TRACE_BUCKETS))
    anomalies: dict[str, int] = field(default_factory=dict)
    truncated_searches: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class JaegerCollector:
    def __init__(self, cfg: JaegerTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store
        self.traces = context.traces
        self.sent = context.traces.inbox(cfg.name)  # the probe traces meant for this target, our own copy
        self.api = JaegerApi(cfg)
        self.seen: OrderedDict[str, int] = OrderedDict()  # trace key -> trace end (µs), oldest first
        self.scores: dict[tuple[str, str], float] = {}
        self.named: set[tuple[str, str]] = set()
        self.other_labels: set[tuple[str, ...]] = set()
        self.pending: list[PendingProbe] = []
        self.root_scores: dict[tuple[str, str], float] = {}
        self.root_named: set[tuple[str, str]] = set()
        self.component_scores: dict[Component, float] = {}
        self.components_named: set[Component] = set()
        self.statement_texts: dict[tuple[str, ...], float] = {}  # perf_trace_statement_info, newest last
        self.random = random.Random()
        self.clock: Callable[[], float] = time.time  # tests move time forward without waiting
        for kind in ANOMALY_KINDS:
            self.store.ensure_counter(metrics.TRACE_ANOMALIES, target=cfg.name, kind=kind)
        self.store.ensure_counter(metrics.TRACE_ANALYSED, target=cfg.name)

    async def close(self) -> None:
        self.traces.discard(self.cfg.name)
        await self.api.close()

    # -- a poll ----------------------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        poll = Poll()
        now = int(self.clock() * 1e6)
        try:
            try:
                services = list(self.cfg.services) or await self.api.services()
                for service in services:
                    await self._collect_service(service, now, poll)
                self._analyse_drawn(poll)
                await self._analyse_sample(poll)
                await self._look_up_probes(now)
            finally:
                self._write(poll)
                self._forget_old(now)
        except JaegerUnreachable as exc:
            self.api.forget()
            event(log, logging.WARNING, "jaeger_unreachable", target=self.cfg.name, cause=str(exc))
            return down("jaeger_unreachable", str(exc))
        except JaegerError as exc:
            self.api.forget()
            poll.problems.append(str(exc))
        if poll.problems:
            more = f" (and {len(poll.problems) - 3} more)" if len(poll.problems) > 3 else ""
            raise JaegerDataError("; ".join(poll.problems[:3]) + more)
        return UP

    async def _collect_service(self, service: str, now: int, poll: Poll) -> None:
        start, end = now - int(self.cfg.lookback * 1e6), now
        try:
            if await self.api.detect() == "v3" and self.api.has_summaries is not False:
                try:
                    await self._search(service, start, end, 0, poll, self._summaries_into(now, poll))
                except _NoSummaries:
                    pass  # an api_v3 server without trace summaries: fall through to whole traces
                else:
                    return
            await self._search(service, start, end, 0, poll, self._traces_into(now, poll))
        except (JaegerError, TraceDataError) as exc:
            if isinstance(exc, JaegerError) and not isinstance(exc, ResponseTooLarge):
                self.api.forget()
            poll.problems.append(f"service {service!r}: {exc}")

    async def _search(self, service: str, start: int, end: int, depth: int, poll: Poll,
                      fetch: Callable[[str, int, int], Awaitable[int]]) -> None:
        """Run ``fetch`` on the window; when it comes back full (or too large), on its two halves too."""
        can_split = depth < MAX_SPLITS and end - start >= 2 * MIN_SPLIT_WINDOW_US
        try:
            full = await fetch(service, start, end) > self.cfg.limit
        except ResponseTooLarge:
            if not can_split:
                raise
            full = True
        if not full:
            return
        if not can_split:
            poll.truncated_searches[service] = poll.truncated_searches.get(service, 0) + 1
            return
        middle = (start + end) // 2
        await self._search(service, start, middle, depth + 1, poll, fetch)
        await self._search(service, middle, end, depth + 1, poll, fetch)

    def _is_known(self, key: str) -> bool:
        return key in self.seen

    def _new_and_settled(self, key: str, end: int, now: int) -> bool:
        """Whether a trace counts in this poll: not counted before, and its last span ended ``settle`` ago."""
        return key not in self.seen and now - end >= self.cfg.settle * 1e6

    def _count(self, facts: TraceFacts, poll: Poll) -> None:
        self.seen[facts.key] = facts.end
        poll.facts.append(facts)

    def _summaries_into(self, now: int, poll: Poll) -> Callable[[str, int, int], Awaitable[int]]:
        async def fetch(service: str, start: int, end: int) -> int:
            found = await self.api.summaries(service, start, end, self.cfg.limit + 1)
            if found is None:
                raise _NoSummaries
            self._take_summaries(found, now, poll)
            return len(found)
        return fetch

    def _take_summaries(self, found: Iterable[TraceFacts], now: int, poll: Poll) -> None:
        """Count the new and settled traces of a search's summaries: the pool the poll's sample is drawn from."""
        for facts in found:
            if self._new_and_settled(facts.key, facts.end, now):
                self._count(facts, poll)
                poll.summarised.append(facts)

    def _traces_into(self, now: int, poll: Poll) -> Callable[[str, int, int], Awaitable[int]]:
        async def fetch(service: str, start: int, end: int) -> int:
            traces, returned, errors = await self.api.search(service, start, end, self.cfg.limit + 1,
                                                             self._is_known)
            self._take_traces(traces, now, poll)
            poll.problems.extend(f"service {service!r}: Jaeger reported: {e}" for e in errors)
            return returned
        return fetch

    def _take_traces(self, traces: Iterable[Trace | V1Found], now: int, poll: Poll) -> None:
        """Count the new and settled traces of a search: v1 ones from their spans (drawn into the sample), the
        others analysed whole."""
        with bulk_objects():
            for trace in traces:
                if isinstance(trace, V1Found):
                    if self._new_and_settled(trace.facts.key, trace.facts.end, now):
                        self._count(trace.facts, poll)
                        self._draw(trace, poll)
                # decided before analysing: a trace that does not count yet is not analysed
                elif self._new_and_settled(trace.key, trace.end, now):
                    self._count(self._take_whole(trace, poll), poll)

    def _take_whole(self, trace: Trace, poll: Poll) -> TraceFacts:
        facts = analyse(trace, breakdown=True)
        poll.whole.append(facts)
        poll.span_times.add(trace)
        for kind, n in facts.anomalies.items():
            poll.anomalies[kind] = poll.anomalies.get(kind, 0) + n
        return facts

    def _draw(self, found: V1Found, poll: Poll) -> None:
        """Keep ``found`` in the poll's sample of ``sample`` traces with the same chance as every other."""
        index, poll.offered = len(poll.facts) - 1, poll.offered + 1
        if len(poll.drawn) < self.cfg.sample:
            poll.drawn.append((index, found.own()))
        else:
            slot = self.random.randrange(poll.offered)
            if slot < self.cfg.sample:
                poll.drawn[slot] = (index, found.own())

    def _analyse_drawn(self, poll: Poll) -> None:
        """Read the drawn v1 traces whole: their facts replace the ones counted from their spans."""
        with bulk_objects():
            for index, found in poll.drawn:
                poll.facts[index] = facts = self._take_whole(found.whole(), poll)
                self.seen[facts.key] = facts.end
        poll.drawn.clear()

    async def _analyse_sample(self, poll: Poll) -> None:
        """Fetch a random sample of the traces this poll counted from summaries, whole."""
        fresh = poll.summarised
        chosen = fresh if len(fresh) <= self.cfg.sample else self.random.sample(fresh, self.cfg.sample)
        for trace in await self._fetch_all([f.trace_id for f in chosen]):
            if trace is not None:
                self._take_whole(trace, poll)

    async def _fetch_all(self, trace_ids: list[str]) -> list[Trace | None]:
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(trace_id: str) -> Trace | None:
            async with gate:
                return await self.api.trace(trace_id)

        return list(await asyncio.gather(*(one(t) for t in trace_ids)))

    # -- probe traces ----------------------------------------------------------------------------------------

    async def _look_up_probes(self, now: int) -> None:
        sent = self.sent
        settle = self.cfg.settle
        now_s = now / 1e6
        ready = [s for s in sent if now_s - s.sent_at >= settle]
        if ready:
            waiting = [s for s in sent if now_s - s.sent_at < settle]
            sent.clear()
            sent.extend(waiting)
            self.pending.extend(PendingProbe(s) for s in ready)
            del self.pending[:-PROBE_PENDING_CAPACITY]
        if not self.pending:
            return
        batch, self.pending = self.pending[:self.cfg.sample], self.pending[self.cfg.sample:]
        try:
            found = await self._fetch_all([p.sent.trace_id for p in batch])
        except Exception:
            for probe in batch:
                probe.attempts += 1
            self.pending[:0] = [p for p in batch if p.attempts < PROBE_ATTEMPTS]
            raise
        store, t = self.store, self.cfg.name
        seen_at = self.clock()
        for probe, trace in zip(batch, found, strict=True):
            labels = {"target": t, "probe_target": probe.sent.target, "probe": probe.sent.probe}
            if trace is None:
                probe.attempts += 1
                if probe.attempts < PROBE_ATTEMPTS:
                    self.pending.append(probe)
                    continue
                store.inc(metrics.TRACE_PROBE_MISSING, 1.0, **labels)
                event(log, logging.INFO, "trace_probe_missing", target=t,
                      probe=f"{probe.sent.target}/{probe.sent.probe}",
                      trace_id=probe.sent.trace_id, attempts=probe.attempts)
                continue
            facts = analyse(trace)
            store.set(metrics.TRACE_PROBE_DURATION, facts.duration_seconds, **labels)
            store.set(metrics.TRACE_PROBE_SPANS, facts.span_count, **labels)
            store.set(metrics.TRACE_PROBE_SERVICES, len(facts.services), **labels)
            store.set(metrics.TRACE_PROBE_VISIBILITY, max(0.0, seen_at - probe.sent.sent_at), **labels)
            store.ensure_counter(metrics.TRACE_PROBE_MISSING, **labels)

    # -- writing ---------------------------------------------------------------------------------------------

    def _operation(self, service: str, operation: str) -> str:
        return operation if (service, operation) in self.named else OTHER

    def _write(self, poll: Poll) -> None:
        store, t = self.store, self.cfg.name
        self.scores = rank_operations(self.scores, poll.span_times.total)
        self.named = top_keys(self.scores, self.cfg.top_operations)
        roots: dict[tuple[str, str], float] = {}
        for facts in poll.facts:
            key = (facts.root_service, facts.root_operation)
            roots[key] = roots.get(key, 0.0) + 1.0
        self.root_scores = rank_operations(self.root_scores, roots)
        self.root_named = top_keys(self.root_scores, self.cfg.top_operations)
        durations: dict[tuple[str, str, str], list[float]] = {}
        span_counts: dict[tuple[str, str], list[float]] = {}
        errors: dict[tuple[str, str], float] = {}
        for facts in poll.facts:
            service = facts.root_service
            op = facts.root_operation if (service, facts.root_operation) in self.root_named else OTHER
            durations.setdefault((t, service, op), []).append(facts.duration_seconds)
            span_counts.setdefault((t, service), []).append(facts.span_count)
            for other in facts.services:
                errors.setdefault((t, other), 0.0)
            for other, n in facts.error_spans.items():
                errors[t, other] = errors.get((t, other), 0.0) + n
        store.observe_many(metrics.TRACE_DURATION, durations)
        store.observe_many(metrics.TRACE_SPANS, span_counts)
        store.inc_many(metrics.TRACE_ERRORS, errors)
        for facts in poll.whole:
            store.inc(metrics.TRACE_ANALYSED, target=t)
            for service, micros in facts.critical_path.items():
                store.inc(metrics.TRACE_CRITICAL_PATH, micros / 1e6, target=t, service=service)
            for group in facts.serial:
                serial = {"target": t, "service": group.service,
                          "operation": self._operation(group.service, group.operation)}
                store.inc(metrics.TRACE_SERIAL_CHILDREN, group.children, **serial)
                store.inc(metrics.TRACE_SERIAL_SAVING, group.saving / 1e6, **serial)
        self._write_breakdowns(poll)
        keep: set[tuple[str, ...]] = {(t, s, o) for s, o in self.named}
        for (service, operation), sums in poll.span_times.by_operation.items():
            op = self._operation(service, operation)
            for mean, n in sums.groups():
                store.observe(metrics.TRACE_SPAN_DURATION, mean, n, target=t, service=service, operation=op)
            if op == OTHER:
                self.other_labels.add((t, service, op))
        keep.update(self.other_labels)
        store.remove_where(metrics.TRACE_SPAN_DURATION, keep)  # operations that left the top N
        for kind, n in poll.anomalies.items():
            store.inc(metrics.TRACE_ANOMALIES, n, target=t, kind=kind)
        for service, n in poll.truncated_searches.items():
            store.inc(metrics.TRACE_SEARCH_TRUNCATED, n, target=t, service=service)
        if poll.truncated_searches:
            event(log, logging.WARNING, "jaeger_search_truncated", target=t,
                  services=",".join(sorted(poll.truncated_searches)), limit=self.cfg.limit,
                  hint="raise limit or shorten interval and lookback")

    def _component(self, component: Component) -> Component:
        if component in self.components_named:
            return component
        return Component(component.service, component.kind, OTHER)

    def _write_breakdowns(self, poll: Poll) -> None:
        """Per root operation: the components of its analysed traces' critical path, their calls, cache reads,
        cache TTLs and where errors started (exporter.collectors.jaeger.breakdown)."""
        store, t = self.store, self.cfg.name
        breakdowns = [f.breakdown for f in poll.whole if f.breakdown is not None]
        totals: dict[Component, float] = {}
        for b in breakdowns:
            for component, micros in b.path.items():
                totals[component] = totals.get(component, 0.0) + micros / 1e6
        self.component_scores = rank_operations(self.component_scores, totals)
        self.components_named = top_keys(self.component_scores, COMPONENTS_PER_OPERATION * self.cfg.top_operations)
        analysed: dict[tuple[str, ...], float] = {}
        seconds: dict[tuple[str, ...], float] = {}
        calls: dict[tuple[str, ...], float] = {}
        reads: dict[tuple[str, ...], float] = {}
        origins: dict[tuple[str, ...], float] = {}
        ttls: dict[tuple[str, ...], list[float]] = {}
        texts: dict[tuple[str, ...], float] = {}
        for b in breakdowns:
            op = b.root_operation if (b.root_service, b.root_operation) in self.root_named else OTHER
            root = (t, b.root_service, op)
            analysed[root] = analysed.get(root, 0.0) + 1.0
            for table, source in ((seconds, b.path), (calls, b.calls)):
                for component, amount in source.items():
                    c = self._component(component)
                    fingerprint = statement_fingerprint(c.statement)
                    if fingerprint:
                        texts[(t, fingerprint, c.statement)] = 1.0
                    key: tuple[str, ...] = (*root, c.service, c.kind, c.operation, fingerprint)
                    table[key] = table.get(key, 0.0) + (amount / 1e6 if source is b.path else amount)
            for read, n in b.cache_reads.items():
                read_labels = (*root, read.service, read.operation, read.result)
                reads[read_labels] = reads.get(read_labels, 0.0) + n
            for service, n in b.error_origins.items():
                origins[(*root, service)] = origins.get((*root, service), 0.0) + n
            for (service, operation), values in b.cache_ttls.items():
                ttls.setdefault((t, service, operation), []).extend(values)
        store.inc_many(metrics.TRACE_ROOT_ANALYSED, analysed)
        store.inc_many(metrics.TRACE_PATH_SECONDS, seconds)
        store.inc_many(metrics.TRACE_PATH_CALLS, calls)
        store.inc_many(metrics.TRACE_CACHE_READS, reads)
        store.inc_many(metrics.TRACE_ERROR_ORIGINS, origins)
        store.observe_many(metrics.TRACE_CACHE_WRITE_TTL, ttls)
        if texts:
            known = dict(self.statement_texts)
            for labels in texts:  # seen again: the newest
                known.pop(labels, None)
                known[labels] = 1.0
            self.statement_texts = dict(list(known.items())[-STATEMENT_TEXTS:])
            store.replace(metrics.TRACE_STATEMENT_INFO, self.statement_texts)

    def _forget_old(self, now: int) -> None:
        """Forget trace IDs whose trace ended before any window a later poll can search, and the oldest beyond
        ``SEEN_CAPACITY``."""
        horizon = now - int((self.cfg.lookback + 2 * self.cfg.interval) * 1e6)
        seen = self.seen
        while seen:
            end = next(iter(seen.values()))
            if end >= horizon and len(seen) <= SEEN_CAPACITY:
                break
            seen.popitem(last=False)
