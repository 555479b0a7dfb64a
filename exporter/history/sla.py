"""``perf-exporter sla``: the final baseline written down as an SLA in Markdown (the guide's weeks 3-4): for
each scenario the targets, the measured value of each (median of the repeats) and its spread (min..max and the
coefficient of variation), then each endpoint's P95 and P99."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from exporter.exit_codes import ExitCode
from exporter.history.runs import Run
from exporter.history.sql import DEFAULT_HISTORY, History, HistoryError, exit_code_of
from exporter.json_file import write_text


def _spread(values: Sequence[float], unit: str) -> str:
    if len(values) < 2:
        return "one run"
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / mean * 100 if mean else 0.0
    return f"{_fmt(min(values), unit)}..{_fmt(max(values), unit)} (CV {cv:.1f} %, {len(values)} runs)"


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    return f"{value:.1f} ms"


def _target(key: str, limit: float, unit: str) -> str:
    if key == "cache_hit_rate":
        return f">= {_fmt(limit, unit)}"
    return f"< {_fmt(limit, unit)}"


def sla_markdown(name: str, runs: Sequence[Run]) -> str:
    lines = [f"# Performance SLA (baseline {name!r})", ""]
    commits = sorted({r.git_commit[:10] for r in runs if r.git_commit})
    lines += [f"Measured on {', '.join(sorted({r.machine or '?' for r in runs}))}"
              + (f" at commit {', '.join(commits)}" if commits else "") + ", with k6 "
              + ", ".join(sorted({r.k6_version or '?' for r in runs})) + ".", ""]
    for run in runs:
        lines += [f"## {run.scenario}", "", f"From {run.label}, {len(run.repeats)} repeat(s), {run.created}.", ""]
        targets: dict[str, tuple[float, str, list[float]]] = {}
        for repeat in run.repeats:
            for t in repeat.verdict.targets:
                if t.observed is None or t.limit is None:
                    continue
                targets.setdefault(t.key, (t.limit, t.unit, []))[2].append(t.observed)
        if targets:
            lines += ["| Target | Objective | Measured (median) | Spread | Met |", "|---|---|---|---|---|"]
            for key, (limit, unit, values) in targets.items():
                median = statistics.median(values)
                met = median >= limit if key == "cache_hit_rate" else median < limit
                lines.append(f"| {key} | {_target(key, limit, unit)} | {_fmt(median, unit)} | "
                             f"{_spread(values, unit)} | {'yes' if met else 'no'} |")
            lines.append("")
        endpoints = sorted({e for e, m in run.figure_keys() if m == "p95_ms"})
        if endpoints:
            lines += ["| Endpoint | P95 (median) | P95 spread | P99 (median) | Error rate (median) |",
                      "|---|---|---|---|---|"]
            for e in endpoints:
                p95, p99, err = run.values(e, "p95_ms"), run.values(e, "p99_ms"), run.values(e, "error_rate")
                lines.append(f"| {e} | {_fmt(statistics.median(p95), 'ms')} | {_spread(p95, 'ms')} | "
                             f"{_fmt(statistics.median(p99), 'ms') if p99 else '-'} | "
                             f"{_fmt(statistics.median(err), 'ratio') if err else '-'} |")
            lines.append("")
    return "\n".join(lines)


@dataclass
class SlaOptions:
    name: str = "main"  # the baseline
    history: str | None = None
    out: Path = Path("reports") / "sla.md"
    stream: TextIO = field(default_factory=lambda: sys.stderr)


def run_sla(options: SlaOptions) -> int:
    name, location, out, stream = options.name, options.history, options.out, options.stream
    try:
        with History(location or str(DEFAULT_HISTORY), create=False) as history:
            runs = history.baseline(name)
    except HistoryError as exc:
        stream.write(f"sla: {exc}\n")
        return exit_code_of(exc)
    text = sla_markdown(name, runs)
    write_text(out, text)
    stream.write(f"sla: wrote {out} ({len(runs)} scenario(s) of baseline {name!r})\n")
    return ExitCode.OK
