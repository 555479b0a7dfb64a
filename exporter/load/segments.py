"""``bench --segments N``: the run as N k6 processes on this machine, each one execution segment of the same
scenario (``--execution-segment``, ``--execution-segment-sequence``, as k6-operator splits a run across its
pods), each sending its samples to Prometheus by remote write, tagged with the run id and its ``instance_id``.

Each process is run and watched like a single run (:func:`exporter.load.runner.run_k6`: its REST API for live
figures, its CPU, its own summary); the live figures of all of them are added up for the progress line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter.child_process import free_loopback_address
from exporter.load.distributed_run import segment_fragments, segment_of
from exporter.load.k6_binary import K6
from exporter.load.plan import PlanError, RunPlan
from exporter.load.runner import LiveSample, RunOutcome, run_k6

# k6's system tags on a distributed run's samples: what judging reads (expected_response: the failed requests)
# and what helps find a cause; not url or name, which make a series of every order id
SYSTEM_TAGS = "status,method,expected_response,error_code,scenario,check"
# the live sub-metrics each process computes for the progress line; no thresholds: a share of the load is not
# judged on its own
LIVE_SUBMETRICS = ("http_reqs{phase:measure}", "http_req_failed{phase:measure}", "http_req_duration{phase:measure}")


def remote_args(run_id: str) -> list[str]:
    return ["--out", "experimental-prometheus-rw", "--tag", f"testid={run_id}", "--system-tags", SYSTEM_TAGS]


def check_instances(plan: RunPlan, instances: int) -> None:
    """Each instance needs at least one VU: k6 gives a segment its share of the VUs, rounded down (that there is
    one instance at least, :func:`~exporter.load.distribution_options.distribution_problem` has checked)."""
    if plan.shape.vus < instances:
        raise PlanError(f"--segments {instances}: the run has {plan.shape.vus} VUs at most, and each instance "
                        f"needs one at least (raise --vus, or fewer segments)")


def _replaced(argv: Sequence[str], option: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(option) + 1] = value
    return out


def segment_plan(plan: RunPlan, index: int, total: int, run_id: str, env: Mapping[str, str],
                 summary_path: Path) -> RunPlan:
    """Instance ``index`` of ``total``: the plan's k6 command with its segment, its tags, the remote-write output,
    its own REST address and summary file."""
    argv = _replaced(_replaced(plan.argv, "--address", free_loopback_address()), "--summary-export", str(summary_path))
    extra = [*segment_fragments(index, total), *remote_args(run_id), "--tag", f"instance_id={index}"]
    argv = [*argv[:-1], *extra, argv[-1]]  # the script stays last
    thresholds = json.dumps({name: [] for name in LIVE_SUBMETRICS})
    return dataclasses.replace(plan, argv=tuple(argv), env={**plan.env, **env, "THRESHOLDS": thresholds})


def merged_sample(latest: Mapping[int, LiveSample]) -> LiveSample:
    """The instances' live figures as one: counts and rates added, the error rate over all their measured
    requests; no P95 (percentiles do not add up: the run's comes from Prometheus at the end)."""
    samples = list(latest.values())
    leader = max(samples, key=lambda s: s.elapsed)
    measured = failed = 0.0
    for s in samples:
        count = s.metric("http_reqs{phase:measure}").get("count")
        rate = s.metric("http_req_failed{phase:measure}").get("rate")
        if isinstance(count, int | float) and isinstance(rate, int | float):
            measured += count
            failed += rate * count
    return LiveSample(elapsed=leader.elapsed, stage=leader.stage, vus=sum(s.vus for s in samples),
                      requests=sum(s.requests for s in samples),
                      requests_per_second=sum(s.requests_per_second for s in samples), p95_ms=None,
                      error_rate=failed / measured if measured else None,
                      dropped_iterations=sum(s.dropped_iterations for s in samples))


@dataclass(frozen=True)
class SegmentRun:
    index: int
    segment: str
    outcome: RunOutcome
    started_at: float | None  # unix seconds when its test run started (first live sample), None if never


async def run_segments(k6: K6, plan: RunPlan, total: int, run_id: str, env: Mapping[str, str], out: Path,
                       on_sample: Callable[[LiveSample], None] | None, timeout: float | None) -> list[SegmentRun]:
    """Run the ``total`` instances at once and wait for all of them."""
    latest: dict[int, LiveSample] = {}
    started: dict[int, float] = {}

    def watcher_for(index: int) -> Callable[[LiveSample], None]:
        def seen(sample: LiveSample) -> None:
            started.setdefault(index, time.time() - sample.elapsed)
            latest[index] = sample
            if on_sample is not None:
                on_sample(merged_sample(latest))

        return seen

    name = plan.scenario.name
    runs = []
    for index in range(1, total + 1):
        summary = out / f"{name}.instance-{index}.k6-summary.json"
        log = out / f"{name}.instance-{index}.k6.log"
        summary.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        runs.append(run_k6(k6, segment_plan(plan, index, total, run_id, env, summary), summary, log,
                           watcher_for(index), None, timeout))
    outcomes = await asyncio.gather(*runs)
    return [SegmentRun(i, segment_of(i, total), outcome, started.get(i))
            for i, outcome in enumerate(outcomes, start=1)]
