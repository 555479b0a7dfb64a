"""Reading ``EXPLAIN (FORMAT JSON, VERBOSE)`` output: which tables a plan reads with a sequential scan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SeqScan:
    schema: str
    table: str
    plan_rows: float  # the planner's estimate of the rows the scan returns (after its filter)
    filtered: bool  # the scan has a Filter: it reads the whole table to keep some rows

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The plan's nodes, depth first, without recursion (a plan nests as deep as the query)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        children = current.get("Plans")
        if isinstance(children, list):
            stack.extend(reversed([c for c in children if isinstance(c, dict)]))


def _rows(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def seq_scans(explain: Any) -> list[SeqScan]:
    """Every Seq Scan (parallel ones included) of a plan, in plan order, one per table.

    ``explain`` is what ``EXPLAIN (FORMAT JSON)`` returns: a list holding one object with a ``Plan`` (psycopg
    decodes the json column already; a JSON string is accepted too). InitPlans and SubPlans are children too.
    """
    if isinstance(explain, str):
        try:
            explain = json.loads(explain)
        except ValueError:  # not a plan: nothing to flag
            return []
    documents = explain if isinstance(explain, list) else [explain]
    found: dict[tuple[str, str], SeqScan] = {}
    for document in documents:
        plan = document.get("Plan") if isinstance(document, dict) else None
        if not isinstance(plan, dict):
            continue
        for node in _nodes(plan):
            if node.get("Node Type") != "Seq Scan" or "Relation Name" not in node:
                continue
            key = (str(node.get("Schema", "")), str(node["Relation Name"]))
            if key not in found:
                found[key] = SeqScan(key[0], key[1], _rows(node.get("Plan Rows", 0)), "Filter" in node)
    return list(found.values())
