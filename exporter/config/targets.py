"""The guide's performance targets (``targets:``): one set of numbers that rules, dashboards and reports share."""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from exporter import metrics
from exporter.config.base import Model
from exporter.config.units import Duration, Ratio, format_duration


class EndpointTargets(Model):
    api_latency_p95: Duration | None = None
    api_latency_p99: Duration | None = None
    error_rate: Ratio | None = None


class Targets(Model):
    api_latency_p95: Duration = 0.5
    api_latency_p99: Duration = 1.0
    db_query_p95: Duration = 0.1
    cache_hit_rate: Ratio = 0.8
    trace_p95: Duration = 1.0
    error_rate: Ratio = 0.01
    slo_window: Duration = 30 * 86400.0
    endpoints: dict[str, EndpointTargets] = Field(default_factory=dict)
    # Where rules/runbooks.md is published; each alert links to its section (``#<alertname in lower case>``).
    runbook_url: str = "rules/runbooks.md"

    @property
    def endpoint_p95(self) -> dict[str, float]:
        """The endpoints with their own P95 target."""
        return {n: e.api_latency_p95 for n, e in self.endpoints.items() if e.api_latency_p95 is not None}

    def p95_for(self, endpoint: str) -> float:
        own = self.endpoints.get(endpoint)
        return own.api_latency_p95 if own is not None and own.api_latency_p95 is not None else self.api_latency_p95

    @field_validator("slo_window")
    @classmethod
    def _whole_days(cls, value: float) -> float:
        if value < 86400 or not (value / 86400).is_integer():
            raise ValueError(f"expected a whole number of days like '30d', got {format_duration(value)}")
        return value

    @model_validator(mode="after")
    def _thresholds_are_bucket_bounds(self) -> Targets:
        checks: list[tuple[str, float | None, tuple[float, ...]]] = [
            ("api_latency_p95", self.api_latency_p95, metrics.HTTP_REQUEST_DURATION.buckets),
            ("api_latency_p99", self.api_latency_p99, metrics.HTTP_REQUEST_DURATION.buckets),
            ("db_query_p95", self.db_query_p95, metrics.PG_QUERY_DURATION.buckets),
            ("trace_p95", self.trace_p95, metrics.TRACE_DURATION.buckets),
        ]
        for endpoint, override in self.endpoints.items():
            for key in ("api_latency_p95", "api_latency_p99"):
                checks.append((f"endpoints.{endpoint}.{key}", getattr(override, key),
                               metrics.HTTP_REQUEST_DURATION.buckets))
        for key, value, buckets in checks:
            if value is not None and not any(math.isclose(value, b) for b in buckets):
                bounds = ", ".join(format_duration(b) for b in buckets)
                raise ValueError(f"{key}: {format_duration(value)} is not a histogram bucket bound, so the SLO "
                                 f"could not be computed exactly; use one of {bounds}")
        return self
