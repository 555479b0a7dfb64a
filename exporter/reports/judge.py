"""The guide's targets table (Metric | Target | Current | Status) from a source's figures, and the report built
from it. Status is ``met``, ``missed`` or ``no data`` with the reason; a figure that cannot decide its target
(an approximation, bounds that straddle it) is never ``met``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exporter.config.targets import Targets
from exporter.registry import areas
from exporter.reports.diagnosis import UNEXPLAINED, Evidence
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
from exporter.reports.recommendations import (
    MEDIUM,
    Findings,
    Recommendation,
    Symptom,
    excess_over,
    excess_under,
    priority,
    ranking,
    recommend,
)
from exporter.reports.render_json import current_text
from exporter.slo.slos import Slo

# The guide's Performance Targets table, in its order; a registered area's other targets follow in registry order.
GUIDE_ORDER = ("api_latency_p95", "api_latency_p99", "db_query_p95", "cache_hit_rate", "trace_p95", "error_rate")


def row_slos(targets: Targets) -> list[Slo]:
    """The SLOs a report has a row for: every registered area's whole-API ones (the endpoints' own are in the
    API area's endpoint table)."""
    found = [slo for area in areas() for slo in area.slos(targets) if slo.endpoint is None]
    order = {key: i for i, key in enumerate(GUIDE_ORDER)}
    return sorted(found, key=lambda slo: order.get(slo.key, len(order)))


def target_text(slo: Slo) -> str:
    assert slo.threshold is not None
    if slo.quantile is not None:
        return f"< {slo.threshold * 1000:g}ms"
    return f"{'>' if slo.floor else '<'} {slo.threshold * 100:g}%"


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


def _excess(row: TargetRow, floor: bool) -> float:
    """How far past its target a missed row is (observed/target - 1, or 1 - observed/target for a floor)."""
    value = row.current.value if row.current.value is not None else row.current.lower
    if value is None:
        return 0.0
    limit = row.target_value * (1000.0 if row.current.unit == "ms" else 1.0)
    return excess_under(value, limit) if floor else excess_over(value, limit)


def with_missed_areas(findings: Findings, rows: Sequence[TargetRow], floors: Mapping[str, bool]) -> Findings:
    """A missed target of an area no rule diagnosed (a collector with no rules of its own) still gets a
    recommendation: that it was missed, by how much, and where to start; it names no cause."""
    diagnosed = {r.area for r in findings.recommendations if not r.housekeeping}
    extra = []
    for row in rows:
        if row.status != MISSED or row.area in diagnosed:
            continue
        excess = _excess(row, floors.get(row.key, False))
        extra.append(Recommendation(
            "PERFORMANCE", priority(excess, MEDIUM), f"{row.metric} missed: {current_text(row)} against {row.target}",
            row.area, f"{row.metric} missed", excess, f"excess {excess:.2f} (of the target)", row.area,
            f"perf-exporter has no diagnosis for the {row.area} area: start from its dashboard (uid perf-{row.area}) "
            f"and the runbook of its alerts (rules/runbooks.md)",
            (Evidence(row.area, f"{row.metric}: {current_text(row)}", row.current.source),), kind=UNEXPLAINED,
            cause="not diagnosed (no rules for this area)", share=1.0,
            symptoms=(Symptom(f"{row.metric} missed", f"{row.metric} {current_text(row)} (target {row.target})", 1.0,
                              "all of its excess, undiagnosed", excess, f"excess {excess:.2f}"),)))
    if not extra:
        return findings
    ranked = sorted([*findings.recommendations, *extra], key=lambda r: (r.housekeeping, ranking(r)))
    return Findings(ranked)


def build_report(observed: Observed) -> Report:
    rows = []
    slos = row_slos(observed.facts.targets)
    for slo in slos:
        assert slo.threshold is not None
        figure = (observed.row_inputs.get(slo.key)
                  or Figure(None, "ms" if slo.quantile else "ratio", "none", note="no source for this figure"))
        status, reason = judge(slo.key, not slo.floor, slo.quantile, slo.threshold, figure,
                               observed.shares_within.get(slo.key))
        rows.append(TargetRow(slo.key, slo.title, target_text(slo), slo.threshold, figure, status, reason, slo.area))
    floors = {slo.key: slo.floor for slo in slos}
    return Report(now_iso(), observed, rows, with_missed_areas(recommend(observed.facts), rows, floors))
