"""The run history's database: a SQLite file by default, or a PostgreSQL URL. Opening it applies the pending
migrations (``schema_version``); a file that is not a history, or is from a newer perf-exporter, is refused with
a clear error and left as it was."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.history.migrations import LATEST, MIGRATIONS
from exporter.history.runs import Figures, Repeat, Run

DEFAULT_HISTORY = Path("reports") / "history.sqlite"
_RUN_COLUMNS = ("id", "invocation", "kind", "scenario", "created", "git_commit", "git_branch", "k6_version",
                "config_hash", "machine", "exit_code", "source")


class HistoryError(Exception):
    """A history that cannot be used (missing, corrupted, newer), or a run or baseline that is not in it."""


def is_url(location: str) -> bool:
    return location.startswith(("postgres://", "postgresql://"))


def _masked(location: str) -> str:
    if not is_url(location) or "@" not in location:
        return location
    scheme, rest = location.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


class History:
    """One open history. ``create=False`` (the reading commands) refuses a SQLite file that does not exist."""

    def __init__(self, location: str | Path, create: bool = True) -> None:
        self.location = str(location)
        self.where = _masked(self.location)
        self.postgres = is_url(self.location)
        self._conn: Any
        if self.postgres:
            import psycopg

            try:
                self._conn = psycopg.connect(self.location, connect_timeout=10)
            except psycopg.Error as exc:
                raise HistoryError(f"history {self.where}: cannot connect: {str(exc).strip()}") from None
        else:
            path = Path(self.location)
            if not path.exists():
                if not create:
                    raise HistoryError(f"history {path}: no such file (bench and report runs create it; "
                                       "give --history FILE)")
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path)
            self._conn.execute("PRAGMA foreign_keys = ON")
        try:
            self._migrate()
        except Exception:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self._conn.cursor()
        cur.execute(self._sql(sql), tuple(params))
        return cur

    def _errors(self) -> tuple[type[Exception], ...]:
        if self.postgres:
            import psycopg

            return (psycopg.Error,)
        return (sqlite3.Error,)

    def _tables(self) -> set[str]:
        if self.postgres:
            rows = self._execute("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                 "current_schema()").fetchall()
        else:
            rows = self._execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}

    def _migrate(self) -> None:
        try:
            tables = self._tables()
        except self._errors() as exc:
            raise HistoryError(f"history {self.where}: not a perf-exporter history ({str(exc).strip()}); "
                               "nothing was changed") from None
        if "schema_version" not in tables:
            if tables - {"sqlite_sequence"}:
                raise HistoryError(f"history {self.where}: holds tables but no schema_version "
                                   f"({', '.join(sorted(tables)[:5])}): not a perf-exporter history; "
                                   "nothing was changed")
            self._execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
        try:
            row = self._execute("SELECT max(version) FROM schema_version").fetchone()
        except self._errors() as exc:
            self._conn.rollback()
            raise HistoryError(f"history {self.where}: unreadable schema_version ({exc}); nothing was changed"
                               ) from None
        current = int(row[0] or 0)
        if current > LATEST:
            self._conn.rollback()
            raise HistoryError(f"history {self.where}: schema version {current} is newer than this perf-exporter "
                               f"knows ({LATEST}); upgrade perf-exporter")
        serial = "BIGSERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
        try:
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    self._execute(statement.replace("{serial}", serial))
                self._execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, _now()))
            self._conn.commit()
        except self._errors() as exc:
            self._conn.rollback()
            raise HistoryError(f"history {self.where}: migration failed ({exc}); nothing was changed") from None

    def schema_version(self) -> int:
        return int(self._execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------------------------
    def add_run(self, run: Run) -> int:
        """Stores the run and its repeats in one transaction; returns its id (also set on ``run``)."""
        try:
            run_id = self._execute(
                "INSERT INTO runs (invocation, kind, scenario, created, git_commit, git_branch, k6_version, "
                "config_hash, machine, exit_code, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (run.invocation, run.kind, run.scenario, run.created, run.git_commit, run.git_branch,
                 run.k6_version, run.config_hash, run.machine, run.exit_code, run.source)).fetchone()[0]
            for repeat in run.repeats:
                repeat_id = self._execute(
                    "INSERT INTO repeats (run_id, idx, summary, body) VALUES (?, ?, ?, ?) RETURNING id",
                    (run_id, repeat.idx, json.dumps(repeat.summary, default=str),
                     json.dumps(repeat.body, default=str))).fetchone()[0]
                cur = self._conn.cursor()
                cur.executemany(self._sql("INSERT INTO figures (repeat_id, endpoint, metric, value) "
                                          "VALUES (?, ?, ?, ?)"),
                                [(repeat_id, e, m, v) for (e, m), v in sorted(repeat.figures.items())])
            self._conn.commit()
        except self._errors() as exc:
            self._conn.rollback()
            raise HistoryError(f"history {self.where}: cannot store the run: {exc}") from None
        run.id = int(run_id)
        return run.id

    def set_baseline(self, name: str, run_ids: Sequence[int]) -> None:
        self._execute("INSERT INTO baselines (name, run_ids, set_at) VALUES (?, ?, ?) "
                      "ON CONFLICT (name) DO UPDATE SET run_ids = excluded.run_ids, set_at = excluded.set_at",
                      (name, json.dumps(list(run_ids)), _now()))
        self._conn.commit()

    # -- reading ----------------------------------------------------------------------------------------------
    def _runs(self, where: str = "", params: Sequence[Any] = (), repeats: bool = True, bodies: bool = True,
              ) -> list[Run]:
        rows = self._execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs {where} ORDER BY id", params).fetchall()
        runs = [Run(**dict(zip(_RUN_COLUMNS, row, strict=True))) for row in rows]
        if repeats and runs:
            self._fill(runs, bodies)
        return runs

    def _fill(self, runs: Iterable[Run], bodies: bool = True) -> None:
        by_id = {r.id: r for r in runs}
        ids = list(by_id)
        marks = ", ".join("?" for _ in ids)
        body_column = "body" if bodies else "'{}'"  # a trend needs the figures, not every report (and its timeline)
        repeat_rows = self._execute(f"SELECT id, run_id, idx, summary, {body_column} FROM repeats "
                                    f"WHERE run_id IN ({marks}) ORDER BY run_id, idx", ids).fetchall()
        repeats: dict[int, Repeat] = {}
        for rid, run_id, idx, summary, body in repeat_rows:
            repeat = Repeat(int(idx), json.loads(summary), json.loads(body))
            repeats[rid] = repeat
            by_id[run_id].repeats.append(repeat)
        if not repeats:
            return
        marks = ", ".join("?" for _ in repeats)
        for rid, endpoint, metric, value in self._execute(
                f"SELECT repeat_id, endpoint, metric, value FROM figures WHERE repeat_id IN ({marks})",
                list(repeats)).fetchall():
            figures: Figures = repeats[rid].figures
            figures[(endpoint, metric)] = float(value)

    def runs(self, scenario: str | None = None, repeats: bool = True, bodies: bool = True) -> list[Run]:
        if scenario is None:
            return self._runs(repeats=repeats, bodies=bodies)
        return self._runs("WHERE scenario = ?", (scenario,), repeats, bodies)

    def newest_scenario(self) -> str | None:
        row = self._execute("SELECT scenario FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None

    def run(self, run_id: int) -> Run:
        found = self._runs("WHERE id = ?", (run_id,))
        if not found:
            raise HistoryError(f"history {self.where}: no run {run_id}")
        return found[0]

    def invocation(self, invocation: str) -> list[Run]:
        return self._runs("WHERE invocation = ?", (invocation,))

    def latest(self, kinds: Sequence[str] = ("bench", "report", "file")) -> list[Run]:
        """The runs of the newest invocation (``bench all`` stores one run per scenario under one invocation)."""
        marks = ", ".join("?" for _ in kinds)
        row = self._execute(f"SELECT invocation FROM runs WHERE kind IN ({marks}) ORDER BY id DESC LIMIT 1",
                            kinds).fetchone()
        if row is None:
            raise HistoryError(f"history {self.where}: holds no run yet")
        return self.invocation(row[0])

    def latest_of(self, scenarios: Sequence[str], exclude: Sequence[int]) -> list[Run]:
        """The runs of the newest invocation that ran one of ``scenarios`` (other than the runs ``exclude``): what
        a baseline is compared with by default, so a report run stored after a bench does not stand in for it."""
        marks = ", ".join("?" for _ in scenarios)
        rows = self._execute(f"SELECT id, invocation FROM runs WHERE scenario IN ({marks}) ORDER BY id DESC",
                             list(scenarios)).fetchall()
        for run_id, invocation in rows:
            if int(run_id) not in exclude:
                return [r for r in self.invocation(invocation) if r.id not in exclude]
        raise HistoryError(f"history {self.where}: no run of {', '.join(scenarios)} since the baseline: run bench "
                           "again, or name the run to compare")

    def baseline(self, name: str) -> list[Run]:
        row = self._execute("SELECT run_ids FROM baselines WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r[0] for r in self._execute("SELECT name FROM baselines ORDER BY name").fetchall()]
            known = f" (baselines: {', '.join(names)})" if names else " (none set yet: perf-exporter baseline set)"
            raise HistoryError(f"history {self.where}: no baseline {name!r}{known}")
        ids = [int(i) for i in json.loads(row[0])]
        marks = ", ".join("?" for _ in ids)
        return self._runs(f"WHERE id IN ({marks})", ids)

    def baseline_names(self) -> list[str]:
        return [r[0] for r in self._execute("SELECT name FROM baselines ORDER BY name").fetchall()]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
