"""Redis going away between collections, between two commands of one, or with a command sent and its reply
pending: SHUTDOWN with and without persistence, and SIGKILL. For that collection: ``up`` 0, one log line with
the real cause, the counters kept; back again, the counters go on from where they were (INFO's counters start
from zero on any restart, so the collector counts from the new server's zero: never down), and a server with
persistence has its keys back."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection

from exporter import metrics
from tests.servers import Redis, port_open, wait_for
from tests.test_redis_collector import Harness, client

KEYS = 40


def _down_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("exporter")]


def shutdown(server: Redis, save: bool) -> None:
    app = client(server)
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection instead of answering
        app.execute_command("SHUTDOWN", "SAVE" if save else "NOSAVE")
    assert server.process is not None and server.process.proc is not None
    server.process.proc.wait(15)


def sigkill(server: Redis) -> None:
    assert server.process is not None and server.process.proc is not None
    server.process.proc.send_signal(signal.SIGKILL)
    server.process.proc.wait(15)


STOPS: dict[str, Callable[[Redis], None]] = {
    "shutdown-nosave": lambda s: shutdown(s, save=False),
    "shutdown-save": lambda s: shutdown(s, save=True),
    "sigkill": sigkill,
}
PERSISTENT = {"shutdown-nosave": False, "shutdown-save": True, "sigkill": True}


@pytest.fixture
def server(tmp_path: Path, mode: str) -> Iterator[Redis]:
    """A Redis without persistence (the test servers' default) or with an append-only file synced on every
    write and RDB snapshots, so that even a SIGKILL keeps the keys."""
    extra = ("--appendonly", "yes", "--appendfsync", "always", "--save", "3600 1") if PERSISTENT[mode] else ()
    started = Redis(tmp_path / "redis", extra=extra).start()
    yield started
    started.stop()


@pytest.fixture
def harness(server: Redis) -> Iterator[Harness]:
    made = Harness(server.url, scan_budget=1000, key_patterns=["order:*"])
    yield made
    made.close()


def stop_at(monkeypatch: pytest.MonkeyPatch, command: bytes, stop: Callable[[], None]) -> list[bytes]:
    """Stop the server right after the collector has sent ``command`` (its reply not yet read), once."""
    original = Connection.send_packed_command
    done: list[bytes] = []

    async def send(self: Connection, packed: Any, check_health: bool = True) -> None:
        await original(self, packed, check_health)
        data = packed if isinstance(packed, bytes) else b"".join(bytes(p) for p in packed)
        if not done and command in data:
            stop()
            done.append(command)

    monkeypatch.setattr(Connection, "send_packed_command", send)
    return done


def fill(server: Redis) -> redis.Redis:
    app = client(server)
    for i in range(KEYS):
        app.set(f"order:{i}", "x")
    return app


@pytest.mark.parametrize("mode", list(STOPS))
@pytest.mark.parametrize("when", ["between collections", "after PING", "INFO sent"])
def test_redis_stopped_at_any_point_then_back(server: Redis, harness: Harness, mode: str, when: str,
                                              caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = fill(server)
    assert harness.run()
    for i in range(10):
        app.get(f"order:{i}")
    assert harness.run()
    hits = harness.value(metrics.REDIS_HITS)
    gets = harness.value(metrics.REDIS_COMMANDS, ("cache", "get"))
    assert hits == 10 and gets == 10
    app.close()

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="exporter.collectors.redis.collector"):
        stop = STOPS[mode]
        if when == "between collections":
            stop(server)
        else:
            stopped = stop_at(monkeypatch, b"PING" if when == "after PING" else b"INFO",
                              lambda: stop(server))
        assert not harness.run().up
        monkeypatch.undo()
        if when != "between collections":
            assert stopped, f"the server was never stopped at {when}"
    lines = _down_lines(caplog)
    assert [r.getMessage() for r in lines] == ["redis_down"], [(r.getMessage(), r.__dict__.get("fields"))
                                                              for r in lines]
    assert lines[0].__dict__["fields"]["reason"] == "connect", lines[0].__dict__["fields"]
    assert harness.value(metrics.REDIS_UP) == 0
    assert harness.value(metrics.REDIS_HITS) == hits  # kept, not dropped or guessed
    assert harness.value(metrics.REDIS_COMMANDS, ("cache", "get")) == gets

    server.start()
    wait_for(lambda: port_open(server.port), timeout=15, what="Redis back")
    app = client(server)
    wait_for(lambda: app.ping(), timeout=15, what="Redis loaded its data")
    for i in range(3):
        app.get(f"order:{i}")
    with caplog.at_level(logging.INFO, logger="exporter.collectors.redis.collector"):
        assert harness.run()
    assert harness.value(metrics.REDIS_UP) == 1
    assert [r for r in caplog.records if r.getMessage() == "redis_recovered"]
    # INFO's counters start again from zero on the new server; ours go on from where they were
    expected_hits = hits + (3 if PERSISTENT[mode] else 0)
    assert harness.value(metrics.REDIS_HITS) == expected_hits
    assert harness.value(metrics.REDIS_COMMANDS, ("cache", "get")) == gets + 3
    assert harness.value(metrics.REDIS_KEYS, ("cache", "0")) == (KEYS if PERSISTENT[mode] else None)
    app.close()
