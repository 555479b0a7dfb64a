"""promtool unit tests for every alert, generated with the rules from the same targets.

For each SLO: its guide threshold alert fires when the target is violated (and not before its ``for:``), and stays
silent when the target is met; its burn-rate alerts fire at their burn factor and not below it (a steady burn
just above and just below the lowest factor, a one-hour burst just above and below 14.4x after six clean hours),
and a handful of failures cannot page (the traffic floor). Each health alert fires on its condition and stays
silent without it.

Series are written as the exporter exposes them (``le="1.0"``, one series per outcome, ``job``/``instance`` added
by the scrape); latency SLOs whose threshold is a whole number are also tested with Prometheus 3's ``le="1"``.
The burn-rate cases write only the bucket at the threshold and the count of a histogram, all its SLO reads: promtool
evaluates every rule at every step, and the full bucket set would make the multi-hour cases slow.
Expected annotations are the rule's templates expanded here the way Prometheus does (``humanizePercentage`` and
``humanizeDuration`` print 4 significant digits, which absorbs floating-point noise: promtool 2.42 compares
exactly).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.config.units import parse_duration
from exporter.metrics import Family
from exporter.slo.rules import (
    PAGE,
    THRESHOLD_FOR,
    TICKET,
    TRACE_FOR,
    BurnAlert,
    RuleOptions,
    burn_conditions,
)
from exporter.slo.slos import (
    Estimated,
    HitMissIndicator,
    LatencyIndicator,
    OutcomeIndicator,
    Slo,
    all_slos,
)

if TYPE_CHECKING:
    from exporter.config.schema import Config

EVENTS_PER_MINUTE = 100_000
# promtool evaluates every rule at every step: a 5m step keeps the multi-hour scenarios quick. Samples stay 1m
# apart, so 5m windows still hold five of them; eval times are multiples of the step.
EVAL_STEP = 5
SCRAPE = {"job": "perf-exporter", "instance": "perf-exporter:9469"}

# Segments of steady traffic: (minutes, good events per minute, bad events per minute).
Segments = list[tuple[int, int, int]]


# -- Go template functions, as Prometheus defines them ------------------------------------------------------------


def go_g4(value: float) -> str:
    return "%.4g" % value  # noqa: UP031 - Go's %.4g and C's agree


def _scaled_up(value: float) -> tuple[float, str]:
    """A value below 1 multiplied by 1000 until it is at least 1, and the SI prefix that undoes it."""
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = p
        value *= 1000
    return value, prefix


def humanize_percentage(value: float) -> str:
    return f"{go_g4(value * 100)}%"


def humanize_duration(value: float) -> str:
    if value == 0:
        return f"{go_g4(value)}s"
    if abs(value) >= 1:
        whole = int(value)
        days, hours, minutes, seconds = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
        if days:
            return f"{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{minutes}m {seconds}s"
        return f"{go_g4(value)}s"
    value, prefix = _scaled_up(value)
    return f"{go_g4(value)}{prefix}s"


def humanize(value: float) -> str:
    if value == 0 or math.isnan(value) or math.isinf(value):
        return go_g4(value)
    if abs(value) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix = p
            value /= 1000
        return f"{go_g4(value)}{prefix}"
    value, prefix = _scaled_up(value)
    return f"{go_g4(value)}{prefix}"


def expand(template: str, labels: dict[str, str], value: float) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if inner.startswith("$labels."):
            return labels.get(inner.removeprefix("$labels."), "")
        if inner == "$value":
            return str(value)
        func = inner.split("|")[1].strip()
        return {"humanizePercentage": humanize_percentage, "humanizeDuration": humanize_duration,
                "humanize": humanize}[func](value)

    return re.sub(r"\{\{(.*?)\}\}", replace, template)


# -- input series ------------------------------------------------------------------------------------------------


def counter_values(segments: list[tuple[int, int]]) -> str:
    """promtool's expanding notation for a counter that starts at 0 and grows by ``per_minute`` for ``minutes``
    in each segment, sampled every minute."""
    parts: list[str] = []
    value = 0
    for i, (minutes, per_minute) in enumerate(segments):
        if i == 0:
            parts.append(f"0+{per_minute}x{minutes}")
        elif minutes > 0:
            parts.append(f"{value + per_minute}+{per_minute}x{minutes - 1}")
        value += per_minute * minutes
    return " ".join(parts)


def series_name(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in {**labels, **SCRAPE}.items())
    return f"{name}{{{inner}}}"


def le_text(bound: float, prometheus3: bool) -> str:
    if math.isinf(bound):
        return "+Inf"
    if prometheus3 and float(bound).is_integer():
        return str(int(bound))
    return repr(float(bound))


def histogram_series(family: Family, labels: dict[str, str], threshold: float, segments: Segments,
                     prometheus3: bool = False, only_threshold: bool = False) -> list[dict[str, str]]:
    """Good events observed at the threshold, bad ones in the bucket above it. ``only_threshold`` writes just the
    threshold's bucket and the count, all an SLO reads (it keeps the long burn-rate tests fast)."""
    above = next(b for b in family.buckets if b > threshold)
    out = []
    bounds = [threshold] if only_threshold else [*family.buckets, math.inf]
    for bound in bounds:
        per = [(m, (g if bound >= threshold else 0) + (b if bound >= above else 0)) for m, g, b in segments]
        out.append({"series": series_name(f"{family.name}_bucket", {**labels, "le": le_text(bound, prometheus3)}),
                    "values": counter_values(per)})
    out.append({"series": series_name(f"{family.name}_count", labels),
                "values": counter_values([(m, g + b) for m, g, b in segments])})
    return out


