"""What ``baseline set``, ``compare``, ``history`` and ``sla`` are given, as runs: a run id from the history,
``latest`` (the newest invocation: every scenario of a ``bench all``), a baseline's name, or report files (a
bench ``<scenario>.json``, a report's ``performance-summary.json``, or a directory of them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exporter.history.runs import Run
from exporter.history.sql import History, HistoryError


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise HistoryError(f"{path}: not JSON ({exc})") from None


def run_of_file(path: Path) -> Run | None:
    """A report file as a run (not stored), read validated by the command that writes it; None for a JSON file
    that is not a run's report."""
    from exporter.load import history_entry as bench_entry
    from exporter.load.run import RunFileError, looks_like_run, run_of
    from exporter.reports import history_entry as report_entry
    from exporter.reports.model import ReportError
    from exporter.reports.render_json import SCHEMA_SUMMARY

    data = _read(path)
    try:
        if looks_like_run(data):
            return bench_entry.file_run(run_of(data, str(path)), path)
        if isinstance(data, dict) and data.get("$schema") == SCHEMA_SUMMARY:
            api_path = path.parent / "api.json"
            return report_entry.file_run(data, path, _read(api_path) if api_path.exists() else None)
    except (RunFileError, ReportError) as exc:
        raise HistoryError(str(exc)) from None
    return None


def runs_of_path(path: Path) -> list[Run]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.endswith(".k6-summary.json"))
        runs = [r for r in (run_of_file(p) for p in files) if r is not None]
        bench = [r for r in runs if not r.scenario.startswith("report:")]
        found = bench or runs
        if not found:
            raise HistoryError(f"{path}: no run report in it (a bench <scenario>.json or a report's "
                               "performance-summary.json)")
        return found
    run = run_of_file(path)
    if run is None:
        raise HistoryError(f"{path}: not a run report (expected a bench <scenario>.json or a report's "
                           "performance-summary.json)")
    return [run]


def names_a_file(spec: str) -> bool:
    """A run spec that is a path (an existing file, a ``.json`` or anything with a ``/``), not a run id or name."""
    return Path(spec).exists() or spec.endswith(".json") or "/" in spec


def resolve(spec: str | None, history: History | None, default: str) -> list[Run]:
    """``spec`` (or ``default`` when None): an existing path, a run id, ``latest``, or a baseline name."""
    text = spec if spec is not None else default
    path = Path(text)
    if spec is not None and names_a_file(spec):
        if not path.exists():
            raise HistoryError(f"{path}: no such file or directory")
        return runs_of_path(path)
    if history is None:
        raise HistoryError(f"{text!r} names a run in the history, and there is none (give --history FILE)")
    if text.isdigit():
        return [history.run(int(text))]
    if text == "latest":
        return history.latest()
    return history.baseline(text)
