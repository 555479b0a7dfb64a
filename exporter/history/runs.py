"""What the history holds, as plain data: a run (one scenario of one invocation) with its metadata and each
repeat's summary, report body and figures (``(endpoint, metric) -> value``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

Figures = dict[tuple[str, str], float]

OVERALL = "measured"  # the endpoint name of a run's figures over all its requests
BENCH_METRICS = ("avg_ms", "p50_ms", "p95_ms", "p99_ms", "error_rate", "requests_per_second")
SAMPLES = "requests"  # an endpoint's request count in a repeat: how many samples its percentiles are of


class TargetResult(msgspec.Struct, frozen=True):
    """One target as the run judged it (``observed`` None: no data, not judged); ``text`` names it in a line."""

    key: str
    text: str
    met: bool
    observed: float | None = None
    limit: float | None = None
    unit: str = "ms"  # "ms" or "ratio"


class RepeatVerdict(msgspec.Struct, frozen=True):
    """What a repeat's own command decided: its status, why it could not judge (if so), each target, and each
    window threshold (``key`` its expression)."""

    status: str = ""  # "met", "missed", "inconclusive", "not run"; "" when the command kept none
    reasons: tuple[str, ...] = ()
    targets: tuple[TargetResult, ...] = ()
    windows: tuple[TargetResult, ...] = ()

    @property
    def inconclusive(self) -> bool:
        return self.status == "inconclusive"

    def missed(self) -> list[str]:
        """The targets and windows it missed, each named as the command named it."""
        return ([t.text for t in self.targets if not t.met and t.observed is not None]
                + [t.text for t in self.windows if not t.met])


@dataclass
class Repeat:
    """One repeat: its figures and verdict, which the history reads, and its command's files as they were
    (``summary``, ``body``), which it keeps for the user and never reads."""

    idx: int
    summary: dict[str, Any]
    body: dict[str, Any]
    figures: Figures = field(default_factory=dict)
    verdict: RepeatVerdict = field(default_factory=RepeatVerdict)


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
    state: str = "complete"  # "running" while its repeats are stored as they finish; "interrupted"
    repeats: list[Repeat] = field(default_factory=list)

    @property
    def label(self) -> str:
        where = f"run {self.id}" if self.id is not None else (self.source or "file")
        commit = f" @{self.git_commit[:10]}" if self.git_commit else ""
        state = "" if self.state == "complete" else f", {self.state}"
        return f"{where} ({self.scenario}{commit}{state})"

    def values(self, endpoint: str, metric: str) -> list[float]:
        """Each repeat's figure, in repeat order (repeats without it left out)."""
        return [r.figures[(endpoint, metric)] for r in self.repeats if (endpoint, metric) in r.figures]

    def figure_keys(self) -> set[tuple[str, str]]:
        return {k for r in self.repeats for k in r.figures}