def outcome_series(labels: dict[str, str], segments: Segments) -> list[dict[str, str]]:
    out = []
    for outcome in metrics.HTTP_OUTCOMES:
        if outcome == "success":
            per = [(m, g) for m, g, _ in segments]
        elif outcome == "http_5xx":
            per = [(m, b) for m, _, b in segments]
        else:
            per = [(m, 0) for m, _, _ in segments]
        out.append({"series": series_name(metrics.HTTP_REQUESTS.name, {**labels, "outcome": outcome}),
                    "values": counter_values(per)})
    return out


def cache_series(labels: dict[str, str], segments: Segments) -> list[dict[str, str]]:
    return [{"series": series_name(metrics.REDIS_HITS.name, labels),
             "values": counter_values([(m, g) for m, g, _ in segments])},
            {"series": series_name(metrics.REDIS_MISSES.name, labels),
             "values": counter_values([(m, b) for m, _, b in segments])}]


TEST_LABELS: dict[str, dict[str, str]] = {
    metrics.HTTP_REQUEST_DURATION.name: {"target": "gateway", "method": "GET"},
    metrics.PG_QUERY_DURATION.name: {"target": "main", "datname": "tripo04os"},
    metrics.TRACE_DURATION.name: {"target": "tracing", "service": "gateway", "operation": "POST /api/v1/orders"},
    metrics.REDIS_HITS.name: {"target": "cache"},
}


def endpoint_for(slo: Slo, config: Config) -> str:
    if slo.endpoint is not None:
        return slo.endpoint
    return next(n for n in ("list_orders", "get_order", "health", "probe_endpoint")
                if n not in config.targets.endpoints)


def sli_labels(slo: Slo, config: Config) -> dict[str, str]:
    ind = slo.indicator
    if isinstance(ind, LatencyIndicator):
        labels = dict(TEST_LABELS.get(ind.family.name) or {n: f"test-{n}" for n in ind.family.labels})
    elif isinstance(ind, HitMissIndicator):
        labels = dict(TEST_LABELS[metrics.REDIS_HITS.name])
    else:
        labels = {"target": "gateway", "method": "GET"}
    if slo.area == "api":
        labels = {"target": labels["target"], "endpoint": endpoint_for(slo, config), "method": labels["method"]}
    return labels


def input_series(slo: Slo, config: Config, segments: Segments, prometheus3: bool = False,
                 only_sli: bool = False) -> list[dict[str, str]]:
    ind = slo.indicator
    labels = sli_labels(slo, config)
    if isinstance(ind, LatencyIndicator):
        assert slo.threshold is not None
        return histogram_series(ind.family, labels, slo.threshold, segments, prometheus3, only_sli)
    if isinstance(ind, OutcomeIndicator):
        return outcome_series(labels, segments)
    return cache_series(labels, segments)


