"""``perf-exporter report``: build a report from Prometheus or a bench run and write it in the chosen formats.

Exit codes (:class:`~exporter.exit_codes.ExitCode`): OK written, every target met; MISSED written, a target
missed; INCONCLUSIVE written, a target without data; NOT_RUN no report (unreachable Prometheus, no run, a bad
option or config).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from exporter.config.targets import Targets
from exporter.exit_codes import ExitCode
from exporter.json_file import write_text
from exporter.reports.model import MET, MISSED, Observed, Report, ReportError, Window

if TYPE_CHECKING:
    from exporter.load.run import BenchRun

FORMATS = ("json", "md", "html")


@dataclass
class ReportOptions:
    prometheus: str | None = None
    run: Path | None = None
    window: str | None = None
    start: str | None = None
    end: str | None = None
    config: Path | None = None
    formats: Sequence[str] = FORMATS
    out: Path = Path("reports")
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    history: str | None = None  # the run history (exporter/history/); default <out>/history.sqlite
    keep_history: bool = True
    baseline: str = "1h"  # the period before the window that attribution compares with ("0": none)
    baseline_start: str | None = None  # or an explicit period
    baseline_end: str | None = None


def parse_time(text: str, what: str) -> float:
    """Unix seconds, or ISO 8601 (``2026-12-01T08:00:00Z``; without a zone: UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"{what}: expected an ISO 8601 time like 2026-12-01T08:00:00Z or unix seconds, "
                          f"got {text!r}") from None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def window_of(options: ReportOptions, now: float | None = None) -> Window:
    from exporter.config.units import parse_duration

    end = parse_time(options.end, "--to") if options.end else (now if now is not None else time.time())
    if options.start:
        if options.window:
            raise ReportError("give --window or --from/--to, not both")
        start = parse_time(options.start, "--from")
    else:
        try:
            length = parse_duration(options.window or "1h")
        except ValueError as exc:
            raise ReportError(f"--window: {exc}") from None
        start = end - length
    if end <= start:
        raise ReportError(f"the window is empty: --from ({start:.0f}) must be before --to ({end:.0f})")
    return Window(start, end)


