"""A distributed run's figures from its series in Prometheus, in the shape of k6's end-of-test summary, so that
the run is judged by the very code that judges a single k6 run (:func:`exporter.load.bench.judge`).

Each cut k6 would compute as a sub-metric (``http_req_duration{phase:measure,stage:2}``) is the sum of the final
values of the series carrying those tags, over every instance: request counts add up, and the duration's
percentiles come from the *added* native histograms, never from the instances' own percentiles. Failed requests
are the requests whose ``expected_response`` tag is false (what ``http_req_failed`` counts). Pure: no I/O.

What k6 cannot send in a form that adds up is left out: a custom Rate reaches Prometheus as a ratio per series
(``k6_<name>_rate``) without its count, and minimum and maximum are not in a histogram.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from exporter.load.native_histogram import NativeHistogram, added
from exporter.load.run_series import RunSeries, Series, Value
from exporter.load.runner import LiveSample

INSTANCE_LABEL = "instance_id"  # the tag k6-operator gives each runner, and bench --segments each process
QUANTILES = {"med": 0.5, "p(90)": 0.9, "p(95)": 0.95, "p(99)": 0.99}


def parse_cut(name: str) -> tuple[str, dict[str, str]]:
    """``http_reqs{phase:measure,endpoint:get_order}`` -> (``http_reqs``, its tags)."""
    metric, _, rest = name.partition("{")
    tags = dict(tag.split(":", 1) for tag in rest.rstrip("}").split(",") if ":" in tag)
    return metric, tags


def _matching(series: Iterable[Series], tags: Mapping[str, str]) -> list[Series]:
    return [s for s in series if all(s.labels.get(k) == v for k, v in tags.items())]


def _floats(values: Iterable[Value | None]) -> float:
    return sum(v for v in values if isinstance(v, float))


def _histogram(values: Iterable[Value | None]) -> NativeHistogram | None:
    found = [v for v in values if isinstance(v, NativeHistogram)]
    return added(found) if found else None


def trend_stats(histogram: NativeHistogram | None, scale: float) -> dict[str, float]:
    """A Trend's summary entry (k6 writes durations in ms: ``scale`` 1000 for a ``_seconds`` family)."""
    if histogram is None or histogram.count <= 0:
        return {}
    out = {"count": histogram.count, "avg": histogram.total / histogram.count * scale}
    for key, q in QUANTILES.items():
        value = histogram.quantile(q)
        if value is not None:
            out[key] = value * scale
    return out


def _failed(requests: list[Series], at: float | None = None) -> dict[str, float]:
    """``http_req_failed``'s entry from the requests' ``expected_response`` tag (none: not known)."""
    def value(s: Series) -> Value | None:
        return s.final if at is None else s.at(at)

    if not any("expected_response" in s.labels for s in requests):
        return {}
    failed = _floats(value(s) for s in requests if s.labels.get("expected_response") == "false")
    passed = _floats(value(s) for s in requests if s.labels.get("expected_response") == "true")
    total = failed + passed
    return {"passes": failed, "fails": passed, "rate": failed / total if total else 0.0}


def _trend_family(series: RunSeries, name: str) -> tuple[str, float] | None:
    """Where k6 puts a Trend: ``k6_<name>_seconds`` (a time, in ms in the summary) or ``k6_<name>``."""
    if series.family(f"k6_{name}_seconds"):
        return f"k6_{name}_seconds", 1000.0
    if series.family(f"k6_{name}"):
        return f"k6_{name}", 1.0
    return None


def summary_metrics(series: RunSeries, names: Sequence[str], ran_seconds: float) -> dict[str, dict[str, Any]]:
    """k6's summary entries for ``names`` (sub-metrics as k6 spells them, and plain metrics) from the run's
    series; a name whose series are absent gets no entry, as in k6's summary of a cut without samples."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        metric, tags = parse_cut(name)
        entry: dict[str, Any] = {}
        if metric == "http_req_failed":
            entry = _failed(_matching(series.family("k6_http_reqs_total"), tags))
        elif metric == "http_reqs" or series.family(f"k6_{metric}_total"):
            # a Counter: http_reqs, data_received, dropped_iterations, a custom one
            count = _floats(s.final for s in _matching(series.family(f"k6_{metric}_total"), tags))
            entry = {"count": count, "rate": count / ran_seconds if ran_seconds > 0 else 0.0}
        elif (found := _trend_family(series, metric)) is not None:
            family, scale = found
            entry = trend_stats(_histogram(s.final for s in _matching(series.family(family), tags)), scale)
        if entry:
            out[name] = entry
    return out


def _by_instance(series: RunSeries, family: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in series.family(family):
        instance = s.labels.get(INSTANCE_LABEL, "")
        out[instance] = out.get(instance, 0) + int(_floats([s.final]))
    return out


def instance_requests(series: RunSeries) -> dict[str, int]:
    """Requests each instance sent (every phase), by its ``instance_id``."""
    return _by_instance(series, "k6_http_reqs_total")


def instance_dropped(series: RunSeries) -> dict[str, int]:
    """Iterations each instance could not start (every phase), by its ``instance_id``."""
    return _by_instance(series, "k6_dropped_iterations_total")


def remote_samples(series: RunSeries, run_start: float) -> list[LiveSample]:
    """The run's measured requests up to each step, as the live samples of a single run hold them (elapsed from
    ``run_start``, unix seconds): their count, mean, P95 and P99 (ms) and error rate, for its timeline."""
    durations = _matching(series.family("k6_http_req_duration_seconds"), {"phase": "measure"})
    requests = _matching(series.family("k6_http_reqs_total"), {"phase": "measure"})
    samples: list[LiveSample] = []
    for t in series.times:
        histogram = _histogram(s.at(t) for s in durations)
        if histogram is None or histogram.count <= 0:
            continue
        stats = trend_stats(histogram, 1000.0)
        failed = _failed(requests, t)
        metrics = {"http_req_duration{phase:measure}": stats, "http_reqs{phase:measure}": {"count": histogram.count},
                   "http_req_failed{phase:measure}": failed}
        samples.append(LiveSample(elapsed=t - run_start, stage="", vus=0, requests=int(histogram.count),
                                  requests_per_second=0.0, p95_ms=stats.get("p(95)"), error_rate=failed.get("rate"),
                                  dropped_iterations=0, metrics=metrics))
    return samples
