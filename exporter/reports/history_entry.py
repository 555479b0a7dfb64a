"""A report as the history keeps it: each target row's current value and each API endpoint's mean, P95 and P99
as figures, the rows as its verdict, and its ``performance-summary.json`` and ``api.json`` as they were. The same
from a report just made and from those files given to ``compare`` (read validated)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from exporter.history.recording import config_hash, git_metadata, history_location, invocation_id, machine, store
from exporter.history.runs import OVERALL, Figures, Repeat, RepeatVerdict, Run, TargetResult
from exporter.reports.model import MET, MISSED, ReportError


class CurrentValue(msgspec.Struct, frozen=True):
    value: float | None = None


class SummaryRow(msgspec.Struct, frozen=True):
    key: str
    metric: str = msgspec.field(name="Metric", default="")
    target: str = msgspec.field(name="Target", default="")
    current_text: str = msgspec.field(name="Current", default="")
    status: str = msgspec.field(name="Status", default="")
    current: CurrentValue = msgspec.field(default_factory=CurrentValue)


class SourceRef(msgspec.Struct, frozen=True):
    kind: str = "report"


class SummaryFile(msgspec.Struct, frozen=True):
    """What the history reads of ``performance-summary.json`` (the rest is kept as it is)."""

    timestamp: str = ""
    source: SourceRef = msgspec.field(default_factory=SourceRef)
    summaries: dict[str, Any] = msgspec.field(default_factory=dict)
    targets: list[SummaryRow] = msgspec.field(default_factory=list)


class EndpointRow(msgspec.Struct, frozen=True, rename="camel"):
    endpoint: str
    avg_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class ApiFile(msgspec.Struct, frozen=True):
    endpoints: list[EndpointRow] = msgspec.field(default_factory=list)


def _decode(obj: Any, kind: type[Any], where: str) -> Any:
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise ReportError(f"{where}: not a report's file ({exc})") from None


def figures(summary: SummaryFile, api: ApiFile | None) -> Figures:
    out: Figures = {(OVERALL, row.key): row.current.value for row in summary.targets if row.current.value is not None}
    for e in api.endpoints if api else ():
        for metric, value in (("avg_ms", e.avg_ms), ("p95_ms", e.p95_ms), ("p99_ms", e.p99_ms)):
            if value is not None:
                out[(e.endpoint, metric)] = value
    return out


def verdict(summary: SummaryFile) -> RepeatVerdict:
    statuses = {row.status for row in summary.targets}
    status = "missed" if MISSED in statuses else "met" if statuses == {MET} else ""
    return RepeatVerdict(status, (), tuple(
        TargetResult(row.key, f"{row.metric}: {row.current_text} (target {row.target})", row.status != MISSED,
                     row.current.value) for row in summary.targets))


def _run(summary_json: Mapping[str, Any], api_json: Mapping[str, Any] | None, where: str, kind: str,
         invocation: str) -> Run:
    summary = _decode(summary_json, SummaryFile, where)
    api = _decode(api_json, ApiFile, where) if api_json is not None else None
    body = {"performance-summary": summary_json, "api": api_json}
    return Run(None, invocation, kind, f"report:{summary.source.kind}", summary.timestamp, source=where,
               repeats=[Repeat(1, dict(summary.summaries), body, figures(summary, api), verdict(summary))])


def report_run(report: Any, exit_code: int, config: Any, environ: Mapping[str, str]) -> Run:
    from exporter.reports.render_json import json_files

    files = json_files(report)
    run = _run(files["performance-summary.json"], files.get("api.json"), report.observed.source_where, "report",
               invocation_id())
    run.git_commit, run.git_branch = git_metadata(environ)
    run.config_hash, run.machine, run.exit_code = config_hash(config), machine(), exit_code
    return run


def file_run(summary_json: Mapping[str, Any], path: Path, api_json: Mapping[str, Any] | None) -> Run:
    """A report's ``performance-summary.json`` given to ``compare`` or ``history`` (with the ``api.json`` beside
    it, if any), as a run not stored."""
    return _run(summary_json, api_json, str(path), "file", f"file:{path}")


def record_report(options: Any, report: Any, exit_code: int, config: Any) -> int:
    """Called once by ``report`` after its files are written; returns its exit code (3 if the history could not
    be written)."""
    from exporter.exit_codes import ExitCode, worst

    if not options.keep_history:
        return exit_code
    run = report_run(report, exit_code, config, os.environ)
    stored = store(history_location(options.history, options.out), [run], options.stream, "report")
    return exit_code if stored else worst([exit_code, ExitCode.NO_HISTORY])
