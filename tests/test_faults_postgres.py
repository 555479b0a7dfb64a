"""PostgreSQL going away at any point of a collection, stopped for real (``pg_ctl stop -m fast`` and ``-m
immediate``, SIGKILL of the postmaster), and coming back.

For the collection it hits: a failure (``up`` 0), one log line with the real cause (never "pg_stat_statements is
not installed"), and the statement series kept as they were. After a restart that kept pg_stat_statements (a
fast or an immediate stop) the counters continue with nothing lost; after a crash, which loses it, the loss is a
reset, and no counter goes down.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.servers import Postgres, wait_for
from tests.test_postgres_collector import Harness, events, execute, scenario

Series = dict[tuple[tuple[str, str], ...], float]


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    """A server of this module's own, free to stop and restart (outside pytest's temporary root: see
    test_postgres_collector.bare_postgres)."""
    root = Path(tempfile.mkdtemp(prefix="perf-pg-faults-"))
    pg = Postgres(root).init().start()
    pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    yield pg
    ensure_running(pg)
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


def pg_ctl_stop(pg: Postgres, mode: str) -> None:
    pg._as_owner([str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "-m", mode, "-w", "stop"])
    assert pg.process is not None and pg.process.proc is not None
    pg.process.proc.wait(15)


def sigkill(pg: Postgres) -> None:
    """A crash: the postmaster killed, then its orphaned backends (they exit once they notice it is gone)."""
    assert pg.process is not None and pg.process.proc is not None
    pg.process.proc.send_signal(signal.SIGKILL)
    pg.process.proc.wait(15)
    pid_file = pg.datadir / "postmaster.pid"
    wait_for(lambda: not _backends_alive(pg), timeout=30, what="the killed server's backends gone")
    pid_file.unlink(missing_ok=True)


def _backends_alive(pg: Postgres) -> bool:
    """Whether a process of this cluster (its data directory on the command line) is still running."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(pg.datadir).encode() in (entry / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


STOPS: dict[str, Callable[[Postgres], None]] = {
    "fast": lambda pg: pg_ctl_stop(pg, "fast"),
    "immediate": lambda pg: pg_ctl_stop(pg, "immediate"),
    "sigkill": sigkill,
}
# Whether the restart loses pg_stat_statements. An immediate stop keeps it: the postmaster still writes the
# extension's file on its way out (measured on PostgreSQL 15 and checked by ground_truth_reset below); only a
# crash (the postmaster killed) loses it, and the collector must then see a reset.
LOSES_STATEMENTS = {"fast": False, "immediate": False, "sigkill": True}


def stats_reset(pg: Postgres) -> str:
    return pg.psql("SELECT stats_reset FROM pg_stat_statements_info").strip()


def ensure_running(pg: Postgres, caplog: pytest.LogCaptureFixture | None = None) -> None:
    if caplog is not None:
        caplog.set_level(logging.INFO)  # the reset is an INFO event
    if not pg.ready():
        pg.start()


def went_down(before: Series, after: Series) -> list[tuple[Any, float, float]]:
    """The series whose counter is lower than before (a series no longer exported is not one: the "other" of a
    database whose every statement is exported goes away)."""
    return [(k, v, after[k]) for k, v in before.items() if k in after and after[k] < v]


def exported(series: Series) -> set[tuple[tuple[str, str], ...]]:
    """The statements exported one by one ("other" comes and goes with them: not a loss)."""
    return {k for k in series if ("queryid", "other") not in k}


def statement_calls(h: Harness) -> Series:
    return h.samples("perf_pg_statement_calls_total")


def stop_before_query(h: Harness, number: int, stop: Callable[[], None]) -> list[int]:
    """Stop the server just before the collection's query ``number`` (0: before its first) on the main
    connection: between two queries of one collection, wherever that falls. The list returned gets the
    number once the server has been stopped."""
    main = h.collector.main
    original = type(main).timed
    sent = 0
    stopped: list[int] = []

    async def timed(*args: Any, **kwargs: Any) -> Any:
        nonlocal sent
        if sent == number:
            await asyncio.to_thread(stop)
            stopped.append(number)
        sent += 1
        return await original(main, *args, **kwargs)

    main.timed = timed  # type: ignore[method-assign]
    return stopped


async def back_after_backoff(h: Harness) -> bool:
    """The next collection once the reconnect backoff has passed (as the next interval would be)."""
    await asyncio.sleep(max(0.0, h.collector.main.retry_at - time.monotonic()))
    return await h.run()


def restore(h: Harness) -> None:
    h.collector.main.__dict__.pop("timed", None)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("exporter")]