def steady(minutes: int, bad_ratio: float) -> tuple[Segments, float]:
    """Steady traffic with this share of bad events; returns the segments and the exact share they carry."""
    bad = round(EVENTS_PER_MINUTE * bad_ratio)
    return [(minutes, EVENTS_PER_MINUTE - bad, bad)], bad / EVENTS_PER_MINUTE


# -- expected alerts ---------------------------------------------------------------------------------------------


def _rule(files: dict[str, dict[str, Any]], name: str, severity: str | None, slo: Slo | None) -> dict[str, Any]:
    for content in files.values():
        for group in content["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") != name:
                    continue
                if severity is not None and rule["labels"]["severity"] != severity:
                    continue
                if slo is not None and rule["labels"].get("slo") != slo.sloth_id:
                    continue
                return rule
    raise KeyError(name)


def expected_alert(rule: dict[str, Any], series_labels: dict[str, str], value: float) -> dict[str, Any]:
    labels = {**series_labels, **rule["labels"]}
    annotations = {k: expand(v, labels, value) for k, v in rule["annotations"].items()}
    return {"exp_labels": labels, "exp_annotations": annotations}


def _minutes(duration: str) -> int:
    return math.ceil(parse_duration(duration) / 60)


def quantile_of(family: Family, threshold: float, good: float, bad: float, q: float) -> float:
    """histogram_quantile over the buckets histogram_series writes."""
    above = next(b for b in family.buckets if b > threshold)
    below = max([0.0, *(b for b in family.buckets if b < threshold)])
    rank = q * (good + bad)
    if rank <= good:
        return below + (threshold - below) * rank / good
    return threshold + (above - threshold) * (rank - good) / bad


def _group(name: str, series: list[dict[str, str]], tests: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "interval": "1m", "input_series": series, "alert_rule_test": tests}


