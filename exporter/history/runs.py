"""What the history holds, as plain data: a run (one scenario of one invocation) with its metadata and each
repeat's summary, report body and figures (``(endpoint, metric) -> value``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Figures = dict[tuple[str, str], float]

OVERALL = "measured"  # the endpoint name of a run's figures over all its requests
BENCH_METRICS = ("avg_ms", "p50_ms", "p95_ms", "p99_ms", "error_rate", "requests_per_second")


@dataclass
class Repeat:
    idx: int
    summary: dict[str, Any]
    body: dict[str, Any]
    figures: Figures = field(default_factory=dict)


@dataclass
class Run:
    id: int | None  # None for a run read from a file and not stored
    invocation: str
    kind: str  # "bench", "report" or "file"
    scenario: str
    created: str
    git_commit: str | None = None
    git_branch: str | None = None
    k6_version: str | None = None
    config_hash: str | None = None
    machine: str | None = None
    exit_code: int | None = None
    source: str | None = None
    repeats: list[Repeat] = field(default_factory=list)

    @property
    def label(self) -> str:
        where = f"run {self.id}" if self.id is not None else (self.source or "file")
        commit = f" @{self.git_commit[:10]}" if self.git_commit else ""
        return f"{where} ({self.scenario}{commit})"

    def values(self, endpoint: str, metric: str) -> list[float]:
        """Each repeat's figure, in repeat order (repeats without it left out)."""
        return [r.figures[(endpoint, metric)] for r in self.repeats if (endpoint, metric) in r.figures]

    def figure_keys(self) -> set[tuple[str, str]]:
        return {k for r in self.repeats for k in r.figures}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cut_figures(cut: Mapping[str, Any], endpoint: str, out: Figures) -> None:
    if not cut.get("requests"):
        return
    for metric in BENCH_METRICS:
        value = _number(cut.get(metric))
        if value is not None:
            out[(endpoint, metric)] = value


def bench_figures(body: Mapping[str, Any]) -> Figures:
    """A bench report's figures: the measured phase, each endpoint, and the script's own metrics (``cache_hits``
    as ``cache_hits.rate``, ``trace_duration`` as ``trace_duration.p(95)``...)."""
    out: Figures = {}
    measured = body.get("measured")
    if isinstance(measured, Mapping):
        _cut_figures(measured, OVERALL, out)
    for cut in body.get("endpoints") or []:
        if isinstance(cut, Mapping) and isinstance(cut.get("name"), str):
            _cut_figures(cut, cut["name"], out)
    for name, stats in (body.get("metrics") or {}).items():
        if isinstance(stats, Mapping):
            for key, value in stats.items():
                if _number(value) is not None:
                    out[(OVERALL, f"{name}.{key}")] = float(value)
    return out


def report_figures(summary: Mapping[str, Any], api: Mapping[str, Any] | None) -> Figures:
    """A ``perf-exporter report``'s figures: each target row's current value (``api_latency_p95`` in ms,
    ``cache_hit_rate``...), and the API endpoints' mean, P95 and P99."""
    out: Figures = {}
    for row in summary.get("targets") or []:
        current = row.get("current") if isinstance(row, Mapping) else None
        value = _number(current.get("value")) if isinstance(current, Mapping) else None
        if value is not None and isinstance(row.get("key"), str):
            out[(OVERALL, row["key"])] = value
    for e in (api or {}).get("endpoints") or []:
        if not isinstance(e, Mapping) or not isinstance(e.get("endpoint"), str):
            continue
        for key, metric in (("avgMs", "avg_ms"), ("p95Ms", "p95_ms"), ("p99Ms", "p99_ms")):
            value = _number(e.get(key))
            if value is not None:
                out[(e["endpoint"], metric)] = value
    return out
