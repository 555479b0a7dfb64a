"""Report source (b): a ``perf-exporter bench`` run's own measurements, for a machine with no Prometheus.

The API figures are k6's (its Trends keep every sample: percentiles are exact over the measured phase; each
endpoint's phases and answer sizes too); the database, cache and trace figures are the daemon's own collectors,
run by the bench during the load and read at the end of the warm-up and after the run (``platform`` in the run's
JSON, with their facts: statements, tables, key patterns, each route's breakdown). The recommendations diagnose
causes as a report from Prometheus does; the baseline they weigh changes against is an earlier run given with
``bench --baseline`` (without one, each part's whole time is weighed, and the report says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from exporter.config.targets import Targets
from exporter.load.run import BenchRun, RunFileError, looks_like_run, run_of
from exporter.load.stats import CutStats
from exporter.reports import run_facts
from exporter.reports.areas import AreaFigures
from exporter.reports.attribution import Route, route_of
from exporter.reports.facts import Cache, Database, Endpoint, Facts, QueryP95, Queue, Tracing
from exporter.reports.infrastructure import NOT_RECORDED
from exporter.reports.model import (
    APPROXIMATE,
    BUCKETED,
    EXACT,
    AreaSummary,
    Figure,
    Observed,
    Plot,
    ReportError,
    Series,
    Window,
    missing,
)
from exporter.reports.run_facts import RunFacts

K6 = "k6 end-of-test summary (every sample of the measured phase)"
PLATFORM = "perf-exporter collectors during the run (bench 'platform')"


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_files(directory: Path) -> list[tuple[Path, Any]]:
    """The run reports a bench wrote into ``directory``, each with its decoded JSON: ``<scenario>.json`` with a
    ``scenario`` and a ``summary`` (the k6 summaries and the report's own files are left out)."""
    if not directory.is_dir():
        raise ReportError(f"--run {directory}: no such directory (give the --out of a perf-exporter bench run)")
    found = []
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".k6-summary.json"):
            continue
        try:
            body = msgspec.json.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError):
            continue
        if looks_like_run(body):
            found.append((path, body))
    if not found:
        raise ReportError(f"--run {directory}: no bench run report (<scenario>.json) in it")
    return found


def _s(ms: float | None) -> float | None:
    return ms / 1000 if ms is not None else None


def _phases_s(endpoint: CutStats) -> dict[str, float]:
    return {k: v / 1000 for k, v in (endpoint.phases_ms or {}).items()}


def _facts(runs: Sequence[BenchRun]) -> RunFacts | None:
    found = [r.platform.facts for r in runs if r.platform is not None and r.platform.facts is not None]
    return run_facts.merged(found) if found else None


def _endpoint_baselines(runs: Sequence[BenchRun]) -> dict[str, tuple[float | None, dict[str, float]]]:
    """Per endpoint of the baseline runs: its P95 and mean phases, seconds."""
    return {e.name: (_s(e.p95_ms), _phases_s(e)) for run in runs for e in run.endpoints}


def _routes(measured: RunFacts | None, baseline: RunFacts | None) -> tuple[Route, ...]:
    """The routes the run's traces took, each with the baseline run's figures when it has them."""
    routes = measured.routes if measured else ()
    if baseline is None:
        return routes
    then = {(r.service, r.operation): r for r in baseline.routes}
    return tuple(replace(r, baseline=then[(r.service, r.operation)].window,
                         baseline_p95_s=then[(r.service, r.operation)].p95_s)
                 if (r.service, r.operation) in then else r for r in routes)


def _endpoints(runs: Sequence[BenchRun], requests: Mapping[str, tuple[str, str]],
               before: Mapping[str, tuple[float | None, dict[str, float]]],
               operations: Sequence[tuple[str, str]]) -> list[Endpoint]:
    out = []
    for e in (e for run in runs for e in run.endpoints):
        count = float(e.requests)
        method_path = requests.get(e.name)
        base_p95, base_phases = before.get(e.name, (None, None))
        out.append(Endpoint("k6", e.name, count, failed=count * (e.error_rate or 0.0), mean_s=_s(e.avg_ms),
                            p95_s=_s(e.p95_ms), p99_s=_s(e.p99_ms),
                            phases_s=_phases_s(e),
                            route=route_of(*method_path, operations) if method_path else None,
                            response_bytes=e.received_bytes / count if e.received_bytes is not None and count else None,
                            baseline_p95_s=base_p95, baseline_phases_s=base_phases))
    return out


