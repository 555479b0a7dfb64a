"""The PostgreSQL collector on each server version we support, against real servers: Debian's PostgreSQL 15
(pg_stat_statements 1.10) and the demo's embedded PostgreSQL 18 (1.12). PostgreSQL 17 brought 1.11, whose
``stats_since`` and ``minmax_stats_since`` columns 18 keeps; the collector reads the columns of the installed
view, so 16 (1.10) and 17 (1.11) take the same paths as 15 and 18."""

from __future__ import annotations

import psycopg
import pytest

from exporter.collectors.postgres.queries import VIEW_COLUMNS, statement_queries
from tests.servers import Postgres
from tests.test_postgres_collector import Harness, execute, scenario

POSTGRES_VERSIONS = ("15", "18")
EXTENSION = {"15": "1.10", "18": "1.12"}
DB = "perf_pgversions"


@pytest.fixture(scope="module")
def pg(postgres: Postgres) -> Postgres:
    if not postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'").strip():
        postgres.psql(f"CREATE DATABASE {DB}")
    return postgres


def extension_version(pg: Postgres) -> str:
    return pg.psql("SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'").strip()


def test_each_server_has_the_extension_version_it_is_tested_for(pg: Postgres) -> None:
    assert pg.psql("SHOW server_version_num").strip()[:2] == pg.version
    assert extension_version(pg) == EXTENSION[pg.version]


def test_the_counters_query_reads_since_columns_only_where_the_extension_has_them(pg: Postgres) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        columns = {row[0] for row in conn.execute(VIEW_COLUMNS, ("public.pg_stat_statements",))}
        info = bool(conn.execute(VIEW_COLUMNS, ("public.pg_stat_statements_info",)).fetchall())
        queries = statement_queries("public", columns, info)
        rows = conn.execute(queries.counters).fetchall()
        assert queries.info is not None and len(conn.execute(queries.info).fetchall()) == 1
    assert rows, "pg_stat_statements has entries (this very session's)"
    since = {row[9] is not None for row in rows}
    minmax_since = {row[13] is not None for row in rows}
    has_since = extension_version(pg) >= "1.11"
    assert since == {has_since} and minmax_since == {has_since}


def test_a_statement_reset_on_its_own_counts_from_its_reset(pg: Postgres) -> None:
    """pg_stat_statements_reset(userid, dbid, queryid) empties one entry; when it then runs more often than
    before, only ``stats_since`` (1.11+) shows the reset: counters alone would count too little."""
    assert extension_version(pg) >= "1.11"  # before 1.11 a reset entry is seen only when its counters go down
    dsn = pg.dsn(DB)
    statement = "SELECT 'versions', pg_sleep(0.005)"  # the slowest of the interval: it is exported

    async def body(h: Harness) -> None:
        assert await h.run()
        await execute(dsn, *[statement] * 10)
        assert await h.run()  # it enters the exported statements here
        queryid = pg.psql("SELECT queryid FROM pg_stat_statements WHERE query = 'SELECT $1, pg_sleep($2)'"
                          " AND toplevel LIMIT 1").strip()
        labels = {"datname": DB, "user": "postgres", "queryid": queryid}
        await execute(dsn, *[statement] * 5)
        assert await h.run()
        assert h.value("perf_pg_statement_calls_total", **labels) == 5
        pg.psql(f"SELECT pg_stat_statements_reset(0, 0, {queryid})")
        await execute(dsn, *[statement] * 20)  # more than the 15 calls before the reset
        assert await h.run()
        assert h.value("perf_pg_statement_calls_total", **labels) == 25  # 5, then the 20 since the reset

    scenario(pg.dsn(), body, top_statements=20, databases=[DB])


test_a_statement_reset_on_its_own_counts_from_its_reset.POSTGRES_VERSIONS = ("18",)  # type: ignore[attr-defined]
