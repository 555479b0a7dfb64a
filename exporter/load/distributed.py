"""One run across many k6 instances, judged once: ``bench --segments N`` (local processes) and ``bench
--k6-operator N --kubeconfig FILE`` (runner pods) both end here.

:class:`DistributedLauncher` stands in for :func:`exporter.load.runner.run_k6` in ``bench``: it starts the
instances, waits for them (showing their added-up progress), reads every series the run sent to Prometheus
(:mod:`exporter.load.run_series`) and hands ``bench`` one :class:`~exporter.load.runner.RunOutcome` whose
metrics are the whole run's, in the shape of k6's summary (:mod:`exporter.load.remote_summary`). From there the
run is judged, reported and stored exactly as a single run is; the instances that failed, were saturated or sent
nothing make it inconclusive, each named (:func:`exporter.load.distributed_run.instance_problems`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from exporter.load.distributed_run import Distributed, Instance, instance_problems
from exporter.load.k6_binary import K6
from exporter.load.plan import RunPlan
from exporter.load.prometheus_receiver import Receiver, remote_write_env
from exporter.load.remote_summary import instance_dropped, instance_requests, remote_samples, summary_metrics
from exporter.load.run_series import RunSeries, read_run_series
from exporter.load.runner import LiveSample, RunOutcome, Watcher, log_tail
from exporter.load.segments import check_instances, run_segments
from exporter.reports.model import ReportError
from exporter.reports.prometheus import PrometheusClient
from exporter.secrets import mask_url, safe_url

READ_MARGIN_SECONDS = 5.0  # read from a little before the first instance started


@dataclass(frozen=True)
class InstanceEnd:
    """How one instance ended, as whoever ran it knows: its exit code (a local process) or its job's state
    (a pod), the requests and dropped iterations its own summary counted (local only), its log's last line."""

    index: int
    segment: str
    exit_code: int | None
    ended: str
    requests_made: int | None = None
    dropped_iterations: int | None = None  # None: take Prometheus' count
    log: str = ""


@dataclass(frozen=True)
class InstancesRan:
    """What running the instances gave: how each ended, when the run started (unix seconds), how long it ran,
    the generator's CPU where it is known, why it was stopped early, and the log to point at."""

    ends: list[InstanceEnd]
    started_at: float
    ran_seconds: float
    k6_cpu: float | None = None
    machine_cpu: float | None = None
    stopped: str | None = None
    log_path: Path = Path()
    problems: tuple[str, ...] = ()  # what went wrong with the run as a whole (a TestRun that ended in error)


class InstanceRunner(Protocol):
    """Starts the instances of a run and waits for them (local segments, or a TestRun)."""

    mode: str

    async def run(self, k6: K6, plan: RunPlan, total: int, run_id: str, env: dict[str, str], out: Path,
                  on_sample: Callable[[LiveSample], None] | None, timeout: float | None) -> InstancesRan: ...


def new_run_id(scenario: str) -> str:
    """``testid`` of one run: the scenario, when, and a random suffix (two runs in one second stay apart)."""
    return f"{scenario}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


class LocalSegments:
    """The instances as k6 processes here (:mod:`exporter.load.segments`)."""

    mode = "segments"

    async def run(self, k6: K6, plan: RunPlan, total: int, run_id: str, env: dict[str, str], out: Path,
                  on_sample: Callable[[LiveSample], None] | None, timeout: float | None) -> InstancesRan:
        check_instances(plan, total)
        launched = time.time()
        runs = await run_segments(k6, plan, total, run_id, env, out, on_sample, timeout)
        ends = []
        for run in runs:
            o = run.outcome
            made = o.metrics.get("http_reqs", {}).get("count")
            ends.append(InstanceEnd(run.index, run.segment, o.k6_exit_code, f"k6 exited {o.k6_exit_code}",
                                    int(made) if isinstance(made, int | float) else None, o.dropped_iterations,
                                    log_tail(o.log_path) if o.k6_exit_code else ""))
        cpus = [r.outcome.k6_cpu for r in runs if r.outcome.k6_cpu is not None]
        machines = [r.outcome.machine_cpu for r in runs if r.outcome.machine_cpu is not None]
        stopped = [f"instance {r.index}: {r.outcome.stopped}" for r in runs if r.outcome.stopped]
        starts = [r.started_at for r in runs if r.started_at is not None]
        failed = next((r for r in runs if r.outcome.k6_exit_code), runs[0])
        return InstancesRan(ends, min(starts) if starts else launched,
                            max(r.outcome.ran_seconds for r in runs),
                            sum(cpus) if cpus else None,  # the k6 processes share this machine's cores
                            max(machines) if machines else None, "; ".join(stopped) or None,
                            failed.outcome.log_path)


