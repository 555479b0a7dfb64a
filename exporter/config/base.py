"""The base of every config model, and :class:`JobTarget`, the fields and rules every job's target shares."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from exporter.config.units import Duration, Name, format_duration

# A run whose timeout bounds each request, not the run, may take this share of its interval: the rest is the
# margin before the next run is due.
DEADLINE_SHARE = 0.9


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} name {name!r} is used twice; names must be unique")
        seen.add(name)


class JobTarget(Model):
    """One target of one job kind: scheduled every ``interval``, its run ended at :attr:`deadline`.

    Subclasses redeclare ``interval`` and ``timeout`` for their own defaults. A kind whose ``timeout`` bounds
    each request of a run rather than the whole run sets ``timeout_per_request``.
    """

    name: Name
    interval: Duration = 15.0
    timeout: Duration = 5.0
    timeout_per_request: ClassVar[bool] = False

    @property
    def weight(self) -> float:
        """What one run costs next to others', for sharing jobs among probe workers (exporter.workers): about
        the number of requests it sends."""
        return 1.0

    @property
    def deadline(self) -> float:
        """How long one run may take before the scheduler ends it as a timeout."""
        return self.interval * DEADLINE_SHARE if self.timeout_per_request else self.timeout

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> JobTarget:
        if self.timeout >= self.interval:
            raise ValueError(f"timeout ({format_duration(self.timeout)}) must be shorter than interval "
                             f"({format_duration(self.interval)})")
        return self


class TLSConfig(Model):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False


class HttpTarget(JobTarget):
    """A target reached over HTTP: request headers, a bearer token and TLS settings."""

    headers: dict[str, SecretStr] = Field(default_factory=dict)
    bearer_token: SecretStr | None = None
    tls: TLSConfig = Field(default_factory=TLSConfig)