def _api(runs: Sequence[BenchRun]) -> tuple[AreaSummary, dict[str, Figure]]:
    """The API area from k6's figures of the measured phase: the mean over every request, the highest P95 and
    P99 of the runs, the error rate over every request."""
    requests = sum(float(r.measured.requests) for r in runs)
    mean = sum(r.measured.requests * (r.measured.avg_ms or 0.0) for r in runs)
    failed = sum(r.measured.requests * (r.measured.error_rate or 0.0) for r in runs)
    worst = " (the highest of the runs)" if len(runs) > 1 else ""

    def highest(values: list[float]) -> Figure:
        return Figure(max(values), "ms", K6 + worst, EXACT) if values else missing(
            "ms", K6, "no measured requests in the run")

    p95 = highest([r.measured.p95_ms for r in runs if r.measured.p95_ms is not None])
    p99 = highest([r.measured.p99_ms for r in runs if r.measured.p99_ms is not None])
    err = (Figure(failed / requests, "ratio", K6 + " (http_req_failed)") if requests
           else missing("ratio", K6, "no measured requests in the run"))
    summary = AreaSummary("api", Figure(requests, "count", K6), Figure(mean / requests if requests else None, "ms",
                                                                        K6, EXACT),
                          p95, p99, err, "measured k6 requests", "k6 http_req_failed")
    return summary, {"api_latency_p95": p95, "api_latency_p99": p99, "error_rate": err}


@dataclass
class _Platform:
    """The database, cache and trace figures the runs' collectors kept, summed or at their highest."""

    db_calls: float = 0.0
    db_seconds: float = 0.0
    db_p95: list[float] = field(default_factory=list)
    hits: float = 0.0
    misses: float = 0.0
    have_cache: bool = False
    traces: float = 0.0
    trace_mean_total: float = 0.0
    trace_p95: list[float] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)

    def add(self, run: BenchRun) -> None:
        platform = run.platform
        if platform is None:
            return
        if platform.database is not None:
            self.db_calls += platform.database.statement_calls
            self.db_seconds += platform.database.statement_seconds
            if platform.database.query_p95_ms is not None:
                self.db_p95.append(platform.database.query_p95_ms)
        if platform.cache is not None:
            self.have_cache = True
            self.hits += platform.cache.hits
            self.misses += platform.cache.misses
        if platform.traces is not None:
            self.traces += platform.traces.traces
            self.trace_mean_total += platform.traces.traces * (platform.traces.mean_ms or 0.0)
            if platform.traces.p95_ms is not None:
                self.trace_p95.append(platform.traces.p95_ms)
        seconds = max(run.measured_seconds, 1.0)
        self.queues += [Queue(name, q.first, q.last, q.max, (q.last - q.first) / seconds)
                        for name, q in platform.queues.items()]

    def areas(self) -> tuple[dict[str, AreaSummary], dict[str, Figure]]:
        db_p95 = (Figure(max(self.db_p95), "ms", PLATFORM + ": perf_pg_query_duration_seconds buckets", APPROXIMATE,
                         "approximate: each statement's calls placed at its interval mean")
                  if self.db_p95 else missing("ms", PLATFORM, "no database collector ran, or no statement was seen"))
        lookups = self.hits + self.misses
        hit = (Figure(self.hits / lookups, "ratio", PLATFORM + ": keyspace hits / (hits + misses)") if lookups
               else missing("ratio", PLATFORM, "no Redis collector ran" if not self.have_cache else
                            "no key lookups in the run's window"))
        tr_p95 = (Figure(max(self.trace_p95), "ms", PLATFORM + ": perf_trace_duration_seconds buckets", BUCKETED)
                  if self.trace_p95 else missing("ms", PLATFORM, "no Jaeger collector ran, or no trace was seen"))
        calls = self.db_calls
        areas = {
            "database": AreaSummary("database", Figure(calls, "count", PLATFORM),
                                    Figure(self.db_seconds / calls * 1000 if calls else None, "ms", PLATFORM),
                                    db_p95, missing("ms", PLATFORM, "a run keeps no P99 of statements"),
                                    missing("ratio", PLATFORM, "a run keeps no transaction counts"),
                                    "statement calls (pg_stat_statements)", "not measured"),
            "cache": AreaSummary("cache", Figure(lookups, "count", PLATFORM),
                                 missing("ms", PLATFORM, "a run keeps no cache latency"),
                                 missing("ms", PLATFORM, "a run keeps no cache latency"),
                                 missing("ms", PLATFORM, "a run keeps no cache latency"),
                                 missing("ratio", PLATFORM, "Redis counts no failed lookups"), "key lookups",
                                 "not measured"),
            "tracing": AreaSummary("tracing", Figure(self.traces, "count", PLATFORM),
                                   Figure(self.trace_mean_total / self.traces if self.traces else None, "ms",
                                          PLATFORM), tr_p95, missing("ms", PLATFORM, "a run keeps no trace P99"),
                                   missing("ratio", PLATFORM, "a run keeps no error spans"), "traces",
                                   "not measured"),
        }
        return areas, {"db_query_p95": db_p95, "cache_hit_rate": hit, "trace_p95": tr_p95}

    def facts(self) -> tuple[tuple[Database, ...], tuple[Cache, ...], tuple[Tracing, ...]]:
        """What a run file from before runs kept their collectors' facts still says."""
        return (((Database("run", p95=QueryP95(max(self.db_p95) / 1000, "statements-approximate", source=PLATFORM)),)
                 if self.db_p95 else ()),
                (Cache("run", self.hits, self.misses, queues=tuple(self.queues)),)
                if self.have_cache or self.queues else (),
                (Tracing("run", self.traces, max(self.trace_p95) / 1000),) if self.trace_p95 else ())


