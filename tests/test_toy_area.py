"""A collector with an SLO area is one module, one registry entry and its families: this file is that module (a
toy job that measures waits), registered here alone. Nothing under exporter/ names it, yet it gets rules that
promtool accepts and whose unit tests pass, a dashboard, a row in the overview, a watch during bench, a report
area with its row judged, and a recommendation when its target is missed."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter import metrics, registry
from exporter.config.base import JobTarget
from exporter.config.loading import parse_config
from exporter.config.targets import Targets
from exporter.config.units import Duration
from exporter.jobs import UP, JobContext, JobKind, Outcome, SloArea
from exporter.load.platform import PlatformWatch, platform_config
from exporter.reports.command import FORMATS, write
from exporter.reports.judge import build_report
from exporter.reports.run_source import observe_runs
from exporter.slo.render import outputs
from exporter.slo.slos import LatencyIndicator, Slo
from tests.bench_runs import bench_run

REPO = Path(__file__).resolve().parent.parent
PROMTOOL = shutil.which("promtool")

# -- the toy collector's module -----------------------------------------------------------------------------------

TOY_WAIT = metrics.histogram("perf_toy_wait_seconds", "Waits the toy job measured.", ("target",),
                             (0.05, 0.1, 0.25, 0.5, 1.0))
metrics.FAMILIES.remove(TOY_WAIT)  # exported only while the test registers it


class ToyTarget(JobTarget):
    interval: Duration = 0.2
    timeout: Duration = 0.1
    waits: list[float]  # what each run observes, seconds


class ToyJob:
    def __init__(self, cfg: ToyTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store

    async def run(self) -> Outcome:
        for wait in self.cfg.waits:
            self.store.observe(TOY_WAIT, wait, target=self.cfg.name)
        return UP

    async def close(self) -> None:
        pass


def toy_slos(targets: Targets) -> list[Slo]:
    return [Slo(area="toy", name="wait-p95", alert="ToyWaitP95", title="Toy Wait P95", objective=0.95,
                indicator=LatencyIndicator(by=("target",), family=TOY_WAIT, threshold=0.25), target_text="< 250 ms",
                description="95 % of toy waits within 250 ms", kind="latency", quantile=0.95, threshold=0.25,
                key="toy_wait_p95")]


TOY = JobKind("toy", ToyTarget, ToyJob, SloArea("toy", "Toy", "toy waits", f"{TOY_WAIT.name}_count", toy_slos))

# -------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def toy() -> Iterator[JobKind[ToyTarget]]:
    metrics.FAMILIES.append(TOY_WAIT)
    try:
        with registry.registered(TOY) as kind:
            yield kind
    finally:
        metrics.FAMILIES.remove(TOY_WAIT)


def test_nothing_in_the_product_names_the_toy() -> None:
    named = [p for p in (REPO / "exporter").rglob("*.py") if re.search(r"\btoy\b", p.read_text(), re.IGNORECASE)]
    assert not named, f"a new collector should need no edit there: {named}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is installed by scripts/test.sh")
def test_a_toy_area_gets_rules_promtool_accepts_and_tests_and_a_dashboard(toy: JobKind[ToyTarget],
                                                                         tmp_path: Path) -> None:
    config = parse_config({"toy": [{"name": "t1", "waits": [0.03]}]}, "toy.yaml")
    rules = outputs("rules", config)
    toy_rules = rules["toy.rules.yml"]
    assert "ToyWaitP95ErrorBudgetBurn" in toy_rules and "ToyWaitP95High" in toy_rules
    assert "## ToyWaitP95High" in rules["runbooks.md"] and "perf-toy" in rules["runbooks.md"]
    for name, text in rules.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert PROMTOOL is not None
    checked = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "toy.rules.yml")], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p) for p in (tmp_path / "tests").glob("toy-*.test.yml"))
    assert tests, sorted(rules)
    tested = subprocess.run([PROMTOOL, "test", "rules", *tests], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path / "tests")
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    dashboards = outputs("dashboards", config)
    board = json.loads(dashboards["dashboards/toy.json"])
    assert board["uid"] == "perf-toy" and any(TOY_WAIT.name in json.dumps(p) for p in board["panels"])
    assert "Toy Wait P95" in dashboards["dashboards/overview.json"]


def test_bench_watches_the_toy_and_its_report_judges_its_target_and_says_where_to_look(
        toy: JobKind[ToyTarget], tmp_path: Path) -> None:
    # most waits above 250 ms: the target is missed
    config = parse_config({"api": [{"name": "gw", "base_url": "http://127.0.0.1:9", "endpoints": [
        {"name": "h", "path": "/"}]}], "toy": [{"name": "t1", "waits": [0.03, 0.3, 0.4, 0.45]}]}, "toy.yaml")
    assert [e.name for e in platform_config(config).section("toy")] == ["t1"]
    assert platform_config(config).section("api") == []  # the load is the API's measurement

    async def watch() -> object:
        platform = PlatformWatch(config)
        await platform.start()
        platform.mark_start()
        for _ in range(5):
            await asyncio.sleep(0.2)
            platform.sample()
        return await platform.finish()

    measured = asyncio.run(watch())
    assert measured is not None and "toy" in measured.areas  # type: ignore[attr-defined]
    run = bench_run("api", 100.0, platform=measured)  # type: ignore[arg-type]
    report = build_report(observe_runs([run], config.targets, "run"))
    row = next(r for r in report.rows if r.key == "toy_wait_p95")
    assert (row.metric, row.target, row.status, row.area) == ("Toy Wait P95", "< 250ms", "missed", "toy")
    assert row.current.value is not None and row.current.value > 250
    assert "toy" in report.observed.areas and report.observed.areas["toy"].total.value
    (toy_advice,) = report.findings.for_area("toy")
    assert "Toy Wait P95 missed" in toy_advice.message and "perf-toy" in toy_advice.solution
    assert toy_advice.priority != "HIGH" and toy_advice.kind == "unexplained"  # it names no cause
    paths = write(report, tmp_path, FORMATS)
    assert tmp_path / "toy.json" in paths
    area = json.loads((tmp_path / "toy.json").read_text())
    assert area["area"] == "toy" and [t["key"] for t in area["targets"]] == ["toy_wait_p95"]
    assert "Toy Wait P95" in (tmp_path / "report.md").read_text()


def test_a_report_from_prometheus_has_the_toy_area_counted_from_its_slo(toy: JobKind[ToyTarget],
                                                                          tmp_path: Path) -> None:
    """The same area from Prometheus's window: a real Prometheus scrapes the daemon (in this process, where the
    toy is registered), and the report's figure is the toy SLO's histogram over the window."""
    import time

    import yaml

    from exporter.daemon import Daemon
    from exporter.reports.model import Window
    from exporter.reports.prometheus import PrometheusClient, collect
    from tests.servers import Prometheus, free_port

    config = parse_config({"toy": [{"name": "t1", "waits": [0.03, 0.3, 0.4]}]}, "toy.yaml")
    port = free_port()
    prometheus = Prometheus(tmp_path / "prometheus", yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "perf", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}))

    client = PrometheusClient(prometheus.url)

    def scrapes() -> float:
        found = client.vector(f"count_over_time({TOY_WAIT.name}_count[1m])", time.time())
        return found[0][1] if found else 0.0

    async def serve_until_scraped(times: int) -> float:
        daemon = Daemon(None, f"127.0.0.1:{port}", load=lambda: config)
        serving = asyncio.create_task(daemon.serve())
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(scrapes) < times and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        scraped_until = time.time()
        daemon.stop()
        await serving
        return scraped_until

    prometheus.start()
    try:
        end = asyncio.run(serve_until_scraped(5))
        observed = collect(client, Window(end - 4, end), config.targets)
    finally:
        client.close()
        prometheus.stop()
    figure = observed.row_inputs["toy_wait_p95"]
    assert figure.value is not None and 250 < figure.value <= 500, figure
    assert TOY_WAIT.name in figure.source and "prometheus" in figure.source
    assert observed.areas["toy"].total.value and observed.shares_within["toy_wait_p95"] == pytest.approx(1 / 3)
