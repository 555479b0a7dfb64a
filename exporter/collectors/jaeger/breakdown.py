"""Where one trace's time went: its critical path split into components, for attributing an endpoint's excess
latency to causes (:mod:`exporter.reports.attribution`).

A **component** is a span's own time on the critical path, classified by what the span is:

- ``pool``: waiting for a database connection (a span with ``db.client.connection.pool.name``);
- ``cache``: a call to a cache (``db.system`` redis, valkey or memcached);
- ``db``: a call to any other database (``db.system`` set), with its statement normalised
  (:func:`normalize_statement`) so that calls of one statement count together;
- ``self``: any other span's own work (a service's code), by service and operation;
- ``serial``: time on the path only because a span called other services one after another. Under one parent,
  its *remote* children (spans without ``db.system`` that belong to another service or are ``client`` calls)
  are grouped into waves as :func:`exporter.collectors.jaeger.traces.serial_waves` does; with two or more waves, the
  path's time inside every wave but the longest goes to ``serial`` (parent service, parent operation): run side
  by side, the parent would have waited for the longest wave only. Database and cache calls are never counted
  here: one after another is how a cache-aside read or one query per item runs, and what they need is not a
  parallel run.

Besides the path: the calls of each component (spans, on the path or not), the result of each cache read
(``hit``, or a miss that the trace then ``filled`` with a write of the same key or left ``unfilled``), the TTLs
the trace's cache writes set, and the services where errors started (an error span with no error span below it).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha1
from typing import TYPE_CHECKING, Any

from exporter.collectors.postgres.scrub import scrub_statement

if TYPE_CHECKING:
    from exporter.collectors.jaeger.traces import Span

SELF, DB, CACHE, POOL, SERIAL = "self", "db", "cache", "pool", "serial"
CACHE_SYSTEMS = frozenset({"redis", "valkey", "memcached"})
CACHE_READS = frozenset({"GET", "MGET", "HGET", "HGETALL", "HMGET", "GETEX"})
CACHE_WRITES = frozenset({"SET", "SETEX", "PSETEX", "MSET", "HSET", "SETNX"})
HIT, MISS_FILLED, MISS_UNFILLED = "hit", "miss_filled", "miss_unfilled"
STATEMENT_CHARS = 200  # a normalised statement is kept to this many characters


@dataclass(frozen=True, slots=True, order=True)
class Component:
    service: str
    kind: str
    operation: str
    statement: str = ""  # the normalised statement of a db call


@dataclass(frozen=True, slots=True)
class CacheRead:
    service: str
    operation: str
    result: str


@dataclass(slots=True)
class Breakdown:
    root_service: str
    root_operation: str
    duration: int  # the root span's, µs: the path's components add up to it
    path: dict[Component, int] = field(default_factory=dict)  # µs on the critical path
    calls: dict[Component, int] = field(default_factory=dict)  # spans, on the path or not
    cache_reads: dict[CacheRead, int] = field(default_factory=dict)
    cache_ttls: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (service, operation) -> TTLs, s
    error_origins: dict[str, int] = field(default_factory=dict)  # service -> error spans that started an error


# ---------------------------------------------------------------------------------------------------------------
# Statements

_PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|%s|(?<![:\w]):\w+|\?")
_LITERAL = re.compile(r"'(?:[^']|'')*'?|\b\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")


def normalize_statement(text: str) -> str:
    """A statement's shape, the same whatever placeholder style or constants a client used: literals and
    placeholders (``$1``, ``%s``, ``%(name)s``, ``:name``, ``?``) become ``?``, white space is folded, letters are
    lower case, cut to STATEMENT_CHARS. pg_stat_statements' ``... WHERE id = $1`` and a span's
    ``... WHERE id = %s`` normalise alike. Literals of every quoting kind and credentials in URLs are scrubbed
    first (:func:`exporter.collectors.postgres.scrub.scrub_statement`): the text becomes a label."""
    shape = _PLACEHOLDER.sub("?", scrub_statement(text))
    shape = _LITERAL.sub("?", shape)
    return _SPACE.sub(" ", shape).strip().rstrip(";").strip().lower()[:STATEMENT_CHARS]


def statement_fingerprint(normalized: str) -> str:
    """A short, stable name for a normalised statement (a label value of bounded size)."""
    return sha1(normalized.encode()).hexdigest()[:16] if normalized else ""


# ---------------------------------------------------------------------------------------------------------------
# One span


def _tags(span: Span) -> Mapping[str, Any]:
    return span.tags or {}


def _command(span: Span) -> str:
    tags = _tags(span)
    command = tags.get("db.operation")
    if not command:
        statement = str(tags.get("db.statement") or span.operation)
        command = statement.split(None, 1)[0] if statement.strip() else ""
    return str(command).upper()


def _key(span: Span) -> str:
    tags = _tags(span)
    key = tags.get("db.redis.key")
    if key:
        return str(key)
    words = str(tags.get("db.statement") or "").split()
    return words[1] if len(words) > 1 else ""


_TTL = re.compile(r"\b(EX|PX)\s+(\d+)", re.IGNORECASE)


def _ttl_seconds(span: Span) -> int | None:
    statement = str(_tags(span).get("db.statement") or "")
    match = _TTL.search(statement)
    if match:
        value = int(match.group(2))
        return value if match.group(1).upper() == "EX" else max(1, value // 1000)
    words = statement.split()
    if len(words) > 2 and words[0].upper() == "SETEX" and words[2].isdigit():
        return int(words[2])
    return None


def component_of(span: Span) -> Component:
    tags = _tags(span)
    if tags.get("db.client.connection.pool.name") is not None:
        return Component(span.service, POOL, span.operation)
    system = str(tags.get("db.system") or "").lower()
    if system in CACHE_SYSTEMS:
        return Component(span.service, CACHE, span.operation)
    if system:
        return Component(span.service, DB, span.operation, normalize_statement(str(tags.get("db.statement") or "")))
    return Component(span.service, SELF, span.operation)


def _is_remote_call(child: Span, parent: Span) -> bool:
    """A call into another service: not a database or cache call, and of another service or a client span."""
    tags = _tags(child)
    if tags.get("db.system") or tags.get("db.client.connection.pool.name") is not None:
        return False
    return child.service != parent.service or str(tags.get("span.kind") or "").lower() == "client"


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


# ---------------------------------------------------------------------------------------------------------------
# The trace


Clipped = tuple[int, int, "Span"]
Segment = tuple[int, int, "Span"]


def waves(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``intervals`` (start, end), in any order, grouped into waves by start: one that starts before the current
    wave's end joins it (and may extend it), any other opens the next wave. The waves' (start, end), in order."""
    found: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if not found or start >= found[-1][1]:
            found.append((start, end))
        elif end > found[-1][1]:
            found[-1] = (found[-1][0], end)
    return found


