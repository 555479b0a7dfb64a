"""The history's schema as numbered migrations; ``schema_version`` holds the ones applied. A migration is never
edited once shipped: a change is a new entry at the end."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from exporter.history.runs import RepeatVerdict, TargetResult
from exporter.load.stats import number

Execute = Callable[[str, Sequence[Any]], Any]
Step = str | Callable[[Execute], None]


def verdict_of_v1_body(body: Any) -> RepeatVerdict:
    """The verdict a schema-1 repeat's body held, in the shape the commands then wrote: a bench run's
    ``verdict`` and ``windowThresholds``, or a report's ``performance-summary`` rows. Read once, when the history
    is migrated; nothing reads bodies afterwards."""
    if not isinstance(body, dict):
        return RepeatVerdict()
    def part(obj: dict[str, Any], key: str) -> dict[str, Any]:
        value = obj.get(key)
        return value if isinstance(value, dict) else {}

    verdict = part(body, "verdict")
    targets = [TargetResult(str(f.get("key")), str(f.get("text") or f.get("key")), bool(f.get("met")),
                            number(f.get("observed")), number(f.get("limit")), str(f.get("unit") or "ms"))
               for f in verdict.get("findings") or [] if isinstance(f, dict)]
    summary = part(body, "performance-summary")
    for row in summary.get("targets") or []:
        if isinstance(row, dict):
            current = part(row, "current")
            targets.append(TargetResult(str(row.get("key")),
                                        f"{row.get('Metric')}: {row.get('Current')} (target {row.get('Target')})",
                                        row.get("Status") != "missed", number(current.get("value"))))
    windows = [TargetResult(str(w.get("threshold")), str(w.get("threshold")), bool(w.get("held")))
               for w in body.get("windowThresholds") or [] if isinstance(w, dict)]
    status = str(verdict.get("status") or summary.get("status") or "")
    return RepeatVerdict(status, tuple(str(r) for r in verdict.get("reasons") or []), tuple(targets), tuple(windows))


def _fill_verdicts(execute: Execute) -> None:
    for repeat_id, body in execute("SELECT id, body FROM repeats", ()).fetchall():
        try:
            verdict = verdict_of_v1_body(json.loads(body))
        except ValueError:
            verdict = RepeatVerdict()
        execute("UPDATE repeats SET verdict = ? WHERE id = ?", (msgspec.json.encode(verdict).decode(), repeat_id))


# (version, steps): SQL statements (``{serial}`` is the dialect's auto-increment primary key) or a function given
# the execute of the migration's transaction.
MIGRATIONS: list[tuple[int, list[Step]]] = [
    (1, [
        """CREATE TABLE runs (
            id {serial},
            invocation TEXT NOT NULL,
            kind TEXT NOT NULL,
            scenario TEXT NOT NULL,
            created TEXT NOT NULL,
            git_commit TEXT,
            git_branch TEXT,
            k6_version TEXT,
            config_hash TEXT,
            machine TEXT,
            exit_code INTEGER,
            source TEXT
        )""",
        "CREATE INDEX runs_scenario ON runs (scenario, id)",
        """CREATE TABLE repeats (
            id {serial},
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            summary TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX repeats_run ON repeats (run_id)",
        """CREATE TABLE figures (
            repeat_id INTEGER NOT NULL REFERENCES repeats (id) ON DELETE CASCADE,
            endpoint TEXT NOT NULL,
            metric TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX figures_repeat ON figures (repeat_id)",
        """CREATE TABLE baselines (
            name TEXT PRIMARY KEY,
            run_ids TEXT NOT NULL,
            set_at TEXT NOT NULL
        )""",
    ]),
    (2, [
        "ALTER TABLE repeats ADD COLUMN verdict TEXT",
        _fill_verdicts,
    ]),
    (3, [
        # "running" while a bench stores repeats as they finish; "interrupted" when it was stopped
        "ALTER TABLE runs ADD COLUMN state TEXT NOT NULL DEFAULT 'complete'",
    ]),
]

LATEST = MIGRATIONS[-1][0]