def _inconclusive(runs: Sequence[BenchRun], rows: dict[str, Figure],
                  endpoints: list[Endpoint]) -> list[Endpoint]:
    """An inconclusive run (the generator was the bottleneck) says nothing about the API's targets, nor about
    their causes: its API rows get no value, and its endpoints no excess to share out."""
    reasons = [f"{r.scenario}: {'; '.join(r.verdict.reasons) or 'see its report'}" for r in runs if r.inconclusive]
    if not reasons:
        return endpoints
    why = "the run was inconclusive (" + " | ".join(reasons) + "): its API figures cannot judge the target"
    for key in ("api_latency_p95", "api_latency_p99", "error_rate"):
        figure = rows[key]
        rows[key] = Figure(None, figure.unit, figure.source, figure.precision, f"{why}; measured {figure.value}")
    return [replace(e, p95_s=None, p99_s=None, failed=0.0, server_errors=0.0) for e in endpoints]


def observe_runs(runs: Sequence[BenchRun], targets: Targets, where: str,
                 endpoint_requests: Mapping[str, tuple[str, str]] | None = None,
                 baseline: Sequence[BenchRun] = ()) -> Observed:
    """The report's figures from one or more runs (``bench all``: the four benchmarks together).
    ``endpoint_requests``: endpoint name -> (method, path), to find the route its traces take; ``baseline``: an
    earlier run's to weigh changes against."""
    if not runs:
        raise ReportError("no run to report on")
    measured_facts = _facts(runs)
    baseline_facts = _facts(baseline) if baseline else None
    routes = _routes(measured_facts, baseline_facts)
    before = _endpoint_baselines(baseline) if baseline_facts is not None else {}
    endpoints = _endpoints(runs, endpoint_requests or {}, before, [(r.service, r.operation) for r in routes])
    stages = [{"scenario": run.scenario, **msgspec.to_builtins(stage)} for run in runs for stage in run.stages]
    ends = [_unix(run.timestamp) for run in runs]
    window = Window(min(end - run.measured_seconds for end, run in zip(ends, runs, strict=True)), max(ends))
    api, rows = _api(runs)
    platform = _Platform()
    for run in runs:
        platform.add(run)
    areas, platform_rows = platform.areas()
    areas = {"api": api, **areas}
    rows.update(platform_rows)
    endpoints = _inconclusive(runs, rows, endpoints)
    sources = {"api_latency": K6, "api_errors": K6, "cache_hits": PLATFORM, "trace_p95": PLATFORM,
               "db_p95": PLATFORM, "cache_checks": PLATFORM, "phases": K6 + " (http_req_* Trends by endpoint)",
               "response_size": K6 + " (data_received by endpoint / requests)"}
    if measured_facts is not None:
        sources.update(measured_facts.sources)
        databases, caches, tracing = measured_facts.databases, measured_facts.caches, measured_facts.tracing
        notes = ["source: a bench run's own measurements: k6 for the API, the config's collectors for the rest"]
    else:  # a run file from before runs kept their collectors' facts
        databases, caches, tracing = platform.facts()
        notes = ["source: a bench run's own measurements; this run file keeps no statements, tables or routes, so "
                 "recommendations cannot name the cause behind a slow endpoint"]
    if baseline_facts is None:
        notes.append("no baseline run (bench --baseline): causes are weighed by each part's whole time, not by what "
                     "changed")
    facts = Facts(window.seconds, targets, tuple(endpoints), databases, caches, tracing, sources, routes,
                  measured_facts.cache_ttls if measured_facts else (), "an earlier run (bench --baseline)"
                  if baseline_facts is not None else "")
    shares: dict[str, float | None] = {}
    for name, figures in _slo_areas(runs).items():  # the areas reported from their SLOs alone
        areas[name] = figures.summary
        rows.update(figures.rows)
        shares.update(figures.shares)
        notes += figures.notes
    return Observed(facts, window, "run", where, areas, rows, shares, [_stage_plot(stages, targets)], stages, notes,
                    {"scenarios": [r.scenario for r in runs], "infrastructure": NOT_RECORDED})


