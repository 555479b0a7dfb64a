"""Whether a load run met its targets, and whether it can say so at all.

A run is **inconclusive** when the load generator, not the target, was the bottleneck: iterations k6 could not
start (``dropped_iterations``), the k6 process using nearly every core, or the machine's CPU above 90 %. An
inconclusive run never counts as the target's regression: its exit code is 2 whatever the targets show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from exporter.exit_codes import ExitCode
from exporter.load.stats import CutStats, Metrics, error_rate

MACHINE_CPU_LIMIT = 0.90  # the machine's busy share above which the generator's numbers are not trusted
K6_CPU_LIMIT = 0.90  # k6's CPU time over (wall time x cores) above which k6 was saturated


@dataclass(frozen=True)
class Threshold:
    """One target as a k6 threshold; ``key`` names it as ``targets:`` does (``api_latency_p95``,
    ``endpoints.create_order.api_latency_p95``)."""

    key: str
    metric: str  # k6 metric with its tag filter, e.g. ``http_req_duration{phase:measure}``
    stat: str  # ``p(95)``, ``p(99)`` or ``rate``
    limit: float  # milliseconds for durations, a ratio for rates

    @property
    def expression(self) -> str:
        return f"{self.stat}<{self.limit:g}"


class Finding(msgspec.Struct, frozen=True):
    """One target judged over the measured phase; ``text`` says it in a line."""

    key: str
    observed: float | None
    limit: float
    unit: str  # "ms" or "ratio"
    met: bool
    samples: int
    text: str = ""

    @classmethod
    def of(cls, key: str, observed: float | None, limit: float, unit: str, met: bool, samples: int) -> Finding:
        if observed is None:
            text = f"{key}: no samples"
        elif unit == "ms":
            text = (f"{key}: {observed:.1f} ms {'<' if met else '>='} target {limit:g} ms over {samples} requests")
        else:
            text = (f"{key}: {observed * 100:.2f} % {'<' if met else '>='} target {limit * 100:g} % over "
                    f"{samples} requests")
        return cls(key, observed, limit, unit, met, samples, text)


@dataclass(frozen=True)
class GeneratorLoad:
    """How hard the load generator worked over the measured phase."""

    dropped_iterations: int = 0
    k6_cpu: float | None = None  # k6's CPU seconds per wall second per core (0..1)
    machine_cpu: float | None = None  # the machine's busy share (0..1)
    cores: int = 1


class Verdict(msgspec.Struct, frozen=True, rename="camel"):
    status: str  # "met", "missed", "inconclusive" or "not run"
    exit_code: ExitCode
    headline: str
    findings: list[Finding] = msgspec.field(default_factory=list)
    reasons: list[str] = msgspec.field(default_factory=list)  # why inconclusive or not run

    @classmethod
    def of(cls, status: str, exit_code: ExitCode, findings: Sequence[Finding] = (),
           reasons: Sequence[str] = ()) -> Verdict:
        missed = _missed(findings)
        if status == "met":
            headline = "every target was met"
        elif status == "missed":
            headline = "target missed: " + "; ".join(f.text for f in missed)
        else:
            headline = f"{status}: " + "; ".join(reasons)
            if status == "inconclusive" and missed:  # said, but not counted as the target's regression
                headline += " (targets that looked missed: " + "; ".join(f.text for f in missed) + ")"
        return cls(status, exit_code, headline, list(findings), list(reasons))

    @property
    def missed(self) -> list[Finding]:
        return _missed(self.findings)


def _missed(findings: Sequence[Finding]) -> list[Finding]:
    """The targets judged and not met (one without samples is not judged)."""
    return [f for f in findings if not f.met and f.observed is not None]


def evaluate(thresholds: Sequence[Threshold], metrics: Metrics) -> list[Finding]:
    """Each target against the measured phase; a target whose cut had no requests is not judged."""
    findings: list[Finding] = []
    for t in thresholds:
        found = metrics.get(t.metric, {})
        if t.stat == "rate":
            observed = error_rate(found)
            count = int(found.get("passes", 0) + found.get("fails", 0)) if found else 0
            unit = "ratio"
        else:
            raw = found.get(t.stat)
            observed = float(raw) if isinstance(raw, int | float) else None
            count = int(found.get("count", 0) or 0)
            unit = "ms"
        if count == 0:
            observed = None
        met = observed is None or observed < t.limit
        findings.append(Finding.of(t.key, observed, t.limit, unit, met, count))
    return findings


def generator_problems(load: GeneratorLoad) -> list[str]:
    problems: list[str] = []
    if load.dropped_iterations > 0:
        problems.append(f"{load.dropped_iterations} dropped iterations: k6 had too few VUs to start every "
                        f"iteration the arrival rate asked for (raise --vus)")
    if load.k6_cpu is not None and load.k6_cpu > K6_CPU_LIMIT:
        problems.append(f"k6 used {load.k6_cpu * 100:.0f} % of {load.cores} cores: the generator was saturated")
    if load.machine_cpu is not None and load.machine_cpu > MACHINE_CPU_LIMIT:
        problems.append(f"the machine's CPU was {load.machine_cpu * 100:.0f} % busy (above "
                        f"{MACHINE_CPU_LIMIT * 100:.0f} %): generator and target competed for it")
    return problems


def verdict(findings: Sequence[Finding], problems: Sequence[str], measured_requests: int) -> Verdict:
    reasons = list(problems)
    if measured_requests == 0:
        reasons.append("no request was measured (the warm-up took the whole run, or every request failed "
                       "before being sent)")
    if reasons:
        return Verdict.of("inconclusive", ExitCode.INCONCLUSIVE, findings, reasons)
    if any(not f.met for f in findings):
        return Verdict.of("missed", ExitCode.MISSED, findings)
    return Verdict.of("met", ExitCode.OK, findings)


def not_run(reason: str) -> Verdict:
    return Verdict.of("not run", ExitCode.NOT_RUN, (), [reason])


def stage_held(stage: CutStats, limits: Mapping[str, float]) -> bool:
    """Whether one stage kept the API targets (``limits``: p95_ms, p99_ms, error_rate)."""
    if stage.requests == 0:
        return False
    checks = [(stage.p95_ms, limits.get("p95_ms")), (stage.p99_ms, limits.get("p99_ms")),
              (stage.error_rate, limits.get("error_rate"))]
    return all(value is None or limit is None or value < limit for value, limit in checks)


def capacity(stages: Sequence[CutStats], rates: Sequence[int], limits: Mapping[str, float]) -> int | None:
    """The breakpoint's capacity: the highest stage rate at which every target still held, counting only the
    stages before the first that broke. None when even the first stage broke."""
    best: int | None = None
    for stage, rate in zip(stages, rates, strict=False):
        if not stage_held(stage, limits):
            break
        best = rate
    return best
