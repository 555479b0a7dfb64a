"""``perf-exporter bench SCENARIO|all``: one scenario (or the guide's four benchmarks in turn) run by k6 while
the config's collectors measure the platform, judged against ``targets:`` and ``--window-threshold``, written
to ``--out`` as a :class:`~exporter.load.run.BenchRun` and stored in the history. Exit codes:
:class:`~exporter.exit_codes.ExitCode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import msgspec

from exporter.child_process import free_loopback_address
from exporter.config.loading import ConfigError, default_config, load_config
from exporter.config.schema import Config
from exporter.exit_codes import ExitCode, worst
from exporter.history.compare import RunComparison, compare_runs
from exporter.history.recording import history_location
from exporter.history.sql import HistoryError, exit_code_of
from exporter.json_file import write_json
from exporter.load import stats as load_stats
from exporter.load.catalog import BENCHMARKS, SCENARIOS
from exporter.load.history_entry import Recorder
from exporter.load.k6_binary import K6, K6NotFound, find_k6, k6_version
from exporter.load.plan import PHASE_METRICS, Overrides, PlanError, RunPlan, build_plan
from exporter.load.platform import PlatformWatch
from exporter.load.progress import Progress
from exporter.load.prometheus_receiver import remote_write_env
from exporter.load.run import (
    BenchRun,
    Capacity,
    Generator,
    Platform,
    RepeatFigures,
    RunFileError,
    Shape,
    ShapeStage,
    bench_all_summary,
    guide_recommendations,
    read_run,
    timestamp,
    write_run,
)
from exporter.load.runner import LiveSample, RunOutcome, log_tail, run_k6
from exporter.load.sut_lock import target_lock
from exporter.load.timeline import timeline
from exporter.load.verdict import (
    GeneratorLoad,
    Verdict,
    capacity,
    evaluate,
    generator_problems,
    not_run,
    stage_held,
    verdict,
)
from exporter.load.window_thresholds import WindowResult, WindowThreshold, judged
from exporter.secrets import mask_url, safe_url

DEFAULT_BASE_URL = "http://localhost:8020"
Launcher = Callable[..., Awaitable[RunOutcome]]  # run_k6's signature: the plan's k6 run (or runs) to one outcome


@dataclass
class BenchOptions:
    scenario: str
    base_url: str | None = None
    overrides: Overrides = field(default_factory=Overrides)
    config: Path | None = None
    out: Path = Path("reports")
    demo: bool = False
    prometheus_rw: str | None = None
    k6_operator: int | None = None  # write a k6-operator TestRun with this parallelism instead of running
    baseline: Path | None = None  # a report of an earlier run of the same scenario, or a directory of them
    repeat: int = 1  # each scenario this many times, every repeat stored in the history (exporter/history/)
    history: str | None = None  # the history (a SQLite file or a PostgreSQL URL); default <out>/history.sqlite
    keep_history: bool = True
    window_thresholds: list[WindowThreshold] = field(default_factory=list)
    force: bool = False  # run even when another bench is loading the same target (load/sut_lock.py)
    segments: int | None = None  # run as this many local k6 processes, one execution segment each
    kubeconfig: Path | None = None  # with k6_operator: run the TestRun on that cluster, then judge it
    keep: bool = False  # leave the TestRun and its ConfigMap on the cluster
    prometheus_query: str | None = None  # where to read a distributed run back (default: from prometheus_rw)
    launcher: Launcher | None = None  # what runs k6 (default run_k6; a distributed run: load/distributed.py)
    stream: TextIO = field(default_factory=lambda: sys.stderr)



def reachable(base_url: str) -> str | None:
    """None if the target answers HTTP at all (any status), else why not."""
    try:
        with urllib.request.urlopen(safe_url(base_url).rstrip("/") + "/", timeout=5):  # any answer will do
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return mask_url(f"{base_url} is not reachable: {reason}")


def _base_url(options: BenchOptions, config: Config) -> str:
    if options.base_url:
        return options.base_url
    if os.environ.get("TEST_BASE_URL"):
        return os.environ["TEST_BASE_URL"]
    api = config.section("api")
    return str(getattr(api[0], "base_url", DEFAULT_BASE_URL)) if api else DEFAULT_BASE_URL


def k6_timeout(environ: dict[str, str] | os._Environ[str]) -> float | None:
    """``K6_TIMEOUT`` as the guide sets it: milliseconds for the whole run."""
    raw = environ.get("K6_TIMEOUT")
    if not raw:
        return None
    try:
        return float(raw) / 1000
    except ValueError:
        raise PlanError(f"K6_TIMEOUT: expected milliseconds like 600000, got {raw!r}") from None


def breakpoint_watcher(plan: RunPlan) -> Callable[[LiveSample], str | None]:
    """Stops a breakpoint run at the first stage that ended with a target broken (P95 or the error rate, as
    k6's REST API has them live)."""
    targets = {t.key: t.limit for t in plan.thresholds}
    windows = [(label, end) for label, _, end in plan.shape.stage_windows() if label != "warmup"]
    checked: set[str] = set()

    def watch(sample: LiveSample) -> str | None:
        for (label, end), stage in zip(windows, plan.shape.stages, strict=True):
            if label in checked or sample.elapsed < end + 1.0:
                continue
            checked.add(label)
            cut = f"phase:measure,stage:{label}"
            p95 = sample.metric(f"http_req_duration{{{cut}}}").get("p(95)")
            failed = sample.metric(f"http_req_failed{{{cut}}}").get("rate")
            if isinstance(p95, int | float) and p95 >= targets.get("api_latency_p95", float("inf")):
                return f"stage {label} ({stage.target}/s) broke api_latency_p95: P95 {p95:.0f} ms"
            if isinstance(failed, int | float) and failed >= targets.get("error_rate", float("inf")):
                return f"stage {label} ({stage.target}/s) broke error_rate: {failed * 100:.2f} % errors"
        return None

    return watch


def _limits(plan: RunPlan) -> dict[str, float]:
    """The API targets a stage must hold: P95, P99 (ms) and the error rate."""
    keys = {"api_latency_p95": "p95_ms", "api_latency_p99": "p99_ms", "error_rate": "error_rate"}
    return {keys[t.key]: t.limit for t in plan.thresholds if t.key in keys}


def judge(plan: RunPlan, outcome: RunOutcome) -> tuple[load_stats.RunStatistics, Verdict, Capacity | None]:
    """Statistics and verdict of a finished run, and a breakpoint's capacity (pure apart from reading
    ``outcome``)."""
    shape = plan.shape
    measured = max(0.0, min(outcome.ran_seconds, plan.expected_seconds) - shape.warmup)
    stages = load_stats.stage_seconds(shape.stage_windows(), outcome.ran_seconds)
    stats = load_stats.run_statistics(outcome.metrics, stages, measured, list(plan.scenario.parts),
                                      plan.scenario.endpoints, PHASE_METRICS)
    findings = evaluate(plan.thresholds, outcome.metrics)
    problems = generator_problems(GeneratorLoad(outcome.dropped_iterations, outcome.k6_cpu, outcome.machine_cpu,
                                                os.cpu_count() or 1)) + outcome.problems
    found: Capacity | None = None
    if shape.model == "breakpoint":
        held = capacity(stats.stages, [s.target for s in shape.stages], _limits(plan))
        found = Capacity(held, outcome.stopped)
        # Finding the limit is the point: a broken last stage is the answer, not a regression.
        findings = [f for f in findings if f.met or f.observed is None]
        if held is None and not problems:
            problems = [*problems, "the first stage already broke a target: start lower (--rate)"]
    elif outcome.stopped:
        problems = [*problems, f"stopped early: {outcome.stopped}"]
    if not outcome.metrics:  # k6 could not start the test (a script error, a bad option): nothing was measured
        return stats, not_run("; ".join(outcome.problems) if outcome.problems else
                              f"k6 exited with {outcome.k6_exit_code} without a summary: "
                              f"{log_tail(outcome.log_path, 'no log', 'no output')} (see {outcome.log_path})"), found
    return stats, verdict(findings, problems, stats.overall.requests), found


Baseline = tuple[Path, BenchRun | RunFileError]  # a baseline file, and its run or why it cannot be read


def read_baselines(baseline: Path | None, names: Sequence[str]) -> dict[str, Baseline]:
    """``--baseline``'s run of each scenario (a file, or the ``<scenario>.json`` in a directory), each file read
    once, before the first scenario runs."""
    if baseline is None:
        return {}
    read: dict[Path, BenchRun | RunFileError] = {}
    out: dict[str, Baseline] = {}
    for name in names:
        path = baseline / f"{name}.json" if baseline.is_dir() else baseline
        if path not in read:
            try:
                read[path] = read_run(path)
            except RunFileError as exc:
                read[path] = exc
        out[name] = (path, read[path])
    return out


def _compare(baseline: Baseline | None, run: BenchRun) -> RunComparison | None:
    """The comparison with the scenario's ``--baseline`` run, or why there is none."""
    if baseline is None:
        return None
    path, found = baseline
    try:
        if isinstance(found, RunFileError):
            raise found
        return compare_runs(run, found)
    except ValueError as exc:  # RunFileError included
        return RunComparison(f"no comparison with {path}: {exc}")


def _baseline_runs(baselines: Mapping[str, Baseline]) -> list[BenchRun]:
    """The baseline runs, for the report to weigh changes against (unreadable ones are left out: the comparison
    already said why)."""
    return list({path: run for path, run in baselines.values() if isinstance(run, BenchRun)}.values())


def bench_run(plan: RunPlan, outcome: RunOutcome, stats: load_stats.RunStatistics, result: Verdict,
              found: Capacity | None, version: str, k6: K6, base_url: str, platform: Platform | None) -> BenchRun:
    scenario = plan.scenario
    custom = {name: load_stats.custom_metric(outcome.metrics, name) for name in scenario.metrics}
    limits = _limits(plan)
    return BenchRun(
        timestamp=timestamp(), scenario=scenario.name, description=scenario.summary,
        k6=version, k6_binary=str(k6.path), k6_source=k6.source, base_url=mask_url(base_url),
        summary=load_stats.guide_summary(stats.overall), verdict=result,
        shape=Shape(plan.shape.model, plan.shape.warmup, [ShapeStage(s.duration, s.target) for s in plan.shape.stages],
                    round(outcome.ran_seconds, 3)),
        measured=stats.overall,
        stages=[load_stats.StageStats(**msgspec.structs.asdict(s), held=stage_held(s, limits)) for s in stats.stages],
        parts=stats.parts, shares={k: round(v, 4) for k, v in stats.shares().items()}, endpoints=stats.endpoints,
        thresholds={t.metric: t.expression for t in plan.thresholds},
        generator=Generator(outcome.dropped_iterations, outcome.k6_cpu, outcome.machine_cpu, outcome.k6_exit_code,
                            str(outcome.log_path)),
        platform=platform, metrics={k: dict(v) for k, v in custom.items() if v is not None},
        recommendations=guide_recommendations(result),
        capacity=found if found is not None else msgspec.UNSET,
        timeline=timeline(outcome.samples, plan.shape.warmup),
        distributed=outcome.distributed if outcome.distributed is not None else msgspec.UNSET)


def window_results(run: BenchRun, thresholds: list[WindowThreshold], repeat: int,
                   stream: TextIO) -> list[WindowResult]:
    """``--window-threshold``: each judged over the run's time series, each breach said on ``stream``."""
    results = [judged(t, run.timeline) for t in thresholds]
    for result in results:
        for b in result.breaches:
            stream.write(f"bench: {run.scenario} (repeat {repeat}): {b.text}\n")
    return results


async def run_scenario(name: str, options: BenchOptions, config: Config, k6: K6, version: str,
                       base_url: str, repeat: int = 1, earlier: Sequence[RepeatFigures] = (),
                       baseline: Baseline | None = None) -> tuple[ExitCode, BenchRun, Path]:
    """One repeat of one scenario; its file holds the ``earlier`` repeats' figures beside its own."""
    scenario = SCENARIOS[name]
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    own = f"{name}.{timestamp().replace(':', '').replace('-', '').replace('.', '')}-{os.getpid()}"
    summary_path = out / f"{own}.k6-summary.json"  # names of its own: two benches may share --out
    log_path = out / f"{own}.k6.log"
    single_rw = options.prometheus_rw if options.launcher is None else None  # a distributed run sends its own
    extra_env = remote_write_env(single_rw) if single_rw else {}
    jaeger = config.section("jaeger")
    if jaeger and not os.environ.get("JAEGER_HOST"):  # the tracing script looks its traces up there
        extra_env["JAEGER_HOST"] = str(getattr(jaeger[0], "url", ""))
    outputs = ["--out", "experimental-prometheus-rw", "--tag", f"testid={name}"] if single_rw else []
    plan = build_plan(scenario, options.overrides, config.targets, base_url, summary_path, free_loopback_address(),
                      extra_env, outputs)
    platform = PlatformWatch(config)
    progress = Progress(name, plan.expected_seconds, options.stream)

    def on_sample(sample: LiveSample) -> None:
        if sample.elapsed >= plan.shape.warmup:
            platform.mark_start()
        platform.sample()
        progress.update(sample)

    await platform.start()
    try:
        if plan.shape.warmup == 0:
            platform.mark_start()
        watcher = breakpoint_watcher(plan) if plan.shape.model == "breakpoint" else None
        outcome = await (options.launcher or run_k6)(k6, plan, summary_path, log_path, on_sample, watcher,
                                                     k6_timeout(os.environ))
    finally:
        measured_platform = await platform.finish()
    stats, result, found = judge(plan, outcome)
    run = bench_run(plan, outcome, stats, result, found, version, k6, base_url, measured_platform)
    code = result.exit_code
    run = msgspec.structs.replace(run, repeats=[*earlier, run.figures()])
    comparison = _compare(baseline, run)
    if comparison is not None:
        run = msgspec.structs.replace(run, comparison=comparison)
    if options.window_thresholds:
        windows = window_results(run, options.window_thresholds, repeat, options.stream)
        run = msgspec.structs.replace(run, window_thresholds=windows)
        if not all(w.held for w in windows):
            code = worst([code, ExitCode.MISSED])
    path = write_run(out / f"{name}.json", run)
    if comparison is not None:
        options.stream.write(f"{name}: {comparison.headline}\n")
    progress.close(f"{result.headline} (report: {path})")
    return code, run, path


def write_testruns(options: BenchOptions, names: list[str]) -> int:
    """``--k6-operator N``: one TestRun manifest per scenario into ``--out``; nothing runs here."""
    from exporter.load.operator import dump, secret_note, testrun_manifest

    try:
        config = load_config(options.config) if options.config else default_config()
        base_url = _base_url(options, config)
        for name in names:
            plan = build_plan(SCENARIOS[name], options.overrides, config.targets, base_url, Path("summary.json"),
                              "127.0.0.1:6565")
            objects = testrun_manifest(plan, options.k6_operator or 1, options.prometheus_rw)
            path = options.out / f"{name}.testrun.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump(objects))
            if note := secret_note(objects):
                options.stream.write(f"bench: {note}\n")
            options.stream.write(f"bench: wrote {path} (kubectl apply -f {path})\n")
    except (ConfigError, PlanError, ValueError) as exc:
        options.stream.write(f"bench: {mask_url(str(exc))}\n")
        return ExitCode.NOT_RUN
    return ExitCode.OK


def run_bench(options: BenchOptions) -> int:
    stream = options.stream
    names = list(BENCHMARKS) if options.scenario == "all" else [options.scenario]
    if any(n not in SCENARIOS for n in names):
        stream.write(f"bench: unknown scenario {options.scenario!r} (known: {', '.join(SCENARIOS)}, all)\n")
        return ExitCode.NOT_RUN
    if options.k6_operator is not None and options.kubeconfig is None:
        return write_testruns(options, names)
    try:
        k6 = find_k6()
        version = k6_version(k6)
    except K6NotFound as exc:
        stream.write(f"bench: {exc}\n")
        return ExitCode.NOT_RUN
    with contextlib.ExitStack() as stack:
        return _run_all(options, names, k6, version, stack)


def _run_all(options: BenchOptions, names: list[str], k6: K6, version: str, stack: contextlib.ExitStack) -> int:
    stream = options.stream
    try:
        env = dict(os.environ)
        if options.demo:
            from exporter.demo.launcher import example_config_path
            from exporter.load.demo_target import demo_target

            url, env = stack.enter_context(demo_target(stream))
            options.base_url = options.base_url or url
            config = load_config(options.config or example_config_path(), env=env)
        else:
            config = load_config(options.config, env=env) if options.config else default_config()
        base_url = _base_url(options, config)
        k6_timeout(os.environ)
        unreachable = reachable(base_url)
        if unreachable:
            stream.write(f"bench: {not_run(unreachable).headline}\n")
            return ExitCode.NOT_RUN
        stack.enter_context(target_lock(base_url, options.scenario, options.force))
        if options.segments is not None or options.k6_operator is not None:
            from exporter.load.distributed_setup import distributed_launcher

            options.launcher = stack.enter_context(distributed_launcher(options, stream))
        stream.write(f"bench: {version} ({k6.source}: {k6.path}); target {mask_url(base_url)}\n")
        recorder = None
        if options.keep_history:
            try:
                recorder = Recorder(history_location(options.history, options.out), config, version, stream,
                                    os.environ)
            except HistoryError as exc:
                stream.write(f"bench: {exc}; nothing was run\n")
                return exit_code_of(exc)
        baselines = read_baselines(options.baseline, names)
        codes: list[int] = []
        last: dict[str, tuple[BenchRun, Path]] = {}  # each scenario's file: its last repeat, holding them all
        interrupted = False
        with terminated_as_interrupt():
            try:
                for name in names:
                    earlier: list[RepeatFigures] = []
                    for i in range(max(1, options.repeat)):
                        code, run, path = asyncio.run(run_scenario(name, options, config, k6, version, base_url,
                                                                   i + 1, earlier, baselines.get(name)))
                        codes.append(code)
                        earlier = run.repeats
                        last[name] = (run, path)
                        if recorder is not None:
                            recorder.add(run, path)
            except KeyboardInterrupt:
                interrupted = True
        exit_code = ExitCode.INTERRUPTED if interrupted else worst(codes)
        if recorder is not None and not recorder.finish(exit_code, interrupted):
            exit_code = worst([exit_code, ExitCode.NO_HISTORY])
        if interrupted:
            stream.write(f"bench: interrupted: {len(codes)} repeat{'s' if len(codes) != 1 else ''} finished and "
                         f"kept, k6 stopped (exit {exit_code})\n")
            return exit_code
        runs = list(last.values())
        if options.scenario == "all":
            summary = write_json(options.out / "performance-summary.json",
                                 msgspec.to_builtins(bench_all_summary(runs, exit_code, version)))
            stream.write(f"bench: all benchmarks done, exit {exit_code} (summary: {summary})\n")
        from exporter.reports.command import write_run_report

        write_run_report([run for run, _ in runs], options.out, config, stream,
                         _baseline_runs(baselines))
        return exit_code
    except (ConfigError, PlanError, RuntimeError) as exc:
        stream.write(f"bench: {mask_url(str(exc))}\n")
        return ExitCode.NOT_RUN


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a bench as Ctrl-C does: the running k6 is stopped, what finished is kept."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