def _slo_areas(runs: Sequence[BenchRun]) -> dict[str, AreaFigures]:
    """The figures of the areas a run kept from their SLOs alone; of several runs, each area's from the run that
    counted the most of its events (said in a note)."""
    found: dict[str, list[AreaFigures]] = {}
    for run in runs:
        for name, figures in (run.platform.areas if run.platform else {}).items():
            found.setdefault(name, []).append(figures)
    out = {}
    for name, records in found.items():
        best = max(records, key=lambda f: f.summary.total.value or 0.0)
        if len(records) > 1:
            best = replace(best, notes=[*best.notes, f"{name}: the figures of the run that counted the most "
                                                     f"{best.summary.total_of} ({len(records)} runs)"])
        out[name] = best
    return out


def _stage_plot(stages: Sequence[Mapping[str, Any]], targets: Targets) -> Plot:
    labels = [f"{s.get('scenario')} #{s.get('name')}" for s in stages]
    points = {key: [(float(i), float(s[key])) for i, s in enumerate(stages) if s.get(key) is not None]
              for key in ("p50_ms", "p95_ms", "p99_ms")}
    series = [Series(key.split("_")[0].upper(), pts, K6 + ", per stage") for key, pts in points.items() if pts]
    return Plot("stages", "Per-stage latency of the load run", "ms", series,
                [("P95 target", targets.api_latency_p95 * 1000)], "stages",
                [(label, float(s.get("requests_per_second") or 0.0)) for label, s in zip(labels, stages,
                                                                                         strict=True)],
                "" if stages else "the run had no stages")


def observe_run_dir(directory: Path, targets: Targets,
                    endpoint_requests: Mapping[str, tuple[str, str]] | None = None) -> Observed:
    try:
        runs = [run_of(body, str(path)) for path, body in run_files(directory)]
    except RunFileError as exc:
        raise ReportError(str(exc)) from None
    return observe_runs(runs, targets, str(directory), endpoint_requests)
