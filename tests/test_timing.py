"""True timings or none: a duration the probe's own process may have inflated is counted, never observed; the
process's loop delay is exported; and the sample detail a target asks for is what /metrics holds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.config.loading import ConfigError, parse_config
from exporter.store import StoreCollector
from exporter.timing import IN_FLIGHT, ProcessWatch, new_event_loop, trusted
from tests.http_target import HttpTargetProcess
from tests.probe_harness import ProbeHarness


@pytest.fixture(scope="module")
def timed_target() -> Iterator[HttpTargetProcess]:
    with HttpTargetProcess() as server:  # a process of its own: the probe's busy loop does not hold it up
        yield server


def busy(seconds: float) -> None:
    """Hold the event loop's thread on the CPU, as a long scrape or a collector's parsing would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run_with(h: ProbeHarness, block_for: float | None) -> None:
    """Run the probe once; with ``block_for``, hold the loop that long as soon as its request is written."""
    async def block_when_in_flight() -> None:
        while not IN_FLIGHT.count:
            await asyncio.sleep(0.0005)
        busy(block_for or 0.0)

    async def go() -> None:
        blocker = asyncio.create_task(block_when_in_flight()) if block_for else None
        try:
            await h.probe.run()
        finally:
            await h.probe.close()
            if blocker is not None:
                blocker.cancel()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(go())


def test_an_answer_that_arrives_while_the_process_is_busy_is_counted_not_timed(
        timed_target: HttpTargetProcess) -> None:
    h = ProbeHarness({"base_url": timed_target.url, "endpoints": [{"name": "e", "path": "/delay/20"}]})
    run_with(h, block_for=0.2)  # the server answers about 20 ms after the request, while the loop is busy
    assert h.requests("e", "success") == 1, "the server did answer: the outcome stands"
    assert h.value("perf_http_request_duration_seconds_count", endpoint="e", method="GET") == 0
    assert h.value("perf_http_timings_discarded_total") == 1
    assert h.value("perf_http_phase_duration_seconds", endpoint="e", phase="wait") is None, \
        "no phases from a request that could not be timed"


def test_a_slow_answer_is_timed_though_the_process_was_busy_earlier_in_its_wait(
        timed_target: HttpTargetProcess) -> None:
    """Busy for 60 ms at the start of a 600 ms wait, idle when the answer comes: the process added nothing to it.
    (Counting the whole wait's busy time would discard slow answers whenever a collector runs beside them, and
    keep the fast ones: a latency histogram biased low.)"""
    for _ in range(3):  # a busy test machine may still delay the hand-over itself: then it is tried again
        h = ProbeHarness({"base_url": timed_target.url, "endpoints": [{"name": "e", "path": "/delay/600"}]})
        run_with(h, block_for=0.06)
        if h.value("perf_http_request_duration_seconds_count", endpoint="e", method="GET") == 1:
            break
    assert h.value("perf_http_request_duration_seconds_count", endpoint="e", method="GET") == 1
    assert h.value("perf_http_timings_discarded_total") == 0


def test_an_answer_that_arrives_while_the_process_is_idle_is_timed(timed_target: HttpTargetProcess) -> None:
    # a second: slow enough that even a busy test machine's waits for a CPU stay under its 5 % (50 ms)
    h = ProbeHarness({"base_url": timed_target.url, "endpoints": [{"name": "e", "path": "/delay/1000"}]})
    run_with(h, block_for=None)
    assert h.value("perf_http_request_duration_seconds_count", endpoint="e", method="GET") == 1
    assert h.value("perf_http_timings_discarded_total") == 0
    assert h.value("perf_http_phase_duration_seconds", endpoint="e", phase="wait") >= 1.0


def test_a_timing_is_kept_when_the_process_can_have_added_at_most_1ms_or_5_percent() -> None:
    assert trusted(0.0002, 0.0009)
    assert not trusted(0.010, 0.0011)
    assert trusted(0.300, 0.014)  # 4.7 % of a slow answer
    assert not trusted(0.300, 0.016)


def test_a_blocked_loop_shows_in_the_loop_delay_histogram() -> None:
    stores = StoreCollector()
    watch = ProcessWatch(stores.add("main"), "main", every=0.05)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(stores)

    async def go() -> None:
        task = asyncio.create_task(watch.watch())
        await asyncio.sleep(0.2)
        busy(0.3)
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(go())

    def count(le: str) -> float:
        value = registry.get_sample_value("perf_exporter_event_loop_delay_seconds_bucket",
                                          {"process": "main", "le": le})
        assert value is not None
        return value

    assert count("+Inf") >= 5
    assert count("0.1") < count("+Inf") <= count("0.5"), "one wake-up came about 0.25 s late"


