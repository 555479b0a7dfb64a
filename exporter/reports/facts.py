"""What the recommendation rules read: plain data about one window, gathered by a report source (Prometheus's
HTTP API, or a load run's own measurements) and handed to the pure rules of
:mod:`exporter.reports.recommendations`. Durations are seconds, ratios 0..1; ``None`` means "not measured".

Every figure a rule quotes carries its source in the recommendation's evidence, so a source fills in
:attr:`Facts.sources`: which query or measurement each kind of figure came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.config.targets import Targets
from exporter.reports.attribution import Route


@dataclass(frozen=True)
class Endpoint:
    target: str
    name: str
    requests: float
    failed: float = 0.0
    server_errors: float = 0.0  # 5xx among the failed
    timeouts: float = 0.0
    connect_errors: float = 0.0
    mean_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    phases_s: Mapping[str, float] = field(default_factory=dict)  # mean per phase (connect, tls, wait, ...)
    trace_s: float | None = None  # mean duration of the traces its probe requests started
    route: tuple[str, str] | None = None  # (service, operation) of the root span its requests' traces have
    response_bytes: float | None = None  # mean size of its answers
    baseline_p95_s: float | None = None  # over the baseline period (None: not measured)
    baseline_phases_s: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Statement:
    target: str
    datname: str
    queryid: str
    text: str | None
    calls: float
    seconds: float
    user: str = ""  # the role that ran it
    rows: float | None = None
    blocks: float | None = None  # shared blocks hit and read
    lock_waiting: float = 0.0  # most sessions seen waiting on a lock while running it, in one collection

    @property
    def mean_s(self) -> float | None:
        return self.seconds / self.calls if self.calls > 0 else None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.datname, self.queryid)

    def per_call(self, amount: float | None) -> float | None:
        return amount / self.calls if amount is not None and self.calls > 0 else None


@dataclass(frozen=True)
class Table:
    target: str
    datname: str
    schema: str
    name: str
    seq_scans: float = 0.0
    seq_rows_read: float = 0.0
    idx_scans: float = 0.0
    live: float | None = None
    dead: float | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class QueryP95:
    """The database's query P95 over the window: ``value`` with how it was measured.

    ``method``: ``statements-estimate`` (pg_stat_statements' sums, with distribution-free bounds),
    ``statements-approximate`` (each statement's calls placed at its interval mean) or ``synthetic`` (the
    configured queries, timed exactly)."""

    value: float | None
    method: str
    lower: float | None = None
    upper: float | None = None
    source: str = ""
    highest_lower: float | None = None  # the highest lower bound of one collection interval


@dataclass(frozen=True)
class IndexCheck:
    """An index recommendation costed by the planner with a hypothetical index (hypopg)."""

    command: str  # the CREATE INDEX recommended
    cost_before: float
    cost_after: float
    used: bool  # the plan with the hypothetical index uses it


@dataclass(frozen=True)
class Database:
    target: str
    statements: tuple[Statement, ...] = ()
    tables: tuple[Table, ...] = ()
    probe_seq_scans: tuple[tuple[str, str], ...] = ()  # (synthetic query, table) whose plan scans the table
    p95: QueryP95 | None = None
    synthetic_p95: QueryP95 | None = None
    blocks_hit: float | None = None
    blocks_read: float | None = None
    connections: float | None = None  # highest backend count in the window
    max_connections: float | None = None
    oldest_query_s: float | None = None  # longest-running active query (highest in the window)
    oldest_xact_s: float | None = None
    idle_in_transaction: float | None = None
    lock_waiting: float | None = None
    deadlocks: float | None = None
    index_checks: tuple[IndexCheck, ...] = ()

    @property
    def buffer_hit_ratio(self) -> float | None:
        if self.blocks_hit is None or self.blocks_read is None or self.blocks_hit + self.blocks_read <= 0:
            return None
        return self.blocks_hit / (self.blocks_hit + self.blocks_read)


@dataclass(frozen=True)
class KeyPattern:
    pattern: str
    sampled: float | None = None
    without_ttl: float | None = None  # share of sampled keys that never expire
    mean_bytes: float | None = None
    median_ttl_s: float | None = None


@dataclass(frozen=True)
class Queue:
    name: str
    first: float
    last: float
    highest: float
    slope_per_s: float = 0.0  # least-squares growth over the window


@dataclass(frozen=True)
class Cache:
    target: str
    hits: float | None = None
    misses: float | None = None
    evicted: float | None = None
    memory_used: float | None = None
    memory_max: float | None = None
    patterns: tuple[KeyPattern, ...] = ()
    queues: tuple[Queue, ...] = ()
    expired: float | None = None  # keys that expired by their TTL in the window

    @property
    def hit_rate(self) -> float | None:
        if self.hits is None or self.misses is None or self.hits + self.misses <= 0:
            return None
        return self.hits / (self.hits + self.misses)


@dataclass(frozen=True)
class ChildSpan:
    """One child of a serial group, as a sample trace shows it (for telling chains from independent calls)."""

    operation: str
    system: str = ""  # db.system: redis, postgresql, ...
    command: str = ""  # db.operation (GET, SET) or the statement's first word (SELECT, UPDATE)
    key: str = ""  # db.redis.key, or the table a statement touches
    start_us: int = 0


@dataclass(frozen=True)
class SerialGroup:
    service: str
    operation: str
    children: float  # serial children counted in the window
    saving_s: float  # time running them side by side would have saved, in the window
    sample: tuple[ChildSpan, ...] | None = None  # the children of one sample trace, when one could be read


@dataclass(frozen=True)
class SpanTime:
    service: str
    operation: str
    mean_s: float
    count: float


@dataclass(frozen=True)
class Tracing:
    target: str
    traces: float = 0.0
    p95_s: float | None = None
    share_over_target: float | None = None
    critical_path_s: Mapping[str, float] = field(default_factory=dict)  # service -> seconds on the path
    serial: tuple[SerialGroup, ...] = ()
    spans: tuple[SpanTime, ...] = ()
    errors: Mapping[str, float] = field(default_factory=dict)  # service -> error spans


@dataclass(frozen=True)
class CacheTtl:
    """The mean TTL the analysed traces' cache writes of one operation set."""

    service: str
    operation: str
    seconds: float


@dataclass(frozen=True)
class Facts:
    window_s: float
    targets: Targets
    endpoints: tuple[Endpoint, ...] = ()
    databases: tuple[Database, ...] = ()
    caches: tuple[Cache, ...] = ()
    tracing: tuple[Tracing, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)  # kind of figure -> where it came from
    routes: tuple[Route, ...] = ()  # the traces of each root operation, over the window and the baseline
    cache_ttls: tuple[CacheTtl, ...] = ()  # the TTLs the traces' cache writes set
    baseline: str = ""  # the baseline period, as the report names it ("" when there is none)

    def source(self, kind: str) -> str:
        return self.sources.get(kind, "unknown")

    @property
    def total_requests(self) -> float:
        return sum(e.requests for e in self.endpoints)


_TABLE_REF = re.compile(r"\b(?:from|join|update|into)\s+((?:\"?[a-z_][\w$]*\"?\.)?\"?[a-z_][\w$]*\"?)",
                        re.IGNORECASE)


def statement_tables(text: str | None) -> list[str]:
    """Tables a statement's text names after FROM, JOIN, UPDATE or INTO (``schema.table`` or ``table``), in order;
    functions called in FROM (``pg_sleep(...)``) are left out."""
    if not text:
        return []
    out: list[str] = []
    for match in _TABLE_REF.finditer(text):
        keyword = match.group(0).split()[0].lower()
        if keyword in ("from", "join") and text[match.end():].startswith("("):
            continue  # a function in FROM, such as pg_sleep($1)
        name = match.group(1).replace('"', "")
        if name.lower() not in out:
            out.append(name.lower())
    return out
