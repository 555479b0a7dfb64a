"""``perf-exporter bench SCENARIO|all``: one scenario (or the guide's four benchmarks in turn) run by k6 while
the config's collectors measure the platform, judged against ``targets:``, written to ``--out``.

Exit codes: 0 every target met; 1 a target missed (named); 2 inconclusive (the generator was the bottleneck);
3 could not run (no k6, a bad option or config, the target unreachable before the start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from exporter.config.loading import ConfigError, default_config, load_config
from exporter.config.schema import Config
from exporter.history.changes import compare_runs
from exporter.history.recording import record_bench
from exporter.json_file import write_json
from exporter.load import report
from exporter.load import stats as load_stats
from exporter.load.catalog import BENCHMARKS, SCENARIOS
from exporter.load.k6_binary import K6, K6NotFound, find_k6, k6_version
from exporter.load.plan import PHASE_METRICS, Overrides, PlanError, RunPlan, build_plan
from exporter.load.platform import PlatformWatch
from exporter.load.progress import Progress
from exporter.load.runner import LiveSample, RunOutcome, run_k6
from exporter.load.timeline import timeline
from exporter.load.verdict import (
    EXIT_NOT_RUN,
    GeneratorLoad,
    Verdict,
    capacity,
    combined_exit_code,
    evaluate,
    generator_problems,
    not_run,
    stage_held,
    verdict,
)

DEFAULT_BASE_URL = "http://localhost:8020"


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
    window_thresholds: list[Any] = field(default_factory=list)  # parsed --window-threshold (load/window_thresholds.py)
    stream: TextIO = field(default_factory=lambda: sys.stderr)


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def reachable(base_url: str) -> str | None:
    """None if the target answers HTTP at all (any status), else why not."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/", timeout=5):
            return None
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{base_url} is not reachable: {reason}"


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


def prometheus_env(url: str) -> dict[str, str]:
    """k6's remote-write output with Trends as native histograms (aggregatable, no percentile gauges)."""
    return {"K6_PROMETHEUS_RW_SERVER_URL": url.rstrip("/") + ("" if url.rstrip("/").endswith("/api/v1/write")
                                                              else "/api/v1/write"),
            "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true",
            "K6_PROMETHEUS_RW_PUSH_INTERVAL": os.environ.get("K6_PROMETHEUS_RW_PUSH_INTERVAL", "5s")}


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


def judge(plan: RunPlan, outcome: RunOutcome) -> tuple[load_stats.RunStatistics, Verdict, dict[str, Any]]:
    """Statistics and verdict of a finished run (pure apart from reading ``outcome``)."""
    shape = plan.shape
    measured = max(0.0, min(outcome.ran_seconds, plan.expected_seconds) - shape.warmup)
    stages = load_stats.stage_seconds(shape.stage_windows(), outcome.ran_seconds)
    stats = load_stats.run_statistics(outcome.metrics, stages, measured, list(plan.scenario.parts),
                                      plan.scenario.endpoints, PHASE_METRICS)
    findings = evaluate(plan.thresholds, outcome.metrics)
    problems = generator_problems(GeneratorLoad(outcome.dropped_iterations, outcome.k6_cpu, outcome.machine_cpu,
                                                os.cpu_count() or 1))
    extra: dict[str, Any] = {}
    if shape.model == "breakpoint":
        held = capacity(stats.stages, [s.target for s in shape.stages], _limits(plan))
        extra["capacity"] = {"requestsPerSecond": held, "stoppedAt": outcome.stopped}
        # Finding the limit is the point: a broken last stage is the answer, not a regression.
        findings = [f for f in findings if f.met or f.observed is None]
        if held is None and not problems:
            problems = [*problems, "the first stage already broke a target: start lower (--rate)"]
    elif outcome.stopped:
        problems = [*problems, f"stopped early: {outcome.stopped}"]
    if not outcome.metrics:  # k6 could not start the test (a script error, a bad option): nothing was measured
        return stats, not_run(f"k6 exited with {outcome.k6_exit_code} without a summary: "
                              f"{_log_tail(outcome.log_path)} (see {outcome.log_path})"), extra
    return stats, verdict(findings, problems, stats.overall.requests), extra


