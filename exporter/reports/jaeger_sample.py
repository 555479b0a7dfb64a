"""Sample traces from Jaeger's v1 query API, read to tell a serial group's children apart: a cache-aside read
(GET, the data store, SET of the same key) or a read then a write of one table cannot run side by side, and the
serial-siblings counters alone cannot say which a group is (:func:`exporter.reports.recommendations.chain_kind`
decides from the children this module decodes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from exporter.reports.facts import ChildSpan, SerialGroup, statement_tables

SAMPLE_TRACES = 5
SAMPLED_GROUPS = 5  # the groups with the most saving get a sample; the rest stay "unknown"


def _tags(span: Mapping[str, Any]) -> dict[str, Any]:
    return {str(t.get("key")): t.get("value") for t in span.get("tags") or [] if isinstance(t, dict)}


def children_of(trace: Mapping[str, Any], service: str, operation: str) -> list[ChildSpan] | None:
    """The children of the ``service``/``operation`` span with the most children in one v1 trace, or None."""
    processes = {k: (v or {}).get("serviceName", "") for k, v in (trace.get("processes") or {}).items()}
    spans = [s for s in trace.get("spans") or [] if isinstance(s, dict)]
    kids: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        for ref in span.get("references") or []:
            if ref.get("refType") == "CHILD_OF" and ref.get("spanID"):
                kids.setdefault(str(ref["spanID"]), []).append(span)
    best: list[dict[str, Any]] | None = None
    for span in spans:
        if span.get("operationName") == operation and processes.get(span.get("processID", "")) == service:
            found = kids.get(str(span.get("spanID")), [])
            if best is None or len(found) > len(best):
                best = found
    if not best:
        return None
    out = []
    for child in best:
        tags = _tags(child)
        statement = str(tags.get("db.statement") or "")
        command = str(tags.get("db.operation") or (statement.split(None, 1)[0] if statement else ""))
        key = str(tags.get("db.redis.key") or next(iter(statement_tables(statement)), ""))
        out.append(ChildSpan(str(child.get("operationName", "")), str(tags.get("db.system") or ""),
                             command.upper(), key, int(child.get("startTime") or 0)))
    return out


def sample_children(client: httpx.Client, url: str, group: SerialGroup, start: float,
                    end: float) -> tuple[ChildSpan, ...] | None:
    """One sample of the group's children from traces of the window; None when Jaeger has none or fails."""
    try:
        response = client.get(f"{url.rstrip('/')}/api/traces", params={
            "service": group.service, "operation": group.operation, "limit": SAMPLE_TRACES,
            "start": int(start * 1e6), "end": int(end * 1e6)})
        data = response.json().get("data") or []
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    best: list[ChildSpan] | None = None
    for trace in data:
        if isinstance(trace, dict):
            found = children_of(trace, group.service, group.operation)
            if found and (best is None or len(found) > len(best)):
                best = found
    return tuple(best) if best and len(best) >= 2 else None


def with_samples(groups: Sequence[SerialGroup], url: str | None, start: float, end: float,
                 timeout: float = 5.0) -> tuple[SerialGroup, ...]:
    """The groups, the top ones by saving with a sample of their children when Jaeger answers."""
    if not url or not groups:
        return tuple(groups)
    ranked = sorted(groups, key=lambda g: -g.saving_s)
    sampled = {id(g) for g in ranked[:SAMPLED_GROUPS]}
    out = []
    with httpx.Client(timeout=timeout) as client:
        for g in groups:
            sample = sample_children(client, url, g, start, end) if id(g) in sampled else None
            out.append(SerialGroup(g.service, g.operation, g.children, g.saving_s, sample) if sample else g)
    return tuple(out)