def estimated_tests(slo: Slo, estimated: Estimated, files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """An estimated percentile's gauges, steady: ``High`` fires on an estimate above the threshold, ``Unproven``
    on an estimate within it whose upper bound is above it, and both stay silent while the upper bound is
    within it."""
    assert slo.threshold is not None
    t = slo.threshold
    for_minutes = _minutes(THRESHOLD_FOR["latency"])
    labels = {"target": TEST_LABELS[metrics.PG_QUERY_DURATION.name]["target"]}
    minutes = for_minutes + 30
    early, late = f"{_step(for_minutes // 2)}m", f"{_step(for_minutes + 15)}m"
    high, unproven = f"{slo.alert}High", f"{slo.alert}Unproven"

    def series(estimate: float, lower: float, upper: float) -> list[dict[str, str]]:
        return [{"series": series_name(fam.name, labels), "values": f"{_num(value)}x{minutes}"}
                for fam, value in ((estimated.estimate, estimate), (estimated.lower, lower),
                                   (estimated.upper, upper))]

    def alert(name: str, value: float) -> dict[str, Any]:
        return expected_alert(_rule(files, name, "warning", slo), labels, value)

    cases: list[tuple[str, list[dict[str, str]], dict[str, list[dict[str, Any]]]]] = [
        (f"{high}: fires when the {slo.title} estimate misses {slo.target_text} for {for_minutes}m",
         series(2 * t, 1.5 * t, 3 * t), {high: [alert(high, 2 * t)], unproven: []}),
        (f"{unproven}: fires when the estimate meets {slo.target_text} but the upper bound does not",
         series(t / 2, t / 4, 2 * t), {high: [], unproven: [alert(unproven, 2 * t)]}),
        (f"{high}, {unproven}: silent while the upper bound meets {slo.target_text}",
         series(t / 2, t / 4, t * 0.9), {high: [], unproven: []}),
    ]
    groups = []
    for title, input_series, expected in cases:
        tests: list[dict[str, Any]] = []
        for name, alerts in expected.items():
            tests.append({"eval_time": early, "alertname": name, "exp_alerts": []})
            tests.append({"eval_time": late, "alertname": name, "exp_alerts": alerts})
        groups.append(_group(title, input_series, tests))
    return groups


def threshold_tests(slo: Slo, config: Config, files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    kind = slo.kind
    assert slo.threshold is not None
    if slo.estimated is not None:
        return estimated_tests(slo, slo.estimated, files)
    name = {"latency": f"{slo.alert}High", "errors": f"{slo.alert}High", "cache": f"{slo.alert}Low"}[kind]
    rule = _rule(files, name, "warning", slo)
    for_minutes = _minutes(TRACE_FOR if slo.area == "tracing" else THRESHOLD_FOR[kind])
    series_labels = {"target": sli_labels(slo, config)["target"]}
    if slo.endpoint:
        series_labels["endpoint"] = slo.endpoint
    groups = []
    variants = [False, True] if kind == "latency" and float(slo.threshold).is_integer() else [False]
    for prometheus3 in variants:
        # twice the allowed share of bad events violates the target, half of it meets it
        segments, share = steady(for_minutes + 30, slo.budget * 2)
        good = 1 - share
        if kind == "latency":
            assert isinstance(slo.indicator, LatencyIndicator) and slo.quantile is not None
            value = quantile_of(slo.indicator.family, slo.threshold, good, share, slo.quantile)
        elif kind == "errors":
            value = share
        else:
            value = good
        fire_at = _step(for_minutes + 15)
        suffix = " (Prometheus 3 le labels)" if prometheus3 else ""
        groups.append(_group(
            f"{name}: fires when {slo.title} misses {slo.target_text} for {for_minutes}m{suffix}",
            input_series(slo, config, segments, prometheus3),
            [{"eval_time": f"{_step(for_minutes // 2)}m", "alertname": name, "exp_alerts": []},
             {"eval_time": f"{fire_at}m", "alertname": name,
              "exp_alerts": [expected_alert(rule, series_labels, value)]}]))
    segments, _ = steady(for_minutes + 30, slo.budget / 2)
    groups.append(_group(f"{name}: silent while {slo.title} meets {slo.target_text}",
                         input_series(slo, config, segments),
                         [{"eval_time": f"{_step(for_minutes + 15)}m", "alertname": name, "exp_alerts": []}]))
    return groups


def increments(segments: Segments) -> list[tuple[int, int]]:
    """Per minute (good, bad) increments: entry i is what happens between the samples at minute i and i+1."""
    out: list[tuple[int, int]] = []
    for minutes, good, bad in segments:
        out += [(good, bad)] * minutes
    return out


def window_ratio(segments: Segments, at: int, window: int) -> tuple[float, bool]:
    """The bad share Prometheus sees over ``window`` minutes ending at minute ``at``, and whether it is exact:
    a window reaching back past the first sample counts from zero (both counters start there); a window inside one
    steady stretch is extrapolated alike for both counters. Anything else is only close enough to decide."""
    steps = increments(segments)
    first = max(0, at - window)
    inside = steps[first:at]
    good = sum(g for g, _ in inside)
    bad = sum(b for _, b in inside)
    ratio = bad / (good + bad) if good + bad else math.nan
    if window >= at:
        return ratio, True
    return ratio, len(set(steps[max(0, first - 1):at])) == 1


def burn_state(slo: Slo, alert: BurnAlert, segments: Segments, at: int) -> float | None:
    """The value the alert fires with at minute ``at``, or None when it is silent. Raises when the scenario sits
    too close to a limit to say, or when the value could not be known exactly."""
    held_since = at - _minutes(alert.for_) - EVAL_STEP
    fired_value: float | None = None
    for minute in range(held_since, at + 1):
        value: float | None = None
        for c in burn_conditions(slo, alert):
            limit = c.factor * slo.budget
            long_ratio, exact = window_ratio(segments, minute, _minutes(c.long))
            short_ratio, _ = window_ratio(segments, minute, _minutes(c.short))
            for ratio in (long_ratio, short_ratio):
                if not math.isnan(ratio) and abs(ratio - limit) < 0.02 * limit:
                    raise ValueError(f"{slo.sloth_id}: a test scenario is too close to {c.factor}x to decide")
            if long_ratio > limit and short_ratio > limit:
                if not exact and minute == at:
                    raise ValueError(f"{slo.sloth_id}: the firing value over {c.long} is not exactly known")
                value = long_ratio
                break
        if value is None:
            return None
        fired_value = value
    return fired_value


def burn_tests(slo: Slo, config: Config, files: dict[str, dict[str, Any]],
               options: RuleOptions) -> list[dict[str, Any]]:
    """Steady burns just above and below each alert's lowest factor; for the page, a burst just above and below
    14.4x; and a handful of failures that must not page. Every burn alert of the SLO is checked in each case."""
    name = f"{slo.alert}ErrorBudgetBurn"
    series_labels = {"target": sli_labels(slo, config)["target"], **slo.labels()}
    if slo.endpoint:
        series_labels["endpoint"] = slo.endpoint
    alerts = [a for a in (PAGE, TICKET) if burn_conditions(slo, a)]
    rules = {a.severity: _rule(files, name, a.severity, slo) for a in alerts}

    def group(title: str, segments: Segments, at: int) -> dict[str, Any]:
        expected = []
        for a in alerts:
            value = burn_state(slo, a, segments, at)
            if value is not None:
                expected.append(expected_alert(rules[a.severity], series_labels, value))
        return _group(f"{name}: {title}", input_series(slo, config, segments, only_sli=True),
                      [{"eval_time": f"{at}m", "alertname": name, "exp_alerts": expected}])

    groups = []
    for alert in alerts:
        lowest = min(c.factor for c in burn_conditions(slo, alert))
        at = _step(_minutes(alert.for_) + 30)
        for factor in (lowest * 1.1, lowest * 0.9):
            segments, _ = steady(at + 5, slo.budget * factor)
            groups.append(group(f"a steady {_num(factor)}x burn ({alert.severity} from {_num(lowest)}x)",
                                segments, at))
    fast = next((c for c in burn_conditions(slo, PAGE)), None)
    if fast is not None and fast.factor * slo.budget * 1.05 < 1:
        # after a clean stretch, a burst that fills the 1h window; the 6h window stays under 6x
        clean, burst = 150, _minutes(fast.long) + 10
        for factor in (fast.factor * 1.05, fast.factor * 0.9):
            bad = round(EVENTS_PER_MINUTE * slo.budget * factor)
            segments = [(clean, EVENTS_PER_MINUTE, 0), (burst, EVENTS_PER_MINUTE - bad, bad)]
            groups.append(group(f"a {_num(factor)}x burst for {burst}m after {clean}m clean "
                                f"(critical from {_num(fast.factor)}x over {fast.long})", segments, clean + burst))
    if PAGE in alerts:
        # every event bad, but only a handful: one every 4 minutes for an hour, fewer than min_events
        every, minutes = 4, 60
        assert minutes // every < options.min_events
        groups.append(_group(f"{name}: {minutes // every} failed events in an hour, and no others, do not page",
                             _sparse_series(slo, config, minutes, every),
                             [{"eval_time": f"{minutes}m", "alertname": name,
                               "exp_alerts": []}]))
    return groups


def _step(minute: int) -> int:
    """The last evaluation step at or before ``minute``."""
    return minute - minute % EVAL_STEP


def _num(value: float) -> str:
    return f"{round(value, 3):g}"


def _sparse_series(slo: Slo, config: Config, minutes: int, every: int) -> list[dict[str, str]]:
    """All events bad, one every ``every`` minutes, written out sample by sample."""
    counts = [i // every for i in range(minutes + 1)]
    values = " ".join(str(c) for c in counts)
    zeros = " ".join("0" for _ in counts)
    labels = sli_labels(slo, config)
    ind = slo.indicator
    out: list[dict[str, str]] = []
    if isinstance(ind, LatencyIndicator):
        assert slo.threshold is not None
        above = next(b for b in ind.family.buckets if b > slo.threshold)
        for bound in [*ind.family.buckets, math.inf]:
            out.append({"series": series_name(f"{ind.family.name}_bucket", {**labels, "le": le_text(bound, False)}),
                        "values": values if bound >= above else zeros})
        out.append({"series": series_name(f"{ind.family.name}_count", labels), "values": values})
    elif isinstance(ind, OutcomeIndicator):
        for outcome in metrics.HTTP_OUTCOMES:
            out.append({"series": series_name(metrics.HTTP_REQUESTS.name, {**labels, "outcome": outcome}),
                        "values": values if outcome == "http_5xx" else zeros})
    else:
        out.append({"series": series_name(metrics.REDIS_HITS.name, labels), "values": zeros})
        out.append({"series": series_name(metrics.REDIS_MISSES.name, labels), "values": values})
    return out


# -- exporter health ---------------------------------------------------------------------------------------------


def own_timing_tests(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    def rule(name: str) -> dict[str, Any]:
        return _rule(files, name, None, None)

    t = {"target": "gateway"}
    instance = {"instance": SCRAPE["instance"]}
    ok = {**t, "endpoint": "health", "method": "GET", "outcome": "success"}
    discarded, requests = metrics.HTTP_TIMINGS_DISCARDED.name, metrics.HTTP_REQUESTS.name
    lag = f"{metrics.SCHEDULE_LAG.name}_bucket"
    main = {"process": "probe-0"}

    def lag_series(late: bool) -> list[dict[str, str]]:
        """60 runs a minute, all on time, or 3 of them 2.5 s late."""
        out = []
        for bound in [*metrics.LAG_BUCKETS, math.inf]:
            count = 60 if not late or bound >= 5.0 else 57
            out.append({"series": series_name(lag, {**main, "le": le_text(bound, False)}),
                        "values": f"0+{count}x40"})
        return out

    shard = metrics.SHARD_INFO.name
    shards = [{"series": series_name(shard, {"shard": str(i), "total_shards": "3"}),
               "values": "1x60" if i != 2 else "1x10"} for i in range(3)]
    return [
        _group("PerfExporterTimingsDiscarded: fires when 5 % of the timings are discarded",
               [{"series": series_name(requests, ok), "values": "0+100x40"},
                {"series": series_name(discarded, t), "values": "0+5x40"}],
               [{"eval_time": "30m", "alertname": "PerfExporterTimingsDiscarded",
                 "exp_alerts": [expected_alert(rule("PerfExporterTimingsDiscarded"), instance, 0.05)]}]),
        _group("PerfExporterTimingsDiscarded: silent at one discarded timing in a thousand",
               [{"series": series_name(requests, ok), "values": "0+1000x40"},
                {"series": series_name(discarded, t), "values": "0+1x40"}],
               [{"eval_time": "30m", "alertname": "PerfExporterTimingsDiscarded", "exp_alerts": []}]),
        _group("PerfExporterRunsLate: fires when 5 % of the starts are 2.5 s late", lag_series(True),
               [{"eval_time": "30m", "alertname": "PerfExporterRunsLate",
                 "exp_alerts": [expected_alert(rule("PerfExporterRunsLate"), {**instance, **main}, 4.5)]}]),
        _group("PerfExporterRunsLate: silent while every start is on time", lag_series(False),
               [{"eval_time": "30m", "alertname": "PerfExporterRunsLate", "exp_alerts": []}]),
        _group("PerfExporterShardMissing: names the shard that stopped reporting", shards,
               [{"eval_time": "8m", "alertname": "PerfExporterShardMissing", "exp_alerts": []},
                {"eval_time": "30m", "alertname": "PerfExporterShardMissing",
                 "exp_alerts": [expected_alert(rule("PerfExporterShardMissing"),
                                               {"shard": "2", "total_shards": "3"}, 1)]}]),
        _group("PerfExporterShardMissing: silent while every shard reports",
               [{**s, "values": "1x60"} for s in shards],
               [{"eval_time": "30m", "alertname": "PerfExporterShardMissing", "exp_alerts": []}]),
    ]


def health_tests(config: Config, files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    up = metrics.TARGET_UP.name
    runs = metrics.JOB_RUNS.name
    where = {"collector": "api", "target": "gateway"}
    build = {"series": series_name(metrics.BUILD_INFO.name, {"version": "1.0.0"}), "values": "1+0x60"}

    def rule(name: str) -> dict[str, Any]:
        return _rule(files, name, None, None)

    groups = [
        _group("PerfExporterTargetDown: fires after 5m unreachable",
               [{"series": series_name(up, where), "values": "0+0x30"}],
               [{"eval_time": "3m", "alertname": "PerfExporterTargetDown", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "PerfExporterTargetDown",
                 "exp_alerts": [expected_alert(rule("PerfExporterTargetDown"), {**where, **SCRAPE}, 0)]}]),
        _group("PerfExporterTargetDown: silent while the target is up",
               [{"series": series_name(up, where), "values": "1+0x30"}],
               [{"eval_time": "10m", "alertname": "PerfExporterTargetDown", "exp_alerts": []}]),
        _group("PerfExporterJobFailing: fires on an error every minute",
               [{"series": series_name(runs, {**where, "result": "error"}), "values": "0+1x40"},
                {"series": series_name(runs, {**where, "result": "success"}), "values": "0+0x40"}],
               [{"eval_time": "20m", "alertname": "PerfExporterJobFailing",
                 "exp_alerts": [expected_alert(rule("PerfExporterJobFailing"), where, 15)]}]),
        _group("PerfExporterJobFailing: silent on one error among successes",
               [{"series": series_name(runs, {**where, "result": "error"}), "values": "0x10 1+0x30"},
                {"series": series_name(runs, {**where, "result": "success"}), "values": "0+1x40"}],
               [{"eval_time": "20m", "alertname": "PerfExporterJobFailing", "exp_alerts": []}]),
        _group("PerfExporterConfigReloadFailed: fires after a failed reload",
               [{"series": series_name(metrics.CONFIG_RELOAD_OK.name, {}), "values": "1x5 0+0x30"}],
               [{"eval_time": "20m", "alertname": "PerfExporterConfigReloadFailed",
                 "exp_alerts": [expected_alert(rule("PerfExporterConfigReloadFailed"), SCRAPE, 0)]}]),
        _group("PerfExporterConfigReloadFailed: silent while reloads succeed",
               [{"series": series_name(metrics.CONFIG_RELOAD_OK.name, {}), "values": "1+0x30"}],
               [{"eval_time": "20m", "alertname": "PerfExporterConfigReloadFailed", "exp_alerts": []}]),
        *own_timing_tests(files),
        _group("PerfExporterAbsent: fires when no exporter is scraped",
               [{"series": 'up{job="perf-exporter", instance="perf-exporter:9469"}', "values": "0+0x30"}],
               [{"eval_time": "15m", "alertname": "PerfExporterAbsent",
                 "exp_alerts": [expected_alert(rule("PerfExporterAbsent"), {}, 1)]}]),
        _group("PerfExporterAbsent: silent while the exporter is scraped", [build],
               [{"eval_time": "15m", "alertname": "PerfExporterAbsent", "exp_alerts": []}]),
    ]
    sli_rules = [r for r in files["health"]["groups"][0]["rules"] if r.get("alert") == "PerfExporterSliAbsent"]
    areas = config.configured_areas()
    if sli_rules:
        present = [{"series": series_name(r["expr"].removeprefix("absent(").removesuffix(")"),
                                          {"target": "x"}), "values": "1+1x60"} for r in sli_rules]
        groups.append(_group("PerfExporterSliAbsent: fires for each configured area without its SLI metrics",
                             [build],
                             [{"eval_time": "20m", "alertname": "PerfExporterSliAbsent",
                               "exp_alerts": [expected_alert(r, {}, 1) for r in sli_rules]}]))
        groups.append(_group("PerfExporterSliAbsent: silent while every area's SLI metrics are exported",
                             [build, *present],
                             [{"eval_time": "20m", "alertname": "PerfExporterSliAbsent", "exp_alerts": []}]))
    assert len(sli_rules) == len(areas)
    return groups


def unit_tests(config: Config, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """File stem -> promtool test file for the rule files ``files`` (as rule_groups renders them at the default
    RuleOptions): one per SLO (named by its sloth_id, loading its area's ``../<area>.rules.yml``) and one for the
    exporter's health, so they can run side by side."""
    options = RuleOptions()
    out: dict[str, dict[str, Any]] = {}
    for slo in all_slos(config):
        groups = threshold_tests(slo, config, files) + burn_tests(slo, config, files, options)
        out[slo.sloth_id] = {"rule_files": [f"../{slo.area}.rules.yml"], "evaluation_interval": f"{EVAL_STEP}m",
                             "tests": groups}
    out["health"] = {"rule_files": ["../health.rules.yml"], "evaluation_interval": "1m",
                     "tests": health_tests(config, files)}
    return out