def endpoint_requests(config: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(api target, endpoint) -> (method, path), to find the route each endpoint's traces take."""
    return {(str(target.name), str(e.name)): (str(e.method), str(e.path))
            for target in config.section("api") for e in target.endpoints}


def baseline_of(options: ReportOptions, window: Window) -> Window | None:
    """The period attribution compares the window with: ``--baseline-from``/``--baseline-to``, else the
    ``--baseline`` duration right before the window (None for 0)."""
    from exporter.config.units import parse_duration

    if options.baseline_start or options.baseline_end:
        if not (options.baseline_start and options.baseline_end):
            raise ReportError("give both --baseline-from and --baseline-to")
        start = parse_time(options.baseline_start, "--baseline-from")
        end = parse_time(options.baseline_end, "--baseline-to")
        if end <= start or end > window.end:
            raise ReportError("the baseline must start before it ends, and end no later than the window")
        return Window(start, end)
    if options.baseline.strip() in ("0", "0s", "", "none"):
        return None
    try:
        seconds = parse_duration(options.baseline)
    except ValueError as exc:
        raise ReportError(f"--baseline: {exc}") from None
    return Window(window.start - seconds, window.start)


def jaeger_urls(config: Any) -> dict[str, str]:
    """Jaeger target name -> query URL, for the sample traces of serial groups."""
    return {str(entry.name): str(entry.url) for entry in config.section("jaeger")}


def postgres_conninfos(config: Any) -> dict[str, str]:
    """PostgreSQL target name -> the collector's read-only conninfo, for the hypopg index checks."""
    from exporter.collectors.postgres.connection import base_conninfo

    return {str(entry.name): base_conninfo(entry) for entry in config.section("postgres")}


def with_index_checks(observed: Observed, conninfos: dict[str, str]) -> Observed:
    """The facts with each recommended index costed by hypopg, where the database has it (two passes of the pure
    rules: the first names the indexes, the second quotes their costs)."""
    from exporter.reports.hypopg import index_checks
    from exporter.reports.recommendations import recommend

    facts = observed.facts
    texts = {(s.target, s.datname, s.queryid): s.text for db in facts.databases for s in db.statements}
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    for r in recommend(facts).recommendations:
        text = texts.get(r.statement) if r.statement else None
        if r.statement and text and r.command and r.command.startswith("CREATE INDEX"):
            wanted.setdefault((r.statement[0], r.statement[1]), (text, r.command))
    checks = index_checks(wanted, conninfos) if wanted else {}
    if not checks:
        return observed
    databases = tuple(dataclasses.replace(db, index_checks=tuple(c for (t, _), c in checks.items() if t == db.target))
                      for db in facts.databases)
    return dataclasses.replace(observed, facts=dataclasses.replace(facts, databases=databases))


def build(options: ReportOptions, targets: Targets, jaeger: dict[str, str] | None = None,
          conninfos: dict[str, str] | None = None,
          requests: dict[tuple[str, str], tuple[str, str]] | None = None) -> Report:
    from exporter.reports.judge import build_report

    if options.run is not None:
        from exporter.reports.run_source import observe_run_dir

        by_name = {name: method_path for (_, name), method_path in (requests or {}).items()}
        return build_report(observe_run_dir(options.run, targets, by_name))
    from exporter.reports.prometheus import PrometheusClient, collect

    client = PrometheusClient(options.prometheus or "http://localhost:9090")
    try:
        window = window_of(options)
        observed = collect(client, window, targets, jaeger, requests, baseline_of(options, window))
        return build_report(with_index_checks(observed, conninfos) if conninfos else observed)
    finally:
        client.close()


def write(report: Report, out: Path, formats: Sequence[str]) -> list[Path]:
    """Each format's files into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    files: dict[str, str] = {}
    if "json" in formats:
        from exporter.reports.render_json import json_files

        files.update({name: json.dumps(body, indent=2) + "\n" for name, body in json_files(report).items()})
    if "md" in formats:
        from exporter.reports.render_markdown import markdown

        files["report.md"] = markdown(report)
    if "html" in formats:
        from exporter.reports.render_html import html_page

        files["report.html"] = html_page(report)
    for name, text in files.items():
        written.append(write_text(out / name, text))
    return written


def exit_code(report: Report) -> ExitCode:
    statuses = {row.status for row in report.rows}
    if MISSED in statuses:
        return ExitCode.MISSED
    return ExitCode.OK if statuses == {MET} else ExitCode.INCONCLUSIVE


def run_report(options: ReportOptions) -> int:
    from exporter.config.loading import ConfigError, default_config, load_config

    stream = options.stream
    bad = [f for f in options.formats if f not in FORMATS]
    if bad:
        stream.write(f"report: unknown format {bad[0]!r} (expected a list of {', '.join(FORMATS)})\n")
        return ExitCode.NOT_RUN
    if options.run is not None and options.prometheus:
        stream.write("report: give --prometheus or --run, not both\n")
        return ExitCode.NOT_RUN
    try:
        config = load_config(options.config) if options.config else default_config()
        report = build(options, config.targets, jaeger_urls(config), postgres_conninfos(config),
                       endpoint_requests(config))
        paths = write(report, options.out, options.formats)
    except (ConfigError, ReportError) as exc:
        stream.write(f"report: {exc}\n")
        return ExitCode.NOT_RUN
    for row in report.rows:
        extra = f" ({row.reason})" if row.status != MET and row.reason else ""
        stream.write(f"report: {row.metric}: {row.status}{extra}\n")
    for r in report.findings.top(3):
        stream.write(f"report: bottleneck {r.priority} {r.issue}: {r.where}\n")
    stream.write(f"report: wrote {', '.join(str(p) for p in paths)}\n")
    from exporter.reports.history_entry import record_report
    return record_report(options, report, exit_code(report), config)


REPORT_DIR = "report"


def write_run_report(runs: Sequence[BenchRun], out: Path, config: Any, stream: TextIO | None = None,
                     baseline: Sequence[BenchRun] = ()) -> list[Path]:
    """The full report of the run(s) at the end of ``bench``, in every format, into ``<out>/report/`` (beside the
    runs' ``<scenario>.json``), weighing causes against the ``baseline`` runs if given; a report that cannot be
    made is one line, never a failed run (the run's own files and exit code stand)."""
    from exporter.reports.judge import build_report
    from exporter.reports.run_source import observe_runs

    directory = out / REPORT_DIR
    requests = {name: method_path for (_, name), method_path in endpoint_requests(config).items()}
    try:
        report = build_report(observe_runs(list(runs), config.targets, str(out), requests, baseline))
        paths = write(report, directory, FORMATS)
    except (ReportError, OSError, KeyError, ValueError) as exc:
        if stream is not None:
            stream.write(f"bench: no report: {exc}\n")
        return []
    if stream is not None:
        stream.write(f"bench: report {directory / 'report.html'} (and .md, performance-summary.json, "
                     "api/database/cache/tracing.json)\n")
    return paths
