"""Report source (b): a ``perf-exporter bench`` run's own measurements, for a machine with no Prometheus.

The API figures are k6's (its Trends keep every sample: percentiles are exact over the measured phase; each
endpoint's phases and answer sizes too); the database, cache and trace figures are the daemon's own collectors,
run by the bench during the load and read at the end of the warm-up and after the run (``platform`` in the run's
JSON, with their facts: statements, tables, key patterns, each route's breakdown). The recommendations diagnose
causes as a report from Prometheus does; the baseline they weigh changes against is an earlier run given with
``bench --baseline`` (without one, each part's whole time is weighed, and the report says so).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from exporter.reports import run_facts
from exporter.reports.attribution import route_of
from exporter.reports.facts import Cache, Database, Endpoint, Facts, QueryP95, Queue, Targets, Tracing
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


def run_files(directory: Path) -> list[Path]:
    """The run reports a bench wrote into ``directory``: ``<scenario>.json`` with a ``scenario`` and a
    ``summary`` (the k6 summaries and the report's own files are left out)."""
    if not directory.is_dir():
        raise ReportError(f"--run {directory}: no such directory (give the --out of a perf-exporter bench run)")
    found = []
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".k6-summary.json"):
            continue
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and "scenario" in body and "summary" in body and "measured" in body:
            found.append(path)
    if not found:
        raise ReportError(f"--run {directory}: no bench run report (<scenario>.json) in it")
    return found


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _s(ms: Any) -> float | None:
    value = _num(ms)
    return value / 1000 if value is not None else None


def _facts(bodies: Sequence[Mapping[str, Any]], where: str) -> RunFacts | None:
    found = [run_facts.read(b["platform"]["facts"], where) for b in bodies
             if isinstance(b.get("platform"), Mapping) and "facts" in b["platform"]]
    return run_facts.merged(found) if found else None


def _endpoint_baselines(bodies: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float | None, dict[str, float]]]:
    """Per endpoint of the baseline runs: its P95 and mean phases, seconds."""
    out: dict[str, tuple[float | None, dict[str, float]]] = {}
    for body in bodies:
        for e in body.get("endpoints") or []:
            phases = {k: v / 1000 for k, v in (e.get("phases_ms") or {}).items() if _num(v) is not None}
            out[str(e.get("name"))] = (_s(e.get("p95_ms")), phases)
    return out


