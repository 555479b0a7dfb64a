"""A bench run as one type: :class:`BenchRun` is what ``<scenario>.json`` holds, written by :func:`write_run` and
read back, validated, by :func:`read_run` (a file that does not have its shape is an error naming the file and the
field). Inside the program a run is this value, never a dict.

Keys are camelCase as the guide's report has them; the statistics of each cut keep k6's snake_case
(``p95_ms``). Fields that older files may lack have defaults, so an earlier run stays readable as a baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from exporter.history.compare import RunComparison
from exporter.json_file import write_json
from exporter.load.distributed_run import Distributed
from exporter.load.platform_figures import PlatformFigures
from exporter.load.stats import CutStats, GuideSummary, StageStats
from exporter.load.timeline import TimelinePoint
from exporter.load.verdict import Verdict
from exporter.load.window_thresholds import WindowResult
from exporter.reports.areas import AreaFigures
from exporter.reports.run_facts import RunFacts


class RunFileError(ValueError):
    """A run file that cannot be read, or is not a run."""


class ShapeStage(msgspec.Struct, frozen=True):
    seconds: float
    target: int


class Shape(msgspec.Struct, frozen=True, rename="camel"):
    model: str
    warmup_seconds: float
    stages: list[ShapeStage]
    ran_seconds: float


class Generator(msgspec.Struct, frozen=True, rename="camel"):
    """How hard k6 worked: iterations it could not start, its CPU share and the machine's, its exit code."""

    dropped_iterations: int = 0
    k6_cpu: float | None = None
    machine_cpu: float | None = None
    k6_exit_code: int | None = None
    log: str = ""


class Platform(PlatformFigures, frozen=True):
    """The config's collectors during the run: the window's figures, which collectors ran, and their facts
    (statements, tables, key patterns, each route's breakdown) for the report's diagnosis."""

    collectors: list[str] = msgspec.field(default_factory=list)
    facts: RunFacts | None = None
    areas: dict[str, AreaFigures] = msgspec.field(default_factory=dict)  # areas reported from their SLOs alone


class GuideRecommendation(msgspec.Struct, frozen=True):
    """The guide's ``recommendations`` entry: one per missed target or reason the run says nothing."""

    type: str
    priority: str
    message: str


class Capacity(msgspec.Struct, frozen=True, rename="camel"):
    """A breakpoint run's answer: the highest rate at which every target held, and why the run stopped."""

    requests_per_second: int | None
    stopped_at: str | None


class RepeatFigures(msgspec.Struct, frozen=True):
    """One repeat of a ``--repeat N`` run, as the file of the last keeps it: enough to compare the repeats as the
    history does."""

    timestamp: str
    verdict: Verdict
    measured: CutStats
    endpoints: list[CutStats] = msgspec.field(default_factory=list)
    metrics: dict[str, dict[str, float | None]] = msgspec.field(default_factory=dict)


class BenchRun(msgspec.Struct, frozen=True, rename="camel"):
    """One scenario's run, as ``<scenario>.json`` holds it (with ``--repeat N``: the last repeat, and in
    ``repeats`` the figures of every repeat of the invocation, itself included)."""

    timestamp: str
    scenario: str
    summary: GuideSummary
    measured: CutStats
    verdict: Verdict
    description: str = ""
    k6: str | None = None
    k6_binary: str = ""
    k6_source: str = ""
    base_url: str = ""
    shape: Shape | None = None
    stages: list[StageStats] = msgspec.field(default_factory=list)
    parts: list[CutStats] = msgspec.field(default_factory=list)
    shares: dict[str, float] = msgspec.field(default_factory=dict)
    endpoints: list[CutStats] = msgspec.field(default_factory=list)
    thresholds: dict[str, str] = msgspec.field(default_factory=dict)
    generator: Generator = msgspec.field(default_factory=Generator)
    platform: Platform | None = None
    metrics: dict[str, dict[str, float | None]] = msgspec.field(default_factory=dict)
    recommendations: list[GuideRecommendation] = msgspec.field(default_factory=list)
    capacity: Capacity | msgspec.UnsetType = msgspec.UNSET
    timeline: list[TimelinePoint] = msgspec.field(default_factory=list)
    comparison: RunComparison | msgspec.UnsetType = msgspec.UNSET
    window_thresholds: list[WindowResult] | msgspec.UnsetType = msgspec.UNSET
    distributed: Distributed | msgspec.UnsetType = msgspec.UNSET  # its instances, when spread over several
    repeats: list[RepeatFigures] = msgspec.field(default_factory=list)

    def figures(self) -> RepeatFigures:
        return RepeatFigures(self.timestamp, self.verdict, self.measured, self.endpoints, self.metrics)

    @property
    def inconclusive(self) -> bool:
        return self.verdict.status == "inconclusive"

    @property
    def measured_seconds(self) -> float:
        """How long the measured phase ran (the whole run less its warm-up)."""
        if self.shape is None:
            return self.measured.seconds
        return max(0.0, self.shape.ran_seconds - self.shape.warmup_seconds)


class BenchmarkLine(msgspec.Struct, frozen=True):
    summary: GuideSummary
    verdict: str
    headline: str
    report: str | None


class BenchAllSummary(msgspec.Struct, frozen=True, rename="camel"):
    """``bench all``'s ``performance-summary.json``: each benchmark's summary and verdict, as the guide's
    run-all-benchmarks writes them."""

    timestamp: str
    k6: str
    exit_code: int
    benchmarks: dict[str, BenchmarkLine]


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def guide_recommendations(verdict: Verdict) -> list[GuideRecommendation]:
    """The guide's ``recommendations``: one per missed target or reason the run says nothing."""
    return ([GuideRecommendation("PERFORMANCE", "HIGH", f.text) for f in verdict.missed]
            + [GuideRecommendation("GENERATOR", "MEDIUM", reason) for reason in verdict.reasons])


def bench_all_summary(runs: Sequence[tuple[BenchRun, Path]], exit_code: int, k6_version: str) -> BenchAllSummary:
    return BenchAllSummary(timestamp(), k6_version, exit_code, {
        run.scenario: BenchmarkLine(run.summary, run.verdict.status, run.verdict.headline, str(path))
        for run, path in runs})


def as_json(run: BenchRun) -> Any:
    return msgspec.to_builtins(run)


def write_run(path: Path, run: BenchRun) -> Path:
    """The run's file, written whole or not at all."""
    return write_json(path, as_json(run))


def looks_like_run(obj: Any) -> bool:
    """Whether a decoded JSON file is meant to be a run (a scenario with measured figures), valid or not."""
    return isinstance(obj, dict) and "scenario" in obj and "measured" in obj and "summary" in obj


def run_of(obj: Any, where: str) -> BenchRun:
    """A decoded run file, checked against :class:`BenchRun`."""
    try:
        return msgspec.convert(obj, BenchRun)
    except msgspec.ValidationError as exc:
        raise RunFileError(f"{where}: not a bench run report ({exc})") from None


def read_run(path: Path) -> BenchRun:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RunFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise RunFileError(f"{path}: not JSON ({exc})") from None
    return run_of(obj, str(path))
