"""rules/runbooks.md: one section per alert, written from the guide's "Common Performance Issues"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter import metrics
from exporter.config.units import format_duration
from exporter.slo.slos import all_slos, percent_text, seconds_text

if TYPE_CHECKING:
    from exporter.config.schema import Config
    from exporter.jobs import SloArea


@dataclass(frozen=True)
class Issue:
    title: str
    symptoms: tuple[str, ...]
    diagnosis: tuple[str, ...]
    solutions: tuple[str, ...]
    dashboard: str


def area_issue(area: SloArea) -> Issue:
    """The issue of an area the guide has no entry for: where to look, from its own SLOs and dashboard."""
    return Issue(f"{area.title} target missed", (f"{area.title} SLO burning its error budget or above its target",),
                 (f"Check the {area.title} dashboard (perf-{area.name}) for which target and when",
                  f"Compare the {area.events} with the load and the other areas at the same time"),
                 (f"Fix what the {area.title} dashboard points at; perf-exporter has no diagnosis rules for this "
                  "area",), f"perf-{area.name}")


def issues(config: Config) -> dict[str, Issue]:
    t = config.targets
    return {
        "slow_api": Issue(
            "Slow API Endpoints",
            (f"P95 response time > {seconds_text(t.api_latency_p95)} (P99 > {seconds_text(t.api_latency_p99)})",
             "High latency variance", "Timeouts (`outcome=\"timeout\"` in "
             f"`{metrics.HTTP_REQUESTS.name}`)"),
            ("Check the API dashboard for the endpoints with high P95/P99 and the phase breakdown "
             f"(`{metrics.HTTP_PHASE_DURATION.name}`: connect, TLS or server wait)",
             "Review Jaeger traces for slow services (Tracing dashboard: critical path by service)",
             "Check database query times (Database dashboard: query P95, top statements)",
             "Identify network latency (resolve/connect phases)"),
            ("Add database indexes", "Implement caching (Redis)", "Optimize algorithms", "Reduce payload sizes",
             "Add CDN for static content"),
            "perf-api"),
        "errors": Issue(
            "High Error Rate",
            (f"Error rate > {percent_text(t.error_rate)}", "5xx errors increasing", "Service restarts"),
            ("Check the API dashboard for error spikes, by outcome (http_4xx, http_5xx, timeout, connect_error, "
             "unexpected_status, assertion_failed)", "Review application logs",
             "Check database connectivity (Database dashboard: connections, lock waits)",
             "Verify external service status"),
            ("Add connection pooling", "Implement retry logic", "Add circuit breakers", "Fix application bugs",
             "Scale infrastructure"),
            "perf-api"),
        "cache": Issue(
            "Low Cache Hit Rate",
            (f"Cache hit rate < {percent_text(t.cache_hit_rate)}", "High database load", "Slow repeated queries"),
            (f"Check Redis hit/miss statistics (`{metrics.REDIS_HITS.name}`, `{metrics.REDIS_MISSES.name}`)",
             f"Review cache key patterns (`{metrics.REDIS_PATTERN_SAMPLED.name}`)",
             f"Analyze TTL settings (`{metrics.REDIS_PATTERN_TTL.name}`, "
             f"`{metrics.REDIS_PATTERN_NO_TTL.name}`)",
             f"Check cache invalidation and evictions (`{metrics.REDIS_EVICTED.name}`, "
             f"`{metrics.REDIS_MEMORY_USED.name}` against `{metrics.REDIS_MEMORY_MAX.name}`)"),
            ("Increase TTL for stable data", "Optimize cache keys", "Implement write-through caching",
             "Add Redis cluster", "Review eviction policy"),
            "perf-cache"),
        "database": Issue(
            "Slow Database Queries",
            (f"Query P95 duration > {seconds_text(t.db_query_p95)}", "High CPU on database",
             "Lock waits increasing"),
            ("Check the Database dashboard: top statements by mean time "
             f"(`{metrics.PG_STATEMENT_MEAN.name}`) and slow statements (`{metrics.PG_SLOW_STATEMENTS.name}`)",
             "Check pg_stat_statements", "Review query plans (synthetic queries: "
             f"`{metrics.PG_PROBE_SEQ_SCAN.name}`)",
             f"Identify table scans (`{metrics.PG_TABLE_SEQ_SCANS.name}`, `{metrics.PG_TABLE_SEQ_TUPLES.name}`)"),
            ("Add indexes on filter/join columns", "Optimize N+1 queries", "Add pagination",
             "Use materialized views", "Partition large tables"),
            "perf-database"),
        "trace": Issue(
            "High Trace Duration",
            (f"Trace P95 duration > {seconds_text(t.trace_p95)}", "Many spans per trace", "Serial execution"),
            ("Check Jaeger for slow traces", "Identify slowest spans (Tracing dashboard: span P95 by operation)",
             f"Check service dependencies (`{metrics.TRACE_CRITICAL_PATH.name}`)",
             f"Review network latency and serial siblings (`{metrics.TRACE_SERIAL_SAVING.name}`)"),
            ("Parallelize independent operations", "Optimize slow services", "Add data compression",
             "Reduce cross-service calls", "Implement asynchronous processing"),
            "perf-tracing"),
    }


ISSUE_OF_SLO_KIND = {"errors": "errors", "cache": "cache"}

HEALTH = {
    "PerfExporterTargetDown": (
        "perf-exporter cannot reach a target it measures: its `perf_target_up` is 0.",
        ("Open the exporter's index page (`/`): it lists every job with its last result and error.",
         "Read the exporter's log for the job's `job_failed` / `probe_failed` line: it names the cause "
         "(refused, timeout, authentication, TLS).",
         "Check the target itself is up and reachable from the exporter's network."),
        ("Fix the target or the network path, or the address/credentials in the config, then "
         "`POST /-/reload`.",)),
    "PerfExporterJobFailing": (
        "A job keeps ending in an error or a timeout: the exporter could not finish measuring.",
        ("Read the exporter's log for the job's error lines.",
         "Compare `perf_job_duration_seconds` with the job's `timeout`: a job that needs longer times out.",
         "Check the target's permissions (pg_stat_statements needs pg_read_all_stats; Jaeger may need a token)."),
        ("Raise the job's `timeout`/`interval`, lower its budgets (`top_statements`, `scan_budget`, `limit`), "
         "or fix the permission.",)),
    "PerfExporterConfigReloadFailed": (
        "The last configuration reload failed; the exporter keeps running the previous configuration.",
        ("Run `perf-exporter check-config FILE`: it prints each problem with its key path.",),
        ("Fix the file and reload again (`POST /-/reload` or SIGHUP).",)),
    "PerfExporterTimingsDiscarded": (
        "More than 1 % of a replica's probe requests could not be timed: its processes were running other work "
        "or waiting for a CPU while the requests were in flight, so those durations were discarded "
        "(perf_http_timings_discarded_total) rather than reported as the platform's latency.",
        ("Compare `perf_exporter_cpu_wait_seconds_total` (the node is short of CPU) with "
         "`perf_exporter_event_loop_delay_seconds` (the process itself is busy), per `process`.",
         "Check the replica's CPU limit against the sizing in docs/configuration.md (Sizing replicas).",
         "A Jaeger or PostgreSQL job in the same process as many probes: give it its own worker "
         "(`--probe-workers`) or shard."),
        ("Raise the CPU request or limit, add probe workers, or add a shard (`--total-shards`).",)),
    "PerfExporterRunsLate": (
        "A replica's runs and probes start more than a second late: it probes less often than the config asks, "
        "and its schedule lag (`perf_exporter_schedule_lag_seconds`) says by how much.",
        ("Check `perf_job_runs_total{result=\"skipped\"}`: runs still going when the next is due.",
         "Check the process's CPU waits and event-loop delay, as for PerfExporterTimingsDiscarded."),
        ("Give the replica more CPU, more probe workers, or split its targets over more shards.",)),
    "PerfExporterShardMissing": (
        "One replica of a sharded perf-exporter (`--shard N --total-shards M`) has not been scraped for 5 "
        "minutes while the others have: the jobs of its shard are not measured, and no alert of theirs can fire.",
        ("Check the pod of that ordinal in the StatefulSet (`kubectl get pod <release>-perf-exporter-N`) and "
         "its logs.",
         "Check Prometheus' scrape target status for it."),
        ("Restart or reschedule the pod; after changing the number of replicas for good, the old shard numbers "
         "stop alerting on their own within a day.",)),
    "PerfExporterAbsent": (
        "Prometheus has no perf-exporter series at all: every performance-target alert is blind.",
        ("Check the exporter process and its `/-/healthy` endpoint.",
         "Check Prometheus' scrape target status for the perf-exporter job."),
        ("Restart the exporter or fix the scrape configuration.",)),
    "PerfExporterSliAbsent": (
        "The metrics an area's SLOs are computed from are missing although the config has a target for it.",
        ("Check `PerfExporterTargetDown` and `PerfExporterJobFailing` for the same collector.",
         "PostgreSQL: pg_stat_statements must be in shared_preload_libraries and created in the database.",
         "Jaeger: the services must produce traces within the collector's lookback."),
        ("Fix the collector's target or permissions; see the collector's section in docs/configuration.md.",)),
}


def _list(items: tuple[str, ...], numbered: bool = False) -> str:
    return "\n".join(f"{i}. {item}" if numbered else f"- {item}" for i, item in enumerate(items, 1))


def runbooks_markdown(config: Config, files: dict[str, dict[str, Any]]) -> str:
    slos = all_slos(config)
    found = issues(config)
    for area in config.areas():
        found.setdefault(area.issue or area.name, area_issue(area))
    issue_of_area = {area.name: area.issue or area.name for area in config.areas()}
    sections: list[str] = []
    seen: set[str] = set()
    for content in files.values():
        for group in content["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert")
                if name is None or name in seen:
                    continue
                seen.add(name)
                if name in HEALTH:
                    meaning, diagnosis, solutions = HEALTH[name]
                    sections.append(f"## {name}\n\n{meaning}\n\n**Diagnosis steps**:\n\n{_list(diagnosis, True)}"
                                    f"\n\n**Solutions**:\n\n{_list(solutions)}\n")
                    continue
                slo = next(s for s in slos if name.startswith(s.alert))
                issue = found[ISSUE_OF_SLO_KIND.get(slo.kind) or issue_of_area[slo.area]]
                mine = [s for s in slos if s.alert == slo.alert]
                targets = "; ".join(f"{s.title}: {s.target_text}" for s in mine)
                if name.endswith("ErrorBudgetBurn"):
                    days = config.targets.slo_window / 86400
                    meaning = (f"The {slo.title} SLO ({targets}; objective over "
                               f"{format_duration(config.targets.slo_window)}) is spending its error budget "
                               "faster than it can afford: `severity: critical` at 14.4x over 1 h or 6x over "
                               f"6 h (the whole budget would be gone in {days / 14.4:.2g} or {days / 6:.2g} days), "
                               "`severity: warning` at 3x over 1 d or 1x over 3 d.")
                elif name.endswith("Unproven") and slo.estimated is not None:
                    est = slo.estimated
                    meaning = (f"The guide's target may be violated over the last 5 minutes: {targets}. The "
                               f"estimate (`{est.estimate.name}`, {est.source}) is within it, but the upper bound "
                               f"(`{est.upper.name}`), which holds whatever the calls' distribution, is not: "
                               "some statement's calls spread enough (few calls, or a slow minority) that "
                               "pg_stat_statements' sums cannot tell. Look for statements whose max is far above "
                               "their mean; add them as synthetic queries (`queries:`) for exact figures.")
                else:
                    meaning = f"The guide's target is violated over the last 5 minutes: {targets}."
                sections.append(
                    f"## {name}\n\n{meaning} The guide's issue: **{issue.title}**. Dashboard: `{issue.dashboard}`."
                    f"\n\n**Symptoms**:\n\n{_list(issue.symptoms)}\n\n**Diagnosis steps**:\n\n"
                    f"{_list(issue.diagnosis, True)}\n\n**Solutions**:\n\n{_list(issue.solutions)}\n")
    head = ("# perf-exporter runbooks\n\n"
            "<!-- Generated by `perf-exporter render rules`; edit exporter/slo/runbooks.py instead. -->\n\n"
            "One section per alert; every alert's `runbook_url` points at its section. Written from the "
            "performance-testing guide's \"Common Performance Issues\".\n\n")
    return head + "\n".join(sections)
