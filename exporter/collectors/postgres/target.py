"""The ``postgres:`` target model and the libpq connection string it gives (our session settings included)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.config.base import JobTarget, Model, check_unique
from exporter.config.units import Duration, Name, PositiveInt, as_libpq_url, format_duration

APPLICATION_NAME = "perf-exporter"


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
        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
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


def base_conninfo(cfg: PostgresTarget) -> str:
    """The libpq connection string of the target's main database, with our session settings."""
    params: dict[str, Any] = {}
    dsn = ""
    if cfg.dsn is not None:
        dsn = cfg.dsn.get_secret_value()
    else:
        params.update(host=cfg.host, port=cfg.port)
    if cfg.user is not None:
        params["user"] = cfg.user
    if cfg.password is not None:
        params["password"] = cfg.password.get_secret_value()
    if cfg.dbname is not None:
        params["dbname"] = cfg.dbname
    if cfg.sslmode is not None:
        params["sslmode"] = cfg.sslmode
    statement_timeout = cfg.statement_timeout if cfg.statement_timeout is not None else cfg.timeout / 2
    own = (f"-c statement_timeout={max(1, int(statement_timeout * 1000))} "
           f"-c lock_timeout={max(1, int(cfg.lock_timeout * 1000))} -c default_transaction_read_only=on")
    existing = conninfo_to_dict(dsn).get("options") if dsn else None
    params["options"] = f"{existing} {own}" if existing else own
    params["application_name"] = APPLICATION_NAME
    params["connect_timeout"] = max(2, math.ceil(cfg.timeout / 2))
    return make_conninfo(dsn, **params)
