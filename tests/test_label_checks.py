"""A job that writes a series with the wrong labels fails that job's run, not the scrape: the store checks labels
when a series is written, so /metrics keeps answering with every other job's series."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics, registry
from exporter.config.base import JobTarget
from exporter.config.loading import parse_config
from exporter.config.units import Duration
from exporter.daemon import Daemon
from exporter.jobs import UP, JobContext, JobKind, Outcome
from tests.http_target import HttpTarget
from tests.servers import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class WriterTarget(JobTarget):
    interval: Duration = 0.2
    timeout: Duration = 0.1
    buggy: bool = False


class Writer:
    """Writes one good series every run; when ``buggy``, then a request count without its ``outcome`` label."""

    def __init__(self, cfg: WriterTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store

    async def run(self) -> Outcome:
        self.store.set(metrics.PROBE_SUCCESS, 1.0, target=self.cfg.name, probe="written")
        if self.cfg.buggy:
            self.store.inc(metrics.HTTP_REQUESTS, 1.0, target=self.cfg.name, endpoint="e", method="GET")
        return UP

    async def close(self) -> None:
        pass


@pytest.fixture
def writer_kind() -> Iterator[JobKind[WriterTarget]]:
    with registry.registered(JobKind("writer", WriterTarget, Writer)) as kind:
        yield kind


def samples(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def runs(collector: str, target: str, result: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return key("perf_job_runs_total", collector=collector, target=target, result=result)


def test_a_job_writing_a_bad_label_set_fails_its_own_runs_while_metrics_serves_every_other_job(
        writer_kind: JobKind[WriterTarget], caplog: pytest.LogCaptureFixture) -> None:
    with HttpTarget() as server:
        config = parse_config({
            "api": [{"name": "gw", "base_url": server.url, "interval": "1s", "timeout": "500ms",
                     "endpoints": [{"name": "probe", "path": "/json"}]}],
            "writer": [{"name": "good"}, {"name": "bad", "buggy": True}],
        }, "labels.yaml")
        port = free_port()
        daemon = Daemon(None, f"127.0.0.1:{port}", load=lambda: config)
        statuses: list[int] = []

        def done(seen: Samples) -> bool:
            return (seen.get(runs("writer", "bad", "error"), 0) >= 2 and seen.get(runs("writer", "good", "success"), 0)
                    >= 2 and seen.get(runs("api", "gw", "success"), 0) >= 1)

        async def scrape_until_done() -> str:
            serving = asyncio.create_task(daemon.serve())
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + 30
                    while True:
                        if daemon.ready:
                            response = await client.get(f"http://127.0.0.1:{port}/metrics")
                            statuses.append(response.status_code)
                            assert response.status_code == 200, response.text[-2000:]
                            if done(samples(response.text)):
                                return response.text
                        assert loop.time() < deadline, f"not every job ran twice within 30 s: {statuses}"
                        await asyncio.sleep(0.1)
            finally:
                daemon.stop()
                await serving

        with caplog.at_level(logging.DEBUG, logger="exporter.scheduler"):
            text = asyncio.run(scrape_until_done())

    assert statuses and set(statuses) == {200}
    seen = samples(text)
    # every other job's series are there: the API probe's, and the good writer's
    assert seen[key("perf_http_requests_total", target="gw", endpoint="probe", method="GET", outcome="success")] >= 1
    assert seen[key("perf_probe_success", target="gw", probe="probe")] == 1
    assert seen[key("perf_probe_success", target="good", probe="written")] == 1
    assert seen[runs("writer", "good", "error")] == 0
    # the bad writer's runs are errors, its target down, and the bad series is nowhere
    assert seen[runs("writer", "bad", "success")] == 0
    assert seen[key("perf_target_up", collector="writer", target="bad")] == 0
    assert not [k for k in seen if k[0].startswith("perf_http_requests") and ("target", "bad") in k[1]]

    # one log line per failed run, naming the family, its label names and what was written
    errors = daemon.stores.stores["writer/bad"].get(metrics.JOB_RUNS, collector="writer", target="bad",
                                                    result="error")
    failed = [r for r in caplog.records if r.getMessage() == "job_failed"]
    assert {r.fields["target"] for r in failed} == {"bad"}  # type: ignore[attr-defined]
    assert errors is not None and len(failed) == errors >= 2
    for record in failed:
        fields = record.fields  # type: ignore[attr-defined]
        assert fields["result"] == "error"
        assert fields["cause"] == ("LabelError: perf_http_requests_total takes labels (target, endpoint, method, "
                                   "outcome), got (target='bad', endpoint='e', method='GET')")
