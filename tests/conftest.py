"""Shared fixtures: real PostgreSQL, Redis, Prometheus and the demo, each on a free loopback port, stopped after."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ci_skips import pytest_runtest_makereport, pytest_terminal_summary  # noqa: F401 - hooks: CI=true fails skips
from tests.servers import Demo, Postgres, Redis, RemoteWritePrometheus

REPO = Path(__file__).resolve().parent.parent
WORKER_TMP = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker gets a temporary directory of its own (``tempfile`` here, ``TMPDIR`` for the
    processes its tests start): what one worker's tests leave there by a fixed name is not another's to find.
    ``run --demo`` removes the ``perf-exporter-demo-*`` directories whose owner died, and the test that SIGKILLs
    a demo checks that its directory is still there until the next demo of its own; the demos also share one copy
    of the embedded PostgreSQL there. Mode 0711: the ``postgres`` user reaches its clusters below it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        root = Path(tempfile.mkdtemp(prefix=f"perf-tests-{worker}-"))
        root.chmod(0o711)
        os.environ["TMPDIR"] = tempfile.tempdir = str(root)
        config.stash[WORKER_TMP] = root


def pytest_unconfigure(config: pytest.Config) -> None:
    root = config.stash.get(WORKER_TMP, None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


# The modules that take longest (seconds on 2 cores, run alone: pytest --durations), first in the collection. Under
# pytest-xdist (scripts/test.sh: -n 4 --dist loadfile) whole modules go to the workers in that order, so the
# 2-minute soak and the other long ones start at once instead of ending the run alone. The rest keep their order.
LONG_FIRST = (
    "test_report_e2e.py",  # 195: a healthy baseline, then a window of each fault case under a k6 load
    "test_soak.py",  # 124: two minutes of faults
    "test_load_bench.py",  # 124: k6 runs of every scenario
    "test_alerting_e2e.py",  # 65: alerts firing and resolving through Prometheus and Alertmanager
    "test_demo_embedded.py",  # 65: README command 1 in a fresh virtualenv
    "test_promtool_cases.py",  # 50: promtool on the workbook cases and their mutants
    "test_daemon.py",  # 45: grace periods and hanging targets
    "test_faults_postgres.py",  # 40: PostgreSQL stopped between queries
)
# The modules whose tests run k6 against a demo and judge what it measured: under pytest-xdist one after another
# on one worker, as one unit (in test_load_bench.py's place in LONG_FIRST), so that no two load runs compete
# for the cores and see each other's load as the target's latency. In this order: the compare gate, whose
# verdicts need a machine calm enough for bench to judge its runs, last, when most workers are done.
LOAD_RUNS = ("test_load_bench.py", "test_load_platform.py", "test_load_outputs.py", "test_load_segments.py",
             "test_load_kubernetes.py", "test_load_lock.py", "test_bench_durability.py", "test_compare_demo.py")


@pytest.hookimpl(trylast=True)  # after pytest's own reordering for the session's PostgreSQL versions
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        return (LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST),
                LOAD_RUNS.index(name) if name in LOAD_RUNS else 0)

    items.sort(key=rank)  # stable: each module's tests keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, in the collection's order (xdist's own puts the modules with most tests first) and
    with the LOAD_RUNS modules as one unit."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "LOAD_RUNS" if Path(scope).name in LOAD_RUNS else scope

    config.option.loadscopereorder = False
    return Scheduling(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test module that sets ``POSTGRES_VERSIONS = ("15", "18")`` runs its tests on the ``postgres`` fixture
    against each: Debian's PostgreSQL 15 and the embedded 18 of the demo extra. A test function with its own
    ``POSTGRES_VERSIONS`` attribute runs on those only (a behaviour a version does not have is not a skip)."""
    versions = getattr(metafunc.function, "POSTGRES_VERSIONS", None) or getattr(metafunc.module, "POSTGRES_VERSIONS",
                                                                                 None)
    if versions and "postgres" in metafunc.fixturenames:
        metafunc.parametrize("postgres", versions, indirect=True, scope="session", ids=lambda v: f"pg{v}")


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Iterator[Postgres]:
    """A PostgreSQL server (15 unless the module asks for others) with pg_stat_statements preloaded and created
    in database ``postgres``.

    Its directory is outside pytest's temporary root, which pytest makes private (0700) to root: the
    ``postgres`` user must be able to reach it."""
    version = getattr(request, "param", "15")
    root = Path(tempfile.mkdtemp(prefix=f"perf-pg{version}-"))
    server = Postgres(root / "cluster", version=version).init().start()
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("redis", numbered=True)).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_redis(tmp_path: Path) -> Iterator[Redis]:
    """A Redis of the test's own, for tests that restart it or fill it."""
    server = Redis(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo in memory, one per test module (a module that needs another demo defines its own ``demo``)."""
    server = Demo(tmp_path_factory.mktemp("demo") / "demo.log")
    yield server
    server.stop()


@pytest.fixture
def faulty_demo(demo: Demo) -> Iterator[Demo]:
    """The module's demo, its faults cleared after the test."""
    yield demo
    demo.faults(None)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteWritePrometheus]:
    """A Prometheus taking remote write, one per test module (a module that needs another defines its own)."""
    server = RemoteWritePrometheus(tmp_path_factory.mktemp("prometheus"), "global: {}\n").start()
    yield server
    server.stop()
