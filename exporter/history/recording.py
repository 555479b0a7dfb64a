"""The one call ``bench`` and ``report`` each make at their end: store the run (every repeat) in the history,
and for ``bench``, judge ``--window-threshold`` over each repeat's time series first."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from exporter.history.database import History, HistoryError
from exporter.history.runs import Repeat, Run, bench_figures, report_figures

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


def machine() -> str:
    return f"{platform.node()} ({platform.system()} {platform.machine()}, {os.cpu_count() or 1} CPUs)"


def config_hash(config: Any) -> str | None:
    """A hash of the config with its secrets masked: two runs with different targets or collectors differ."""
    try:
        from exporter.config.masking import dump_masked

        return hashlib.sha256(dump_masked(config).encode()).hexdigest()[:16]
    except Exception:  # a config the masker cannot dump only loses its hash
        return None


def bench_runs(bodies: Sequence[Mapping[str, Any]], exit_code: int, config: Any, version: str,
               environ: Mapping[str, str]) -> list[Run]:
    """One :class:`Run` per scenario, its repeats in order."""
    commit, branch = git_metadata(environ)
    invocation = uuid.uuid4().hex[:12]
    runs: dict[str, Run] = {}
    for body in bodies:
        name = str(body.get("scenario"))
        run = runs.get(name)
        if run is None:
            run = runs[name] = Run(None, invocation, "bench", name, str(body.get("timestamp")), commit, branch,
                                   version, config_hash(config), machine(), exit_code, body.get("file"))
        summary = dict(body.get("summary") or {})
        stored = {k: v for k, v in body.items() if k != "file"}
        run.repeats.append(Repeat(len(run.repeats) + 1, summary, stored, bench_figures(body)))
    return list(runs.values())


def _store(location: str, runs: Sequence[Run], stream: TextIO, command: str) -> bool:
    try:
        with History(location) as history:
            where = history.where  # a PostgreSQL URL without its credentials
            for run in runs:
                history.add_run(run)
    except HistoryError as exc:
        stream.write(f"{command}: {exc}\n")
        return False
    ids = ", ".join(f"{r.id} ({r.scenario}, {len(r.repeats)} repeat{'s' if len(r.repeats) != 1 else ''})"
                    for r in runs)
    stream.write(f"{command}: stored in history {where}: run {ids}\n")
    return True


def window_findings(bodies: Sequence[dict[str, Any]], thresholds: Sequence[Any], stream: TextIO) -> bool:
    """Judges each window threshold over each repeat's ``timeline``; the breaches go into the report body
    (``windowThresholds``) and on the terminal. True if any window broke one."""
    from exporter.load.window_thresholds import breaches

    broken = False
    for i, body in enumerate(bodies):
        results = []
        for threshold in thresholds:
            found = breaches(threshold, body.get("timeline") or [])
            results.append({"threshold": threshold.text, "held": not found,
                            "breaches": [{"start": b.start, "end": b.end, "value": b.value, "text": b.text}
                                         for b in found]})
            for b in found:
                stream.write(f"bench: {body.get('scenario')} (repeat {i + 1}): {b.text}\n")
            broken = broken or bool(found)
        body["windowThresholds"] = results
    return broken


def record_bench(options: Any, bodies: Sequence[dict[str, Any]], exit_code: int, config: Any, version: str) -> int:
    """Called once by ``bench`` after every scenario and repeat ran: window thresholds, then the history.
    Returns the run's exit code: 1 when a window broke a threshold, 3 when the history could not be written."""
    from exporter.json_file import write_json
    from exporter.load.verdict import EXIT_MISSED, EXIT_NOT_RUN, combined_exit_code

    stream = options.stream
    thresholds = getattr(options, "window_thresholds", None) or []
    if thresholds and bodies:
        if window_findings(list(bodies), thresholds, stream):
            exit_code = combined_exit_code([exit_code, EXIT_MISSED])
        last = {str(b.get("scenario")): b for b in bodies}  # each scenario's file holds its last repeat
        for body in last.values():
            if body.get("file"):
                write_json(Path(str(body["file"])), {k: v for k, v in body.items() if k != "file"})
    if getattr(options, "keep_history", True) and bodies:
        location = history_location(getattr(options, "history", None), options.out)
        if not _store(location, bench_runs(bodies, exit_code, config, version, os.environ), stream, "bench"):
            exit_code = combined_exit_code([exit_code, EXIT_NOT_RUN])
    return exit_code


def report_run(report: Any, exit_code: int, config: Any, environ: Mapping[str, str]) -> Run:
    from exporter.reports.render_json import json_files

    files = json_files(report)
    summary = files["performance-summary.json"]
    commit, branch = git_metadata(environ)
    kind = report.observed.source_kind
    body = {"performance-summary": summary, "api": files.get("api.json")}
    return Run(None, uuid.uuid4().hex[:12], "report", f"report:{kind}", str(summary.get("timestamp")), commit,
               branch, None, config_hash(config), machine(), exit_code, report.observed.source_where,
               [Repeat(1, dict(summary.get("summaries") or {}), body,
                       report_figures(summary, files.get("api.json")))])


def record_report(options: Any, report: Any, exit_code: int, config: Any) -> int:
    """Called once by ``report`` after its files are written; returns its exit code (3 if the history could not
    be written)."""
    if not getattr(options, "keep_history", True):
        return exit_code
    location = history_location(getattr(options, "history", None), options.out)
    run = report_run(report, exit_code, config, os.environ)
    return exit_code if _store(location, [run], options.stream, "report") else 3
