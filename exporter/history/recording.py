"""Storing runs: the one call ``bench`` and ``report`` each make at their end (:func:`store`, given the runs and
the history's location), and the metadata every run carries (commit, branch, machine, config hash). Each command
turns its own result into :class:`~exporter.history.runs.Run` values (``load/history_entry.py``,
``reports/history_entry.py``); the history reads nothing else."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from exporter.history.runs import Run
from exporter.history.sql import History, HistoryError

HISTORY_FILE = "history.sqlite"


def history_location(explicit: str | None, out: Path) -> str:
    """``--history`` if given, else ``history.sqlite`` in the run's ``--out`` (``./reports/`` by default)."""
    return explicit if explicit else str(out / HISTORY_FILE)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def git_metadata(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Commit and branch: GitHub Actions' and GitLab CI's variables first (a CI checkout is often detached),
    then ``git`` itself."""
    commit = environ.get("GITHUB_SHA") or environ.get("CI_COMMIT_SHA") or _git("rev-parse", "HEAD")
    branch = (environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME") or environ.get("CI_COMMIT_REF_NAME")
              or _git("rev-parse", "--abbrev-ref", "HEAD"))
    return commit, (None if branch == "HEAD" else branch)


def invocation_id() -> str:
    """One id for every run of one command (``bench all`` stores a run per scenario under it)."""
    return uuid.uuid4().hex[:12]


def machine() -> str:
    return f"{platform.node()} ({platform.system()} {platform.machine()}, {os.cpu_count() or 1} CPUs)"


def config_hash(config: Any) -> str | None:
    """A hash of the config with its secrets masked: two runs with different targets or collectors differ."""
    try:
        from exporter.config.masking import dump_masked

        return hashlib.sha256(dump_masked(config).encode()).hexdigest()[:16]
    except Exception:  # a config the masker cannot dump only loses its hash
        return None


def store(location: str, runs: Sequence[Run], stream: TextIO, command: str) -> bool:
    """Stores the runs, saying where on ``stream``; False (said why) when the history cannot take them."""
    try:
        with History(location) as history:
            where = history.where  # a PostgreSQL URL without its credentials
            for run in runs:
                history.add_run(run)
    except HistoryError as exc:
        stream.write(f"{command}: {exc}\n")
        return False
    stream.write(stored_line(command, where, runs))
    return True


def stored_line(command: str, where: str, runs: Sequence[Run], note: str = "") -> str:
    """``bench: stored in history reports/history.sqlite: run 4 (api, 3 repeats)``; ``note`` ends each run's
    parenthesis (``, interrupted``)."""
    ids = ", ".join(f"{r.id} ({r.scenario}, {len(r.repeats)} repeat{'s' if len(r.repeats) != 1 else ''}{note})"
                    for r in runs)
    return f"{command}: stored in history {where}: run {ids}\n"
