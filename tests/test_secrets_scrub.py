"""Statement texts lose their string literals before they become the ``query`` label
(exporter.collectors.postgres.scrub): the secrets that utility statements carry in clear."""

from __future__ import annotations

import pytest

from exporter.collectors.postgres.collector import short_query
from exporter.collectors.postgres.scrub import LITERAL, scrub_statement
from exporter.config.loading import ConfigError, parse_config

SECRET = "hunter2-Zq7x"


@pytest.mark.parametrize("statement", [
    f"ALTER ROLE app PASSWORD '{SECRET}'",
    f"ALTER USER app WITH ENCRYPTED PASSWORD '{SECRET}' VALID UNTIL 'infinity'",
    f"CREATE ROLE app LOGIN PASSWORD '{SECRET}'",
    f"CREATE USER app PASSWORD E'{SECRET}\\' still inside'",
    f"CREATE SUBSCRIPTION sub CONNECTION 'host=db port=5432 user=rep password={SECRET}' PUBLICATION pub",
    f"CREATE USER MAPPING FOR app SERVER remote OPTIONS (user 'app', password '{SECRET}')",
    f"ALTER USER MAPPING FOR app SERVER remote OPTIONS (SET password '{SECRET}')",
    f"CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db', passfile '/{SECRET}')",
    f"COPY t FROM PROGRAM 'curl -H \"Authorization: Bearer {SECRET}\" https://x'",
    f"SELECT dblink_connect('host=db password={SECRET}')",
    f"DO $$ BEGIN EXECUTE format('ALTER ROLE app PASSWORD %L', '{SECRET}'); END $$",
    f"DO $body$ BEGIN PERFORM '{SECRET}'; END $body$",
    f"CREATE FUNCTION f() RETURNS text AS $fn$ SELECT '{SECRET}' $fn$ LANGUAGE sql",
    f"ALTER SYSTEM SET primary_conninfo = 'host=db password={SECRET}'",
    f"SET app.token = U&'{SECRET}'",
    f"ALTER ROLE app PASSWORD 'it''s {SECRET}'",
])
def test_every_string_literal_of_a_utility_statement_is_redacted(statement: str) -> None:
    scrubbed = scrub_statement(statement)
    assert SECRET not in scrubbed
    assert LITERAL in scrubbed


def test_a_literal_cut_off_by_truncation_is_redacted_to_the_end() -> None:
    assert scrub_statement(f"ALTER ROLE app PASSWORD '{SECRET}") == f"ALTER ROLE app PASSWORD {LITERAL}"
    assert scrub_statement(f"DO $x$ {SECRET}") == f"DO {LITERAL}"


def test_the_label_of_a_long_statement_is_scrubbed_before_it_is_shortened() -> None:
    statement = f"ALTER ROLE {'a' * 190} PASSWORD '{SECRET}'"
    label = short_query(scrub_statement(statement))
    assert SECRET[:3] not in label and label.endswith("...")


def test_credentials_outside_literals_are_masked() -> None:
    scrubbed = scrub_statement(f"/* dsn postgresql://rep:{SECRET}@db/x */ -- password={SECRET}\nSELECT 1")
    assert SECRET not in scrubbed and scrubbed.endswith("SELECT 1")


@pytest.mark.parametrize("statement", [
    "SELECT id, status FROM orders WHERE rider_id = $1 AND status = ANY($2)",
    'SELECT "it\'s a column", a$b, $1 FROM "Odd""Name" WHERE x = $2',
    "UPDATE trips SET status = $1 WHERE id = $2 RETURNING id",
    "SELECT 1 -- it's a comment\n, 2 /* it's /* nested */ too */",
])
def test_normalised_statements_keep_their_text(statement: str) -> None:
    assert scrub_statement(statement) == statement


def test_quotes_in_identifiers_and_comments_do_not_open_a_literal() -> None:
    statement = f"SELECT \"it's\" -- don't\n, name FROM t WHERE x = '{SECRET}'"
    assert scrub_statement(statement) == f"SELECT \"it's\" -- don't\n, name FROM t WHERE x = {LITERAL}"


def test_a_wrongly_typed_secret_is_not_repeated_in_the_config_error() -> None:
    data = {"postgres": [{"name": "main", "dsn": "postgresql://u@h/db", "password": [SECRET]}],
            "api": [{"name": "gw", "base_url": "http://h", "bearer_token": {"token": SECRET},
                     "headers": {"Authorization": [SECRET]}, "endpoints": [{"name": "e", "path": "/"}]}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "cfg.yaml", env={})
    text = str(caught.value)
    assert SECRET not in text
    assert "postgres[0].password: expected a valid string, got a list" in text
    assert "api[0].bearer_token: expected a valid string, got a dict" in text
    assert "api[0].headers.Authorization: expected a valid string, got a list" in text
