"""The job registry: a new kind is one module, one entry and its metric families; reloads keep what did not
change; probes hand their traces to each trace collector meant to see them; no module imports itself back."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter import metrics, registry
from exporter.config.base import JobTarget
from exporter.config.loading import ConfigError, parse_config
from exporter.config.masking import dump_masked
from exporter.config.schema import Config
from exporter.config.units import Duration
from exporter.jobs import UP, JobContext, JobKind, Outcome
from exporter.scheduler import Scheduler
from exporter.slo.render import outputs
from exporter.store import StoreCollector
from tests.http_target import HttpTarget
from tests.servers import Demo

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------------------
# A toy kind, registered by the test alone


class ToyTarget(JobTarget):
    interval: Duration = 0.2
    timeout: Duration = 0.1
    word: str


class ToyJob:
    def __init__(self, cfg: ToyTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store

    async def run(self) -> Outcome:
        self.store.inc(TOY_RUNS, 1.0, target=self.cfg.name, word=self.cfg.word)
        return UP

    async def close(self) -> None:
        pass


TOY_RUNS = metrics.counter("perf_toy_runs_total", "Runs of the toy job.", ("target", "word"))
metrics.FAMILIES.remove(TOY_RUNS)  # exported only while the test registers it


@pytest.fixture
def toy_kind() -> Iterator[JobKind[ToyTarget]]:
    metrics.FAMILIES.append(TOY_RUNS)
    try:
        with registry.registered(JobKind("toy", ToyTarget, ToyJob)) as kind:
            yield kind
    finally:
        metrics.FAMILIES.remove(TOY_RUNS)


@asynccontextmanager
async def scheduled(config: Config) -> AsyncIterator[tuple[Scheduler, StoreCollector]]:
    stores = StoreCollector()
    scheduler = Scheduler(stores)
    scheduler.start()
    await scheduler.apply(config)
    try:
        yield scheduler, stores
    finally:
        await scheduler.shutdown(1.0)


async def value_when(stores: StoreCollector, name: str, labels: dict[str, str],
                     ready: Any = lambda v: v is not None, timeout: float = 20.0) -> float:
    """Poll the collector until the sample satisfies ``ready``; its value."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(stores)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = reg.get_sample_value(name, labels)
        if ready(value):
            assert value is not None
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{name}{labels} stayed at {value} for {timeout}s")
        await asyncio.sleep(0.05)


def test_a_registered_toy_kind_is_configured_scheduled_and_exported_with_no_other_edit(
        toy_kind: JobKind[ToyTarget]) -> None:
    config = parse_config({"toy": [{"name": "t1", "word": "hello"}]}, "toy.yaml")
    assert [entry.name for entry in config.section("toy")] == ["t1"]
    assert "word: hello" in dump_masked(config)

    async def go() -> tuple[float, float, str]:
        async with scheduled(config) as (_, stores):
            runs = await value_when(stores, "perf_toy_runs_total", {"target": "t1", "word": "hello"},
                                    lambda v: v is not None and v >= 2)
            up = await value_when(stores, "perf_target_up", {"collector": "toy", "target": "t1"})
            return runs, up, stores.render()

    runs, up, text = asyncio.run(go())
    assert runs >= 2 and up == 1.0
    assert 'perf_job_runs_total{collector="toy",target="t1",result="success"}' in text
    # The generators read the registry: a kind without an SLO area adds no rule file and breaks none.
    assert set(outputs("rules", config)) == set(outputs("rules", parse_config({}, "empty.yaml")))


def test_a_toy_kind_config_error_names_its_section_key_and_what_was_expected(toy_kind: JobKind[ToyTarget]) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"toy": [{"name": "t1"}, {"name": "t1", "word": "x", "colour": "red"}]}, "toy.yaml")
    text = str(error.value)
    assert "toy.yaml: toy[0].word: required key is missing" in text
    assert "toy.yaml: toy[1].colour: unknown key (expected one of: interval, name, timeout, word)" in text


def test_an_unregistered_section_is_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"toy: unknown key \(expected one of: api, jaeger, postgres, redis, "
                                          r"targets\)"):
        parse_config({"toy": [{"name": "t1", "word": "x"}]}, "toy.yaml")


def test_the_deadline_policy_is_the_targets_own() -> None:
    config = parse_config({
        "api": [{"name": "gw", "base_url": "http://x:1", "interval": "10s", "timeout": "2s",
                 "endpoints": [{"name": "h", "path": "/"}]}],
        "redis": [{"name": "cache", "interval": "10s", "timeout": "2s"}]}, "t.yaml")
    assert config.section("api")[0].deadline == 9.0  # a request's timeout: the run gets most of its interval
    assert config.section("redis")[0].deadline == 2.0  # a collection's timeout bounds the run


# ---------------------------------------------------------------------------------------------------------------
# Reloads


def _api(name: str, url: str, *paths: str) -> dict[str, Any]:
    return {"name": name, "base_url": url, "interval": "0.3s", "timeout": "0.25s",
            "endpoints": [{"name": p.strip("/").replace("/", "_") or "root", "path": p} for p in paths]}


