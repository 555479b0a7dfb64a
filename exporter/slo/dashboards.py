"""Grafana dashboards, built with grafana-foundation-sdk from the same targets as the rules.

Six dashboards, linked to each other by the ``perf-exporter`` tag: an overview whose first row is the guide's
Performance Targets table (metric, target, current, status) with error budgets and burn rates, then API,
Database, Cache, Tracing and Exporter health. Each has a Prometheus datasource variable and a ``target`` variable
(the API one an ``endpoint`` variable too); raw rates use ``$__rate_interval``; targets are drawn as threshold
lines. The overview reads the recording rules (5-minute windows, the same numbers the alerts use).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from exporter import metrics
from exporter.config.units import format_duration
from exporter.metrics import Family
from exporter.slo.rules import ERROR_RATIO_ENDPOINT, ERROR_RATIO_TARGET, HIT_RATIO, estimated_record, quantile_record
from exporter.slo.slos import BAD_OUTCOME, HitMissIndicator, LatencyIndicator, Slo, all_slos

if TYPE_CHECKING:
    from exporter.config.schema import Config
    from exporter.jobs import SloArea

TAG = "perf-exporter"
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
RI = "$__rate_interval"
T = 'target=~"$target"'


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False, table_format: bool = False
          ) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    q = q.instant() if instant else q.range()
    if table_format:
        q = q.format(pm.PromQueryFormat.TABLE)
    return q


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


def graph(title: str, *queries: prom.Dataquery, unit: str = "short", line: float | None = None,
          lines: tuple[float, ...] = (), width: int = 12, height: int = 8, description: str = "",
          stack: bool = False) -> timeseries.Panel:
    """A time series panel; ``line``/``lines`` are drawn as dashed threshold lines (the target in red)."""
    legend = (cb.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
              .placement(common.LegendPlacement.BOTTOM))
    panel = (timeseries.Panel().title(title).datasource(DS).unit(unit).span(width).height(height)
             .targets(list(queries)).fill_opacity(60 if stack else 10).line_width(1).legend(legend))
    if description:
        panel = panel.description(description)
    if stack:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    marks = ((line,) if line is not None else ()) + lines
    if marks:
        colours = ["red", "orange", "dark-red"]
        steps: list[tuple[float | None, str]] = [(None, "green")]
        steps += [(m, colours[i % len(colours)]) for i, m in enumerate(sorted(marks))]
        panel = (panel.thresholds(thresholds(*steps))
                 .thresholds_style(cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)))
    return panel


def single(title: str, q: prom.Dataquery, unit: str = "short", steps: tuple[tuple[float | None, str], ...] = (),
           width: int = 6, height: int = 4) -> stat.Panel:
    panel = (stat.Panel().title(title).datasource(DS).unit(unit).span(width).height(height).with_target(q)
             .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.AREA))
    if steps:
        panel = panel.thresholds(thresholds(*steps))
    return panel


def bars(title: str, q: prom.Dataquery, unit: str, steps: tuple[tuple[float | None, str], ...],
         width: int = 12, height: int = 8, lo: float | None = None, hi: float | None = None) -> bargauge.Panel:
    panel = (bargauge.Panel().title(title).datasource(DS).unit(unit).span(width).height(height).with_target(q)
             .thresholds(thresholds(*steps)).orientation(common.VizOrientation.HORIZONTAL)
             .display_mode(common.BarGaugeDisplayMode.GRADIENT))
    if lo is not None:
        panel = panel.min(lo)
    if hi is not None:
        panel = panel.max(hi)
    return panel


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, label: str, source: str) -> db.QueryVariable:
    return (db.QueryVariable(name).label(label).datasource(DS)
            .query({"query": f"label_values({source}, {name})", "refId": f"{name}-variable"})
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*"))


def target_variable(collector: str | None) -> db.QueryVariable:
    where = f'{{collector="{collector}"}}' if collector else ""
    return label_variable("target", "Target", f"{metrics.TARGET_UP.name}{where}")


def new_dashboard(uid: str, title: str, description: str, collector: str | None) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags([TAG]).refresh("30s")
            .time("now-3h", "now").timezone("browser").editable()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .link(db.DashboardLink("perf-exporter").type(dm.DashboardLinkType.DASHBOARDS).tags([TAG])
                  .as_dropdown(True).include_vars(False).keep_time(True))
            .with_variable(datasource_variable())
            .with_variable(target_variable(collector)))


# -- SLO panels, shared by the area dashboards and the overview ----------------------------------------------------


def budget_panel(where: str, width: int = 12) -> bargauge.Panel:
    return bars("Error budget remaining", query(
        f"slo:period_error_budget_remaining:ratio{{{where}}}", "{{sloth_id}} {{target}}{{endpoint}}", instant=True),
        "percentunit", ((None, "red"), (0, "orange"), (0.25, "green")), width=width, lo=-1, hi=1)


def burn_panel(where: str, width: int = 12) -> timeseries.Panel:
    return graph("Burn rate (5m)", query(f"slo:current_burn_rate:ratio{{{where}}}",
                                         "{{sloth_id}} {{target}}{{endpoint}}"),
                 unit="x", lines=(1, 6, 14.4), width=width,
                 description="Error ratio over 5 minutes divided by the error budget: 1 spends the budget exactly "
                             "over the SLO window; 14.4 over 1 hour pages.")


def slo_row(dashboard: db.Dashboard, area: str) -> db.Dashboard:
    where = f'sloth_service="{area}", {T}'
    return (dashboard.with_row(db.Row("Service level objectives"))
            .with_panel(budget_panel(where)).with_panel(burn_panel(where)))


# -- the overview --------------------------------------------------------------------------------------------------


def current_expr(slo: Slo) -> tuple[str, str, float, str]:
    """PromQL for the SLO's guide figure now (the worst selected target), then the comparison with its threshold
    that means "met", and the display scale and unit (ms or %)."""
    if slo.kind == "latency":
        assert isinstance(slo.indicator, LatencyIndicator) and slo.quantile is not None
        fam = slo.indicator.family
        if slo.estimated is not None:
            return f"max({estimated_record(slo.estimated.estimate, 'max')}{{{T}}})", "<=", 1000, "ms"
        if slo.endpoint:
            record = quantile_record(fam, ("target", "endpoint"), slo.quantile)
            return f'max({record}{{{T}, endpoint="{slo.endpoint}"}})', "<=", 1000, "ms"
        return f"max({quantile_record(fam, ('target',), slo.quantile)}{{{T}}})", "<=", 1000, "ms"
    if slo.kind == "errors":
        if slo.endpoint:
            return f'max({ERROR_RATIO_ENDPOINT}{{{T}, endpoint="{slo.endpoint}"}})', "<=", 100, "%"
        return f"max({ERROR_RATIO_TARGET}{{{T}}})", "<=", 100, "%"
    return f"min({HIT_RATIO}{{{T}}})", ">=", 100, "%"


# Where each area's guide figure comes from (an estimated one says so itself), for the targets table.
SOURCES = {"api": "synthetic probes", "cache": "Redis keyspace counters", "tracing": "Jaeger traces"}


def status_expr(slo: Slo, current: str, met: str) -> str:
    """1 when the SLO's figure meets its threshold, 0 when not. An estimated percentile is 1 only when its upper
    bound meets the threshold, 0 when its estimate does not, and 0.5 (unknown) in between."""
    assert slo.threshold is not None
    if slo.estimated is None:
        return f"({current} {met} bool {slo.threshold:g})"
    upper = f"max({estimated_record(slo.estimated.upper, 'max')}{{{T}}})"
    return (f"(({upper} <= bool {slo.threshold:g}) + 0.5 * ({upper} > bool {slo.threshold:g}) * "
            f"({current} <= bool {slo.threshold:g}))")


def _labelled(expr: str, labels: dict[str, str]) -> str:
    for name, value in labels.items():
        expr = f'label_replace({expr}, "{name}", "{value}", "", "")'
    return expr


def targets_table(slos: list[Slo]) -> table.Panel:
    """One row per SLO: metric, target, current value, unit, status (OK / VIOLATED), error budget left over the
    SLO window and the 5-minute burn rate, each the worst over the selected targets."""
    currents, statuses, budgets, burns = [], [], [], []
    for order, slo in enumerate(slos, 1):
        expr, met, scale, unit = current_expr(slo)
        assert slo.threshold is not None
        source = slo.estimated.source if slo.estimated is not None else SOURCES.get(slo.area, "")
        labels = {"order": f"{order:02d}", "metric": slo.title, "source": source, "objective": slo.target_text,
                  "unit": unit}
        currents.append(_labelled(f"({expr} * {scale})", labels))
        statuses.append(_labelled(status_expr(slo, expr, met), labels))
        which = f'sloth_id="{slo.sloth_id}", {T}'
        budgets.append(_labelled(f"min(slo:period_error_budget_remaining:ratio{{{which}}})", labels))
        burns.append(_labelled(f"max(slo:current_burn_rate:ratio{{{which}}})", labels))
    columns = {"metric": "Metric", "source": "Source", "objective": "Target", "Value #A": "Current", "unit": "Unit",
               "Value #B": "Status", "Value #C": "Error budget left", "Value #D": "Burn rate"}
    organize = dm.DataTransformerConfig(id_val="organize", options={
        "excludeByName": {"Time": True, "order": True},
        "indexByName": {name: i for i, name in enumerate(columns)},
        "renameByName": columns})
    status_colours = [dm.ValueMap(options={
        "1": dm.ValueMappingResult(text="OK", color="green", index=0),
        "0": dm.ValueMappingResult(text="VIOLATED", color="red", index=1),
        "0.5": dm.ValueMappingResult(text="UNKNOWN", color="orange", index=2)})]
    background = dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})
    return (table.Panel().title("Performance targets").datasource(DS).span(24).height(9)
            .description("The guide's Performance Targets table: the worst selected target over the last 5 minutes "
                         "(the numbers the alerts use), its error budget left over the SLO window and how fast "
                         "it burns now (1 = exactly the budget over the window).")
            .targets([query(" or ".join(currents), ref="A", instant=True, table_format=True),
                      query(" or ".join(statuses), ref="B", instant=True, table_format=True),
                      query(" or ".join(budgets), ref="C", instant=True, table_format=True),
                      query(" or ".join(burns), ref="D", instant=True, table_format=True)])
            .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(dm.DataTransformerConfig(id_val="sortBy", options={
                "sort": [{"field": "order", "desc": False}]}))
            .with_transformation(organize)
            .decimals(1)
            .override_by_name("Status", [dm.DynamicConfigValue(id_val="mappings", value=status_colours), background])
            .override_by_name("Error budget left", [
                dm.DynamicConfigValue(id_val="unit", value="percentunit"),
                dm.DynamicConfigValue(id_val="thresholds", value=thresholds(
                    (None, "red"), (0, "orange"), (0.25, "green")).build()),
                background])
            .override_by_name("Burn rate", [
                dm.DynamicConfigValue(id_val="unit", value="suffix:x"),
                dm.DynamicConfigValue(id_val="decimals", value=2),
                dm.DynamicConfigValue(id_val="thresholds", value=thresholds(
                    (None, "green"), (1, "orange"), (6, "red")).build()),
                background]))


def overview(config: Config) -> db.Dashboard:
    slos = all_slos(config)
    window = format_duration(config.targets.slo_window)
    d = new_dashboard("perf-overview", "perf-exporter / Overview",
                      "The guide's performance targets, their error budgets and burn rates.", None)
    alerts = "|".join(sorted({s.alert + ".*" for s in slos} | {"PerfExporter.*"}))
    d = (d.with_row(db.Row("Performance targets")).with_panel(targets_table(slos))
         .with_row(db.Row(f"Error budgets ({window})"))
         .with_panel(budget_panel(T, width=8)).with_panel(burn_panel(T, width=10))
         .with_panel(single("Firing alerts", query(
             f'count(ALERTS{{alertstate="firing", alertname=~"{alerts}"}}) or vector(0)', instant=True),
             steps=((None, "green"), (1, "red")), width=6, height=8)))
    return d


# -- area dashboards -----------------------------------------------------------------------------------------------


def _rate(family: Family, where: str, by: str, suffix: str = "") -> str:
    return f"sum by ({by}) (rate({family.name}{suffix}{{{where}}}[{RI}]))"


def _quantile(family: Family, where: str, by: str, q: float) -> str:
    return f"histogram_quantile({q:g}, {_rate(family, where, by + ', le', '_bucket')})"


def api(config: Config) -> db.Dashboard:
    t = config.targets
    d = new_dashboard("perf-api", "perf-exporter / API", "Synthetic probes of the API gateway: response times "
                      "(P50, P95, P99), request and error rates, phases and journeys.", "api")
    d = d.with_variable(label_variable("endpoint", "Endpoint",
                                       f'{metrics.HTTP_REQUESTS.name}{{{T}}}'))
    where = f'{T}, endpoint=~"$endpoint"'
    dur, req = metrics.HTTP_REQUEST_DURATION, metrics.HTTP_REQUESTS
    by = "target, endpoint"
    errors = f"{_rate(req, f'{where}, {BAD_OUTCOME.promql}', by)}\n/\n({_rate(req, where, by)} > 0)"
    d = (d.with_row(db.Row("Response times"))
         .with_panel(graph("P95 response time", query(_quantile(dur, where, by, 0.95), "{{target}} {{endpoint}}"),
                           unit="s", line=t.api_latency_p95, width=8))
         .with_panel(graph("P99 response time", query(_quantile(dur, where, by, 0.99), "{{target}} {{endpoint}}"),
                           unit="s", line=t.api_latency_p99, width=8))
         .with_panel(graph("P50 response time", query(_quantile(dur, where, by, 0.5), "{{target}} {{endpoint}}"),
                           unit="s", width=8))
         .with_row(db.Row("Requests and errors"))
         .with_panel(graph("Request rate", query(_rate(req, where, by), "{{target}} {{endpoint}}"),
                           unit="reqps", width=8))
         .with_panel(graph("Error rate", query(errors, "{{target}} {{endpoint}}"), unit="percentunit",
                           line=t.error_rate, width=8,
                           description="Share of probe requests whose outcome is not success: 4xx, 5xx, timeouts, "
                                       "connection errors, unexpected statuses and failed assertions."))
         .with_panel(graph("Requests by outcome", query(_rate(req, where, "outcome"), "{{outcome}}"),
                           unit="reqps", width=8, stack=True))
         .with_row(db.Row("Where the time goes"))
         .with_panel(graph("Phases of the last request", query(
             f"sum by (phase) ({metrics.HTTP_PHASE_DURATION.name}{{{where}}})", "{{phase}}"),
             unit="s", width=12, stack=True))
         .with_panel(graph("Probe success", query(f"{metrics.PROBE_SUCCESS.name}{{{T}}}", "{{target}} {{probe}}"),
                           unit="bool", width=12))
         .with_panel(graph("Journey P95", query(_quantile(metrics.JOURNEY_DURATION, T, "target, journey", 0.95),
                                                "{{target}} {{journey}}"), unit="s", width=12))
         .with_panel(graph("Journey step P95", query(
             _quantile(metrics.JOURNEY_STEP_DURATION, T, "target, journey, step", 0.95),
             "{{journey}} {{step}}"), unit="s", width=12))
         .with_row(db.Row("Security checks"))
         .with_panel(single("Security checks failing", query(
             f"count({metrics.SECURITY_CHECK_SUCCESS.name}{{{T}}} == 0) or vector(0)"),
             steps=((None, "green"), (1, "red")), width=6, height=8))
         .with_panel(graph("Security checks (1: met)", query(
             f"{metrics.SECURITY_CHECK_SUCCESS.name}{{{where}}}", "{{endpoint}} {{check}}"), unit="bool", width=18,
             description="The guide's checklist per endpoint: unauthenticated (401), lower_role (403), rate_limit "
                         "(429 in a burst) and injection (canaries get a 4xx, never a 5xx, never echoed).")))
    return slo_row(d, "api")


def database(config: Config) -> db.Dashboard:
    t = config.targets
    d = new_dashboard("perf-database", "perf-exporter / Database", "PostgreSQL: statement times from "
                      "pg_stat_statements, connections, locks and table scans.", "postgres")
    info = metrics.PG_STATEMENT_INFO.name
    p95 = (f"{metrics.PG_QUERY_P95.name}{{{T}}}", f"{metrics.PG_QUERY_P95_UPPER.name}{{{T}}}",
           f"{metrics.PG_QUERY_P95_LOWER.name}{{{T}}}")
    d = (d.with_row(db.Row("Query time"))
         .with_panel(graph(
             "Query P95 (all statements)",
             query(p95[0], "{{target}} statements (pg_stat_statements, estimated)", "A"),
             query(p95[1], "{{target}} statements: upper bound", "B"),
             query(p95[2], "{{target}} statements: lower bound", "C"),
             query(_quantile(metrics.PG_QUERY_DURATION, T, "target", 0.95),
                   "{{target}} statements at their mean (approximate)", "D"),
             query(_quantile(metrics.PG_PROBE_DURATION, T, "target, probe", 0.95),
                   "{{target}} synthetic query {{probe}} (exact, client-timed)", "E"),
             unit="s", line=t.db_query_p95, width=12,
             description="Where each number comes from. Statements (pg_stat_statements, every call of an "
                         "interval): the estimate, and bounds the true P95 lies between whatever the calls' "
                         "distribution; the target is met only when the upper bound is below it. The histogram "
                         "that places each call at its statement's mean is approximate. Synthetic queries "
                         "(queries:) are timed by the exporter, exactly."))
         .with_panel(graph("Statement executions", query(
             _rate(metrics.PG_QUERY_DURATION, T, "target, datname", "_count"), "{{target}} {{datname}}"),
             unit="ops", width=12))
         .with_panel(table.Panel().title("Top statements by mean time").datasource(DS).span(24).height(8)
                     .unit("s").with_target(query(
                         f"topk(10, max by (target, queryid) ({metrics.PG_STATEMENT_MEAN.name}{{{T}}}))\n"
                         f"* on (target, queryid) group_left (query) max by (target, queryid, query) "
                         f"({info}{{{T}}})", instant=True, table_format=True)))
         .with_row(db.Row("Load"))
         .with_panel(graph("Slow statements", query(
             f"sum by (target, datname) ({metrics.PG_SLOW_STATEMENTS.name}{{{T}}})", "{{target}} {{datname}}"),
             width=8))
         .with_panel(graph("Connections by state", query(
             f"sum by (state) ({metrics.PG_CONNECTIONS.name}{{{T}}})", "{{state}}"), width=8, stack=True))
         .with_panel(graph("Sessions waiting on a lock", query(
             f"sum by (target) ({metrics.PG_LOCK_WAITING.name}{{{T}}})", "{{target}}"), width=8))
         .with_panel(graph("Buffer cache hit ratio", query(
             f"{_rate(metrics.PG_DB_BLOCKS_HIT, T, 'target, datname')}\n/\n"
             f"(({_rate(metrics.PG_DB_BLOCKS_HIT, T, 'target, datname')} + "
             f"{_rate(metrics.PG_DB_BLOCKS_READ, T, 'target, datname')}) > 0)", "{{target}} {{datname}}"),
             unit="percentunit", width=12))
         .with_panel(graph("Sequential scans (top tables)", query(
             f"topk(10, {_rate(metrics.PG_TABLE_SEQ_SCANS, T, 'target, schema, table')})",
             "{{schema}}.{{table}}"), unit="ops", width=12)))
    return slo_row(d, "database")


def cache(config: Config) -> db.Dashboard:
    t = config.targets
    d = new_dashboard("perf-cache", "perf-exporter / Cache", "Redis: hit rate, memory, evictions, keys and key "
                      "patterns.", "redis")
    hits, misses = metrics.REDIS_HITS, metrics.REDIS_MISSES
    d = (d.with_row(db.Row("Hit rate"))
         .with_panel(graph("Cache hit rate", query(
             f"{_rate(hits, T, 'target')}\n/\n(({_rate(hits, T, 'target')} + {_rate(misses, T, 'target')}) > 0)",
             "{{target}}"), unit="percentunit", line=t.cache_hit_rate, width=12,
             description="Keyspace hits / (hits + misses). Below the line is below the target."))
         .with_panel(graph("Lookups", query(_rate(hits, T, "target"), "hits {{target}}"),
                           query(_rate(misses, T, "target"), "misses {{target}}", ref="B"), unit="ops", width=12))
         .with_row(db.Row("Memory and keys"))
         .with_panel(graph("Memory", query(f"{metrics.REDIS_MEMORY_USED.name}{{{T}}}", "used {{target}}"),
                           query(f"{metrics.REDIS_MEMORY_MAX.name}{{{T}}} > 0", "max {{target}}", ref="B"),
                           unit="bytes", width=8))
         .with_panel(graph("Evictions and expirations", query(
             _rate(metrics.REDIS_EVICTED, T, "target"), "evicted {{target}}"),
             query(_rate(metrics.REDIS_EXPIRED, T, "target"), "expired {{target}}", ref="B"), unit="ops", width=8))
         .with_panel(graph("Keys", query(f"sum by (target) ({metrics.REDIS_KEYS.name}{{{T}}})", "{{target}}"),
                           width=8))
         .with_row(db.Row("Commands and key patterns"))
         .with_panel(graph("Commands (top 10)", query(
             f"topk(10, {_rate(metrics.REDIS_COMMANDS, T, 'cmd')})", "{{cmd}}"), unit="ops", width=8))
         .with_panel(graph("Connected clients", query(f"{metrics.REDIS_CLIENTS.name}{{{T}}}", "{{target}}"),
                           width=8))
         .with_panel(graph("Keys per pattern (last full SCAN)", query(
             f"{metrics.REDIS_PATTERN_SAMPLED.name}{{{T}}}", "{{pattern}}"), width=8)))
    return slo_row(d, "cache")


def tracing(config: Config) -> db.Dashboard:
    t = config.targets
    d = new_dashboard("perf-tracing", "perf-exporter / Tracing", "Jaeger: trace durations, spans per trace, the "
                      "critical path and serial work.", "jaeger")
    d = (d.with_row(db.Row("Trace duration"))
         .with_panel(graph("Trace P95 by service", query(
             _quantile(metrics.TRACE_DURATION, T, "target, service", 0.95), "{{service}}"),
             unit="s", line=t.trace_p95, width=12))
         .with_panel(graph("Spans per trace (P95)", query(
             _quantile(metrics.TRACE_SPANS, T, "target, service", 0.95), "{{service}}"), width=12))
         .with_row(db.Row("Where the time goes"))
         .with_panel(graph("Critical path by service", query(
             _rate(metrics.TRACE_CRITICAL_PATH, T, "service"), "{{service}}"), unit="s", width=8, stack=True,
             description="Seconds per second each service spends on traces' critical path."))
         .with_panel(graph("Span P95 by operation", query(
             f"topk(10, {_quantile(metrics.TRACE_SPAN_DURATION, T, 'service, operation', 0.95)})",
             "{{service}} {{operation}}"), unit="s", width=8))
         .with_panel(graph("Time serial siblings could save", query(
             _rate(metrics.TRACE_SERIAL_SAVING, T, "service, operation"), "{{service}} {{operation}}"),
             unit="s", width=8)))
    return slo_row(d, "tracing")


def slo_dashboard(area: SloArea) -> Callable[[Config], db.Dashboard]:
    """The dashboard of an area that names none: each of its SLOs' figure against its target, then its error
    budget and burn rate."""

    def build(config: Config) -> db.Dashboard:
        d = new_dashboard(f"perf-{area.name}", f"perf-exporter / {area.title}",
                          f"{area.title}: its SLOs' figures against their targets, error budget and burn rate.", None)
        d = d.with_row(db.Row("Targets"))
        for slo in (s for s in all_slos(config) if s.area == area.name and s.endpoint is None):
            ind = slo.indicator
            if isinstance(ind, LatencyIndicator) and slo.quantile is not None:
                expr = _quantile(ind.family, f"{T}{''.join(', ' + m.promql for m in ind.matchers)}", "target",
                                 slo.quantile)
                d = d.with_panel(graph(slo.title, query(expr, "{{target}}"), unit="s", line=slo.threshold, width=12))
            else:  # a floor (a hit rate above it) is drawn as the good share, a ceiling as the bad one
                events = ind.good(RI) if slo.floor and isinstance(ind, HitMissIndicator) else ind.bad(RI)
                expr = f"{events}\n/\n({ind.total(RI)} > 0)"
                d = d.with_panel(graph(slo.title, query(expr, "{{target}}"), unit="percentunit",
                                       line=slo.threshold, width=12))
        return slo_row(d, area.name)

    return build


def health(config: Config) -> db.Dashboard:
    d = new_dashboard("perf-health", "perf-exporter / Exporter health", "The exporter's own jobs: targets up, "
                      "runs by result, run time, last success and config reloads.", None)
    return (d.with_row(db.Row("Jobs"))
            .with_panel(single("Targets up", query(f"sum({metrics.TARGET_UP.name}{{{T}}})", instant=True),
                               width=6))
            .with_panel(single("Targets down", query(f"count({metrics.TARGET_UP.name}{{{T}}} == 0) or vector(0)",
                                                     instant=True), steps=((None, "green"), (1, "red")), width=6))
            .with_panel(single("Config loaded", query(f"min({metrics.CONFIG_RELOAD_OK.name})", instant=True),
                               steps=((None, "red"), (1, "green")), width=6))
            .with_panel(single("Exporters", query(f"count({metrics.BUILD_INFO.name})", instant=True), width=6))
            .with_panel(graph("Runs by result", query(_rate(metrics.JOB_RUNS, T, "collector, result"),
                                                      "{{collector}} {{result}}"), unit="ops", width=12, stack=True))
            .with_panel(graph("Run time P95", query(_quantile(metrics.JOB_DURATION, T, "collector, target", 0.95),
                                                    "{{collector}} {{target}}"), unit="s", width=12))
            .with_panel(graph("Since last success", query(
                f"time() - {metrics.JOB_LAST_SUCCESS.name}{{{T}}}", "{{collector}} {{target}}"), unit="s",
                width=12))
            .with_panel(graph("Target up", query(f"{metrics.TARGET_UP.name}{{{T}}}", "{{collector}} {{target}}"),
                              unit="bool", width=12))
            .with_row(db.Row("Own timing and shards"))
            .with_panel(graph("Probe timings discarded", query(
                f"{_rate(metrics.HTTP_TIMINGS_DISCARDED, T, 'instance')}\n/\n"
                f"({_rate(metrics.HTTP_REQUESTS, T, 'instance')} > 0)", "{{instance}}"), unit="percentunit",
                line=0.01, width=12, description="Requests whose duration the replica's own processes could have "
                "inflated, so it was not observed (docs/metrics.md, True timings or none)."))
            .with_panel(graph("Schedule lag P99", query(_quantile(metrics.SCHEDULE_LAG, "", "instance, process", 0.99),
                                                        "{{instance}} {{process}}"), unit="s", line=1.0, width=12))
            .with_panel(graph("Event loop delay P99", query(
                _quantile(metrics.EVENT_LOOP_DELAY, "", "instance, process", 0.99), "{{instance}} {{process}}"),
                unit="s", width=12))
            .with_panel(graph("Waiting for a CPU", query(_rate(metrics.CPU_WAIT, "", "instance, process"),
                                                         "{{instance}} {{process}}"), unit="percentunit", width=12,
                              description="Share of the time each process's loop thread was ready but had no CPU."))
            .with_panel(graph("Shards reporting", query(f"count by (total_shards) ({metrics.SHARD_INFO.name})",
                                                        "reporting, of {{total_shards}}"), width=12,
                              description="Replicas scraped, against the --total-shards they were started with; "
                              "PerfExporterShardMissing names one that stopped.")))


def as_json(builder: db.Dashboard) -> dict[str, Any]:
    model = builder.build()
    data: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    for panel_id, panel in enumerate(data.get("panels", []), 1):
        panel["id"] = panel_id
    return data


def dashboards(config: Config) -> dict[str, dict[str, Any]]:
    """Name -> dashboard JSON model, ready for Grafana's file provisioning."""
    builders: dict[str, Callable[[Config], db.Dashboard]] = {
        "overview": overview, **{area.name: area.dashboard or slo_dashboard(area) for area in config.areas()},
        "health": health}
    return {name: as_json(build(config)) for name, build in builders.items()}