def series_problems(series: RunSeries, run_id: str, prometheus: str) -> list[str]:
    """What is wrong with the run's samples in Prometheus as a whole."""
    if series.empty:
        return [f"no sample of run {run_id} reached Prometheus at {prometheus}"]
    if series.family("k6_http_reqs_total") and not series.family("k6_http_req_duration_seconds"):
        return [f"Prometheus at {prometheus} stored the run's requests but none of their native histograms: start "
                f"it with --enable-feature=native-histograms"]
    return []


def combined_outcome(plan: RunPlan, ran: InstancesRan, series: RunSeries, distributed: Distributed,
                     problems: Sequence[str]) -> RunOutcome:
    """The whole run as ``bench`` judges a single one: its metrics from Prometheus, the instances' problems."""
    names = [*plan.submetrics, *(t.metric for t in plan.thresholds), "http_reqs", "iterations",
             "dropped_iterations"]
    metrics = summary_metrics(series, names, ran.ran_seconds) if not series.empty else {}
    codes = [e.exit_code for e in ran.ends if e.exit_code]
    return RunOutcome(
        k6_exit_code=codes[0] if codes else 0, metrics=metrics, ran_seconds=ran.ran_seconds,
        samples=remote_samples(series, ran.started_at),
        dropped_iterations=sum(i.dropped_iterations for i in distributed.instances),
        k6_cpu=ran.k6_cpu, machine_cpu=ran.machine_cpu, stopped=ran.stopped, log_path=ran.log_path,
        problems=list(problems), distributed=distributed)


def instances_of(ran: InstancesRan, series: RunSeries) -> list[Instance]:
    sent = instance_requests(series)
    dropped = instance_dropped(series)
    return [Instance(str(e.index), e.segment, sent.get(str(e.index), 0), e.requests_made,
                     e.dropped_iterations if e.dropped_iterations is not None else dropped.get(str(e.index), 0),
                     e.exit_code, e.ended, e.log) for e in ran.ends]


@dataclass
class DistributedLauncher:
    """``bench``'s stand-in for :func:`~exporter.load.runner.run_k6` when the run is spread over ``instances``."""

    runner: InstanceRunner
    instances: int
    receiver: Receiver
    out: Path

    async def __call__(self, k6: K6, plan: RunPlan, summary_path: Path, log_path: Path,
                       on_sample: Callable[[LiveSample], None] | None = None, watcher: Watcher | None = None,
                       timeout: float | None = None) -> RunOutcome:
        run_id = new_run_id(plan.scenario.name)
        env = remote_write_env(self.receiver.write_url, stale_markers=False)
        launched = time.time()
        ran = await self.runner.run(k6, plan, self.instances, run_id, env, self.out, on_sample, timeout)
        reading = time.monotonic()
        prometheus = safe_url(self.receiver.query_url)
        unread: list[str] = []
        try:
            series = await asyncio.to_thread(self._series, plan, run_id, launched - READ_MARGIN_SECONDS,
                                             time.time() + 1)
        except ReportError as exc:
            series, unread = RunSeries(), [f"could not read run {run_id} back: {mask_url(str(exc))}"]
        instances = instances_of(ran, series)
        problems = [*ran.problems, *unread] if unread else [
            *ran.problems, *series_problems(series, run_id, prometheus), *instance_problems(instances)]
        distributed = Distributed(self.runner.mode, run_id, prometheus, self.receiver.version, instances)
        outcome = combined_outcome(plan, ran, series, distributed, problems)
        outcome.distributed = msgspec.structs.replace(distributed,
                                                      judging_seconds=round(time.monotonic() - reading, 3))
        return outcome

    def _series(self, plan: RunPlan, run_id: str, start: float, end: float) -> RunSeries:
        client = PrometheusClient(self.receiver.query_url)
        try:
            return read_run_series(client, run_id, start, end, self.receiver.lookback, plan.scenario.metrics)
        finally:
            client.close()


def describe(launcher: Any) -> str:
    """One line for the start of bench's output."""
    if not isinstance(launcher, DistributedLauncher):
        return ""
    return (f"{launcher.instances} instances ({launcher.runner.mode}), samples to Prometheus "
            f"{launcher.receiver.version} at {safe_url(launcher.receiver.query_url)}")
