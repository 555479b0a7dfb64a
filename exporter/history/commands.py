"""``perf-exporter baseline set``, ``compare``, ``history`` and ``sla``: each reads the history (or report files),
calls the pure functions of :mod:`exporter.history.compare` and :mod:`exporter.history.change_points`, and
writes what they found.

Exit codes of ``compare``: 0 nothing regressed; 1 a regression or a missed target (named); 2 inconclusive;
3 could not compare (no history, no such baseline or run, runs of different scenarios). Nothing is written when
the inputs are bad."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from exporter.exit_codes import ExitCode
from exporter.history.compare import Comparison, Tolerance, compare_figures, exit_code
from exporter.history.compare_output import ScenarioComparison, as_json, headline, junit, markdown, table
from exporter.history.inputs import names_a_file, resolve
from exporter.history.runs import OVERALL, Run
from exporter.history.sql import DEFAULT_HISTORY, History, HistoryError, exit_code_of
from exporter.json_file import write_text

FORMATS = ("table", "md", "junit", "json")
FILES = {"md": "compare.md", "junit": "compare.junit.xml", "json": "compare.json"}


def _open(location: str | None, needed: bool = True) -> History | None:
    where = location or str(DEFAULT_HISTORY)
    try:
        return History(where, create=False)
    except HistoryError:
        if needed:
            raise
        return None


def _missed(run: Run) -> list[str]:
    """The targets and windows a run missed, as its own command named them (each repeat)."""
    several = len(run.repeats) > 1
    return [text + (f" (repeat {repeat.idx})" if several else "") for repeat in run.repeats
            for text in repeat.verdict.missed()]


def _figures(run: Run) -> dict[tuple[str, str], list[float]]:
    return {key: run.values(*key) for key in run.figure_keys()}


def pair_runs(baseline: Sequence[Run], current: Sequence[Run], tolerance: Tolerance,
              metric: str | None = None, endpoint: str | None = None) -> list[ScenarioComparison]:
    """Each current run against the baseline's run of the same scenario; a bad pairing raises HistoryError."""
    base = {r.scenario: r for r in baseline}
    shared = [r for r in current if r.scenario in base]
    if not shared:
        raise HistoryError(f"runs of different scenarios: the baseline has {', '.join(sorted(base)) or 'none'}, "
                           f"the current run {', '.join(sorted({r.scenario for r in current})) or 'none'}; "
                           "compare runs of the same scenario")
    results: list[ScenarioComparison] = []
    for run in current:
        if run.scenario not in base:
            results.append(ScenarioComparison(run.scenario, "none", run.label, [Comparison(
                OVERALL, "scenario", (), (), "inconclusive", f"the baseline has no run of {run.scenario}")]))
            continue
        before = base[run.scenario]
        b, c = _figures(before), _figures(run)
        if metric or endpoint:
            b = {k: v for k, v in b.items() if (not metric or k[1] == metric) and (not endpoint or k[0] == endpoint)}
            c = {k: v for k, v in c.items() if (not metric or k[1] == metric) and (not endpoint or k[0] == endpoint)}
        notes = [f"{label} repeat {rep.idx} was inconclusive: {'; '.join(rep.verdict.reasons)}"
                 for label, r in (("baseline", before), ("current", run)) for rep in r.repeats
                 if rep.verdict.inconclusive]
        if before.config_hash and run.config_hash and before.config_hash != run.config_hash:
            notes.append(f"the configs differ (hash {before.config_hash} against {run.config_hash})")
        if before.k6_version and run.k6_version and before.k6_version != run.k6_version:
            notes.append(f"k6 differs ({before.k6_version} against {run.k6_version})")
        if before.machine and run.machine and before.machine != run.machine:
            notes.append(f"the machines differ ({before.machine} against {run.machine})")
        results.append(ScenarioComparison(run.scenario, before.label, run.label, compare_figures(b, c, tolerance),
                                          _missed(run), notes))
    return results


