"""Windowed thresholds (k6#2379): ``p95<500ms over 1m`` must hold in every window of a run, not only over the
whole run. Evaluated on a run's time series of cumulative figures (one point a second).

From two cumulative points the window's request count, error rate and mean are exact (count x rate, count x
mean). A percentile is not: k6's live API gives the cumulative P95 only. The window's P95 is estimated as the
request-weighted difference of the two cumulative values (exact when the window's latency is spread like the
rest of the run; it follows a step in latency, which is what a window catches), bounded by the cumulative
maximum."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exporter.config.units import parse_duration

_EXPR = re.compile(r"^\s*(?P<metric>p95|p99|avg|error_rate|rps)\s*(?P<op><=|<|>=|>)\s*(?P<value>[0-9.]+)\s*"
                   r"(?P<unit>ms|s|%)?\s+over\s+(?P<window>\S+)\s*$")
METRICS = ("p95", "p99", "avg", "error_rate", "rps")


@dataclass(frozen=True)
class WindowThreshold:
    metric: str
    op: str
    limit: float  # ms for latencies, 0..1 for error_rate, requests/s for rps
    window: float  # seconds
    text: str

    def holds(self, value: float) -> bool:
        return {"<": value < self.limit, "<=": value <= self.limit, ">": value > self.limit,
                ">=": value >= self.limit}[self.op]


@dataclass(frozen=True)
class WindowBreach:
    threshold: WindowThreshold
    start: float  # seconds into the measured phase
    end: float
    value: float

    @property
    def text(self) -> str:
        t = self.threshold
        unit = {"error_rate": " %", "rps": " req/s"}.get(t.metric, " ms")
        shown = self.value * 100 if t.metric == "error_rate" else self.value
        return (f"{t.text}: broken from {_clock(self.start)} to {_clock(self.end)} of the measured phase "
                f"({t.metric} {shown:.1f}{unit})")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def parse_window_threshold(text: str) -> WindowThreshold:
    """``p95<500ms over 1m``, ``error_rate<1% over 30s``, ``rps>=50 over 1m``."""
    match = _EXPR.match(text)
    if not match:
        raise ValueError(f"--window-threshold: expected METRIC<VALUE over DURATION like 'p95<500ms over 1m' "
                         f"(metrics: {', '.join(METRICS)}), got {text!r}")
    metric, unit, value = match["metric"], match["unit"], float(match["value"])
    if metric in ("p95", "p99", "avg"):
        if unit not in ("ms", "s"):
            raise ValueError(f"--window-threshold {text!r}: {metric} needs a unit, ms or s")
        value = value * 1000 if unit == "s" else value
    elif metric == "error_rate":
        value = value / 100 if unit == "%" else value
    elif unit:
        raise ValueError(f"--window-threshold {text!r}: rps takes a plain number of requests per second")
    try:
        window = parse_duration(match["window"])
    except ValueError:
        raise ValueError(f"--window-threshold {text!r}: expected a window like 30s or 1m, "
                         f"got {match['window']!r}") from None
    if window <= 0:
        raise ValueError(f"--window-threshold {text!r}: the window must be longer than 0s")
    return WindowThreshold(metric, match["op"], value, window, text.strip())


def _get(point: Mapping[str, float | None], key: str) -> float | None:
    value = point.get(key)
    return float(value) if value is not None else None


def window_value(metric: str, first: Mapping[str, float | None], last: Mapping[str, float | None]) -> float | None:
    """The metric over the requests between two cumulative points (``first`` may be the phase's start: all
    zero)."""
    n1, n2 = _get(first, "requests") or 0.0, _get(last, "requests") or 0.0
    count = n2 - n1
    seconds = (_get(last, "t") or 0.0) - (_get(first, "t") or 0.0)
    if metric == "rps":
        return count / seconds if seconds > 0 else None
    if count <= 0:
        return None
    if metric == "error_rate":
        r1, r2 = _get(first, "errorRate") or 0.0, _get(last, "errorRate")
        return None if r2 is None else min(1.0, max(0.0, (r2 * n2 - r1 * n1) / count))
    key = {"avg": "avg", "p95": "p95", "p99": "p99"}[metric]
    v1, v2 = _get(first, key) or 0.0, _get(last, key)
    if v2 is None:
        return None
    value = max(0.0, (v2 * n2 - v1 * n1) / count)
    peak = _get(last, "max")
    return min(value, peak) if peak is not None else value


def breaches(threshold: WindowThreshold, points: Sequence[Mapping[str, float | None]]) -> list[WindowBreach]:
    """Every window (sliding by one point, as long as ``threshold.window``) that breaks the threshold, merged
    into spans; a run shorter than the window is judged as one window."""
    if not points:
        return []
    start: Mapping[str, float | None] = {"t": 0.0, "requests": 0.0}
    series = [start, *points]
    found: list[WindowBreach] = []
    span = threshold.window
    ends = [i for i in range(1, len(series)) if (_get(series[i], "t") or 0.0) >= span] or [len(series) - 1]
    for j in ends:
        t_end = _get(series[j], "t") or 0.0
        i = max(k for k in range(j) if (_get(series[k], "t") or 0.0) <= max(0.0, t_end - span))
        value = window_value(threshold.metric, series[i], series[j])
        if value is None or threshold.holds(value):
            continue
        t_start = _get(series[i], "t") or 0.0
        if found and t_start <= found[-1].end:
            prev = found[-1]
            worst = max(prev.value, value) if threshold.op in ("<", "<=") else min(prev.value, value)
            found[-1] = WindowBreach(threshold, prev.start, t_end, worst)
        else:
            found.append(WindowBreach(threshold, t_start, t_end, value))
    return found