def observe_runs(bodies: Sequence[Mapping[str, Any]], targets: Targets, where: str,
                 endpoint_requests: Mapping[str, tuple[str, str]] | None = None,
                 baseline: Sequence[Mapping[str, Any]] = ()) -> Observed:
    """The report's figures from one or more run bodies (``bench all``: the four benchmarks together).
    ``endpoint_requests``: endpoint name -> (method, path), to find the route its traces take; ``baseline``: the bodies
    of an earlier run to weigh changes against."""
    if not bodies:
        raise ReportError("no run to report on")
    measured_facts = _facts(bodies, where)
    baseline_facts = _facts(baseline, "the baseline run") if baseline else None
    before = _endpoint_baselines(baseline) if baseline_facts is not None else {}
    routes = measured_facts.routes if measured_facts else ()
    if baseline_facts is not None:
        then = {(r.service, r.operation): r for r in baseline_facts.routes}
        routes = tuple(replace(r, baseline=then[(r.service, r.operation)].window,
                               baseline_p95_s=then[(r.service, r.operation)].p95_s)
                       if (r.service, r.operation) in then else r for r in routes)
    operations = [(r.service, r.operation) for r in routes]
    starts, ends = [], []
    endpoints: list[Endpoint] = []
    stages: list[dict[str, Any]] = []
    requests = 0.0
    weighted_mean = 0.0
    failed = 0.0
    p95s: list[float] = []
    p99s: list[float] = []
    db_calls = db_seconds = 0.0
    db_p95: list[float] = []
    hits = misses = 0.0
    have_cache = False
    traces = 0.0
    trace_p95: list[float] = []
    trace_mean_total = 0.0
    queues: list[Queue] = []
    for body in bodies:
        end = _unix(str(body.get("timestamp")))
        shape = body.get("shape") or {}
        ran = _num(shape.get("ranSeconds")) or 0.0
        warm = _num(shape.get("warmupSeconds")) or 0.0
        starts.append(end - max(0.0, ran - warm))
        ends.append(end)
        measured = body.get("measured") or {}
        n = _num(measured.get("requests")) or 0.0
        requests += n
        weighted_mean += n * (_num(measured.get("avg_ms")) or 0.0)
        failed += n * (_num(measured.get("error_rate")) or 0.0)
        for key, out in (("p95_ms", p95s), ("p99_ms", p99s)):
            if _num(measured.get(key)) is not None:
                out.append(float(measured[key]))
        for e in body.get("endpoints") or []:
            count = _num(e.get("requests")) or 0.0
            name = str(e.get("name"))
            method_path = (endpoint_requests or {}).get(name)
            received = _num(e.get("received_bytes"))
            base_p95, base_phases = before.get(name, (None, None))
            endpoints.append(Endpoint("k6", name, count,
                                      failed=count * (_num(e.get("error_rate")) or 0.0),
                                      mean_s=_s(e.get("avg_ms")), p95_s=_s(e.get("p95_ms")),
                                      p99_s=_s(e.get("p99_ms")),
                                      phases_s={k: v / 1000 for k, v in (e.get("phases_ms") or {}).items()
                                                if _num(v) is not None},
                                      route=route_of(*method_path, operations) if method_path else None,
                                      response_bytes=received / count if received is not None and count else None,
                                      baseline_p95_s=base_p95, baseline_phases_s=base_phases))
        for stage in body.get("stages") or []:
            stages.append({"scenario": body.get("scenario"), **stage})
        platform = body.get("platform") or {}
        db = platform.get("database") or {}
        db_calls += _num(db.get("statementCalls")) or 0.0
        db_seconds += _num(db.get("statementSeconds")) or 0.0
        if _num(db.get("queryP95Ms")) is not None:
            db_p95.append(float(db["queryP95Ms"]))
        cache = platform.get("cache") or {}
        if cache:
            have_cache = True
            hits += _num(cache.get("hits")) or 0.0
            misses += _num(cache.get("misses")) or 0.0
        tr = platform.get("traces") or {}
        count = _num(tr.get("traces")) or 0.0
        traces += count
        trace_mean_total += count * (_num(tr.get("meanMs")) or 0.0)
        if _num(tr.get("p95Ms")) is not None:
            trace_p95.append(float(tr["p95Ms"]))
        for name, q in (platform.get("queues") or {}).items():
            queues.append(Queue(name, float(q["first"]), float(q["last"]), float(q["max"]),
                                (float(q["last"]) - float(q["first"])) / max(ran - warm, 1.0)))
    window = Window(min(starts), max(ends))
    several = len(bodies) > 1
    worst = " (the highest of the runs)" if several else ""
    api_mean = Figure(weighted_mean / requests if requests else None, "ms", K6, EXACT)
    api_p95 = (Figure(max(p95s), "ms", K6 + worst, EXACT) if p95s
               else missing("ms", K6, "no measured requests in the run"))
    api_p99 = (Figure(max(p99s), "ms", K6 + worst, EXACT) if p99s
               else missing("ms", K6, "no measured requests in the run"))
    err = (Figure(failed / requests, "ratio", K6 + " (http_req_failed)") if requests
           else missing("ratio", K6, "no measured requests in the run"))
    db_p95_fig = (Figure(max(db_p95), "ms", PLATFORM + f": {'perf_pg_query_duration_seconds'} buckets",
                         APPROXIMATE, "approximate: each statement's calls placed at its interval mean")
                  if db_p95 else missing("ms", PLATFORM, "no database collector ran, or no statement was seen"))
    lookups = hits + misses
    hit = (Figure(hits / lookups, "ratio", PLATFORM + ": keyspace hits / (hits + misses)") if lookups
           else missing("ratio", PLATFORM, "no Redis collector ran" if not have_cache else
                        "no key lookups in the run's window"))
    tr_p95 = (Figure(max(trace_p95), "ms", PLATFORM + ": perf_trace_duration_seconds buckets", BUCKETED)
              if trace_p95 else missing("ms", PLATFORM, "no Jaeger collector ran, or no trace was seen"))
    areas = {
        "api": AreaSummary("api", Figure(requests, "count", K6), api_mean, api_p95, api_p99, err,
                           "measured k6 requests", "k6 http_req_failed"),
        "database": AreaSummary("database", Figure(db_calls, "count", PLATFORM),
                                Figure(db_seconds / db_calls * 1000 if db_calls else None, "ms", PLATFORM),
                                db_p95_fig, missing("ms", PLATFORM, "a run keeps no P99 of statements"),
                                missing("ratio", PLATFORM, "a run keeps no transaction counts"),
                                "statement calls (pg_stat_statements)", "not measured"),
        "cache": AreaSummary("cache", Figure(lookups, "count", PLATFORM),
                             missing("ms", PLATFORM, "a run keeps no cache latency"),
                             missing("ms", PLATFORM, "a run keeps no cache latency"),
                             missing("ms", PLATFORM, "a run keeps no cache latency"),
                             missing("ratio", PLATFORM, "Redis counts no failed lookups"), "key lookups",
                             "not measured"),
        "tracing": AreaSummary("tracing", Figure(traces, "count", PLATFORM),
                               Figure(trace_mean_total / traces if traces else None, "ms", PLATFORM), tr_p95,
                               missing("ms", PLATFORM, "a run keeps no trace P99"),
                               missing("ratio", PLATFORM, "a run keeps no error spans"), "traces", "not measured"),
    }
    rows = {"api_latency_p95": api_p95, "api_latency_p99": api_p99, "error_rate": err, "db_query_p95": db_p95_fig,
            "cache_hit_rate": hit, "trace_p95": tr_p95}
    # An inconclusive run (the generator was the bottleneck) says nothing about the API's targets.
    inconclusive = []
    for b in bodies:
        verdict = b.get("verdict") or {}
        if verdict.get("status") == "inconclusive":
            inconclusive.append(f"{b.get('scenario')}: {'; '.join(verdict.get('reasons') or []) or 'see its report'}")
    if inconclusive:
        why = "the run was inconclusive (" + " | ".join(inconclusive) + "): its API figures cannot judge the target"
        for key in ("api_latency_p95", "api_latency_p99", "error_rate"):
            figure = rows[key]
            rows[key] = Figure(None, figure.unit, figure.source, figure.precision,
                               f"{why}; measured {figure.value}")
        # nor about their causes: an excess the generator may have made is not shared out
        endpoints = [replace(e, p95_s=None, p99_s=None, failed=0.0, server_errors=0.0) for e in endpoints]
    sources = {"api_latency": K6, "api_errors": K6, "cache_hits": PLATFORM, "trace_p95": PLATFORM,
               "db_p95": PLATFORM, "cache_checks": PLATFORM, "phases": K6 + " (http_req_* Trends by endpoint)",
               "response_size": K6 + " (data_received by endpoint / requests)"}
    if measured_facts is not None:
        sources.update(measured_facts.sources)
        databases = measured_facts.databases
        caches = measured_facts.caches
        tracing = measured_facts.tracing
        notes = ["source: a bench run's own measurements: k6 for the API, the config's collectors for the rest"]
    else:  # a run file from before runs kept their collectors' facts
        databases = ((Database("run", p95=QueryP95(max(db_p95) / 1000, "statements-approximate",
                                                    source=PLATFORM)),) if db_p95 else ())
        caches = (Cache("run", hits, misses, queues=tuple(queues)),) if have_cache or queues else ()
        tracing = ((Tracing("run", traces, max(trace_p95) / 1000),) if trace_p95 else ())
        notes = ["source: a bench run's own measurements; this run file keeps no statements, tables or routes, so "
                 "recommendations cannot name the cause behind a slow endpoint"]
    if baseline_facts is None:
        notes.append("no baseline run (bench --baseline): causes are weighed by each part's whole time, not by what "
                     "changed")
    facts = Facts(window.seconds, targets, tuple(endpoints), databases, caches, tracing, sources, routes,
                  measured_facts.cache_ttls if measured_facts else (), "an earlier run (bench --baseline)"
                  if baseline_facts is not None else "")
    plots = [_stage_plot(stages, targets)]
    return Observed(facts, window, "run", where, areas, rows, {}, plots, stages, notes,
                    {"scenarios": [b.get("scenario") for b in bodies], "infrastructure": NOT_RECORDED})


def _stage_plot(stages: Sequence[Mapping[str, Any]], targets: Targets) -> Plot:
    labels = [f"{s.get('scenario')} #{s.get('name')}" for s in stages]
    points = {key: [(float(i), float(s[key])) for i, s in enumerate(stages) if _num(s.get(key)) is not None]
              for key in ("p50_ms", "p95_ms", "p99_ms")}
    series = [Series(key.split("_")[0].upper(), pts, K6 + ", per stage") for key, pts in points.items() if pts]
    return Plot("stages", "Per-stage latency of the load run", "ms", series,
                [("P95 target", targets.api_latency_p95 * 1000)], "stages",
                [(label, float(s.get("requests_per_second") or 0.0)) for label, s in zip(labels, stages,
                                                                                         strict=True)],
                "" if stages else "the run had no stages")


def observe_run_dir(directory: Path, targets: Targets,
                    endpoint_requests: Mapping[str, tuple[str, str]] | None = None) -> Observed:
    bodies = [json.loads(p.read_text()) for p in run_files(directory)]
    return observe_runs(bodies, targets, str(directory), endpoint_requests)
