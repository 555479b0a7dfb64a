"""The guide's targets table (Metric | Target | Current | Status) from a source's figures, and the report built
from it. Status is ``met``, ``missed`` or ``no data`` with the reason; a figure that cannot decide its target
(an approximation, bounds that straddle it) is never ``met``."""

from __future__ import annotations

from exporter.reports.facts import Targets
from exporter.reports.model import (
    APPROXIMATE,
    ESTIMATE,
    MET,
    MISSED,
    NO_DATA,
    Figure,
    Observed,
    Report,
    TargetRow,
    now_iso,
)
from exporter.reports.recommendations import recommend

# key, the guide's metric name, ceiling (True) or floor (False), the quantile a latency row is about
ROWS: tuple[tuple[str, str, bool, float | None], ...] = (
    ("api_latency_p95", "API P95 Response Time", True, 0.95),
    ("api_latency_p99", "API P99 Response Time", True, 0.99),
    ("db_query_p95", "Database Query P95", True, 0.95),
    ("cache_hit_rate", "Cache Hit Rate", False, None),
    ("trace_p95", "Trace P95 Duration", True, 0.95),
    ("error_rate", "Error Rate", True, None),
)


def target_value(targets: Targets, key: str) -> float:
    return float(getattr(targets, key))


def target_text(key: str, value: float) -> str:
    if key in ("cache_hit_rate",):
        return f"> {value * 100:g}%"
    if key == "error_rate":
        return f"< {value * 100:g}%"
    return f"< {value * 1000:g}ms"


def judge(key: str, ceiling: bool, quantile: float | None, target: float, figure: Figure,
          share_within: float | None) -> tuple[str, str]:
    """(status, reason) of one row. Latency figures are in ms, the target in seconds."""
    if figure.value is None and not (figure.precision == ESTIMATE and figure.upper is not None):
        return NO_DATA, figure.note or "no samples in the window"
    scale = 1000.0 if figure.unit == "ms" else 1.0
    limit = target * scale
    if figure.precision == ESTIMATE and (figure.lower is not None or figure.upper is not None):
        if figure.upper is not None and figure.upper <= limit:
            return MET, f"the upper bound {figure.upper:g} {figure.unit} is within the target"
        if figure.lower is not None and figure.lower > limit:
            return MISSED, f"the lower bound {figure.lower:g} {figure.unit} is above the target"
        if figure.peak_lower is not None and figure.peak_lower > limit:
            return MISSED, (f"the P95 was above the target in at least one collection interval (its lower bound "
                            f"{figure.peak_lower:g} {figure.unit}); over the whole window it lies between "
                            f"{figure.lower} and {figure.upper} {figure.unit}")
        return NO_DATA, (f"cannot decide: the P95 lies between {figure.lower} and {figure.upper} {figure.unit}, "
                         f"on both sides of the target")
    assert figure.value is not None
    if quantile is not None and share_within is not None:
        # The target is a bucket bound: the share of events within it decides exactly.
        held = share_within >= quantile
        return (MET if held else MISSED), (f"{share_within * 100:.2f} % of events within {limit:g} {figure.unit} "
                                           f"(needs {quantile * 100:g} %)")
    held = figure.value < limit if ceiling else figure.value > limit
    if figure.precision == APPROXIMATE:
        if held:
            return NO_DATA, ("cannot know: the figure is approximate (statement means only) and no bound on the "
                             "P95 was collected")
        return MISSED, "approximate figure, above the target"
    return (MET if held else MISSED), ""


def build_report(observed: Observed) -> Report:
    targets = observed.facts.targets
    rows = []
    for key, metric, ceiling, quantile in ROWS:
        value = target_value(targets, key)
        figure = observed.row_inputs.get(key) or Figure(None, "ms", "none", note="no source for this figure")
        status, reason = judge(key, ceiling, quantile, value, figure, observed.shares_within.get(key))
        rows.append(TargetRow(key, metric, target_text(key, value), value, figure, status, reason))
    return Report(now_iso(), observed, rows, recommend(observed.facts))
