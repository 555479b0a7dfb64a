"""Two runs compared figure by figure (each endpoint's P50/P95/P99, mean, error rate, requests/s, a script's own
metrics): regression, improvement, unchanged or inconclusive.

A difference counts only beyond both tolerances: relative (``--tolerance 10%`` of the baseline) and absolute
(``--min-delta 5ms`` for latencies; half a percentage point for rates). With repeats on both sides
(``bench --repeat N``) it must also be beyond the noise: an exact one-sided Mann-Whitney U test on the
per-repeat figures (a permutation of the pooled values, so ties are handled) at ``alpha``, with the current
repeats moved back by the tolerance first: the test asks whether the run is worse by more than the tolerance,
so a run compared on many figures does not turn noise into a regression somewhere. Where the repeats are
too few for the test to reach ``alpha`` at all (1 against 3: the smallest p is 1/4), the two sets must not
overlap; when they do, the difference cannot be told from noise: inconclusive. A single run against a single
run has no spread to test: the tolerances alone decide.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REGRESSION, IMPROVEMENT, UNCHANGED, INCONCLUSIVE = "regression", "improvement", "unchanged", "inconclusive"
EXIT_OK, EXIT_REGRESSION, EXIT_INCONCLUSIVE = 0, 1, 2

HIGHER_IS_BETTER = ("requests_per_second", "cache_hit_rate", "cache_hits.rate", "trace_found.rate")
RATES = ("error_rate", "cache_hit_rate", "cache_hits.rate", "trace_found.rate")


@dataclass(frozen=True)
class Tolerance:
    relative: float = 0.10  # share of the baseline
    absolute_ms: float = 5.0  # latencies
    absolute_rate: float = 0.005  # rates (0..1): half a percentage point
    absolute_rps: float = 1.0
    alpha: float = 0.05

    def absolute(self, metric: str) -> float:
        if metric in RATES:
            return self.absolute_rate
        if metric == "requests_per_second":
            return self.absolute_rps
        return self.absolute_ms


@dataclass(frozen=True)
class Comparison:
    endpoint: str
    metric: str
    baseline: tuple[float, ...]
    current: tuple[float, ...]
    verdict: str
    reason: str
    p_value: float | None = None

    @property
    def baseline_value(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def current_value(self) -> float | None:
        return statistics.median(self.current) if self.current else None

    @property
    def change(self) -> float | None:
        """Relative change of the medians (0.1 = +10 %)."""
        b, c = self.baseline_value, self.current_value
        if b is None or c is None or b == 0:
            return None
        return (c - b) / abs(b)

    def as_json(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "metric": self.metric, "verdict": self.verdict, "reason": self.reason,
                "baseline": self.baseline_value, "current": self.current_value,
                "change": round(self.change, 4) if self.change is not None else None,
                "baselineRepeats": list(self.baseline), "currentRepeats": list(self.current),
                "pValue": self.p_value}


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER


def mann_whitney_greater(x: Sequence[float], y: Sequence[float], exact_limit: int = 20000) -> float:
    """One-sided p-value that ``y`` tends to be greater than ``x``: P(U >= u_observed) over every way of splitting
    the pooled values into groups of these sizes (exact, ties counted as half), or its normal approximation
    when there are more than ``exact_limit`` splits."""
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        return 1.0

    def u_of(ys: Sequence[float], xs: Sequence[float]) -> float:
        return sum(1.0 if b > a else 0.5 if b == a else 0.0 for b in ys for a in xs)

    observed = u_of(y, x)
    pooled = [*x, *y]
    splits = math.comb(n + m, m)
    if splits <= exact_limit:
        at_least = 0
        indices = range(n + m)
        for chosen in itertools.combinations(indices, m):
            picked = set(chosen)
            ys = [pooled[i] for i in chosen]
            xs = [pooled[i] for i in indices if i not in picked]
            if u_of(ys, xs) >= observed - 1e-9:
                at_least += 1
        return at_least / splits
    mean = n * m / 2
    sd = math.sqrt(n * m * (n + m + 1) / 12)
    z = (observed - mean - 0.5) / sd
    return 0.5 * math.erfc(z / math.sqrt(2))


def smallest_p(n: int, m: int) -> float:
    """The smallest one-sided p the exact test can give for these sizes (complete separation)."""
    return 1 / math.comb(n + m, m) if n and m else 1.0


def compare_figure(endpoint: str, metric: str, baseline: Sequence[float], current: Sequence[float],
                   tolerance: Tolerance) -> Comparison:
    b, c = tuple(baseline), tuple(current)
    if not b or not c:
        side = "baseline" if not b else "current run"
        return Comparison(endpoint, metric, b, c, INCONCLUSIVE, f"no figure in the {side}")
    mb, mc = statistics.median(b), statistics.median(c)
    worse_sign = -1.0 if higher_is_better(metric) else 1.0
    delta = mc - mb
    limit = max(tolerance.absolute(metric), tolerance.relative * abs(mb))
    if abs(delta) <= limit:
        return Comparison(endpoint, metric, b, c, UNCHANGED,
                          f"within the tolerance ({_delta(delta, metric)}, allowed +-{_amount(limit, metric)})")
    kind = REGRESSION if delta * worse_sign > 0 else IMPROVEMENT
    # direction of "worse" for the test: regression -> current greater for lower-is-better
    bigger_current = delta > 0
    if len(b) >= 2 and len(c) >= 2 and smallest_p(len(b), len(c)) <= tolerance.alpha:
        # H0: the shift is within the tolerance. The current repeats are moved back by it before the test, so
        # "significant" means "worse (or better) by more than the tolerance", not merely "different".
        if bigger_current:
            p = mann_whitney_greater(b, [v - limit for v in c])
        else:
            p = mann_whitney_greater([v + limit for v in c], b)
        if p <= tolerance.alpha:
            return Comparison(endpoint, metric, b, c, kind,
                              f"{_delta(delta, metric)}, beyond the tolerance of {_amount(limit, metric)} with "
                              f"Mann-Whitney p={p:.3f}", p)
        return Comparison(endpoint, metric, b, c, UNCHANGED,
                          f"{_delta(delta, metric)} but within the noise (Mann-Whitney p={p:.3f} > "
                          f"{tolerance.alpha:g})", p)
    gap = (min(c) - max(b)) if bigger_current else (min(b) - max(c))
    if len(b) == 1 and len(c) == 1:
        return Comparison(endpoint, metric, b, c, kind,
                          f"{_delta(delta, metric)} beyond the tolerance (single runs: no spread to test)")
    if gap > limit:
        return Comparison(endpoint, metric, b, c, kind,
                          f"{_delta(delta, metric)} beyond the tolerance, every repeat apart by more than "
                          f"{_amount(limit, metric)}")
    return Comparison(endpoint, metric, b, c, INCONCLUSIVE,
                      f"{_delta(delta, metric)} but the repeats overlap ({len(b)} against {len(c)}: too few for "
                      f"a test at {tolerance.alpha:g}; use --repeat 3 on both)")


def compare_figures(baseline: Mapping[tuple[str, str], Sequence[float]],
                    current: Mapping[tuple[str, str], Sequence[float]], tolerance: Tolerance) -> list[Comparison]:
    """Every (endpoint, metric) of either side, in a stable order (endpoint, then metric)."""
    keys = sorted(set(baseline) | set(current))
    return [compare_figure(e, m, baseline.get((e, m), ()), current.get((e, m), ()), tolerance) for e, m in keys]


def exit_code(comparisons: Sequence[Comparison], missed: Sequence[str] = ()) -> int:
    """1 on a regression or a missed target, else 2 if anything is inconclusive, else 0."""
    verdicts = {c.verdict for c in comparisons}
    if REGRESSION in verdicts or missed:
        return EXIT_REGRESSION
    return EXIT_INCONCLUSIVE if INCONCLUSIVE in verdicts else EXIT_OK


def _amount(value: float, metric: str) -> str:
    if metric in RATES:
        return f"{value * 100:.2f} pt"
    if metric == "requests_per_second":
        return f"{value:.1f} req/s"
    if metric.endswith("_ms") or "duration" in metric or metric.startswith("api_") or metric.endswith("_p95"):
        return f"{value:.1f} ms"
    return f"{value:.3g}"


def _delta(delta: float, metric: str) -> str:
    return f"{'+' if delta >= 0 else '-'}{_amount(abs(delta), metric)}"