def _log_tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def _compare(baseline: Path | None, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """``--baseline``: the comparison with an earlier report (a file, or the ``<scenario>.json`` in a directory)."""
    if baseline is None:
        return None
    path = baseline / f"{name}.json" if baseline.is_dir() else baseline
    try:
        earlier = json.loads(path.read_text())
        return compare_runs(body, earlier)
    except (OSError, ValueError) as exc:
        return {"headline": f"no comparison with {path}: {exc}"}


def _baseline_bodies(baseline: Path | None, names: list[str]) -> list[dict[str, Any]]:
    """``--baseline``'s run bodies of these scenarios, for the report to weigh changes against (unreadable ones
    are left out: the comparison already said why)."""
    if baseline is None:
        return []
    paths = [baseline / f"{name}.json" for name in names] if baseline.is_dir() else [baseline]
    out = []
    for path in paths:
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(body, dict):
            out.append(body)
    return out


def _report(plan: RunPlan, outcome: RunOutcome, stats: load_stats.RunStatistics, result: Verdict,
            extra: dict[str, Any], version: str, k6: K6, base_url: str, platform: dict[str, Any] | None,
            ) -> dict[str, Any]:
    scenario = plan.scenario
    custom = {name: load_stats.custom_metric(outcome.metrics, name) for name in scenario.metrics}
    body: dict[str, Any] = {
        "timestamp": report.timestamp(), "scenario": scenario.name, "description": scenario.summary,
        "k6": version, "k6Binary": str(k6.path), "k6Source": k6.source, "baseUrl": base_url,
        "summary": load_stats.guide_summary(stats.overall),
        "verdict": result.as_json(),
        "shape": {"model": plan.shape.model, "warmupSeconds": plan.shape.warmup,
                  "stages": [{"seconds": s.duration, "target": s.target} for s in plan.shape.stages],
                  "ranSeconds": round(outcome.ran_seconds, 3)},
        "measured": stats.overall.as_json(),
        "stages": [{**s.as_json(), "held": stage_held(s, _limits(plan))} for s in stats.stages],
        "parts": [p.as_json() for p in stats.parts],
        "shares": {k: round(v, 4) for k, v in stats.shares().items()},
        "endpoints": [e.as_json() for e in stats.endpoints],
        "thresholds": {t.metric: t.expression for t in plan.thresholds},
        "generator": {"droppedIterations": outcome.dropped_iterations, "k6Cpu": outcome.k6_cpu,
                      "machineCpu": outcome.machine_cpu, "k6ExitCode": outcome.k6_exit_code,
                      "log": str(outcome.log_path)},
        "platform": platform,
        "metrics": {k: v for k, v in custom.items() if v is not None},
        "recommendations": report.recommendations(result),
        **extra,
    }
    return body


async def run_scenario(name: str, options: BenchOptions, config: Config, k6: K6, version: str,
                       base_url: str) -> tuple[int, dict[str, Any]]:
    scenario = SCENARIOS[name]
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / f"{name}.k6-summary.json"
    log_path = out / f"{name}.k6.log"
    summary_path.unlink(missing_ok=True)
    log_path.unlink(missing_ok=True)
    extra_env = prometheus_env(options.prometheus_rw) if options.prometheus_rw else {}
    jaeger = config.section("jaeger")
    if jaeger and not os.environ.get("JAEGER_HOST"):  # the tracing script looks its traces up there
        extra_env["JAEGER_HOST"] = str(getattr(jaeger[0], "url", ""))
    outputs = ["--out", "experimental-prometheus-rw", "--tag", f"testid={name}"] if options.prometheus_rw else []
    plan = build_plan(scenario, options.overrides, config.targets, base_url, summary_path, _free_address(),
                      extra_env, outputs)
    platform = PlatformWatch(config)
    progress = Progress(name, plan.expected_seconds, options.stream)
    marked = False

    def on_sample(sample: LiveSample) -> None:
        nonlocal marked
        if not marked and sample.elapsed >= plan.shape.warmup:
            platform.mark_start()
            marked = True
        platform.sample()
        progress.update(sample)

    await platform.start()
    try:
        if plan.shape.warmup == 0:
            platform.mark_start()
            marked = True
        watcher = breakpoint_watcher(plan) if plan.shape.model == "breakpoint" else None
        outcome = await run_k6(k6, plan, summary_path, log_path, on_sample, watcher, k6_timeout(os.environ))
    finally:
        measured_platform = await platform.finish()
    stats, result, extra = judge(plan, outcome)
    body = _report(plan, outcome, stats, result, extra, version, k6, base_url, measured_platform)
    body["timeline"] = timeline(outcome.samples, plan.shape.warmup)
    comparison = _compare(options.baseline, name, body)
    if comparison is not None:
        body["comparison"] = comparison
    path = write_json(out / f"{name}.json", body)
    body["file"] = str(path)
    if comparison is not None:
        options.stream.write(f"{name}: {comparison['headline']}\n")
    progress.close(f"{result.headline()} (report: {path})")
    return result.exit_code, body


def write_testruns(options: BenchOptions, names: list[str]) -> int:
    """``--k6-operator N``: one TestRun manifest per scenario into ``--out``; nothing runs here."""
    from exporter.load.operator import dump, testrun_manifest

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
            options.stream.write(f"bench: wrote {path} (kubectl apply -f {path})\n")
    except (ConfigError, PlanError, ValueError) as exc:
        options.stream.write(f"bench: {exc}\n")
        return EXIT_NOT_RUN
    return 0


def run_bench(options: BenchOptions) -> int:
    stream = options.stream
    names = list(BENCHMARKS) if options.scenario == "all" else [options.scenario]
    if any(n not in SCENARIOS for n in names):
        stream.write(f"bench: unknown scenario {options.scenario!r} (known: {', '.join(SCENARIOS)}, all)\n")
        return EXIT_NOT_RUN
    if options.k6_operator is not None:
        return write_testruns(options, names)
    try:
        k6 = find_k6()
        version = k6_version(k6)
    except K6NotFound as exc:
        stream.write(f"bench: {exc}\n")
        return EXIT_NOT_RUN
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
            stream.write(f"bench: {not_run(unreachable).headline()}\n")
            return EXIT_NOT_RUN
        stream.write(f"bench: {version} ({k6.source}: {k6.path}); target {base_url}\n")
        codes: list[int] = []
        runs: list[dict[str, Any]] = []
        repeats: list[dict[str, Any]] = []
        for name in names:
            for _ in range(max(1, options.repeat)):
                code, body = asyncio.run(run_scenario(name, options, config, k6, version, base_url))
                codes.append(code)
                repeats.append(body)
            runs.append(body)
        exit_code = record_bench(options, repeats, combined_exit_code(codes), config, version)
        if options.scenario == "all":
            path = write_json(options.out / "performance-summary.json",
                                     report.performance_summary(runs, exit_code, version))
            stream.write(f"bench: all benchmarks done, exit {exit_code} (summary: {path})\n")
        report.write_explained(runs, options.out, config, stream, _baseline_bodies(options.baseline, names))
        return exit_code
    except (ConfigError, PlanError, RuntimeError) as exc:
        stream.write(f"bench: {exc}\n")
        return EXIT_NOT_RUN