def samples_per_endpoint(target: dict[str, object], timed_target: HttpTargetProcess) -> dict[str, int]:
    """The samples /metrics holds for each of two endpoints of one target, after a run in which both were timed
    (a run whose timing a busy test machine made untrustworthy exports no phases yet: it is tried again)."""
    for _ in range(5):
        h = ProbeHarness({"base_url": timed_target.url, **target,
                          "endpoints": [{"name": "a", "path": "/delay/200"}, {"name": "b", "path": "/delay/200"}]})
        h.run()
        if h.value("perf_http_timings_discarded_total") == 0:
            break
    text = h.stores.render()
    counts = {"a": 0, "b": 0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for endpoint in counts:
                if sample.labels.get("endpoint") == endpoint or sample.labels.get("probe") == endpoint:
                    counts[endpoint] += 1
    return counts


@pytest.mark.parametrize(("detail", "expected"), [
    ({}, 39),
    ({"phases": False}, 33),
    ({"buckets": ["100ms", "500ms", "1s"]}, 22),
    ({"phases": False, "buckets": ["100ms", "500ms", "1s"]}, 16),
])
def test_the_samples_per_endpoint_are_those_docs_metrics_states(detail: dict[str, object], expected: int,
                                                                 timed_target: HttpTargetProcess) -> None:
    assert samples_per_endpoint(detail, timed_target) == {"a": expected, "b": expected}
    table = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| **per endpoint** |"))
    assert f"| **{expected}** |" in row


def test_fewer_buckets_keep_every_exported_bound_exact() -> None:
    observed = [0.003, 0.04, 0.12, 0.12, 0.3, 0.7, 2.2, 12.0]
    whole, part = StoreCollector(), StoreCollector()
    part_store = part.add("t")
    part_store.show_buckets(metrics.HTTP_REQUEST_DURATION, [0.1, 0.25, 1.0])
    for store in (whole.add("t"), part_store):
        for value in observed:
            store.observe(metrics.HTTP_REQUEST_DURATION, value, target="t", endpoint="e", method="GET")

    def samples(stores: StoreCollector) -> dict[tuple[str, str | None], float]:
        return {(s.name, s.labels.get("le")): s.value for f in text_string_to_metric_families(stores.render())
                for s in f.samples}

    shown, full = samples(part), samples(whole)
    assert {le for _, le in shown if le} == {"0.1", "0.25", "1.0", "+Inf"}
    for key, value in shown.items():
        assert full[key] == value, key
    assert shown[("perf_http_request_duration_seconds_bucket", "0.25")] == 4  # 0.003, 0.04 and the two 0.12


def test_buckets_must_keep_the_slo_thresholds() -> None:
    config = {"targets": {"api_latency_p95": "250ms"},
              "api": [{"name": "gw", "base_url": "http://x:1", "buckets": ["100ms", "1s"],
                       "endpoints": [{"name": "h", "path": "/"}]}]}
    with pytest.raises(ConfigError) as error:
        parse_config(config, "t.yaml")
    assert "api[0].buckets: 250ms (targets.api_latency_p95) must be one of the bounds" in str(error.value)
    assert metrics.HTTP_REQUEST_DURATION.buckets  # the bounds it names are the family's


def test_time_spent_waiting_for_a_cpu_is_counted() -> None:
    """The watch and a busy process of the test's own on one CPU: the watch's thread waits for it."""
    stores = StoreCollector()
    watch = ProcessWatch(stores.add("main"), "main", every=0.01)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(stores)
    mine = os.sched_getaffinity(0)
    cpu = min(mine)
    spin = (f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\n"
            "end = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n")
    hog = subprocess.Popen([sys.executable, "-c", spin])

    async def go() -> None:
        task = asyncio.create_task(watch.watch())
        for _ in range(20):  # CPU work of its own too, as a probe worker has: both want the one CPU
            busy(0.02)
            await asyncio.sleep(0.02)
        task.cancel()

    try:
        time.sleep(0.3)  # the hog is pinned and spinning
        os.sched_setaffinity(0, {cpu})
        asyncio.run(go())
    finally:
        os.sched_setaffinity(0, mine)
        hog.kill()
        hog.wait()
    waited = registry.get_sample_value("perf_exporter_cpu_wait_seconds_total", {"process": "main"})
    assert waited is not None and waited > 0.05, f"{waited} s waited on a CPU shared with a busy process"
