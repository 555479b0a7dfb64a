"""The target model of the ``jaeger:`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from exporter.config.base import HttpTarget
from exporter.config.units import Duration, HttpUrlText, PositiveInt, format_duration


class JaegerTarget(HttpTarget):
    """One Jaeger query service, polled for the traces of the last ``lookback``."""

    url: HttpUrlText = "http://localhost:16686"
    base_path: str = ""
    api: Literal["auto", "v3", "v1"] = "auto"
    interval: Duration = 60.0
    timeout: Duration = 10.0
    services: list[str] = Field(default_factory=list)
    lookback: Duration = 300.0
    limit: PositiveInt = 500
    settle: Duration = 30.0
    sample: PositiveInt = 100
    top_operations: PositiveInt = 20
    max_response_bytes: PositiveInt = 64 * 1024 * 1024
    tenant: str | None = None
    tenant_header: str = "x-tenant"

    @model_validator(mode="after")
    def _consistent(self) -> JaegerTarget:
        if self.interval + self.settle > self.lookback:
            raise ValueError(
                f"lookback ({format_duration(self.lookback)}) must be at least interval + settle "
                f"({format_duration(self.interval + self.settle)}), or a trace held back by settle leaves the "
                "window before the next poll reads it again")
        return self
