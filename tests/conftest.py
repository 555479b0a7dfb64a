"""Shared fixtures: real PostgreSQL, Redis and Prometheus, each on a free loopback port, stopped after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Postgres, Redis

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A PostgreSQL 15 server with pg_stat_statements preloaded and created in database ``postgres``."""
    root = tmp_path_factory.mktemp("pg", numbered=True)
    server = Postgres(root).init().start()
    server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    yield server
    server.stop()


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
