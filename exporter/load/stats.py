"""Statistics of one k6 run, from k6's end-of-test summary (``--summary-export``): the measured phase as a
whole, each stage, each part of a mixed workload and each endpoint. k6 itself has no per-stage statistics
(k6#204): the scripts tag every request with ``stage`` and ``phase``, and the run asks k6 for those tagged
sub-metrics. Durations are in milliseconds, as k6 reports them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

Metrics = Mapping[str, Mapping[str, Any]]


class CutStats(msgspec.Struct, frozen=True):
    """The requests of one cut (the whole measured phase, a stage, a part or an endpoint), as the run's file keeps
    them (snake_case, milliseconds)."""

    name: str
    requests: int
    seconds: float
    requests_per_second: float
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    phases_ms: dict[str, float] | None = None  # mean per phase (connect, tls, send, wait, receive), endpoints only
    received_bytes: float | None = None  # all the bytes its answers brought, endpoints only


class StageStats(CutStats, frozen=True):
    """A stage's cut and whether it kept the API targets."""

    held: bool | None = None


@dataclass(frozen=True)
class RunStatistics:
    overall: CutStats
    stages: list[CutStats]
    parts: list[CutStats]
    endpoints: list[CutStats]

    def shares(self) -> dict[str, float]:
        """Each part's share of the measured requests (0..1)."""
        total = sum(p.requests for p in self.parts)
        return {p.name: p.requests / total for p in self.parts} if total else {}


def number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (a bool included)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def error_rate(failed: Mapping[str, Any] | None) -> float | None:
    """k6's Rate in the summary export: ``passes`` counts the true samples (here: failed requests)."""
    if not failed:
        return None
    passes, fails = number(failed.get("passes")), number(failed.get("fails"))
    if passes is not None and fails is not None and passes + fails > 0:
        return passes / (passes + fails)
    return number(failed.get("value"))


def cut_stats(metrics: Metrics, name: str, cut: str, seconds: float) -> CutStats:
    """Statistics of the requests tagged ``cut`` (e.g. ``phase:measure,stage:2``) over ``seconds``."""
    duration = metrics.get(f"http_req_duration{{{cut}}}", {})
    reqs = metrics.get(f"http_reqs{{{cut}}}", {})
    count = int(number(reqs.get("count")) or number(duration.get("count")) or 0)
    has = count > 0
    return CutStats(
        name=name, requests=count, seconds=round(seconds, 3),
        requests_per_second=count / seconds if seconds > 0 else 0.0,
        avg_ms=number(duration.get("avg")) if has else None,
        p50_ms=number(duration.get("med")) if has else None,
        p95_ms=number(duration.get("p(95)")) if has else None,
        p99_ms=number(duration.get("p(99)")) if has else None,
        error_rate=error_rate(metrics.get(f"http_req_failed{{{cut}}}")) if has else None,
    )


def endpoint_stats(metrics: Metrics, name: str, seconds: float,
                   phase_metrics: Mapping[str, str]) -> CutStats:
    """An endpoint's statistics, with the mean of each phase (``phase_metrics``: phase -> k6 Trend) and the bytes
    its answers brought."""
    cut = f"phase:measure,endpoint:{name}"
    stats = cut_stats(metrics, name, cut, seconds)
    phases = {phase: value for phase, trend in phase_metrics.items()
              if (value := number(metrics.get(f"{trend}{{{cut}}}", {}).get("avg"))) is not None}
    received = number(metrics.get(f"data_received{{{cut}}}", {}).get("count"))
    return msgspec.structs.replace(stats, phases_ms=phases or None, received_bytes=received)


def run_statistics(metrics: Metrics, stage_seconds: Sequence[float], measured_seconds: float,
                   parts: Sequence[str], endpoints: Sequence[str],
                   phase_metrics: Mapping[str, str] | None = None) -> RunStatistics:
    """``stage_seconds``: how long each stage really ran (a stopped run's last stage is shorter)."""
    return RunStatistics(
        overall=cut_stats(metrics, "measured", "phase:measure", measured_seconds),
        stages=[cut_stats(metrics, str(i), f"phase:measure,stage:{i}", s)
                for i, s in enumerate(stage_seconds, start=1) if s > 0],
        parts=[cut_stats(metrics, p, f"phase:measure,part:{p}", measured_seconds) for p in parts],
        endpoints=[c for c in (endpoint_stats(metrics, e, measured_seconds, phase_metrics or {}) for e in endpoints)
                   if c.requests > 0],
    )


def stage_seconds(windows: Sequence[tuple[str, float, float]], ran: float) -> list[float]:
    """How long each measured stage ran, given the (label, start, end) windows and the run's length."""
    return [max(0.0, min(end, ran) - start) for label, start, end in windows if label != "warmup"]


class GuideSummary(msgspec.Struct, frozen=True, rename="camel"):
    """The guide's report ``summary``: milliseconds, and the error rate as text like ``"0.2%"``."""

    total_requests: int
    avg_response_time: float | None
    p95_response_time: float | None
    p99_response_time: float | None
    error_rate: str


def guide_summary(overall: CutStats) -> GuideSummary:
    def ms(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    rate = overall.error_rate or 0.0
    return GuideSummary(overall.requests, ms(overall.avg_ms), ms(overall.p95_ms), ms(overall.p99_ms),
                        f"{rate * 100:.{1 if rate == 0 or rate * 100 >= 0.1 else 2}f}%")


def custom_metric(metrics: Metrics, name: str) -> dict[str, float] | None:
    """A script's own metric over the measured phase (a Rate as ``rate``, a Trend as its statistics)."""
    found = metrics.get(f"{name}{{phase:measure}}")
    if not found:
        return None
    if "passes" in found:
        rate = error_rate(found)
        return {"rate": rate} if rate is not None else None
    return {k: float(v) for k, v in found.items() if number(v) is not None and k != "thresholds"}
