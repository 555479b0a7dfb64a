"""Report source (a): Prometheus's HTTP API over a window.

Window figures come from ``increase(...[window])`` of the exporter's counters and histogram buckets, evaluated at
the window's end, so a percentile is over every probe request of the window (not an average of 5-minute
percentiles), and a latency target, which is always a bucket bound, is decided exactly by the share of requests
within it. The databases, caches, traces and routes are built by :mod:`exporter.reports.collected`, as for a
bench run. The plots over the window draw every line of a plot from one rate window, which the plot states
(:func:`rate_range`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from exporter import metrics
from exporter.config.targets import Targets
from exporter.metrics import Family
from exporter.reports import areas, collected
from exporter.reports.facts import Queue, SerialGroup
from exporter.reports.infrastructure import infrastructure_section
from exporter.reports.jaeger_sample import with_samples
from exporter.reports.model import (
    Observed,
    Plot,
    ReportError,
    Series,
    Window,
)
from exporter.reports.query import HistogramsFromIncreases, Vector, key_of
from exporter.secrets import mask_url
from exporter.slo.slos import HitMissIndicator, LatencyIndicator, Matcher, OutcomeIndicator, selector


class PrometheusClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)  # shared by the plots' thread: httpx clients are thread-safe
        self.queries = 0

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        self.queries += 1
        try:
            response = self.client.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise ReportError(f"Prometheus at {self.url} is not reachable: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise ReportError(f"Prometheus at {self.url} answered {response.status_code} without JSON "
                              f"(is it a Prometheus?)") from None
        if body.get("status") != "success":
            raise ReportError(f"Prometheus rejected {params.get('query')!r}: {body.get('error', body)}")
        return body["data"]

    def vector(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        out = []
        for item in data.get("result", []):
            value = float(item["value"][1])
            if math.isfinite(value):
                out.append((item["metric"], value))
        return out

    def matrix(self, query: str, start: float, end: float, step: float) -> list[tuple[dict[str, str],
                                                                                       list[tuple[float, float]]]]:
        out = []
        for item in self.range_result(query, start, end, step):
            points = [(float(t), float(v)) for t, v in item["values"] if math.isfinite(float(v))]
            out.append((item["metric"], points))
        return out

    def check(self) -> None:
        self._get("/api/v1/query", {"query": "1"})

    def range_result(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's series as the API gives them: ``metric`` and ``values`` or ``histograms``."""
        data = self._get("/api/v1/query_range", {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                 "step": f"{step:.3f}"})
        return list(data.get("result", []))

    def status(self, what: str) -> Any:
        """``/api/v1/status/<what>``: ``buildinfo``, ``flags``..."""
        return self._get(f"/api/v1/status/{what}", {})


