"""What a job is, what it gets, and what the registry records about each kind of job.

A job is one probe or collector for one target: built from its target's config entry and a :class:`JobContext`,
``await run()`` measures once, writes the results into the context's store and returns its :class:`Outcome`
(whether the target was reached, and why not, as postgres_exporter's ``Update`` returns its error), ``await
close()`` releases what it holds. The scheduler knows nothing else about it.

A :class:`JobKind` is one record of the registry (:mod:`exporter.registry`): the config section, the target
model, the job class, and the SLO area the kind's measurements serve, if any. The config schema, the scheduler
and every generator under :mod:`exporter.slo` read these records instead of naming kinds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from exporter.config.base import JobTarget
from exporter.store import MetricStore

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders.dashboard import Dashboard

    from exporter.config.schema import Config
    from exporter.config.targets import Targets
    from exporter.slo.slos import Slo


@dataclass(frozen=True)
class Outcome:
    """What one run found: whether the target was reached, and the cause to show when it was not (or when it was,
    yet some check of the job's own failed: the api job's security checks). The cause names the event its log
    line has (``pg_unreachable: ...``), secrets masked."""

    up: bool
    cause: str = ""

    def __bool__(self) -> bool:
        return self.up


UP = Outcome(True)


def down(event: str, cause: str) -> Outcome:
    return Outcome(False, f"{event}: {cause}")


class Job(Protocol):
    async def run(self) -> Outcome: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SentTrace:
    """A trace a probe started (sent a ``traceparent`` for), for trace collectors to look up."""

    trace_id: str
    target: str
    probe: str
    sent_at: float  # unix time


class TraceLink:
    """The traces probes start, handed to the trace collectors meant to see them, each with its own copy.

    A trace collector reads :meth:`inbox` with its target's name; a probe calls :meth:`send` with the names of the
    trace collectors that should see its traces (none named: all of them).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._inboxes: dict[str, deque[SentTrace]] = {}

    def inbox(self, collector: str) -> deque[SentTrace]:
        return self._inboxes.setdefault(collector, deque(maxlen=self.capacity))

    def discard(self, collector: str) -> None:
        self._inboxes.pop(collector, None)

    def send(self, trace: SentTrace, to: Sequence[str] = ()) -> None:
        for name, inbox in self._inboxes.items():
            if not to or name in to:
                inbox.append(trace)


def ignore_lateness(seconds: float) -> None:
    pass


@dataclass(frozen=True)
class JobContext:
    """What a job gets besides its own target: where to write its series, the trace link, and where to report
    how late a part of its run started against its plan (a probe spread over the interval, say), in seconds."""

    store: MetricStore
    traces: TraceLink
    late: Callable[[float], None] = ignore_lateness


T = TypeVar("T", bound=JobTarget)


@dataclass(frozen=True)
class SloArea:
    """One area of the guide's performance targets, served by one job kind's measurements."""

    name: str  # rule file, dashboard and sloth_service: api, database, cache, tracing
    title: str  # "Database"
    events: str  # what one SLI event is, for alert text: "statement executions"
    sli: str  # the series whose absence means the area's SLOs cannot be computed
    slos: Callable[[Targets], list[Slo]]
    # The guide's extra records over a window (None: each latency SLO's percentiles by target).
    records: Callable[[list[Slo], str], list[dict[str, Any]]] | None = None
    dashboard: Callable[[Config], Dashboard] | None = None  # None: a dashboard of its SLOs
    issue: str = ""  # the guide's "Common Performance Issues" entry its runbooks cite ("": one of its own)
    report: str | None = None  # its module under exporter.reports.areas (None: reported from its SLOs alone)


@dataclass(frozen=True)
class JobKind(Generic[T]):
    """One kind of job: its config section (also its ``collector`` label), target model and job class."""

    section: str
    target: type[T]
    job: Callable[[T, JobContext], Job]
    area: SloArea | None = None
    watch: bool = True  # run by bench beside the load to measure the platform (api: no, k6 is the load)

    def build(self, entry: JobTarget, context: JobContext) -> Job:
        if not isinstance(entry, self.target):
            raise TypeError(f"{self.section} job built from a {type(entry).__name__}, not a {self.target.__name__}")
        return self.job(entry, context)