def test_a_reload_keeps_untouched_jobs_and_their_counters_and_restarts_changed_ones_cleanly() -> None:
    runs = "perf_job_runs_total"

    async def go(url: str) -> None:
        first = parse_config({"api": [_api("kept", url, "/json"), _api("changed", url, "/json")]}, "a.yaml")
        async with scheduled(first) as (scheduler, stores):
            kept = {"collector": "api", "target": "kept", "result": "success"}
            changed = {"collector": "api", "target": "changed", "result": "success"}
            before = await value_when(stores, runs, kept, lambda v: v is not None and v >= 3)
            changed_before = await value_when(stores, runs, changed, lambda v: v is not None and v >= 3)
            kept_runner = scheduler.runners["api/kept"]
            # Another SLO threshold and one more endpoint on the other target: neither concerns "kept".
            second = parse_config({"targets": {"api_latency_p95": "1s"},
                                   "api": [_api("kept", url, "/json"), _api("changed", url, "/json", "/status/200")]},
                                  "a.yaml")
            await scheduler.apply(second)
            assert scheduler.runners["api/kept"] is kept_runner
            after_reload = await value_when(stores, runs, kept, lambda v: v is not None)
            assert after_reload >= before  # nothing reset
            await value_when(stores, runs, kept, lambda v: v is not None and v >= after_reload + 2)
            # The changed target restarted: a fresh store whose counters count from 0, with the new endpoint.
            restarted = await value_when(stores, runs, changed, lambda v: v is not None)
            assert restarted < changed_before
            await value_when(stores, "perf_probe_success", {"target": "changed", "probe": "status_200"},
                             lambda v: v == 1.0)

    with HttpTarget() as target:
        asyncio.run(go(target.url))


# ---------------------------------------------------------------------------------------------------------------
# Probes and trace collectors


CREATE_ORDER = {"name": "create_order", "method": "POST", "path": "/api/v1/orders", "traceparent": True,
                "json": {"rider_id": 7, "pickup": "Alexanderplatz 1", "dropoff": "Flughafen BER"}}


def probe_labels(jaeger: str) -> dict[str, str]:
    return {"target": jaeger, "probe_target": "gateway", "probe": "create_order"}


def _jaeger(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "url": url, "interval": "1s", "timeout": "0.9s", "settle": "0.5s", "lookback": "1m"}


def test_two_jaeger_targets_each_report_the_probes_trace(demo: Demo) -> None:
    config = parse_config({
        "api": [{"name": "gateway", "base_url": demo.url, "interval": "1s", "timeout": "0.9s",
                 "endpoints": [CREATE_ORDER]}],
        "jaeger": [_jaeger("tracing_a", demo.url), _jaeger("tracing_b", demo.url)]}, "t.yaml")

    async def go() -> tuple[float, float]:
        async with scheduled(config) as (_, stores):
            a = await value_when(stores, "perf_trace_probe_spans", probe_labels("tracing_a"))
            b = await value_when(stores, "perf_trace_probe_spans", probe_labels("tracing_b"))
            return a, b

    a, b = asyncio.run(go())
    assert a >= 1 and b >= 1


def test_a_probe_names_the_trace_collectors_meant_to_see_its_traces(demo: Demo) -> None:
    config = parse_config({
        "api": [{"name": "gateway", "base_url": demo.url, "interval": "1s", "timeout": "0.9s",
                 "trace_collectors": ["tracing_a"],
                 "endpoints": [CREATE_ORDER]}],
        "jaeger": [_jaeger("tracing_a", demo.url), _jaeger("tracing_b", demo.url)]}, "t.yaml")

    async def go() -> tuple[StoreCollector, float]:
        async with scheduled(config) as (_, stores):
            spans = await value_when(stores, "perf_trace_probe_spans", probe_labels("tracing_a"))
            await value_when(stores, "perf_job_runs_total",
                             {"collector": "jaeger", "target": "tracing_b", "result": "success"},
                             lambda v: v is not None and v >= 3)
            return stores, spans

    stores, spans = asyncio.run(go())
    assert spans >= 1
    assert 'perf_trace_probe_spans{target="tracing_b"' not in stores.render()


# ---------------------------------------------------------------------------------------------------------------
# Import structure


def _runtime_imports(path: Path, module: str) -> set[str]:
    """The exporter modules ``path`` imports when it runs, at the top or inside a function (a lazy import hides a
    cycle, it does not remove it); imports under ``if TYPE_CHECKING:`` are left out."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]).strip(".")
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name.startswith("exporter")}


def import_graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in (REPO / "exporter").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return {name: {m for m in _runtime_imports(path, name) if m in modules and m != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_exporter_module_imports_itself_back() -> None:
    graph = import_graph()
    assert "exporter.jobs" in graph["exporter.scheduler"]  # the graph is real: it sees the scheduler's imports
    assert find_cycle(graph) is None
