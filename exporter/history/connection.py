"""The run history's database: a SQLite file by default, or a PostgreSQL URL. Opening it applies the pending
migrations (``schema_version``) in one transaction; a file that is not a history, or is from a newer
perf-exporter, is refused with a clear error and left as it was."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.config.units import as_libpq_url
from exporter.history.migrations import LATEST, MIGRATIONS
from exporter.secrets import MaskedError, mask_url

BUSY_TIMEOUT_SECONDS = 30.0  # how long a writer waits for another (two benches sharing one history)
MIGRATION_LOCK = 0x70657266  # PostgreSQL advisory lock key of the migrations ("perf")


class HistoryError(MaskedError):
    """A history that cannot be used (missing, corrupted, newer), or a run or baseline that is not in it."""


class HistoryUnusable(HistoryError):
    """The history itself cannot be used: not reachable, not created, corrupted, from a newer perf-exporter, or it
    refused a write. Its own exit code (:attr:`ExitCode.NO_HISTORY`), apart from a run that is not in it."""


def is_url(location: str) -> bool:
    return location.lower().startswith(("postgres://", "postgresql://"))


class Connection:
    """An open history database: a SQLite file or a PostgreSQL URL, its pending migrations applied on opening.
    ``create=False`` (the reading commands) refuses a SQLite file that does not exist."""

    def __init__(self, location: str | Path, create: bool = True) -> None:
        self.location = str(location)
        self.where = mask_url(self.location)
        self.postgres = is_url(self.location)
        self._conn: Any
        if self.postgres:
            import psycopg

            try:
                self._conn = psycopg.connect(as_libpq_url(self.location), connect_timeout=10)
            except psycopg.Error as exc:
                raise HistoryUnusable(f"history {self.where}: cannot connect: {str(exc).strip()}") from None
        else:
            path = Path(self.location)
            if not path.exists():
                if not create:
                    raise HistoryError(f"history {path}: no such file (bench and report runs create it; "
                                       "give --history FILE)")
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise HistoryUnusable(f"history {path}: cannot create its folder: {exc.strerror or exc}") from None
            try:
                # Transactions are explicit (BEGIN IMMEDIATE): the sqlite3 module's own would commit each DDL
                # statement of a migration by itself. Writers wait for each other up to the timeout.
                self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
                self._conn.execute("PRAGMA foreign_keys = ON")
                with contextlib.suppress(sqlite3.Error):  # a file system without shared memory keeps its journal
                    self._conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.Error as exc:
                raise HistoryUnusable(f"history {path}: cannot open: {exc}") from None
        try:
            self._migrate()
        except Exception:
            self.close()
            raise

    def sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self._conn.cursor()
        cur.execute(self.sql(sql), tuple(params))
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.cursor().executemany(self.sql(sql), rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction: every statement in it or none. On PostgreSQL psycopg opens it with the first
        statement; on SQLite it takes the write lock at once, waiting for another writer."""
        if not self.postgres:
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.postgres or self._conn.in_transaction:
                self._conn.rollback()
            raise
        self._conn.commit()

    def errors(self) -> tuple[type[Exception], ...]:
        if self.postgres:
            import psycopg

            return (psycopg.Error,)
        return (sqlite3.Error,)

    def _tables(self) -> set[str]:
        if self.postgres:
            rows = self.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                 "current_schema()").fetchall()
        else:
            rows = self.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}

    def _migrate(self) -> None:
        """Applies the pending migrations in one transaction: all of them or none, whoever else opens the
        history at the same time (SQLite: the write lock; PostgreSQL: an advisory lock)."""
        try:
            with self._transaction():
                if self.postgres:
                    self.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                self._apply_migrations()
        except HistoryError:
            raise
        except self.errors() as exc:
            raise HistoryUnusable(f"history {self.where}: not a perf-exporter history ({str(exc).strip()}); "
                                  "nothing was changed") from None

    def _apply_migrations(self) -> None:
        tables = self._tables()
        if "schema_version" not in tables:
            if tables - {"sqlite_sequence"}:
                raise HistoryUnusable(f"history {self.where}: holds tables but no schema_version "
                                      f"({', '.join(sorted(tables)[:5])}): not a perf-exporter history; "
                                      "nothing was changed")
            self.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
        row = self.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        if current > LATEST:
            raise HistoryUnusable(f"history {self.where}: schema version {current} is newer than this perf-exporter "
                                  f"knows ({LATEST}); upgrade perf-exporter")
        serial = "BIGSERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for step in statements:
                if isinstance(step, str):
                    self.execute(step.replace("{serial}", serial))
                else:
                    step(self.execute)
            self.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, now()))

    def schema_version(self) -> int:
        return int(self.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def write(self, what: str) -> Iterator[None]:
        """A write in one transaction; a write the database refuses (full disk, read-only file, lost
        connection) is a :class:`HistoryUnusable` naming what could not be done."""
        try:
            with self._transaction():
                yield
        except self.errors() as exc:
            raise HistoryUnusable(f"history {self.where}: cannot {what}: {str(exc).strip()}") from None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
