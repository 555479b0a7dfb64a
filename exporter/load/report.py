"""The report files of a run, in ``--out`` (default ``./reports/``): ``<scenario>.json`` per run, holding at
least the guide's ``summary``, and ``performance-summary.json`` after ``bench all``. The full report format
belongs to the reports package; this is the run's own record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.load.verdict import Verdict


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def recommendations(verdict: Verdict) -> list[dict[str, str]]:
    """The guide's ``recommendations``: one per missed target or reason the run says nothing."""
    out = [{"type": "PERFORMANCE", "priority": "HIGH", "message": f.text} for f in verdict.missed]
    out += [{"type": "GENERATOR", "priority": "MEDIUM", "message": reason} for reason in verdict.reasons]
    return out


def write_explained(runs: Sequence[Mapping[str, Any]], out: Path, config: Any, stream: Any,
                    baseline: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """The full report of the run(s), as ``perf-exporter report --run`` writes it (:mod:`exporter.reports`), into
    ``<out>/report/``, weighing causes against the ``baseline`` runs; a report that cannot be made is one line on
    ``stream``, never a failed run."""
    from exporter.reports.bench import write_run_report

    return write_run_report(runs, out, config, stream, baseline)


def performance_summary(runs: Sequence[Mapping[str, Any]], exit_code: int, k6_version: str) -> dict[str, Any]:
    """``bench all``: each benchmark's summary and verdict, as the guide's run-all-benchmarks writes them."""
    return {
        "timestamp": timestamp(), "k6": k6_version, "exitCode": exit_code,
        "benchmarks": {run["scenario"]: {"summary": run.get("summary"), "verdict": run["verdict"]["status"],
                                         "headline": run["verdict"]["headline"], "report": run.get("file")}
                       for run in runs},
    }
