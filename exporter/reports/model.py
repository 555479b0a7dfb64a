"""The report model: what a report says about one window, whatever its source, before any rendering.

Every number is a :class:`Figure` that names its source and its precision; a figure without a value says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter.reports.facts import Facts
from exporter.reports.recommendations import Findings

MET, MISSED, NO_DATA = "met", "missed", "no data"
AREAS = ("api", "database", "cache", "tracing")

# Precision of a figure.
EXACT = "exact"  # counted, or computed from every sample
BUCKETED = "bucket-interpolated"  # a histogram quantile: linear within the bucket it falls in
ESTIMATE = "estimate"  # a model's figure with stated bounds
APPROXIMATE = "approximate"  # no bound on the error is known


class ReportError(Exception):
    """A report cannot be made: an unreachable Prometheus, a missing run directory, a bad window."""


@dataclass(frozen=True)
class Figure:
    value: float | None
    unit: str  # ms, ratio, count
    source: str
    precision: str = EXACT
    note: str = ""  # why there is no value, or how to read it
    lower: float | None = None
    upper: float | None = None
    peak_lower: float | None = None  # the highest lower bound of one collection interval in the window

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "unit": self.unit, "source": self.source,
                               "precision": self.precision}
        if self.note:
            out["note"] = self.note
        if self.lower is not None or self.upper is not None:
            out["bounds"] = {"lower": self.lower, "upper": self.upper}
            if self.peak_lower is not None:
                out["bounds"]["highestIntervalLower"] = self.peak_lower
        return out


def missing(unit: str, source: str, why: str) -> Figure:
    return Figure(None, unit, source, EXACT, why)


@dataclass(frozen=True)
class AreaSummary:
    """The guide's ``summary`` of one area, each field a figure."""

    area: str
    total: Figure  # requests, statement calls, lookups, traces
    mean: Figure  # ms
    p95: Figure  # ms
    p99: Figure  # ms
    error_rate: Figure  # ratio
    total_of: str
    error_rate_of: str


@dataclass(frozen=True)
class TargetRow:
    """One row of the guide's targets table."""

    key: str
    metric: str
    target: str  # as the guide writes it: "< 500ms", "> 80%"
    target_value: float  # seconds or ratio
    current: Figure
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]  # (unix time, value)
    source: str


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    unit: str  # ms, ratio
    series: list[Series]
    targets: list[tuple[str, float]] = field(default_factory=list)  # (label, value in the plot's unit)
    kind: str = "line"  # line, bar
    bars: list[tuple[str, float]] = field(default_factory=list)  # for kind=bar: (label, value)
    note: str = ""


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def as_json(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Observed:
    """What a source hands the report builder: the facts for the rules, the guide's area summaries, the
    figures behind the target rows, and the plots."""

    facts: Facts
    window: Window
    source_kind: str  # prometheus, run
    source_where: str
    areas: dict[str, AreaSummary]
    row_inputs: dict[str, Figure]  # target key -> the figure judged (with share_within in its note when known)
    shares_within: dict[str, float | None]  # target key -> share of events within the target (latency rows)
    plots: list[Plot] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    generated: str
    observed: Observed
    rows: list[TargetRow]
    findings: Findings

    @property
    def window(self) -> Window:
        return self.observed.window


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
