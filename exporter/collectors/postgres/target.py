"""The target model of the ``postgres:`` section, apart from the collector so that the config loads without
psycopg (check-config, and the processes that run no PostgreSQL job)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.config.base import JobTarget, Model, check_unique
from exporter.config.units import Duration, Name, PositiveInt, as_libpq_url, format_duration, libpq_readable


class PostgresQuery(Model):
    name: Name
    sql: str
    explain: bool = True


class PostgresTarget(JobTarget):
    dsn: SecretStr | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    user: str | None = None
    password: SecretStr | None = None
    dbname: str | None = None
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    databases: Literal["auto"] | list[str] = "auto"
    interval: Duration = 30.0
    timeout: Duration = 10.0
    top_statements: PositiveInt = 50
    sticky_for: Duration = 600.0
    slow_query: Duration = 0.1
    queries: list[PostgresQuery] = Field(default_factory=list)
    explain_interval: Duration = 300.0
    seq_scan_min_rows: Annotated[int, Field(ge=0)] = 1000
    top_tables: PositiveInt = 20
    statement_timeout: Duration | None = None  # default: timeout
    lock_timeout: Duration = 1.0

    @field_validator("dsn")
    @classmethod
    def _libpq_reads_it(cls, value: SecretStr | None) -> SecretStr | None:
        """What libpq cannot read is a config error, not a crash when the collector starts (libpq's own message is
        left out: it quotes pieces of the string)."""
        if value is None:
            return None
        dsn = as_libpq_url(value.get_secret_value())
        if not libpq_readable(dsn):
            raise ValueError("libpq cannot read this connection string: give a postgresql:// URL (with @ : / ? # "
                             "in its password percent-encoded) or libpq's keywords (host=db dbname=tripo)") from None
        return SecretStr(dsn)

    @model_validator(mode="after")
    def _consistent(self) -> PostgresTarget:
        if self.statement_timeout is not None and self.statement_timeout > self.timeout:
            raise ValueError(f"statement_timeout ({format_duration(self.statement_timeout)}) cannot exceed "
                             f"timeout ({format_duration(self.timeout)})")
        check_unique([q.name for q in self.queries], "query")
        if self.dsn is None and self.host is None:
            raise ValueError("set 'dsn' (for example ${DATABASE_URL}) or 'host' (with port, user, dbname)")
        return self
