"""The pure parts of judging a distributed run: native histograms added up and read for quantiles, a run's
series turned into k6's summary entries, the instances' problems, the segments, and which Prometheus can store
the run. Data only: the end-to-end runs are in tests/test_load_segments.py."""

from __future__ import annotations

import math

import pytest

from exporter.load.distributed_run import Instance, instance_problems, segment_fragments, segment_of
from exporter.load.native_histogram import NativeHistogram, added, from_api
from exporter.load.prometheus_receiver import parse_version, query_url_of, requirements_problem, write_url_of
from exporter.load.remote_summary import instance_requests, parse_cut, summary_metrics
from exporter.load.run_series import RunSeries, Series, step_for

FLAGS = {"web.enable-remote-write-receiver": "true", "enable-feature": "native-histograms"}


def api_histogram(schema: int, counts: dict[int, int], zero: int = 0) -> dict[str, object]:
    """A histogram as Prometheus' API writes it, from bucket index -> count at ``schema``."""
    base = 2 ** (2**-schema)
    buckets: list[list[object]] = [[3, "-0.001", "0.001", str(zero)]] if zero else []
    buckets += [[0, str(base ** (i - 1)), str(base**i), str(n)] for i, n in sorted(counts.items())]
    total = zero + sum(counts.values())
    return {"count": str(total), "sum": str(sum(base**i * n for i, n in counts.items())), "buckets": buckets}


def test_a_bucket_is_found_by_its_bounds_at_its_schema() -> None:
    h = from_api(api_histogram(3, {-20: 2, -19: 5}, zero=1))
    assert (h.schema, dict(h.buckets or {}), h.zero_count, h.count) == (3, {-20: 2.0, -19: 5.0}, 1.0, 8.0)


def test_histograms_of_different_schemas_add_up_in_the_coarser_buckets() -> None:
    fine = from_api(api_histogram(3, {-16: 1, -15: 4}))  # (2^(-17/8), 2^(-2)] and (2^(-2), 2^(-15/8)]
    coarse = from_api(api_histogram(1, {-4: 2}))  # (2^(-5/2), 2^(-2)]: holds the fine -19..-16
    total = added([fine, coarse])
    assert total.schema == 1 and total.count == 7
    assert dict(total.buckets or {}) == {-4: 3.0, -3: 4.0}


def test_the_sum_of_histograms_is_what_one_histogram_of_all_the_observations_gives() -> None:
    a = from_api(api_histogram(3, {-25: 10, -24: 30}))
    b = from_api(api_histogram(3, {-24: 20, -23: 40}))
    assert added([a, b]) == from_api(api_histogram(3, {-25: 10, -24: 50, -23: 40}))


def test_a_quantile_lies_in_the_bucket_its_rank_falls_into() -> None:
    h = from_api(api_histogram(0, {0: 50, 1: 50}))  # 50 in (0.5, 1], 50 in (1, 2]
    assert h.quantile(0.5) == pytest.approx(1.0)
    assert h.quantile(0.75) == pytest.approx(math.sqrt(2))  # half way through (1, 2], exponentially
    assert h.quantile(1.0) == pytest.approx(2.0)
    assert NativeHistogram(0, 0).quantile(0.95) is None


def test_an_average_of_percentiles_is_not_the_percentile_of_the_whole() -> None:
    fast = from_api(api_histogram(0, {-3: 95, 0: 5}))  # 95 answers near 0.1 s, 5 near 1 s
    slow = from_api(api_histogram(0, {1: 100}))  # 100 answers near 1 s
    whole = added([fast, slow]).quantile(0.95)
    mean_of_p95s = ((fast.quantile(0.95) or 0) + (slow.quantile(0.95) or 0)) / 2
    assert whole == pytest.approx(2**0.9, rel=1e-9)  # the 190th of 200 answers: 90 % into (1, 2]
    assert abs(whole - mean_of_p95s) > 0.3


def series(labels: dict[str, str], *values: float | NativeHistogram) -> Series:
    return Series(labels, tuple(float(t) for t in range(len(values))), tuple(values))


