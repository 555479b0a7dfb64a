"""What ``baseline set``, ``compare``, ``history`` and ``sla`` are given, as runs: a run id from the history,
``latest`` (the newest invocation: every scenario of a ``bench all``), a baseline's name, or report files (a
bench ``<scenario>.json``, a report's ``performance-summary.json``, or a directory of them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exporter.history.database import History, HistoryError
from exporter.history.runs import Repeat, Run, bench_figures, report_figures

SUMMARY_SCHEMA = "https://perf-exporter.tripo04os/schema/performance-summary.json"


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise HistoryError(f"{path}: not JSON ({exc})") from None


def run_of_file(path: Path) -> Run | None:
    """A report file as a run (not stored); None for a JSON file that is not a run's report."""
    data = _read(path)
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("scenario"), str) and isinstance(data.get("measured"), dict):
        return Run(None, f"file:{path}", "file", data["scenario"], str(data.get("timestamp")),
                   k6_version=data.get("k6"), source=str(path),
                   repeats=[Repeat(1, dict(data.get("summary") or {}), data, bench_figures(data))])
    if data.get("$schema") == SUMMARY_SCHEMA:
        api_path = path.parent / "api.json"
        api = _read(api_path) if api_path.exists() else None
        kind = (data.get("source") or {}).get("kind", "report")
        return Run(None, f"file:{path}", "file", f"report:{kind}", str(data.get("timestamp")), source=str(path),
                   repeats=[Repeat(1, dict(data.get("summaries") or {}),
                                   {"performance-summary": data, "api": api}, report_figures(data, api))])
    return None


def runs_of_path(path: Path) -> list[Run]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.endswith(".k6-summary.json"))
        runs = [r for r in (run_of_file(p) for p in files) if r is not None and r.kind == "file"]
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


def resolve(spec: str | None, history: History | None, default: str) -> list[Run]:
    """``spec`` (or ``default`` when None): an existing path, a run id, ``latest``, or a baseline name."""
    text = spec if spec is not None else default
    path = Path(text)
    if spec is not None and (path.exists() or text.endswith(".json") or "/" in text):
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
