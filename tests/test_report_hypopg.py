"""Index recommendations costed by the planner with hypopg, on a real PostgreSQL 15 (Debian's
postgresql-15-hypopg): a read-only session, nothing executed, and nothing done where the extension is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.reports.hypopg import check_index
from tests.servers import Postgres


def _has_hypopg() -> bool:
    if shutil.which("pg_config") is None:
        return False
    share = subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True).stdout.strip()
    return (Path(share) / "extension" / "hypopg.control").exists()


pytestmark = pytest.mark.skipif(not _has_hypopg(), reason="needs postgresql-15-hypopg (scripts/test.sh installs it)")

SLOW = "SELECT count(*), max(o.created_at) FROM rides o CROSS JOIN pg_sleep($1) WHERE o.rider_id = $2"
INDEX = "CREATE INDEX CONCURRENTLY ON public.rides (rider_id);"


@pytest.fixture
def database(postgres: Postgres) -> str:
    postgres.psql("DROP DATABASE IF EXISTS report_hypopg")
    postgres.psql("CREATE DATABASE report_hypopg")
    postgres.psql("CREATE TABLE rides (id serial PRIMARY KEY, rider_id int, created_at timestamptz DEFAULT now());"
                  "INSERT INTO rides (rider_id) SELECT g % 500 FROM generate_series(1, 20000) g; ANALYZE rides",
                  dbname="report_hypopg")
    return postgres.dsn("report_hypopg") + "?options=-c%20default_transaction_read_only%3Don"


def test_a_hypothetical_index_lowers_the_plan_cost_of_the_scanning_statement(postgres: Postgres,
                                                                             database: str) -> None:
    assert check_index(database, SLOW, INDEX) is None  # no hypopg in this database: nothing is done
    postgres.psql("CREATE EXTENSION hypopg", dbname="report_hypopg")
    check = check_index(database, SLOW, INDEX)
    assert check is not None and check.used
    assert check.cost_after < check.cost_before / 2, check
    # hypothetical only: no index was created
    assert postgres.psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'rides'", dbname="report_hypopg") \
        .strip() == "1"


def test_an_index_the_planner_would_not_use_is_reported_as_such(postgres: Postgres, database: str) -> None:
    postgres.psql("CREATE EXTENSION IF NOT EXISTS hypopg", dbname="report_hypopg")
    check = check_index(database, "SELECT count(*) FROM rides", "CREATE INDEX ON public.rides (created_at);")
    assert check is not None and not check.used and check.cost_after == check.cost_before
    assert check_index(database, "UPDATE rides SET rider_id = 1", INDEX) is None  # only reads are costed
