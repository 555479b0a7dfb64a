"""Runs k6 on a :class:`~exporter.load.plan.RunPlan` and reads its results back while it runs.

k6's REST API (``--address``) is polled once a second for the live numbers (VUs, requests, P95 so far, errors,
dropped iterations) and the per-stage sub-metrics a watcher may stop the run on; the end-of-test summary
(``--summary-export``) holds the final statistics. Neither costs k6 anything per request, unlike a stream of
every sample (``--out json``), which would cut the requests/s it can generate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from exporter.child_process import dies_with_parent
from exporter.load import cpu
from exporter.load.distributed_run import Distributed
from exporter.load.environment import k6_environment
from exporter.load.k6_binary import K6
from exporter.load.plan import RunPlan
from exporter.secrets import mask_url

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
STOP_BODY = {"data": {"type": "status", "id": "default", "attributes": {"stopped": True}}}


@dataclass(frozen=True)
class LiveSample:
    """What k6's REST API said at one poll; ``elapsed`` counts from the start of the test run."""

    elapsed: float
    stage: str
    vus: int
    requests: int
    requests_per_second: float
    p95_ms: float | None
    error_rate: float | None
    dropped_iterations: int
    metrics: Mapping[str, Mapping[str, Any]] = field(repr=False, default_factory=dict)

    def metric(self, name: str) -> Mapping[str, Any]:
        return self.metrics.get(name, {})


@dataclass
class RunOutcome:
    k6_exit_code: int
    metrics: dict[str, dict[str, Any]]
    ran_seconds: float
    samples: list[LiveSample]
    dropped_iterations: int  # in the measured phase
    k6_cpu: float | None
    machine_cpu: float | None
    stopped: str | None  # why perf-exporter stopped the run early, if it did
    log_path: Path
    problems: list[str] = field(default_factory=list)  # why else not to trust it (a distributed run's instances)
    distributed: Distributed | None = None  # a run spread over several k6 instances (load/distributed.py)


Watcher = Callable[[LiveSample], str | None]  # returns a reason to stop the run, or None


def stage_at(plan: RunPlan, elapsed: float) -> str:
    for label, start, end in plan.shape.stage_windows():
        if start <= elapsed < end:
            return label
    return "ending"


