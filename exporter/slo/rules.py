"""SLOs -> Prometheus rule groups: one group per area (api, database, cache, tracing) plus the exporter's health.

Each area's group holds, in evaluation order:

1. per SLO and window, the Sloth-compatible ``slo:sli_error:ratio_rate<window>`` (bad / all events) and
   ``slo:sli_events:rate<window>`` (all events per second, for the traffic floor and dashboards);
2. per SLO, the period error ratio ``sum_over_time(bad) / sum_over_time(all)`` over the SLO window (a ratio of
   sums, never an average of ratios), and the Sloth metadata: objective, budget, burn rates, budget remaining;
3. the percentiles and ratios the guide names (P50/P95/P99 per target and endpoint, cache hit ratio, DB query
   and trace P95);
4. the multiwindow, multi-burn-rate alerts and the guide's threshold alerts.

:class:`RuleOptions` exists for tests: ``scale`` shrinks every window and ``for:`` (an end-to-end test runs at
1/30, minutes becoming seconds); the shipped files are rendered at scale 1. Record names always carry the
production window, so dashboards work on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.config.units import format_duration, parse_duration
from exporter.metrics import Family
from exporter.slo.slos import (
    Estimated,
    HitMissIndicator,
    LatencyIndicator,
    Matcher,
    OutcomeIndicator,
    Slo,
    all_slos,
    percent_text,
    scaled,
    seconds_text,
    selector,
)

if TYPE_CHECKING:
    from exporter.config.schema import Config
    from exporter.jobs import SloArea

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
THRESHOLD_WINDOW = "5m"
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class BurnCondition:
    factor: float
    long: str
    short: str


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    conditions: tuple[BurnCondition, ...]
    for_: str
    speed: str  # "fast" or "slow", in the summary


# The SRE workbook's table: 2 % of a 30-day budget in 1 h, 5 % in 6 h page; 10 % in 1 d, 10 % in 3 d open a ticket.
PAGE = BurnAlert("critical", (BurnCondition(14.4, "1h", "5m"), BurnCondition(6, "6h", "30m")), "2m", "fast")
TICKET = BurnAlert("warning", (BurnCondition(3, "1d", "2h"), BurnCondition(1, "3d", "6h")), "15m", "slowly")

# How long a guide threshold must be violated before its alert fires: long enough not to flap on one slow scrape.
THRESHOLD_FOR = {"latency": "10m", "errors": "10m", "cache": "15m"}
TRACE_FOR = "15m"  # trace collections come once a minute, after a settle delay


@dataclass(frozen=True)
class RuleOptions:
    scale: float = 1.0  # multiplies every window and every `for:`; 1 for the shipped rules
    min_events: int = 20  # the traffic floor: fewer events than this in a burn alert's long window cannot page


def window(text: str, options: RuleOptions) -> str:
    return text if options.scale == 1 else scaled(text, options.scale)


def period_name(config: Config) -> str:
    return format_duration(config.targets.slo_window)


def burn_conditions(slo: Slo, alert: BurnAlert) -> tuple[BurnCondition, ...]:
    """The conditions that can ever be true: a factor times the budget at or above 100 % errors cannot burn, so
    it is left out (the cache's 20 % budget cannot burn 6x or 14.4x; its threshold alert covers it instead)."""
    return tuple(c for c in alert.conditions if c.factor * slo.budget < 1)


def _num(value: float) -> str:
    return f"{round(value, 10):g}"


def guarded_ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator``, the denominator guarded by ``> 0``: no traffic gives no series, never NaN."""
    return f"{numerator}\n/\n({denominator} > 0)\n"


def _match(slo: Slo) -> str:
    return selector(f'sloth_id="{slo.sloth_id}"', f'sloth_service="{slo.area}"', f'sloth_slo="{slo.name}"')


def slo_records(slo: Slo, config: Config, options: RuleOptions) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    ind = slo.indicator
    for w in WINDOWS:
        rw = window(w, options)
        rules.append({"record": f"slo:sli_error:ratio_rate{w}",
                      "expr": guarded_ratio(ind.bad(rw), ind.total(rw)),
                      "labels": {**slo.labels(), "sloth_window": w}})
    for w in WINDOWS:
        rules.append({"record": f"slo:sli_events:rate{w}", "expr": ind.total(window(w, options)),
                      "labels": {**slo.labels(), "sloth_window": w}})
    rw = window("5m", options)
    rules.append({"record": "slo:sli_error_events:rate5m", "expr": ind.bad(rw),
                  "labels": {**slo.labels(), "sloth_window": "5m"}})
    period = period_name(config)
    pw = window(period, options)
    m = _match(slo)
    rules.append({"record": f"slo:sli_error:ratio_rate{period}",
                  "expr": f"sum_over_time(slo:sli_error_events:rate5m{m}[{pw}])\n/ ignoring (sloth_window)\n"
                          f"(sum_over_time(slo:sli_events:rate5m{m}[{pw}]) > 0)\n",
                  "labels": {**slo.labels(), "sloth_window": period}})
    budget = _num(slo.budget)
    rules += [
        {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})", "labels": slo.labels()},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget})", "labels": slo.labels()},
        {"record": "slo:time_period:days", "expr": f"vector({_num(config.targets.slo_window / 86400)})",
         "labels": slo.labels()},
        {"record": "slo:current_burn_rate:ratio",
         "expr": f"max without (sloth_window) (slo:sli_error:ratio_rate5m{m}) / {budget}", "labels": slo.labels()},
        {"record": "slo:period_burn_rate:ratio",
         "expr": f"max without (sloth_window) (slo:sli_error:ratio_rate{period}{m}) / {budget}",
         "labels": slo.labels()},
        {"record": "slo:period_error_budget_remaining:ratio", "expr": f"1 - slo:period_burn_rate:ratio{m}",
         "labels": slo.labels()},
        {"record": "sloth_slo_info", "expr": "vector(1)",
         "labels": {**slo.labels(), "sloth_mode": "perf-exporter", "sloth_spec": "perf-exporter/v1",
                    "sloth_version": "perf-exporter", "sloth_objective": _num(slo.objective * 100)}},
    ]
    return rules


# -- the guide's percentiles and ratios --------------------------------------------------------------------------


def quantile_record(family: Family, by: tuple[str, ...], q: float) -> str:
    return f"{'_'.join(by)}:{family.name}:p{round(q * 100)}_rate{THRESHOLD_WINDOW}"


def quantile_expr(family: Family, by: tuple[str, ...], q: float, w: str, *matchers: Matcher) -> str:
    """The ``q`` quantile by ``by``, only where there were events (no traffic gives no series, never NaN)."""
    events = LatencyIndicator(by=by, family=family, matchers=matchers)
    return f"{events.quantile(q, w)}\nand on ({', '.join(by)})\n({events.total(w)} > 0)\n"


ERROR_RATIO_TARGET = f"target:{metrics.HTTP_REQUESTS.name.removesuffix('_total')}:error_ratio_rate{THRESHOLD_WINDOW}"
ERROR_RATIO_ENDPOINT = ERROR_RATIO_TARGET.replace("target:", "target_endpoint:", 1)
HIT_RATIO = f"target:{metrics.REDIS_HITS.name.removesuffix('_hits_total')}:hit_ratio_rate{THRESHOLD_WINDOW}"


def api_records(slos: list[Slo], w: str) -> list[dict[str, Any]]:
    """The API's percentiles per endpoint and per target, and its error ratios."""
    fam = metrics.HTTP_REQUEST_DURATION
    rules: list[dict[str, Any]] = []
    for q in QUANTILES:
        rules.append({"record": quantile_record(fam, ("target", "endpoint"), q),
                      "expr": quantile_expr(fam, ("target", "endpoint"), q, w)})
    for slo in slos:
        if slo.kind == "latency" and slo.endpoint is None and slo.quantile is not None:
            assert isinstance(slo.indicator, LatencyIndicator)
            rules.append({"record": quantile_record(fam, ("target",), slo.quantile),
                          "expr": quantile_expr(fam, ("target",), slo.quantile, w, *slo.indicator.matchers)})
    errors = next(s for s in slos if s.kind == "errors" and s.endpoint is None)
    assert isinstance(errors.indicator, OutcomeIndicator)
    rules.append({"record": ERROR_RATIO_TARGET,
                  "expr": guarded_ratio(errors.indicator.bad(w), errors.indicator.total(w))})
    per_endpoint = OutcomeIndicator(by=("target", "endpoint"))
    rules.append({"record": ERROR_RATIO_ENDPOINT,
                  "expr": guarded_ratio(per_endpoint.bad(w), per_endpoint.total(w))})
    return rules


def cache_records(slos: list[Slo], w: str) -> list[dict[str, Any]]:
    ind = HitMissIndicator(by=("target",))
    return [{"record": HIT_RATIO, "expr": guarded_ratio(ind.good(w), ind.total(w))}]


def percentile_records(slos: list[Slo], w: str) -> list[dict[str, Any]]:
    """The percentiles by target of each latency SLO's histogram: an area's records when it names none."""
    families = {s.indicator.family.name: s.indicator.family for s in slos if isinstance(s.indicator, LatencyIndicator)}
    return [{"record": quantile_record(family, ("target",), q), "expr": quantile_expr(family, ("target",), q, w)}
            for family in families.values() for q in QUANTILES]


def latency_records(slos: list[Slo], w: str) -> list[dict[str, Any]]:
    """The percentiles of an area whose one SLO is a latency target (and its estimate and bounds if it has any)."""
    rules = percentile_records(slos, w)
    estimated = slos[0].estimated
    if estimated is not None:
        rules += [{"record": estimated_record(fam, op), "expr": f"{op} by (target) ({op}_over_time({fam.name}[{w}]))"}
                  for fam, op in estimated_parts(estimated)]
    return rules


def estimated_parts(estimated: Estimated) -> list[tuple[Family, str]]:
    """Each gauge of an estimated percentile with how it combines over a window: the highest estimate and upper
    bound, the lowest lower bound (the percentile of several intervals' calls lies between their extremes)."""
    return [(estimated.estimate, "max"), (estimated.upper, "max"), (estimated.lower, "min")]


def estimated_record(family: Family, op: str) -> str:
    return f"target:{family.name}:{op}_over_time{THRESHOLD_WINDOW}"


# -- alerts ------------------------------------------------------------------------------------------------------


def runbook(config: Config, alert: str) -> str:
    return f"{config.targets.runbook_url}#{alert.lower()}"


def _where(slo: Slo) -> str:
    return "{{ $labels.target }}" + (" endpoint {{ $labels.endpoint }}" if slo.endpoint else "")


def burn_alerts(slo: Slo, area: SloArea, config: Config, options: RuleOptions) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    m = _match(slo)
    budget = slo.budget
    for alert in (PAGE, TICKET):
        conditions = burn_conditions(slo, alert)
        if not conditions:
            continue
        parts = []
        for c in conditions:
            limit = _num(c.factor * budget)
            long_s = _num(parse_duration(c.long))
            parts.append(
                f"(\n  max without (sloth_window) (slo:sli_error:ratio_rate{c.long}{m} > {limit})\n"
                f"  and\n  max without (sloth_window) (slo:sli_error:ratio_rate{c.short}{m} > {limit})\n"
                f"  and\n  max without (sloth_window) (slo:sli_events:rate{c.long}{m} * {long_s} >= "
                f"{options.min_events})\n)")
        windows = " or ".join(f"{_num(c.factor)}x over {c.long} and {c.short}" for c in conditions)
        name = f"{slo.alert}ErrorBudgetBurn"
        alerts.append({
            "alert": name,
            "expr": "\nor\n".join(parts) + "\n",
            "for": window(alert.for_, options),
            "labels": {"severity": alert.severity, "slo": slo.sloth_id},
            "annotations": {
                "summary": f"The {slo.title} SLO is burning its error budget {alert.speed}.",
                "description": (
                    f"{_where(slo)}: {{{{ $value | humanizePercentage }}}} {bad_phrase(slo, area)}, burning the "
                    f"{percent_text(budget)} error budget of the {slo.title} SLO at {windows}. Objective: "
                    f"{slo.description}, over {period_name(config)}."),
                "runbook_url": runbook(config, name),
            },
        })
    return alerts


def bad_phrase(slo: Slo, area: SloArea) -> str:
    """What the burn alert's value is a share of, e.g. "of probe requests took longer than 500 ms"."""
    if slo.kind == "latency":
        assert slo.threshold is not None
        return f"of {area.events} took longer than {seconds_text(slo.threshold)}"
    if slo.kind == "errors":
        return f"of {area.events} failed"
    return f"of {area.events} missed"


def threshold_alerts(area: SloArea, slos: list[Slo], config: Config, options: RuleOptions) -> list[dict[str, Any]]:
    """The guide's targets as it states them, on the last 5 minutes."""
    alerts: list[dict[str, Any]] = []
    for slo in slos:
        assert slo.threshold is not None
        where = _where(slo)
        if slo.kind == "latency":
            assert isinstance(slo.indicator, LatencyIndicator) and slo.quantile is not None
            fam, by = slo.indicator.family, slo.indicator.by
            expr = quantile_record(fam, by, slo.quantile)
            if slo.endpoint is not None:
                expr += selector(f'endpoint="{slo.endpoint}"')
            name = f"{slo.alert}High"
            if slo.estimated is not None:
                alerts += estimated_alerts(slo, slo.estimated, config, options)
                continue
            alerts.append({
                "alert": name, "expr": f"{expr} > {_num(slo.threshold)}",
                "for": window(TRACE_FOR if area.name == "tracing" else THRESHOLD_FOR["latency"], options),
                "labels": {"severity": "warning", "slo": slo.sloth_id},
                "annotations": {
                    "summary": f"{slo.title} is above its target of {seconds_text(slo.threshold)}.",
                    "description": (f"{where}: {slo.title} over the last {THRESHOLD_WINDOW} is "
                                    f"{{{{ $value | humanizeDuration }}}}; the target is "
                                    f"{slo.target_text}."),
                    "runbook_url": runbook(config, name)}})
        elif slo.kind == "errors":
            record = ERROR_RATIO_ENDPOINT if slo.endpoint else ERROR_RATIO_TARGET
            expr = record + (selector(f'endpoint="{slo.endpoint}"') if slo.endpoint else "")
            name = f"{slo.alert}High"
            alerts.append({
                "alert": name, "expr": f"{expr} > {_num(slo.threshold)}",
                "for": window(THRESHOLD_FOR["errors"], options), "labels": {"severity": "warning", "slo": slo.sloth_id},
                "annotations": {
                    "summary": f"The API error rate is above its target of {percent_text(slo.threshold)}.",
                    "description": (f"{where}: {{{{ $value | humanizePercentage }}}} of probe requests over the "
                                    f"last {THRESHOLD_WINDOW} failed (4xx, 5xx, timeout, connection error, "
                                    f"unexpected status or failed assertion); the target is {slo.target_text}."),
                    "runbook_url": runbook(config, name)}})
        elif slo.kind == "cache":
            name = f"{slo.alert}Low"
            alerts.append({
                "alert": name, "expr": f"{HIT_RATIO} < {_num(slo.threshold)}",
                "for": window(THRESHOLD_FOR["cache"], options), "labels": {"severity": "warning", "slo": slo.sloth_id},
                "annotations": {
                    "summary": f"The cache hit rate is below its target of {percent_text(slo.threshold)}.",
                    "description": (f"{where}: {{{{ $value | humanizePercentage }}}} of key lookups over the last "
                                    f"{THRESHOLD_WINDOW} hit; the target is {slo.target_text}."),
                    "runbook_url": runbook(config, name)}})
    return alerts


def estimated_alerts(slo: Slo, estimated: Estimated, config: Config, options: RuleOptions) -> list[dict[str, Any]]:
    """An estimated percentile's two alerts: ``High`` while the estimate is above the threshold (always so when
    even the lower bound is), ``Unproven`` while the estimate is within it but the upper bound is not. Together
    they are silent only while the bounds show the target met, so a true percentile above the threshold is never
    reported as met."""
    assert slo.threshold is not None
    threshold = _num(slo.threshold)
    estimate, upper = estimated_record(estimated.estimate, "max"), estimated_record(estimated.upper, "max")
    lower = estimated_record(estimated.lower, "min")
    where, wait = _where(slo), window(THRESHOLD_FOR["latency"], options)
    labels = {"severity": "warning", "slo": slo.sloth_id}
    return [
        {"alert": f"{slo.alert}High", "expr": f"{estimate} > {threshold}", "for": wait, "labels": dict(labels),
         "annotations": {
             "summary": f"{slo.title} is above its target of {seconds_text(slo.threshold)}.",
             "description": (f"{where}: {slo.title} over the last {THRESHOLD_WINDOW} is "
                             f"{{{{ $value | humanizeDuration }}}} ({estimated.source}; it lies between "
                             f"`{lower}` and `{upper}`); the target is {slo.target_text}."),
             "runbook_url": runbook(config, f"{slo.alert}High")}},
        {"alert": f"{slo.alert}Unproven",
         "expr": f"{upper} > {threshold}\nand on (target)\n{estimate} <= {threshold}\n", "for": wait,
         "labels": dict(labels),
         "annotations": {
             "summary": f"{slo.title} cannot be shown to meet its target of {seconds_text(slo.threshold)}.",
             "description": (f"{where}: {slo.title} over the last {THRESHOLD_WINDOW} may be as high as "
                             f"{{{{ $value | humanizeDuration }}}}: the estimate ({estimated.source}) is within "
                             f"the target of {slo.target_text}, but the statements' spread leaves room for a "
                             f"slower tail. Synthetic queries give exact figures."),
             "runbook_url": runbook(config, f"{slo.alert}Unproven")}},
    ]


def own_timing_rules(config: Config, options: RuleOptions) -> list[dict[str, Any]]:
    """The exporter's own saturation and its shards: when its figures stop being the platform's, or some of the
    platform is not measured at all. Every replica's series carry its ``instance``; a shard is named by
    ``perf_exporter_shard_info``."""
    discarded, requests = metrics.HTTP_TIMINGS_DISCARDED.name, metrics.HTTP_REQUESTS.name
    lag, shard = metrics.SCHEDULE_LAG.name, metrics.SHARD_INFO.name
    ten = window("10m", options)
    return [
        {"alert": "PerfExporterTimingsDiscarded",
         "expr": f"sum by (instance) (rate({discarded}[{ten}]))\n/\n"
                 f"(sum by (instance) (rate({requests}[{ten}])) > 0)\n> 0.01\n",
         "for": ten, "labels": {"severity": "warning"},
         "annotations": {
             "summary": "perf-exporter is too busy to time its probes.",
             "description": "{{ $labels.instance }} discarded {{ $value | humanizePercentage }} of its probe "
                            "timings over 10 minutes: its processes ran other work or waited for a CPU while the "
                            "requests were in flight. The latencies it reports cover only the requests it could "
                            "time.",
             "runbook_url": runbook(config, "PerfExporterTimingsDiscarded")}},
        {"alert": "PerfExporterRunsLate",
         "expr": f"histogram_quantile(0.99, sum by (instance, process, le) (rate({lag}_bucket[{ten}]))) > 1",
         "for": ten, "labels": {"severity": "warning"},
         "annotations": {
             "summary": "perf-exporter starts its runs and probes late.",
             "description": "{{ $labels.instance }} process {{ $labels.process }}: 1 % of its runs and probes "
                            "started more than {{ $value | humanizeDuration }} late over 10 minutes, so fewer "
                            "probes run than the config asks for.",
             "runbook_url": runbook(config, "PerfExporterRunsLate")}},
        {"alert": "PerfExporterShardMissing",
         "expr": f"(\n  max by (shard, total_shards) (last_over_time({shard}[1d]))\n  unless on (shard) {shard}\n)"
                 f"\nand on (total_shards) group by (total_shards) ({shard})\n",
         "for": window("5m", options), "labels": {"severity": "critical"},
         "annotations": {
             "summary": "A perf-exporter shard stopped reporting.",
             "description": "Shard {{ $labels.shard }} of {{ $labels.total_shards }} has not been scraped for 5 "
                            "minutes while the others have: the jobs it owns are not measured.",
             "runbook_url": runbook(config, "PerfExporterShardMissing")}},
    ]


def health_rules(config: Config, options: RuleOptions) -> list[dict[str, Any]]:
    up, runs = metrics.TARGET_UP.name, metrics.JOB_RUNS.name
    reload_ok = metrics.CONFIG_RELOAD_OK.name
    where = "{{ $labels.collector }} target {{ $labels.target }}"
    rules: list[dict[str, Any]] = [
        {"alert": "PerfExporterTargetDown", "expr": f"{up} == 0", "for": window("5m", options),
         "labels": {"severity": "warning"},
         "annotations": {
             "summary": "A target perf-exporter measures cannot be reached.",
             "description": f"{where} has been unreachable for 5 minutes (perf_target_up is {{{{ $value }}}}); its "
                            "performance metrics are stale.",
             "runbook_url": runbook(config, "PerfExporterTargetDown")}},
        {"alert": "PerfExporterJobFailing",
         "expr": f'sum by (collector, target) (increase({runs}{{result=~"error|timeout|skipped"}}'
                 f'[{window("15m", options)}])) >= 3',
         "for": window("5m", options), "labels": {"severity": "warning"},
         "annotations": {
             "summary": "A perf-exporter job keeps failing.",
             "description": f"{where}: {{{{ $value | humanize }}}} runs ended in an error or a timeout, or were "
                            "skipped because the previous run was still going, in the last 15 minutes.",
             "runbook_url": runbook(config, "PerfExporterJobFailing")}},
        {"alert": "PerfExporterConfigReloadFailed", "expr": f"{reload_ok} == 0", "for": window("5m", options),
         "labels": {"severity": "warning"},
         "annotations": {
             "summary": "perf-exporter could not load its new configuration.",
             "description": "The last configuration reload of {{ $labels.instance }} failed; it keeps running the "
                            "previous configuration.",
             "runbook_url": runbook(config, "PerfExporterConfigReloadFailed")}},
        *own_timing_rules(config, options),
        {"alert": "PerfExporterAbsent", "expr": f"absent({metrics.BUILD_INFO.name})", "for": window("10m", options),
         "labels": {"severity": "critical"},
         "annotations": {
             "summary": "Prometheus has no perf-exporter metrics.",
             "description": "No perf-exporter has been scraped for 10 minutes, so none of the performance-target "
                            "alerts can fire.",
             "runbook_url": runbook(config, "PerfExporterAbsent")}},
    ]
    for collector, area in config.configured_areas():
        rules.append({
            "alert": "PerfExporterSliAbsent", "expr": f"absent({area.sli})", "for": window("15m", options),
            "labels": {"severity": "warning", "area": area.name},
            "annotations": {
                "summary": f"The {area.title} SLI metrics are missing.",
                "description": f"{area.sli} has not been exported for 15 minutes although the config has a "
                               f"{collector} target, so the {area.title} SLOs cannot be computed.",
                "runbook_url": runbook(config, "PerfExporterSliAbsent")}})
    return rules


# -- putting it together -----------------------------------------------------------------------------------------


def rule_groups(config: Config, options: RuleOptions | None = None) -> dict[str, dict[str, Any]]:
    """File stem -> rule file content (``{"groups": [...]}``)."""
    options = options or RuleOptions()
    slos = all_slos(config)
    files: dict[str, dict[str, Any]] = {}
    for area in config.areas():
        mine = [s for s in slos if s.area == area.name]
        rules: list[dict[str, Any]] = []
        for slo in mine:
            rules += slo_records(slo, config, options)
        rules += (area.records or percentile_records)(mine, window(THRESHOLD_WINDOW, options))
        for slo in mine:
            rules += burn_alerts(slo, area, config, options)
        rules += threshold_alerts(area, mine, config, options)
        files[area.name] = {"groups": [{"name": f"perf-exporter-{area.name}", "rules": rules}]}
    files["health"] = {"groups": [{"name": "perf-exporter-health", "rules": health_rules(config, options)}]}
    return files
