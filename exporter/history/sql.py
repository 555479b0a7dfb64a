"""The run history: runs (one scenario of one invocation, each with its repeats, their figures and verdicts) and
named baselines, in the database of :mod:`exporter.history.connection`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from exporter.exit_codes import ExitCode
from exporter.history.connection import Connection, HistoryError, HistoryUnusable, is_url, now
from exporter.history.runs import Figures, Repeat, RepeatVerdict, Run

__all__ = ["DEFAULT_HISTORY", "History", "HistoryError", "HistoryUnusable", "exit_code_of", "is_url"]

DEFAULT_HISTORY = Path("reports") / "history.sqlite"
_RUN_COLUMNS = ("id", "invocation", "kind", "scenario", "created", "git_commit", "git_branch", "k6_version",
                "config_hash", "machine", "exit_code", "source", "state")


class History:
    """The runs and baselines of one history (:class:`Connection`)."""

    def __init__(self, location: str | Path, create: bool = True) -> None:
        self.db = Connection(location, create)
        self.where = self.db.where
        self.postgres = self.db.postgres

    def schema_version(self) -> int:
        return self.db.schema_version()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------------------------
    def _insert_repeat(self, run_id: int, repeat: Repeat) -> None:
        repeat_id = self.db.execute(
            "INSERT INTO repeats (run_id, idx, summary, body, verdict) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (run_id, repeat.idx, json.dumps(repeat.summary, default=str), json.dumps(repeat.body, default=str),
             msgspec.json.encode(repeat.verdict).decode())).fetchone()[0]
        self.db.executemany("INSERT INTO figures (repeat_id, endpoint, metric, value) VALUES (?, ?, ?, ?)",
                            [(repeat_id, e, m, v) for (e, m), v in sorted(repeat.figures.items())])

    def add_run(self, run: Run) -> int:
        """Stores the run and the repeats it has so far in one transaction; returns its id (also set on
        ``run``)."""
        with self.db.write("store the run"):
            run_id = self.db.execute(
                "INSERT INTO runs (invocation, kind, scenario, created, git_commit, git_branch, k6_version, "
                "config_hash, machine, exit_code, source, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                (run.invocation, run.kind, run.scenario, run.created, run.git_commit, run.git_branch,
                 run.k6_version, run.config_hash, run.machine, run.exit_code, run.source, run.state)).fetchone()[0]
            for repeat in run.repeats:
                self._insert_repeat(run_id, repeat)
        run.id = int(run_id)
        return run.id

    def add_repeat(self, run: Run, repeat: Repeat) -> None:
        """One more repeat of a stored run, kept the moment it finished."""
        assert run.id is not None
        with self.db.write("store the repeat"):
            self._insert_repeat(run.id, repeat)
        run.repeats.append(repeat)

    def finish(self, run: Run, exit_code: int, state: str) -> None:
        """The run's exit code and whether it completed or was interrupted."""
        assert run.id is not None
        with self.db.write("finish the run"):
            self.db.execute("UPDATE runs SET exit_code = ?, state = ? WHERE id = ?", (exit_code, state, run.id))
        run.exit_code, run.state = exit_code, state

    def set_baseline(self, name: str, run_ids: Sequence[int]) -> None:
        with self.db.write("set the baseline"):
            self.db.execute("INSERT INTO baselines (name, run_ids, set_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (name) DO UPDATE SET run_ids = excluded.run_ids, set_at = excluded.set_at",
                          (name, json.dumps(list(run_ids)), now()))

    # -- reading ----------------------------------------------------------------------------------------------
    def _runs(self, where: str = "", params: Sequence[Any] = (), repeats: bool = True, bodies: bool = True,
              ) -> list[Run]:
        rows = self.db.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs {where} ORDER BY id", params).fetchall()
        runs = [Run(**dict(zip(_RUN_COLUMNS, row, strict=True))) for row in rows]
        if repeats and runs:
            self._fill(runs, bodies)
        return runs

    def _fill(self, runs: Iterable[Run], bodies: bool = True) -> None:
        by_id = {r.id: r for r in runs}
        ids = list(by_id)
        marks = ", ".join("?" for _ in ids)
        body_column = "body" if bodies else "'{}'"  # a trend needs the figures, not every report (and its timeline)
        repeat_rows = self.db.execute(f"SELECT id, run_id, idx, summary, {body_column}, verdict FROM repeats "
                                    f"WHERE run_id IN ({marks}) ORDER BY run_id, idx", ids).fetchall()
        repeats: dict[int, Repeat] = {}
        for rid, run_id, idx, summary, body, verdict in repeat_rows:
            repeat = Repeat(int(idx), json.loads(summary), json.loads(body), {}, _verdict(verdict, self.where))
            repeats[rid] = repeat
            by_id[run_id].repeats.append(repeat)
        if not repeats:
            return
        marks = ", ".join("?" for _ in repeats)
        for rid, endpoint, metric, value in self.db.execute(
                f"SELECT repeat_id, endpoint, metric, value FROM figures WHERE repeat_id IN ({marks})",
                list(repeats)).fetchall():
            figures: Figures = repeats[rid].figures
            figures[(endpoint, metric)] = float(value)

    def runs(self, scenario: str | None = None, repeats: bool = True, bodies: bool = True) -> list[Run]:
        if scenario is None:
            return self._runs(repeats=repeats, bodies=bodies)
        return self._runs("WHERE scenario = ?", (scenario,), repeats, bodies)

    def newest_scenario(self) -> str | None:
        row = self.db.execute("SELECT scenario FROM runs ORDER BY id DESC LIMIT 1").fetchone()
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
        row = self.db.execute(f"SELECT invocation FROM runs WHERE kind IN ({marks}) ORDER BY id DESC LIMIT 1",
                            kinds).fetchone()
        if row is None:
            raise HistoryError(f"history {self.where}: holds no run yet")
        return self.invocation(row[0])

    def latest_of(self, scenarios: Sequence[str], exclude: Sequence[int]) -> list[Run]:
        """The runs of the newest invocation that ran one of ``scenarios`` (other than the runs ``exclude``): what
        a baseline is compared with by default, so a report run stored after a bench does not stand in for it."""
        marks = ", ".join("?" for _ in scenarios)
        rows = self.db.execute(f"SELECT id, invocation FROM runs WHERE scenario IN ({marks}) ORDER BY id DESC",
                             list(scenarios)).fetchall()
        for run_id, invocation in rows:
            if int(run_id) not in exclude:
                return [r for r in self.invocation(invocation) if r.id not in exclude]
        raise HistoryError(f"history {self.where}: no run of {', '.join(scenarios)} since the baseline: run bench "
                           "again, or name the run to compare")

    def baseline(self, name: str) -> list[Run]:
        row = self.db.execute("SELECT run_ids FROM baselines WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = self.baseline_names()
            known = f" (baselines: {', '.join(names)})" if names else " (none set yet: perf-exporter baseline set)"
            raise HistoryError(f"history {self.where}: no baseline {name!r}{known}")
        ids = [int(i) for i in json.loads(row[0])]
        marks = ", ".join("?" for _ in ids)
        return self._runs(f"WHERE id IN ({marks})", ids)

    def baseline_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM baselines ORDER BY name").fetchall()]


def exit_code_of(error: HistoryError) -> ExitCode:
    """:attr:`ExitCode.NO_HISTORY` for a history that cannot be used; :attr:`ExitCode.NOT_RUN` for a run or
    baseline that is not in it."""
    return ExitCode.NO_HISTORY if isinstance(error, HistoryUnusable) else ExitCode.NOT_RUN


def _verdict(text: str | None, where: str) -> RepeatVerdict:
    try:
        return msgspec.json.decode(text or "{}", type=RepeatVerdict)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise HistoryError(f"history {where}: a repeat's verdict is not readable ({exc})") from None
