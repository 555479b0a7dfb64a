"""Index recommendations verified by the planner, as Dexter does: where the database has the hypopg extension,
the statement's generic plan is costed before and after a hypothetical index (``hypopg_create_index``), in a
read-only session that executes nothing (``EXPLAIN`` of a prepared statement, no ``ANALYZE``). Databases
without hypopg are left alone: the report never creates an extension."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from exporter.reports.facts import IndexCheck

_PARAM = re.compile(r"\$(\d+)")


def _cost(plan: Any) -> float:
    document = plan[0] if isinstance(plan, list) else plan
    return float(document["Plan"]["Total Cost"])


def _uses_hypothetical(plan: Any) -> bool:
    text = str(plan)
    return "<" in text and "btree" in text  # hypopg names its indexes <oid>btree_<table>_<column>


def check_index(conninfo: str, statement: str, create_index: str) -> IndexCheck | None:
    """The plan's total cost without and with the index, or None when the database has no hypopg or the
    statement cannot be planned alone."""
    if not statement.lstrip().upper().startswith("SELECT"):
        return None
    params = max((int(n) for n in _PARAM.findall(statement)), default=0)
    hypothetical = create_index.replace(" CONCURRENTLY", "").rstrip(";")
    try:
        with psycopg.connect(conninfo, autocommit=False) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'")
            if cur.fetchone() is None:
                return None
            cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            args = f"({', '.join(['NULL'] * params)})" if params else ""

            def generic_plan(name: str) -> Any:
                # a fresh prepared statement each time: a cached plan would not see the hypothetical index
                cur.execute(f"PREPARE {name} AS {statement}")
                cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{args}")
                row = cur.fetchone()
                cur.execute(f"DEALLOCATE {name}")
                return row[0] if row else None

            before = _cost(generic_plan("perf_exporter_plan_before"))
            cur.execute("SELECT indexrelid FROM hypopg_create_index(%s)", (hypothetical,))
            plan = generic_plan("perf_exporter_plan_after")
            after = _cost(plan)
            cur.execute("SELECT hypopg_reset()")
            conn.rollback()
    except (psycopg.Error, KeyError, TypeError, ValueError, IndexError):
        return None
    return IndexCheck(create_index, before, after, _uses_hypothetical(plan))


def index_checks(commands: Mapping[tuple[str, str], tuple[str, str]], conninfos: Mapping[str, str],
                 ) -> dict[tuple[str, str], IndexCheck]:
    """``commands``: (target, datname) -> (statement text, CREATE INDEX); ``conninfos``: target -> conninfo."""
    out = {}
    for (target, datname), (statement, command) in commands.items():
        base = conninfos.get(target)
        if base is None:
            continue
        found = check_index(make_conninfo(base, dbname=datname) if datname else base, statement, command)
        if found is not None:
            out[(target, datname)] = found
    return out
