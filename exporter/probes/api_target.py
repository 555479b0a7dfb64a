"""The target model of the ``api:`` section: a base URL, its endpoints and its journeys."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from exporter import metrics
from exporter.config.base import HttpTarget, Model, check_unique
from exporter.config.units import (
    Duration,
    HttpMethod,
    HttpStatus,
    HttpUrlText,
    Name,
    PositiveInt,
    UrlPath,
    format_duration,
)
from exporter.probes.security_target import SecurityExpectations

if TYPE_CHECKING:
    from exporter.config.targets import Targets

JsonValue = Any


class RequestSpec(Model):
    """What one HTTP request sends and what it expects back."""

    method: HttpMethod = "GET"
    path: UrlPath = "/"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    body: JsonValue = Field(default=None, alias="json")
    expect_status: list[HttpStatus] = Field(default_factory=list)
    expect: dict[str, JsonValue] = Field(default_factory=dict)
    timeout: Duration | None = None


class Endpoint(RequestSpec):
    name: Name
    requests: PositiveInt = 1
    concurrency: PositiveInt = 1
    traceparent: bool = False
    security: SecurityExpectations | None = None

    @model_validator(mode="after")
    def _concurrency_le_requests(self) -> Endpoint:
        if self.concurrency > self.requests:
            raise ValueError(f"concurrency ({self.concurrency}) cannot exceed requests ({self.requests})")
        return self


class JourneyStep(Model):
    """A step names an endpoint to reuse, or describes its own request; ``capture`` maps a variable to a JSON
    field of the response (dotted path), usable later as ``{variable}`` in paths, query, headers and bodies."""

    name: Name | None = None
    endpoint: Name | None = None
    method: HttpMethod | None = None
    path: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    body: JsonValue = Field(default=None, alias="json")
    expect_status: list[HttpStatus] | None = None
    expect: dict[str, JsonValue] = Field(default_factory=dict)
    capture: dict[Name, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _endpoint_or_path(self) -> JourneyStep:
        if self.endpoint is None and self.path is None:
            raise ValueError("a step needs either 'endpoint' (a configured endpoint's name) or 'path'")
        return self


class Journey(Model):
    name: Name
    steps: list[JourneyStep] = Field(min_length=1)


class ApiTarget(HttpTarget):
    """One base URL and the endpoints and journeys probed on it. Its ``timeout`` bounds each request."""

    base_url: HttpUrlText
    interval: Duration = 15.0
    timeout: Duration = 5.0
    timeout_per_request: ClassVar[bool] = True
    # The trace collectors (jaeger targets) that look up the traces its ``traceparent`` endpoints start;
    # empty: every trace collector.
    trace_collectors: list[Name] = Field(default_factory=list)
    follow_redirects: bool = True
    max_redirects: Annotated[int, Field(ge=0, le=50)] = 10
    max_body_bytes: PositiveInt = 10 * 1024 * 1024
    endpoints: list[Endpoint] = Field(default_factory=list)
    journeys: list[Journey] = Field(default_factory=list)
    # Sample detail (docs/metrics.md, "Samples per endpoint"): the phase gauges of each endpoint's last request,
    # and the latency bucket bounds exported (a subset of perf_http_request_duration_seconds' buckets; the
    # default, all of them). Fewer buckets lose no count: every exported bound's count is exact.
    phases: bool = True
    buckets: list[Duration] | None = None

    @property
    def weight(self) -> float:
        return float(sum(e.requests for e in self.endpoints) + sum(len(j.steps) for j in self.journeys))

    @field_validator("buckets")
    @classmethod
    def _known_bounds(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        known = metrics.HTTP_REQUEST_DURATION.buckets
        for bound in value:
            if not any(math.isclose(bound, b) for b in known):
                raise ValueError(f"{format_duration(bound)} is not a bucket bound of "
                                 f"{metrics.HTTP_REQUEST_DURATION.name}; use some of "
                                 f"{', '.join(format_duration(b) for b in known)}")
        if not value:
            raise ValueError("expected at least one bucket bound (leave buckets out for all of them)")
        return sorted({next(b for b in known if math.isclose(bound, b)) for bound in value})

    def check_targets(self, targets: Targets) -> list[str]:
        """Problems of this target against the config's ``targets:``: every latency threshold an SLO judges this
        target's endpoints by must be an exported bucket bound."""
        if self.buckets is None:
            return []
        wanted = {("targets.api_latency_p95", targets.api_latency_p95),
                  ("targets.api_latency_p99", targets.api_latency_p99)}
        names = {e.name for e in self.endpoints}
        for endpoint, override in targets.endpoints.items():
            if endpoint in names:
                for key in ("api_latency_p95", "api_latency_p99"):
                    value = getattr(override, key)
                    if value is not None:
                        wanted.add((f"targets.endpoints.{endpoint}.{key}", value))
        return [f"buckets: {format_duration(value)} ({key}) must be one of the bounds, or its SLO cannot be computed"
                for key, value in sorted(wanted) if not any(math.isclose(value, b) for b in self.buckets)]

    @model_validator(mode="after")
    def _consistent(self) -> ApiTarget:
        check_unique([e.name for e in self.endpoints], "endpoint")
        check_unique([j.name for j in self.journeys], "journey")
        known = {e.name for e in self.endpoints}
        for journey in self.journeys:
            for i, step in enumerate(journey.steps):
                if step.endpoint is not None and step.endpoint not in known:
                    raise ValueError(f"journey {journey.name!r} step {i} names endpoint {step.endpoint!r}, "
                                     f"which is not configured (known: {', '.join(sorted(known)) or 'none'})")
        if not self.endpoints and not self.journeys:
            raise ValueError("an api target needs at least one endpoint or journey")
        return self