def test_a_cut_is_the_sum_of_the_final_values_of_the_series_with_its_tags() -> None:
    create = {"phase": "measure", "endpoint": "create_order", "stage": "1"}
    run = RunSeries({
        "k6_http_reqs_total": [
            series({**create, "expected_response": "true", "instance_id": "1"}, 3.0, 10.0),
            series({**create, "expected_response": "false", "instance_id": "2"}, 1.0),  # one sample only
            series({**create, "phase": "warmup", "stage": "warmup", "expected_response": "true",
                    "instance_id": "1"}, 4.0),
        ],
        "k6_http_req_duration_seconds": [
            series({**create, "instance_id": "1"}, from_api(api_histogram(3, {-20: 10}))),
            series({**create, "instance_id": "2"}, from_api(api_histogram(3, {-10: 1}))),
        ],
    })
    metrics = summary_metrics(run, ["http_reqs{phase:measure}", "http_req_failed{phase:measure,endpoint:create_order}",
                                    "http_req_duration{phase:measure,stage:1}", "http_reqs{phase:measure,stage:2}",
                                    "http_req_duration{phase:measure,stage:2}"], ran_seconds=2.0)
    assert metrics["http_reqs{phase:measure}"] == {"count": 11.0, "rate": 5.5}
    assert metrics["http_req_failed{phase:measure,endpoint:create_order}"] == {"passes": 1.0, "fails": 10.0,
                                                                               "rate": 1 / 11}
    duration = metrics["http_req_duration{phase:measure,stage:1}"]
    assert duration["count"] == 11
    assert 2 ** (-11 / 8) * 1000 < duration["p(99)"] <= 2 ** (-10 / 8) * 1000  # the slow one, in ms
    assert metrics["http_reqs{phase:measure,stage:2}"] == {"count": 0.0, "rate": 0.0}  # counted: none
    assert "http_req_duration{phase:measure,stage:2}" not in metrics  # no samples: no entry, as in k6's summary
    assert instance_requests(run) == {"1": 14, "2": 1}
    assert parse_cut("http_req_duration{phase:measure,endpoint:get_order}") == (
        "http_req_duration", {"phase": "measure", "endpoint": "get_order"})


def test_a_series_is_carried_past_its_end() -> None:
    s = Series({}, (10.0, 20.0), (1.0, 5.0))
    assert (s.at(5.0), s.at(10.0), s.at(19.9), s.at(500.0)) == (None, 1.0, 1.0, 5.0)
    assert step_for(4, 300) == 1 and step_for(3600, 300) == 15 and step_for(36000, 300) == 150


def test_segments_are_k6_operators_fragments() -> None:
    assert segment_fragments(1, 1) == []
    assert segment_fragments(2, 3) == ["--execution-segment=1/3:2/3",
                                       "--execution-segment-sequence=0,1/3,2/3,1"]
    assert [segment_of(i, 4) for i in range(1, 5)] == ["0:1/4", "1/4:1/2", "1/2:3/4", "3/4:1"]


def test_each_instance_that_failed_was_saturated_sent_nothing_or_lost_samples_is_named() -> None:
    instances = [Instance("1", "0:1/4", 100, 100),
                 Instance("2", "1/4:1/2", 40, None, exit_code=-9, ended="k6 exited -9"),
                 Instance("3", "1/2:3/4", 0, 0, log="level=error msg=\"Failed to send the time series\""),
                 Instance("4", "3/4:1", 90, 100, dropped_iterations=7)]
    assert instance_problems(instances) == [
        "instance 2 of 4 (segment 1/4:1/2) failed: k6 exited with -9 (killed by signal 9)",
        "instance 3 of 4 (segment 1/2:3/4) sent nothing to Prometheus: level=error msg=\"Failed to send the time "
        "series\"",
        "instance 4 of 4 (segment 3/4:1): Prometheus has 90 of the 100 requests it made (remote write lost samples)",
        "instance 4 of 4 (segment 3/4:1) was saturated: 7 dropped iterations (raise --vus, or spread the load over "
        "more instances)"]
    assert instance_problems([Instance("1", "0:1", 5, None, ended="job failed")]) == [
        "instance 1 of 1 (segment 0:1) failed: job failed"]


@pytest.mark.parametrize(("version", "flags", "problem"), [
    ("2.42.0+ds", FLAGS, None),  # Debian 12's
    ("2.40.0", FLAGS, None),
    ("3.8.0", {"web.enable-remote-write-receiver": "true", "enable-feature": ""}, None),
    ("2.39.1", FLAGS, "Prometheus 2.39.1 cannot store k6's native histograms: it needs Prometheus 2.40 or later, "
                      "started with --web.enable-remote-write-receiver --enable-feature=native-histograms"),
    ("3.7.3", {"web.enable-remote-write-receiver": "true", "enable-feature": "exemplar-storage"},
     "Prometheus 3.7.3 drops native histograms unless started with --enable-feature=native-histograms (needed "
     "before 3.8)"),
    ("2.45.0", {"web.enable-remote-write-receiver": "false", "enable-feature": "native-histograms"},
     "Prometheus 2.45.0 does not accept remote write: start it with --web.enable-remote-write-receiver"),
    ("2.45.0", None, None),  # flags not readable: checked after the run instead
    ("not a version", FLAGS, None),
])
def test_which_prometheus_can_store_a_distributed_run(version: str, flags: dict[str, str] | None,
                                                      problem: str | None) -> None:
    assert requirements_problem(version, flags) == problem


def test_remote_write_and_query_urls() -> None:
    assert write_url_of("http://prom:9090/") == "http://prom:9090/api/v1/write"
    assert write_url_of("http://prom:9090/api/v1/write") == "http://prom:9090/api/v1/write"
    assert query_url_of("http://prom:9090/api/v1/write") == "http://prom:9090"
    assert parse_version("v2.53.1") == (2, 53, 1)
