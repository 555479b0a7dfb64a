"""The history's schema as numbered migrations; ``schema_version`` holds the ones applied. A migration is never
edited once shipped: a change is a new entry at the end."""

from __future__ import annotations

# (version, statements). ``{serial}`` is the dialect's auto-increment primary key.
MIGRATIONS: list[tuple[int, list[str]]] = [
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
]

LATEST = MIGRATIONS[-1][0]
