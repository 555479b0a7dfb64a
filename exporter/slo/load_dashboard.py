"""The "Load test" dashboard: a k6 run as it goes, from k6's Prometheus remote-write output with Trends as native
histograms (``perf-exporter bench --prometheus-rw URL``).

Native histograms aggregate: one P95 across endpoints, stages, runners of a k6-operator TestRun, and the share
of requests under a target computed from the buckets (``histogram_fraction``), exact when the target is a bucket
boundary. The default exponential schema has every power of two as a boundary, so the guide's 500 ms and 1 s
targets are exact; others (300 ms) are interpolated within a bucket. Only the measured phase is shown: the
warm-up is tagged ``phase="warmup"`` and left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from exporter.slo.dashboards import RI, TAG, datasource_variable, graph, label_variable, query, single

if TYPE_CHECKING:
    from exporter.config.schema import Config

DURATION = "k6_http_req_duration_seconds"  # a native histogram
REQUESTS = "k6_http_reqs_total"
VUS = "k6_vus"
DROPPED = "k6_dropped_iterations_total"
RUN = 'testid=~"$testid"'
MEASURED = f'{RUN}, phase="measure"'
UID = "perf-load"
PATH = "dashboards/load/load-test.json"  # beside the area dashboards' folder; Grafana's file provider recurses


def _rate(metric: str, where: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{{{where}}}[{RI}]))"


def _quantile(q: float, where: str, by: str = "") -> str:
    return f"histogram_quantile({q:g}, {_rate(DURATION, where, by)})"


def load_dashboard(config: Config) -> db.Dashboard:
    t = config.targets
    p95, p99 = t.api_latency_p95, t.api_latency_p99
    failed = _rate(REQUESTS, MEASURED + ', expected_response="false"')
    errors = f"({failed} or vector(0))\n/\n({_rate(REQUESTS, MEASURED)} > 0)"
    under = f"histogram_fraction(0, {p95:g}, {_rate(DURATION, MEASURED)})"
    d = (db.Dashboard("perf-exporter / Load test").uid(UID).tags([TAG, "k6"]).refresh("10s")
         .description("A k6 run from perf-exporter bench, live: load, response times against the targets, errors, "
                      "statistics per stage and per part of a mixed workload.")
         .time("now-30m", "now").timezone("browser").editable().tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .link(db.DashboardLink("perf-exporter").type(dm.DashboardLinkType.DASHBOARDS).tags([TAG])
               .as_dropdown(True).include_vars(False).keep_time(True))
         .with_variable(datasource_variable())
         .with_variable(label_variable("testid", "Run", f"{VUS}"))
         .with_row(db.Row("The run"))
         .with_panel(single("P95 (measured)", query(_quantile(0.95, MEASURED), instant=True), "s",
                            ((None, "green"), (p95, "red"))))
         .with_panel(single(f"Share under {p95 * 1000:g} ms", query(under, instant=True), "percentunit",
                            ((None, "red"), (0.95, "green"))))
         .with_panel(single("Error rate", query(errors, instant=True), "percentunit",
                            ((None, "green"), (t.error_rate, "red"))))
         .with_panel(single("Dropped iterations", query(f"sum(increase({DROPPED}{{{RUN}}}[{RI}])) or vector(0)",
                                                                  instant=True),
                            "short", ((None, "green"), (1, "red"))))
         .with_row(db.Row("Load"))
         .with_panel(graph("Virtual users", query(f"sum by (testid) ({VUS}{{{RUN}}})", "{{testid}}"), width=8))
         .with_panel(graph("Requests per second", query(_rate(REQUESTS, RUN, "phase"), "{{phase}}"), unit="reqps",
                           width=8, stack=True))
         .with_panel(graph("Dropped iterations per second", query(_rate(DROPPED, RUN), "dropped"), unit="short",
                           width=8, description="Iterations an arrival-rate executor could not start: the "
                                                "generator, not the target, was short; the run is inconclusive."))
         .with_row(db.Row("Response times"))
         .with_panel(graph("P95 by endpoint", query(_quantile(0.95, MEASURED, "endpoint"), "{{endpoint}}"),
                           unit="s", line=p95, width=8))
         .with_panel(graph("P99 by endpoint", query(_quantile(0.99, MEASURED, "endpoint"), "{{endpoint}}"),
                           unit="s", line=p99, width=8))
         .with_panel(graph("Error rate", query(errors, "errors"), unit="percentunit", line=t.error_rate, width=8))
         .with_row(db.Row("Per stage and per part"))
         .with_panel(graph("P95 by stage", query(_quantile(0.95, MEASURED, "stage"), "stage {{stage}}"), unit="s",
                           line=p95, width=12))
         .with_panel(graph("Requests per second by part", query(_rate(REQUESTS, MEASURED, "part"), "{{part}}"),
                           unit="reqps", width=12, stack=True)))
    return d