class Window_(HistogramsFromIncreases):
    """:class:`exporter.reports.query.Query` over Prometheus: ``[W]`` ranges evaluated at the window's end. With
    ``offset_s``, the same over the period of ``range_s`` seconds that ends ``offset_s`` before the window's end (a
    baseline before the window)."""

    def __init__(self, client: PrometheusClient, window: Window, range_s: float | None = None,
                 offset_s: float = 0.0) -> None:
        self.client = client
        self.window = window
        self.range_s = max(1, round(range_s if range_s is not None else window.seconds))
        self.range = f"{self.range_s}s"
        self.offset = f" offset {round(offset_s)}s" if offset_s >= 1 else ""
        self.step = max(1.0, window.seconds / 150)

    def over(self, period: Window) -> Window_:
        """The same queries over another period that ends no later than the window (a baseline)."""
        return Window_(self.client, self.window, period.seconds, self.window.end - period.end)

    def by(self, expr: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        out: Vector = {}
        for labels, value in self.client.vector(expr, self.window.end):
            k = key_of(labels, names)
            out[k] = out.get(k, 0.0) + value
        return out

    def _by(self, names: tuple[str, ...]) -> str:
        return f" by ({', '.join(names)})" if names else ""

    def increase(self, family: str, names: Iterable[str], matchers: Sequence[Matcher] = ()) -> Vector:
        names = tuple(names)
        return self.by(f"sum{self._by(names)} (increase({family}{selector(*matchers)}[{self.range}]{self.offset}))",
                       names)

    def over_time(self, fn: str, family: str, names: Iterable[str], agg: str = "max") -> Vector:
        names = tuple(names)
        return self.by(f"{agg}{self._by(names)} ({fn}({family}[{self.range}]{self.offset}))", names)

    def peak_sum(self, family: str, names: Iterable[str]) -> Vector:
        names = tuple(names)
        sub = f"[{self.range}:{self.step:g}s]{self.offset}"
        return self.by(f"max{self._by(names)} (max_over_time((sum{self._by(names)} ({family})){sub}))", names)

    def source(self, expr: str) -> str:
        return f"prometheus: {expr.replace('[W]', f'[{self.range}]{self.offset}')}"


def collect(client: PrometheusClient, window: Window, targets: Targets,
            jaeger_urls: Mapping[str, str] | None = None,
            endpoint_requests: Mapping[tuple[str, str], tuple[str, str]] | None = None,
            baseline: Window | None = None) -> Observed:
    """Every figure of a report over ``window`` from Prometheus: each registered area's part
    (:mod:`exporter.reports.areas`), the plots and the infrastructure. ``jaeger_urls``: Jaeger target name -> its
    query URL, to read sample traces of the serial groups; ``endpoint_requests``: (api target, endpoint) ->
    (method, path), to find the route its traces take; ``baseline``: the period attribution compares the window
    with (None: none)."""
    if window.seconds <= 0:
        raise ReportError("the window is empty: --from must be before --to")
    if baseline is not None and (baseline.seconds < 1 or baseline.end > window.end):
        raise ReportError("the baseline must be a period of a second or more that ends before the window's end")
    client.check()
    q = Window_(client, window)
    base = q.over(baseline) if baseline is not None else None
    # the plots' range queries run beside the window's instant queries: Prometheus answers both at once
    pool = ThreadPoolExecutor(max_workers=1)
    plots_future = pool.submit(_plots, client, q, targets)
    sources: dict[str, str] = {}
    urls = jaeger_urls or {}

    def sampled(groups: tuple[SerialGroup, ...], target: str) -> tuple[SerialGroup, ...]:
        return with_samples(groups, urls.get(target), window.start, window.end)

    ctx = areas.AreaContext(q, window, targets, sources, base, collected.routes(q, base, sources),
                            endpoint_requests or {}, sampled, lambda: _queues(client, q))
    parts = areas.observe_all(ctx)
    facts = areas.facts_of(ctx, parts, f"{baseline.as_json()['start']} to {baseline.as_json()['end']}"
                           if baseline else "")
    try:
        plots = plots_future.result()
    finally:
        pool.shutdown()
    infrastructure = infrastructure_section(lambda expr: client.vector(expr, window.end), window)
    return Observed(facts, window, "prometheus", mask_url(client.url), {name: p.summary for name, p in parts.items()},
                    {k: v for p in parts.values() for k, v in p.rows.items()},
                    {k: v for p in parts.values() for k, v in p.shares.items()}, plots, [],
                    [n for p in parts.values() for n in p.notes], {"infrastructure": infrastructure})


def _queues(client: PrometheusClient, q: Window_) -> dict[str, tuple[Queue, ...]]:
    """Each Redis target's queues: first, last and highest length over the window, and their trend."""
    out: dict[str, list[Queue]] = {}
    for labels, points in client.matrix(f"max by (target, queue) ({metrics.REDIS_QUEUE_LENGTH.name})",
                                        q.window.start, q.window.end, q.step):
        if points:
            values = [v for _, v in points]
            out.setdefault(labels.get("target", ""), []).append(
                Queue(labels.get("queue", ""), values[0], values[-1], max(values), _slope(points)))
    return {t: tuple(queues) for t, queues in out.items()}


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def rate_range(q: Window_) -> int:
    """Seconds of the rate every plot line uses: a tenth of the window, at least two and a half of the daemon's
    scrape intervals (found from its own samples in the window) so that each point has samples, at most 5
    minutes."""
    counted = q.by(f"max(count_over_time({metrics.BUILD_INFO.name}[{q.range}]))", ())
    samples = next(iter(counted.values()), 0.0)
    scrape = q.window.seconds / samples if samples >= 2 else 15.0
    return round(min(300.0, max(q.window.seconds / 10, 2.5 * scrape, 2 * q.step)))


def _plots(client: PrometheusClient, q: Window_, targets: Targets) -> list[Plot]:
    """Time series over the window; the lines of a plot share one rate window, stated with the plot."""
    w = q.window
    seconds = rate_range(q)
    rate = f"{seconds}s"
    note = (f"each point: the rate over the {seconds} s before it (every line of this plot); the tables use the "
            f"whole window ({w.seconds:.0f} s)")
    def series(expr: str, name: str, scale: float = 1.0) -> Series | None:
        found = client.matrix(expr, w.start, w.end, q.step)
        points = [(t, v * scale) for _, pts in found for t, v in pts]
        if not points:
            return None
        merged_points: dict[float, float] = {}
        for t, v in points:
            merged_points[t] = max(v, merged_points.get(t, v))
        return Series(name, sorted(merged_points.items()), f"prometheus: {expr}")

    def quantile(family: Family, q_: float) -> str:
        return LatencyIndicator(by=(), family=family).quantile(q_, rate)

    http = metrics.HTTP_REQUEST_DURATION
    plots = []
    lat = [s for s in (series(quantile(http, 0.95), "P95", 1000), series(quantile(http, 0.99), "P99", 1000),
                       series(quantile(http, 0.5), "P50", 1000)) if s]
    plots.append(Plot("api_latency", "API latency percentiles", "ms", lat,
                      [("P95 target", targets.api_latency_p95 * 1000), ("P99 target", targets.api_latency_p99 * 1000)],
                      note=note if lat else "no probe requests in the window"))
    errors = OutcomeIndicator(by=())
    err = series(f"{errors.bad(rate)} / {errors.total(rate)}", "error rate")
    lookups = HitMissIndicator(by=())
    hit = series(f"{lookups.good(rate)} / {lookups.total(rate)}", "cache hit rate")
    plots.append(Plot("error_rate", "Error rate", "ratio", [err] if err else [],
                      [("error rate target", targets.error_rate)], note=note if err else "no probe requests"))
    plots.append(Plot("cache_hit_rate", "Cache hit rate", "ratio", [hit] if hit else [],
                      [("hit rate target", targets.cache_hit_rate)], note=note if hit else "no cache lookups"))
    others = [s for s in (series(quantile(metrics.PG_QUERY_DURATION, 0.95), "database P95", 1000),
                          series(quantile(metrics.TRACE_DURATION, 0.95), "trace P95", 1000)) if s]
    plots.append(Plot("platform_latency", "Database and trace P95", "ms", others,
                      [("DB target", targets.db_query_p95 * 1000), ("trace target", targets.trace_p95 * 1000)],
                      note=note if others else "no database or trace data"))
    return plots
