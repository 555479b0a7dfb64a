"""A bench run as the history keeps it: its figures (the measured phase, each endpoint, the script's own
metrics), its verdict, and its file as it was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import msgspec

from exporter.history.recording import config_hash, git_metadata, invocation_id, machine, stored_line
from exporter.history.runs import (
    BENCH_METRICS,
    OVERALL,
    SAMPLES,
    Figures,
    Repeat,
    RepeatVerdict,
    Run,
    TargetResult,
)
from exporter.history.sql import History, HistoryError
from exporter.load.run import BenchRun, RepeatFigures, as_json
from exporter.load.stats import CutStats


def _cut_figures(cut: CutStats, endpoint: str, out: Figures) -> None:
    if not cut.requests:
        return
    out[(endpoint, SAMPLES)] = float(cut.requests)
    for metric in BENCH_METRICS:
        value = getattr(cut, metric)
        if value is not None:
            out[(endpoint, metric)] = float(value)


def figures(run: BenchRun | RepeatFigures) -> Figures:
    """The measured phase, each endpoint (with its request count: how many samples its percentiles are of), and
    the script's own metrics (``cache_hits`` as ``cache_hits.rate``, ``trace_duration`` as
    ``trace_duration.p(95)``...)."""
    out: Figures = {}
    _cut_figures(run.measured, OVERALL, out)
    for cut in run.endpoints:
        _cut_figures(cut, cut.name, out)
    for name, stats in run.metrics.items():
        for key, value in stats.items():
            if value is not None:
                out[(OVERALL, f"{name}.{key}")] = float(value)
    return out


def verdict(run: BenchRun | RepeatFigures) -> RepeatVerdict:
    targets = tuple(TargetResult(f.key, f.text, f.met, f.observed, f.limit, f.unit) for f in run.verdict.findings)
    windows = (tuple(TargetResult(w.threshold, w.threshold, w.held) for w in run.window_thresholds)
               if isinstance(run, BenchRun) and run.window_thresholds is not msgspec.UNSET else ())
    return RepeatVerdict(run.verdict.status, tuple(run.verdict.reasons), targets, windows)


def repeat(idx: int, run: BenchRun) -> Repeat:
    return Repeat(idx, msgspec.to_builtins(run.summary), as_json(run), figures(run), verdict(run))


@dataclass(frozen=True)
class Invocation:
    """What every run one bench stores carries: its invocation id, the commit and branch, k6's version, the
    config's hash and the machine."""

    id: str
    commit: str | None
    branch: str | None
    version: str
    config_hash: str | None
    machine: str

    @classmethod
    def of(cls, config: Any, version: str, environ: Mapping[str, str]) -> Invocation:
        commit, branch = git_metadata(environ)
        return cls(invocation_id(), commit, branch, version, config_hash(config), machine())

    def run(self, bench: BenchRun, path: Path | None, exit_code: int | None, state: str) -> Run:
        """The history run of ``bench``'s scenario, as yet without repeats."""
        return Run(None, self.id, "bench", bench.scenario, bench.timestamp, self.commit, self.branch, self.version,
                   self.config_hash, self.machine, exit_code, str(path) if path else None, state)


def history_runs(runs: Sequence[tuple[BenchRun, Path | None]], exit_code: int, config: Any, version: str,
                 environ: Mapping[str, str]) -> list[Run]:
    """One history run per scenario, its repeats in order (each bench run with the file it was written to)."""
    invocation = Invocation.of(config, version, environ)
    out: dict[str, Run] = {}
    for bench, path in runs:
        run = out.get(bench.scenario)
        if run is None:
            run = out[bench.scenario] = invocation.run(bench, path, exit_code, "complete")
        run.repeats.append(repeat(len(run.repeats) + 1, bench))
    return list(out.values())


def file_run(bench: BenchRun, path: Path) -> Run:
    """A run file given to ``compare`` or ``history``, as a run not stored: each of its repeats, so that its
    spread is tested as the history's would be."""
    run = Run(None, f"file:{path}", "file", bench.scenario, bench.timestamp, k6_version=bench.k6, source=str(path))
    if len(bench.repeats) <= 1:
        run.repeats.append(repeat(1, bench))
        return run
    summary = msgspec.to_builtins(bench.summary)
    run.repeats += [Repeat(i, summary if i == len(bench.repeats) else {}, {}, figures(r), verdict(r))
                    for i, r in enumerate(bench.repeats, 1)]
    return run


class Recorder:
    """Stores each repeat of a bench in the history the moment it finishes, so that an interrupted bench keeps
    what finished. Opened before the load starts: a history that cannot be used stops the bench before it loads
    anything (:class:`~exporter.history.sql.HistoryUnusable`)."""

    def __init__(self, location: str, config: Any, version: str, stream: TextIO,
                 environ: Mapping[str, str]) -> None:
        self.history = History(location)
        self.stream = stream
        self.invocation = Invocation.of(config, version, environ)
        self.runs: dict[str, Run] = {}
        self.failed: str | None = None  # why the history stopped taking repeats, said once

    def add(self, bench: BenchRun, path: Path | None) -> None:
        if self.failed is not None:
            return
        try:
            run = self.runs.get(bench.scenario)
            if run is None:
                run = self.invocation.run(bench, path, None, "running")
                run.repeats.append(repeat(1, bench))
                self.history.add_run(run)
                self.runs[bench.scenario] = run
            else:
                self.history.add_repeat(run, repeat(len(run.repeats) + 1, bench))
        except HistoryError as exc:
            self.failed = str(exc)
            self.stream.write(f"bench: {exc}\n")

    def finish(self, exit_code: int, interrupted: bool) -> bool:
        """Each run's exit code and state; True when every repeat was stored."""
        try:
            for run in self.runs.values():
                self.history.finish(run, exit_code, "interrupted" if interrupted else "complete")
        except HistoryError as exc:
            if self.failed is None:
                self.stream.write(f"bench: {exc}\n")
            self.failed = self.failed or str(exc)
        finally:
            self.history.close()
        if self.runs:
            self.stream.write(stored_line("bench", self.history.where, list(self.runs.values()),
                                          ", interrupted" if interrupted else ""))
        return self.failed is None