def log_tail(path: Path, missing: str = "", empty: str = "") -> str:
    """The last line of a k6 log, masked: what to quote when k6 failed."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return missing
    return mask_url(lines[-1][:300]) if lines else empty


def _number(sample: Mapping[str, Any], key: str) -> float | None:
    value = sample.get(key)
    return float(value) if isinstance(value, int | float) else None


async def _metrics(client: httpx.AsyncClient, address: str) -> dict[str, dict[str, Any]] | None:
    try:
        response = await client.get(f"http://{address}/v1/metrics")
        if response.status_code != 200:
            return None
        return {m["id"]: m["attributes"]["sample"] for m in response.json()["data"]}
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def _summary(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    metrics = data.get("metrics", {}) if isinstance(data, dict) else {}
    return metrics if isinstance(metrics, dict) else {}


def _ran_seconds(metrics: Mapping[str, Mapping[str, Any]], fallback: float) -> float:
    """The test run's length as k6 measured it: a counter's count over its rate."""
    reqs = metrics.get("iterations") or metrics.get("http_reqs") or {}
    count, rate = _number(reqs, "count"), _number(reqs, "rate")
    return count / rate if count and rate else fallback


async def run_k6(k6: K6, plan: RunPlan, summary_path: Path, log_path: Path,
                 on_sample: Callable[[LiveSample], None] | None = None, watcher: Watcher | None = None,
                 timeout: float | None = None) -> RunOutcome:
    address = plan.argv[plan.argv.index("--address") + 1]
    env = k6_environment(os.environ, plan.env)
    with open(log_path, "ab") as log_file:
        proc = await asyncio.create_subprocess_exec(str(k6.path), *plan.argv, env=env, stdout=log_file,
                                                    stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                                                    preexec_fn=dies_with_parent(signal.SIGTERM))
    try:
        return await _follow(proc, plan, address, summary_path, log_path, on_sample, watcher, timeout)
    finally:
        if proc.returncode is None:  # bench was interrupted: k6 must not keep loading the target
            await _end(proc)


async def _end(proc: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def _follow(proc: asyncio.subprocess.Process, plan: RunPlan, address: str, summary_path: Path,
                  log_path: Path, on_sample: Callable[[LiveSample], None] | None, watcher: Watcher | None,
                  timeout: float | None) -> RunOutcome:
    cores = os.cpu_count() or 1
    samples: list[LiveSample] = []
    stopped: str | None = None
    started: float | None = None
    measure_mark: tuple[float, cpu.CpuMark, int] | None = None
    last_mark: tuple[float, cpu.CpuMark] | None = None
    previous: tuple[float, int] | None = None
    waiter = asyncio.ensure_future(proc.wait())
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not waiter.done():
            await asyncio.wait([waiter], timeout=POLL_SECONDS if started is not None else 0.1)
            if waiter.done():
                break
            metrics = await _metrics(client, address)
            if metrics is None:
                continue
            now = time.monotonic()
            if started is None:
                if not metrics.get("vus"):
                    continue
                started = now
            elapsed = now - started
            requests = int(_number(metrics.get("http_reqs", {}), "count") or 0)
            dropped = int(_number(metrics.get("dropped_iterations", {}), "count") or 0)
            rps = 0.0
            if previous is not None and now > previous[0]:
                rps = (requests - previous[1]) / (now - previous[0])
            previous = (now, requests)
            measured = metrics.get("http_req_duration{phase:measure}", {})
            measured_count = int(_number(metrics.get("http_reqs{phase:measure}", {}), "count") or 0)
            failed = metrics.get("http_req_failed{phase:measure}" if measured_count else "http_req_failed", {})
            sample = LiveSample(
                elapsed=elapsed, stage=stage_at(plan, elapsed),
                vus=int(_number(metrics.get("vus", {}), "value") or 0), requests=requests,
                requests_per_second=rps, p95_ms=_number(measured, "p(95)") if measured_count else None,
                error_rate=_number(failed, "rate"), dropped_iterations=dropped, metrics=metrics)
            samples.append(sample)
            mark = cpu.mark(proc.pid)
            if measure_mark is None and elapsed >= plan.shape.warmup:
                measure_mark = (now, mark, dropped)
            last_mark = (now, mark)
            if on_sample is not None:
                on_sample(sample)
            reason = None
            if timeout is not None and elapsed > timeout:
                reason = f"the run passed K6_TIMEOUT ({timeout:g}s)"
            elif watcher is not None:
                reason = watcher(sample)
            if reason and stopped is None:
                stopped = reason
                await _stop(client, address, proc)
    code = await waiter
    metrics = _summary(summary_path)
    wall = (last_mark[0] - started) if last_mark and started is not None else 0.0
    k6_share = machine_share = None
    dropped_measured = 0
    if measure_mark is not None and last_mark is not None:
        k6_share, machine_share = cpu.shares(measure_mark[1], last_mark[1], last_mark[0] - measure_mark[0], cores)
        if last_mark[0] - measure_mark[0] < POLL_SECONDS / 2:
            k6_share = machine_share = None  # too short a window to say anything
        total_dropped = int(_number(metrics.get("dropped_iterations", {}), "count") or 0)
        dropped_measured = max(0, total_dropped - measure_mark[2])
    return RunOutcome(code, metrics, _ran_seconds(metrics, wall), samples, dropped_measured, k6_share,
                      machine_share, stopped, log_path)


async def _stop(client: httpx.AsyncClient, address: str, proc: asyncio.subprocess.Process) -> None:
    """Stop through the REST API (k6 still writes its summary); SIGINT if it does not answer."""
    try:
        await client.patch(f"http://{address}/v1/status", json=STOP_BODY)
    except httpx.HTTPError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