def assert_one_real_cause(caplog: pytest.LogCaptureFixture) -> None:
    lines = warnings_of(caplog)
    assert [r.getMessage() for r in lines] == ["pg_unreachable"], [(r.getMessage(), r.__dict__.get("fields"))
                                                                    for r in lines]
    cause = lines[0].__dict__["fields"]["cause"]
    assert "pg_stat_statements" not in cause
    assert any(word in cause for word in ("refused", "shutting down", "terminating", "closed", "starting up",
                                          "No such file", "lost", "server")), cause


@pytest.mark.parametrize("mode", ["fast", "immediate", "sigkill"])
def test_server_stopped_before_or_between_any_two_queries_of_a_collection(
        server: Postgres, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    ensure_running(server, caplog)
    dsn = server.dsn()
    marker = f"SELECT {len(mode)} AS fault_marker_{mode}"

    async def body(h: Harness) -> None:
        await execute(dsn, marker)
        assert await h.run()
        assert await h.run()
        for number in itertools.count():
            await execute(dsn, *[marker] * 5)  # work after the last good collection, before the fault
            before = statement_calls(h)
            marker_key = next(k for k in before if ("queryid", "other") not in k and
                              _query_of(h, dict(k)["queryid"]).startswith("SELECT $1 AS fault_marker"))
            caplog.clear()
            reset_before = stats_reset(server)
            stopped = stop_before_query(h, number, lambda: STOPS[mode](server))
            ok = await h.run()
            restore(h)
            if not stopped:  # the collection has fewer queries: every point of it has been tried
                assert ok and number >= 6, number
                break
            assert not ok, f"stopped before query {number}: still a success"
            assert_one_real_cause(caplog)
            after = statement_calls(h)
            assert set(after) == set(before), f"stopped before query {number}: statement series changed"
            assert all(after[k] >= before[k] for k in before)
            await asyncio.to_thread(server.start)
            assert (stats_reset(server) != reset_before) == LOSES_STATEMENTS[mode]  # what the server really did
            caplog.clear()
            assert await back_after_backoff(h), f"not back after the restart (stopped before query {number})"
            resumed = statement_calls(h)
            assert not went_down(after, resumed)
            if LOSES_STATEMENTS[mode]:
                assert events(caplog, "pg_stat_statements_reset"), "lost pg_stat_statements not seen as a reset"
            else:
                assert not events(caplog, "pg_stat_statements_reset")
                # the five calls made before the fault are counted after the restart: no interval lost
                assert resumed[marker_key] - before[marker_key] == 5, (number, before[marker_key],
                                                                       resumed[marker_key])
            assert not events(caplog, "pg_stat_statements_unavailable")
            if LOSES_STATEMENTS[mode]:
                # the lost statement is new again: run it once more so it is exported for the next round
                await execute(dsn, marker)
                assert await h.run()
                assert await h.run()

    scenario(dsn, body, databases=["postgres"], top_statements=1000)


def _query_of(h: Harness, queryid: str) -> str:
    return h.collector.statements.texts.get(queryid, "")


@pytest.mark.parametrize("mode", ["fast", "immediate", "sigkill"])
def test_server_stopped_in_the_middle_of_a_query(server: Postgres, mode: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    ensure_running(server, caplog)
    dsn = server.dsn()

    def sleeping() -> bool:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'perf-exporter' "
                               "AND state = 'active' AND query LIKE '%pg_sleep%'").fetchone()
            return bool(row and row[0])

    async def body(h: Harness) -> None:
        assert await h.run()
        assert await h.run()
        before = statement_calls(h)
        assert before
        caplog.clear()
        collection = asyncio.create_task(h.run())
        await asyncio.to_thread(wait_for, sleeping, 10, "the probe's query running")
        await asyncio.to_thread(STOPS[mode], server)
        assert not await collection
        assert_one_real_cause(caplog)
        during = statement_calls(h)  # read before the probe: this collection's statements were counted
        assert exported(before) <= exported(during) and not went_down(before, during)
        assert h.value("perf_pg_probe_success", probe="slow") == 1  # its last real outcome, not a guess
        await asyncio.to_thread(server.start)
        caplog.clear()
        assert await back_after_backoff(h)
        resumed = statement_calls(h)
        assert not went_down(before, resumed)
        assert bool(events(caplog, "pg_stat_statements_reset")) == LOSES_STATEMENTS[mode]

    scenario(dsn, body, databases=["postgres"], top_statements=1000,
             queries=[{"name": "slow", "sql": "select pg_sleep(0.5) from (select 1) s", "explain": False}])


def test_server_down_before_the_first_connect_then_up(server: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    ensure_running(server, caplog)
    pg_ctl_stop(server, "fast")

    async def body(h: Harness) -> None:
        caplog.clear()
        assert not await h.run()
        assert_one_real_cause(caplog)
        await asyncio.to_thread(server.start)
        assert await back_after_backoff(h)
        assert statement_calls(h)

    scenario(server.dsn(), body, databases=["postgres"], top_statements=1000)