def parse_tolerance(relative: str, min_delta: str, alpha: float) -> Tolerance:
    from exporter.config.units import parse_duration

    text = relative.strip()
    try:
        rel = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"--tolerance: expected a share like 10% or 0.1, got {relative!r}") from None
    try:
        ms = parse_duration(min_delta) * 1000
    except ValueError:
        raise ValueError(f"--min-delta: expected a duration like 5ms, got {min_delta!r}") from None
    if rel < 0 or ms < 0:
        raise ValueError("--tolerance and --min-delta cannot be negative")
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha: expected a level between 0 and 1, got {alpha}")
    return Tolerance(relative=rel, absolute_ms=ms, alpha=alpha)


@dataclass
class CompareOptions:
    baseline: str | None = None
    current: str | None = None
    history: str | None = None
    tolerance: str = "10%"
    min_delta: str = "5ms"
    alpha: float = 0.05
    formats: Sequence[str] = ("table",)
    out: Path = Path("reports")
    metric: str | None = None
    endpoint: str | None = None
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    errors: TextIO = field(default_factory=lambda: sys.stderr)


def run_compare(options: CompareOptions) -> int:
    bad = [f for f in options.formats if f not in FORMATS]
    if bad:
        options.errors.write(f"compare: unknown format {bad[0]!r} (expected a list of {', '.join(FORMATS)})\n")
        return ExitCode.NOT_RUN
    history: History | None = None
    try:
        tolerance = parse_tolerance(options.tolerance, options.min_delta, options.alpha)
        needs_history = not all(s is not None and Path(s).exists() for s in (options.baseline, options.current))
        history = _open(options.history, needed=needs_history)
        baseline = resolve(options.baseline, history, "main")
        if options.current is None and history is not None:
            current = history.latest_of(sorted({r.scenario for r in baseline}),
                                        [r.id for r in baseline if r.id is not None])
        else:
            current = resolve(options.current, history, "latest")
        results = pair_runs(baseline, current, tolerance, options.metric, options.endpoint)
    except (HistoryError, ValueError) as exc:
        options.errors.write(f"compare: {exc}\n")
        return exit_code_of(exc) if isinstance(exc, HistoryError) else ExitCode.NOT_RUN
    finally:
        if history is not None:
            history.close()
    code = exit_code([c for r in results for c in r.comparisons], [m for r in results for m in r.missed])
    if "table" in options.formats:
        options.stream.write(table(results))
    files = {"md": lambda: markdown(results, code), "junit": lambda: junit(results),
             "json": lambda: as_json(results, code)}
    for fmt in options.formats:
        if fmt in files:
            path = write_text(options.out / FILES[fmt], files[fmt]())
            options.errors.write(f"compare: wrote {path}\n")
    options.errors.write(f"compare: {headline(results, code)} (exit {code})\n")
    return code


@dataclass
class BaselineOptions:
    run: str = "latest"  # a run id, ``latest`` or report files
    name: str = "main"
    history: str | None = None
    stream: TextIO = field(default_factory=lambda: sys.stderr)


def run_baseline_set(options: BaselineOptions) -> int:
    """``baseline set RUN|FILE``: a run id, ``latest`` or report files (stored first, as kind ``file``)."""
    spec, name, location, stream = options.run, options.name, options.history, options.stream
    try:
        with History(location or str(DEFAULT_HISTORY), create=names_a_file(spec)) as history:
            runs = resolve(spec, history, "latest")
            for run in runs:
                if run.id is None:
                    history.add_run(run)
            empty = [r.label for r in runs if not any(rep.figures for rep in r.repeats)]
            if empty:
                raise HistoryError(f"no figures in {', '.join(empty)}: a run without requests cannot be a baseline")
            history.set_baseline(name, [int(r.id) for r in runs if r.id is not None])
    except HistoryError as exc:
        stream.write(f"baseline: {exc}\n")
        return exit_code_of(exc)
    described = ", ".join(f"{r.label}, {len(r.repeats)} repeat{'s' if len(r.repeats) != 1 else ''}" for r in runs)
    stream.write(f"baseline: {name} is now {described}\n")
    return ExitCode.OK


