"""What one k6 run is: its shape (stages after a warm-up), its thresholds from ``targets:``, the sub-metrics the
statistics need, and the k6 command line and environment that run it. Pure: nothing here starts anything."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exporter.config.targets import Targets
from exporter.load.catalog import Scenario, Stage
from exporter.load.verdict import Threshold


class PlanError(ValueError):
    """Options that do not make a run (``str()`` names the option)."""


@dataclass(frozen=True)
class Overrides:
    """What the command line changes about a scenario's default shape."""

    vus: int | None = None
    duration: float | None = None
    stages: tuple[Stage, ...] = ()
    rate: int | None = None
    warmup: float | None = None
    steps: int | None = None  # breakpoint: how many steps
    iterations: int | None = None  # closed model: stop after this many iterations (``--duration``: at most)


@dataclass(frozen=True)
class Shape:
    model: str
    stages: tuple[Stage, ...]  # after the warm-up; a constant load is one stage
    warmup: float
    vus: int  # closed: the VUs of a constant load; open and breakpoint: the VUs k6 may use
    constant: bool  # closed model without --stage: k6's --vus/--duration
    iterations: int | None = None

    @property
    def measured_seconds(self) -> float:
        return sum(s.duration for s in self.stages)

    def stage_windows(self) -> list[tuple[str, float, float]]:
        """(stage label, start, end) in seconds from the start of the run, the warm-up first."""
        windows = [("warmup", 0.0, self.warmup)] if self.warmup > 0 else []
        start = self.warmup
        for i, stage in enumerate(self.stages, start=1):
            windows.append((str(i), start, start + stage.duration))
            start += stage.duration
        return windows


@dataclass(frozen=True)
class RunPlan:
    scenario: Scenario
    shape: Shape
    thresholds: tuple[Threshold, ...]
    submetrics: tuple[str, ...]
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def expected_seconds(self) -> float:
        return self.shape.warmup + self.shape.measured_seconds


def shape_for(scenario: Scenario, over: Overrides) -> Shape:
    warmup = scenario.warmup if over.warmup is None else over.warmup
    if warmup < 0:
        raise PlanError("--warmup: expected a duration of 0s or more")
    if over.vus is not None and over.vus < 1:
        raise PlanError("--vus: expected at least 1")
    if over.stages and over.duration is not None:
        raise PlanError("--stage and --duration: give one or the other")
    if scenario.model == "open":
        if over.stages:
            raise PlanError(f"--stage: {scenario.name} runs at a constant arrival rate; use --rate and --duration")
        rate = over.rate if over.rate is not None else scenario.rate
        duration = over.duration if over.duration is not None else scenario.duration
        return Shape("open", (Stage(duration, rate),), warmup, over.vus or scenario.vus, False)
    if scenario.model == "breakpoint":
        if over.stages:
            raise PlanError("--stage: breakpoint builds its own steps; use --rate (the step) and --duration")
        rate = over.rate if over.rate is not None else scenario.rate
        step = over.duration if over.duration is not None else scenario.duration
        steps = over.steps if over.steps is not None else scenario.steps
        if steps < 1:
            raise PlanError("--steps: expected at least 1")
        stages = tuple(Stage(step, rate * (i + 1)) for i in range(steps))
        return Shape("breakpoint", stages, warmup, over.vus or scenario.vus, False)
    if over.iterations is not None and (over.iterations < 1 or over.stages):
        raise PlanError("--iterations: expected at least 1, and no --stage (k6 shares them among --vus)")
    if over.rate is not None:
        raise PlanError(f"--rate: {scenario.name} is a closed model (VUs); the open model is 'arrival-rate'")
    if over.stages:
        return Shape("closed", over.stages, warmup, max(s.target for s in over.stages), False)
    if scenario.stages and over.vus is None and over.duration is None:
        return Shape("closed", scenario.stages, warmup, max(s.target for s in scenario.stages), False)
    vus = over.vus or scenario.vus
    duration = over.duration if over.duration is not None else scenario.duration
    return Shape("closed", (Stage(duration, vus),), warmup, vus, True, over.iterations)