def _serial_intervals(spans_by_id: Mapping[str, Span], kids: Mapping[str, list[Clipped]]) -> list[
        tuple[int, int, Component]]:
    """The stretches of time that remote calls run one after another add to their parent (every wave but the
    longest), outermost only: a stretch inside another is already counted by it."""
    found: list[tuple[int, int, Component]] = []
    for parent_id, children in kids.items():
        parent = spans_by_id.get(parent_id)
        if parent is None:
            continue
        remote = [(s, e) for s, e, child in children if _is_remote_call(child, parent)]
        if len(remote) < 2:
            continue
        grouped = waves(remote)
        if len(grouped) < 2:
            continue
        longest = max(range(len(grouped)), key=lambda i: grouped[i][1] - grouped[i][0])
        label = Component(parent.service, SERIAL, parent.operation)
        found.extend((start, end, label) for i, (start, end) in enumerate(grouped) if i != longest)
    found.sort(key=lambda x: (x[0], -x[1]))
    outermost: list[tuple[int, int, Component]] = []
    for interval in found:
        if outermost and interval[1] <= outermost[-1][1]:
            continue
        outermost.append(interval)
    return outermost


def _path(segments: Sequence[Segment], serial: list[tuple[int, int, Component]],
          components: dict[str, Component]) -> dict[Component, int]:
    path: dict[Component, int] = {}
    starts = [s for s, _, _ in serial]
    for lo, hi, span in segments:
        own = components[span.span_id]
        i = max(0, bisect_right(starts, lo) - 1)
        at = lo
        while at < hi and i < len(serial):
            s_start, s_end, label = serial[i]
            if s_end <= at:
                i += 1
                continue
            if s_start >= hi:
                break
            if s_start > at:
                path[own] = path.get(own, 0) + (s_start - at)
                at = s_start
            cut = min(hi, s_end)
            path[label] = path.get(label, 0) + (cut - at)
            at = cut
            i += 1
        if hi > at:
            path[own] = path.get(own, 0) + (hi - at)
    return path


