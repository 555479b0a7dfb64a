"""Change points across a run history, the way Apache Otava (formerly Hunter) finds them: E-divisive means
(Matteson and James, 2014) proposes where a series splits best, and a Welch t-test between the points on either
side decides whether the split is real. Pure Python: histories are hundreds of runs, not millions.

Windowed as Otava is: the t-test compares at most ``window`` runs on each side of a candidate, so an old change
does not hide a new one. The search is recursive (split, then search each side), and a candidate is kept only
when its p-value, Bonferroni-adjusted for the positions searched (the split was chosen as the best of them, so
the raw p-value would be too small), is at most ``max_pvalue``. Each change point names the run where the new
level starts, its size in percent and that p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChangePoint:
    index: int  # the first run of the new level (0-based position in the series)
    before: float  # mean of the window before
    after: float  # mean of the window after
    p_value: float  # Bonferroni-adjusted for the positions searched

    @property
    def change_percent(self) -> float:
        return (self.after - self.before) / abs(self.before) * 100 if self.before else math.inf


def _prefix(values: Sequence[float]) -> list[list[float]]:
    """2-D prefix sums of |x_i - x_j|: p[i][j] = sum over rows < i, columns < j."""
    n = len(values)
    p = [[0.0] * (n + 1) for _ in range(n + 1)]
    for i in range(n):
        row, above, vi = p[i + 1], p[i], values[i]
        running = 0.0
        for j in range(n):
            running += abs(vi - values[j])
            row[j + 1] = above[j + 1] + running
    return p


def _block(p: list[list[float]], r0: int, r1: int, c0: int, c1: int) -> float:
    return p[r1][c1] - p[r0][c1] - p[r1][c0] + p[r0][c0]


def e_divisive_split(values: Sequence[float], lo: int, hi: int, min_size: int,
                     p: list[list[float]]) -> tuple[int, float] | None:
    """The split tau in [lo + min_size, hi - min_size] maximising the E-divisive statistic
    q = (n_x n_y / n) (2 E|X-Y| - E|X-X'| - E|Y-Y'|), with its value."""
    best: tuple[int, float] | None = None
    for tau in range(lo + min_size, hi - min_size + 1):
        nx, ny = tau - lo, hi - tau
        cross = _block(p, lo, tau, tau, hi) / (nx * ny)
        within_x = _block(p, lo, tau, lo, tau) / (nx * (nx - 1)) if nx > 1 else 0.0
        within_y = _block(p, tau, hi, tau, hi) / (ny * (ny - 1)) if ny > 1 else 0.0
        q = nx * ny / (nx + ny) * (2 * cross - within_x - within_y)
        if best is None or q > best[1]:
            best = (tau, q)
    return best


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Numerical Recipes, 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def welch_t_test(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances)."""
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return 1.0
    mx, my = sum(x) / nx, sum(y) / ny
    vx = sum((v - mx) ** 2 for v in x) / (nx - 1)
    vy = sum((v - my) ** 2 for v in y) / (ny - 1)
    se2 = vx / nx + vy / ny
    if se2 == 0:
        return 1.0 if mx == my else 0.0
    t = (my - mx) / math.sqrt(se2)
    df = se2 ** 2 / ((vx / nx) ** 2 / (nx - 1) + (vy / ny) ** 2 / (ny - 1))
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def _test(values: Sequence[float], lo: int, tau: int, hi: int, window: int) -> tuple[float, float, float]:
    left = values[max(lo, tau - window):tau]
    right = values[tau:min(hi, tau + window)]
    return welch_t_test(left, right), sum(left) / len(left), sum(right) / len(right)


def change_points(values: Sequence[float], window: int = 30, max_pvalue: float = 0.001, min_size: int = 3,
                  min_magnitude: float = 0.0) -> list[ChangePoint]:
    """The change points of ``values`` (oldest first), in order. ``min_magnitude``: the smallest relative change
    (0.05 = 5 %) worth reporting."""
    series = [float(v) for v in values]
    n = len(series)
    if n < 2 * min_size:
        return []
    prefix = _prefix(series)
    found: dict[int, ChangePoint] = {}

    def search(lo: int, hi: int) -> None:
        if hi - lo < 2 * min_size:
            return
        split = e_divisive_split(series, lo, hi, min_size, prefix)
        if split is None:
            return
        tau = split[0]
        raw, before, after = _test(series, lo, tau, hi, window)
        positions = hi - lo - 2 * min_size + 1
        p = min(1.0, raw * positions)
        size = abs(after - before) / abs(before) if before else math.inf
        if p > max_pvalue or size < min_magnitude:
            return
        found[tau] = ChangePoint(tau, before, after, p)
        search(lo, tau)
        search(tau, hi)

    search(0, n)
    # Otava's second pass: with every change point known, re-test each between its neighbours; drop the weakest
    # that no longer holds, until all do.
    while found:
        taus = sorted(found)
        bounds = [0, *taus, n]
        retested = {}
        for k, tau in enumerate(taus):
            lo, hi = bounds[k], bounds[k + 2]
            raw, before, after = _test(series, lo, tau, hi, window)
            positions = max(1, hi - lo - 2 * min_size + 1)
            retested[tau] = ChangePoint(tau, before, after, min(1.0, raw * positions))
        weakest = max(retested.values(), key=lambda c: c.p_value)
        if weakest.p_value <= max_pvalue:
            found = retested
            break
        del found[weakest.index]
    return [found[t] for t in sorted(found)]