def thresholds_for(targets: Targets, endpoints: Sequence[str]) -> tuple[Threshold, ...]:
    """The API targets as k6 thresholds over the measured phase (the warm-up is tagged out)."""
    measure = "{phase:measure}"
    found = [
        Threshold("api_latency_p95", f"http_req_duration{measure}", "p(95)", targets.api_latency_p95 * 1000),
        Threshold("api_latency_p99", f"http_req_duration{measure}", "p(99)", targets.api_latency_p99 * 1000),
        Threshold("error_rate", f"http_req_failed{measure}", "rate", targets.error_rate),
    ]
    for name, override in targets.endpoints.items():
        if name not in endpoints:
            continue
        tagged = "{phase:measure,endpoint:" + name + "}"
        for key, metric, stat, value in (
                ("api_latency_p95", "http_req_duration", "p(95)", override.api_latency_p95),
                ("api_latency_p99", "http_req_duration", "p(99)", override.api_latency_p99),
                ("error_rate", "http_req_failed", "rate", override.error_rate)):
            if value is not None:
                limit = value * 1000 if metric == "http_req_duration" else value
                found.append(Threshold(f"endpoints.{name}.{key}", f"{metric}{tagged}", stat, limit))
    return tuple(found)


# k6's Trend of each phase of a request, by the phase names of perf_http_phase_duration_seconds.
PHASE_METRICS = {"connect": "http_req_connecting", "tls": "http_req_tls_handshaking", "send": "http_req_sending",
                 "wait": "http_req_waiting", "receive": "http_req_receiving"}


def submetrics_for(scenario: Scenario, shape: Shape) -> tuple[str, ...]:
    """Every tagged sub-metric the statistics read: per stage, per part, per endpoint (k6 computes a sub-metric
    only when a threshold names it; an empty threshold list costs nothing else)."""
    cuts = ["phase:measure"]
    cuts += [f"phase:measure,stage:{i}" for i in range(1, len(shape.stages) + 1)]
    cuts += [f"phase:measure,part:{part}" for part in scenario.parts]
    cuts += [f"phase:measure,endpoint:{name}" for name in scenario.endpoints]
    names = [f"{metric}{{{cut}}}" for cut in cuts for metric in ("http_req_duration", "http_reqs", "http_req_failed")]
    # where each endpoint's time goes (the report's attribution): its phases and the bytes of its answers
    names += [f"{metric}{{phase:measure,endpoint:{name}}}" for name in scenario.endpoints
              for metric in (*PHASE_METRICS.values(), "data_received")]
    names += [f"{metric}{{phase:measure}}" for metric in scenario.metrics]
    return tuple(names)


def k6_thresholds(thresholds: Sequence[Threshold], submetrics: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in submetrics}
    for t in thresholds:
        out.setdefault(t.metric, []).append(t.expression)
    return out


def _k6_duration(seconds: float) -> str:
    return f"{seconds:g}s"


def build_plan(scenario: Scenario, over: Overrides, targets: Targets, base_url: str, summary_path: Path,
               api_address: str, extra_env: Mapping[str, str] | None = None,
               extra_args: Sequence[str] = ()) -> RunPlan:
    shape = shape_for(scenario, over)
    thresholds = thresholds_for(targets, scenario.endpoints)
    submetrics = submetrics_for(scenario, shape)
    env = {"TEST_BASE_URL": base_url, "WARMUP": _k6_duration(shape.warmup),
           "THRESHOLDS": json.dumps(k6_thresholds(thresholds, submetrics))}
    argv = ["run", "--no-color", "--quiet", "--address", api_address, "--summary-export", str(summary_path)]
    if shape.model == "open":
        env.update(RATE=str(shape.stages[0].target), VUS=str(shape.vus),
                   DURATION=_k6_duration(shape.stages[0].duration))
    elif shape.model == "breakpoint":
        step = shape.stages[0].target
        env.update(START_RATE=str(step), STEP_RATE=str(step), STEPS=str(len(shape.stages)), VUS=str(shape.vus),
                   STEP_DURATION=_k6_duration(shape.stages[0].duration))
    elif shape.constant:
        argv += ["--vus", str(shape.vus), "--duration", _k6_duration(shape.warmup + shape.stages[0].duration)]
        if shape.iterations is not None:
            argv += ["--iterations", str(shape.iterations)]
    else:
        if shape.warmup > 0:  # the warm-up climbs to the first stage's load; the script skips it when tagging
            argv += ["--stage", f"{_k6_duration(shape.warmup)}:{shape.stages[0].target}"]
        for stage in shape.stages:
            argv += ["--stage", f"{_k6_duration(stage.duration)}:{stage.target}"]
    env.update(extra_env or {})
    argv += [*extra_args, str(scenario.script_path())]
    return RunPlan(scenario, shape, thresholds, submetrics, tuple(argv), env)


def parse_stage(text: str) -> Stage:
    """``--stage 30s:100`` as k6 writes it."""
    from exporter.config.units import parse_duration

    duration, sep, target = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return Stage(parse_duration(duration), int(target))
    except (ValueError, TypeError):
        raise PlanError(f"--stage: expected DURATION:TARGET like '30s:100', got {text!r}") from None