def median_series(runs: Sequence[Run], endpoint: str, metric: str) -> list[tuple[Run, list[float]]]:
    return [(r, r.values(endpoint, metric)) for r in runs if r.values(endpoint, metric)]


@dataclass
class HistoryOptions:
    history: str | None = None
    scenario: str | None = None
    metric: str = "p95_ms"
    endpoint: str = OVERALL
    plot: Path | None = None
    window: int = 30
    max_pvalue: float = 0.001
    last: int | None = None
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    errors: TextIO = field(default_factory=lambda: sys.stderr)


def run_history(options: HistoryOptions) -> int:
    from exporter.history.change_points import change_points

    if options.plot is not None and options.plot.suffix.lower() not in (".png", ".svg"):
        options.errors.write(f"history: --plot {options.plot}: expected a .png or .svg file\n")
        return ExitCode.NOT_RUN
    try:
        history = _open(options.history)
        assert history is not None
        with history:
            scenario = options.scenario or history.newest_scenario()
            if scenario is None:
                raise HistoryError(f"history {history.where}: holds no run yet")
            runs = history.runs(scenario, bodies=False)
            if not runs:
                raise HistoryError(f"history {history.where}: no run of scenario {scenario!r}")
    except HistoryError as exc:
        options.errors.write(f"history: {exc}\n")
        return exit_code_of(exc)
    series = median_series(runs, options.endpoint, options.metric)
    if options.last:
        series = series[-options.last:]
    if not series:
        known = sorted({m for r in runs for (e, m) in r.figure_keys() if e == options.endpoint})
        options.errors.write(f"history: no {options.metric} of {options.endpoint} in the runs of {scenario} "
                             f"(metrics there: {', '.join(known) or 'none'})\n")
        return ExitCode.NOT_RUN
    values = [statistics.median(v) for _, v in series]
    found = {c.index: c for c in change_points(values, window=options.window, max_pvalue=options.max_pvalue)}
    out = options.stream
    out.write(f"{scenario}: {options.endpoint} {options.metric}, {len(series)} runs\n")
    out.write(f"{'run':>5}  {'created':<24}  {'commit':<10}  {'branch':<16}  {'value':>10}  {'spread':>17}  change\n")
    for i, (run, repeat_values) in enumerate(series):
        spread = f"{min(repeat_values):.4g}..{max(repeat_values):.4g}" if len(repeat_values) > 1 else ""
        mark = ""
        if i in found:
            c = found[i]
            mark = f"change point: {c.change_percent:+.1f}% (p={c.p_value:.2g})"
        out.write(f"{run.id!s:>5}  {run.created[:24]:<24}  {(run.git_commit or '')[:10]:<10}  "
                  f"{(run.git_branch or '')[:16]:<16}  {values[i]:>10.4g}  {spread:>17}  {mark}\n")
    for c in found.values():
        options.errors.write(f"history: change point at run {series[c.index][0].id}: {c.change_percent:+.1f}% "
                             f"({c.before:.4g} -> {c.after:.4g}), p={c.p_value:.2g}\n")
    if not found:
        options.errors.write("history: no change point\n")
    if options.plot is not None:
        from exporter.history.plot import plot_history

        try:
            plot_history(options.plot, [r.id or 0 for r, _ in series], values, list(found),
                         f"{scenario}: {options.endpoint} {options.metric}")
        except ImportError:
            options.errors.write("history: --plot needs matplotlib (pip install 'perf-exporter[report]')\n")
            return ExitCode.NOT_RUN
        options.errors.write(f"history: wrote {options.plot}\n")
    return ExitCode.OK