def _cache_reads(spans: Sequence[Span], children: Mapping[str, list[Span]], components: dict[str, Component],
                 ) -> dict[CacheRead, int]:
    writes: dict[str, list[int]] = {}  # key -> start of each write
    for span in spans:
        if components[span.span_id].kind == CACHE and _command(span) in CACHE_WRITES:
            writes.setdefault(_key(span), []).append(span.start)
    out: dict[CacheRead, int] = {}
    for span in spans:
        if components[span.span_id].kind != CACHE or _command(span) not in CACHE_READS:
            continue
        hit = _as_bool(_tags(span).get("cache.hit"))
        if hit is None:  # no tag: a miss when the same parent then reads a database
            siblings = children.get(span.parent_id or "", [])
            hit = not any(components[s.span_id].kind == DB and s.start >= span.start + span.duration
                          and _command(s) == "SELECT" for s in siblings)
        if hit:
            result = HIT
        else:
            key = _key(span)
            filled = any(start >= span.start for start in writes.get(key, ())) if key else False
            result = MISS_FILLED if filled else MISS_UNFILLED
        read = CacheRead(span.service, span.operation, result)
        out[read] = out.get(read, 0) + 1
    return out


def _error_origins(spans: Sequence[Span], by_id: Mapping[str, Span]) -> dict[str, int]:
    below: set[str] = set()  # spans with an error span somewhere below them
    for span in spans:
        if not span.error:
            continue
        parent_id = span.parent_id
        while parent_id is not None and parent_id not in below:
            below.add(parent_id)
            parent = by_id.get(parent_id)
            parent_id = parent.parent_id if parent is not None else None
    out: dict[str, int] = {}
    for span in spans:
        if span.error and span.span_id not in below:
            out[span.service] = out.get(span.service, 0) + 1
    return out


def breakdown_of(root: Span, spans: Sequence[Span], children: Mapping[str, list[Span]],
                 kids: Mapping[str, list[Clipped]], segments: Sequence[Segment]) -> Breakdown:
    """The breakdown of one analysed trace: ``children`` are the raw ``CHILD_OF`` children by parent ID,
    ``kids`` the clipped ones, ``segments`` the critical path (see
    :func:`exporter.collectors.jaeger.traces.analyse`)."""
    by_id = {span.span_id: span for span in spans}
    components = {span.span_id: component_of(span) for span in spans}
    calls: dict[Component, int] = {}
    ttls: dict[tuple[str, str], list[int]] = {}
    for span in spans:
        component = components[span.span_id]
        calls[component] = calls.get(component, 0) + 1
        if component.kind == CACHE and _command(span) in CACHE_WRITES:
            ttl = _ttl_seconds(span)
            if ttl is not None:
                ttls.setdefault((span.service, span.operation), []).append(ttl)
    path = _path(segments, _serial_intervals(by_id, kids), components)
    return Breakdown(root.service, root.operation, root.duration, path, calls,
                     _cache_reads(spans, children, components), ttls, _error_origins(spans, by_id))
