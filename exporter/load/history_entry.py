"""A bench run as the history keeps it: its figures (the measured phase, each endpoint, the script's own
metrics), its verdict, and its file as it was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from exporter.history.recording import config_hash, git_metadata, invocation_id, machine
from exporter.history.runs import BENCH_METRICS, OVERALL, Figures, Repeat, RepeatVerdict, Run, TargetResult
from exporter.load.run import BenchRun, as_json
from exporter.load.stats import CutStats


def _cut_figures(cut: CutStats, endpoint: str, out: Figures) -> None:
    if not cut.requests:
        return
    for metric in BENCH_METRICS:
        value = getattr(cut, metric)
        if value is not None:
            out[(endpoint, metric)] = float(value)


def figures(run: BenchRun) -> Figures:
    """The measured phase, each endpoint, and the script's own metrics (``cache_hits`` as ``cache_hits.rate``,
    ``trace_duration`` as ``trace_duration.p(95)``...)."""
    out: Figures = {}
    _cut_figures(run.measured, OVERALL, out)
    for cut in run.endpoints:
        _cut_figures(cut, cut.name, out)
    for name, stats in run.metrics.items():
        for key, value in stats.items():
            if value is not None:
                out[(OVERALL, f"{name}.{key}")] = float(value)
    return out


def verdict(run: BenchRun) -> RepeatVerdict:
    targets = tuple(TargetResult(f.key, f.text, f.met, f.observed, f.limit, f.unit) for f in run.verdict.findings)
    windows = (tuple(TargetResult(w.threshold, w.threshold, w.held) for w in run.window_thresholds)
               if run.window_thresholds is not msgspec.UNSET else ())
    return RepeatVerdict(run.verdict.status, tuple(run.verdict.reasons), targets, windows)


def repeat(idx: int, run: BenchRun) -> Repeat:
    return Repeat(idx, msgspec.to_builtins(run.summary), as_json(run), figures(run), verdict(run))


def history_runs(runs: Sequence[tuple[BenchRun, Path | None]], exit_code: int, config: Any, version: str,
                 environ: Mapping[str, str]) -> list[Run]:
    """One history run per scenario, its repeats in order (each bench run with the file it was written to)."""
    commit, branch = git_metadata(environ)
    invocation = invocation_id()
    out: dict[str, Run] = {}
    for bench, path in runs:
        run = out.get(bench.scenario)
        if run is None:
            run = out[bench.scenario] = Run(None, invocation, "bench", bench.scenario, bench.timestamp, commit,
                                            branch, version, config_hash(config), machine(), exit_code,
                                            str(path) if path else None)
        run.repeats.append(repeat(len(run.repeats) + 1, bench))
    return list(out.values())


def file_run(bench: BenchRun, path: Path) -> Run:
    """A run file given to ``compare`` or ``history``, as a run not stored."""
    return Run(None, f"file:{path}", "file", bench.scenario, bench.timestamp, k6_version=bench.k6, source=str(path),
               repeats=[repeat(1, bench)])
