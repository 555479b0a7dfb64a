"""The report written at the end of every ``perf-exporter bench`` run, from the run's own measurements, into
``<out>/report/`` (beside the run's ``<scenario>.json``, which keep their names)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from exporter.reports.command import FORMATS, endpoint_requests, targets_of, write
from exporter.reports.model import ReportError

REPORT_DIR = "report"


def write_run_report(runs: Sequence[Mapping[str, Any]], out: Path, config: Any,
                     stream: TextIO | None = None, baseline: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """The full report of the run(s) in every format, weighing causes against the ``baseline`` runs' bodies if
    given; a report that cannot be made is one line, never a failed run (the run's own files and exit code
    stand)."""
    from exporter.reports.judge import build_report
    from exporter.reports.run import observe_runs

    directory = out / REPORT_DIR
    requests = {name: method_path for (_, name), method_path in endpoint_requests(config).items()}
    try:
        report = build_report(observe_runs(list(runs), targets_of(config), str(out), requests, baseline))
        paths = write(report, directory, FORMATS)
    except (ReportError, OSError, KeyError, ValueError) as exc:
        if stream is not None:
            stream.write(f"bench: no report: {exc}\n")
        return []
    if stream is not None:
        stream.write(f"bench: report {directory / 'report.html'} (and .md, performance-summary.json, "
                     "api/database/cache/tracing.json)\n")
    return paths
