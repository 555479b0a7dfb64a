"""The target model of the ``api:`` section: a base URL, its endpoints and its journeys."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from exporter.config.base import HttpTarget, Model, check_unique
from exporter.config.units import Duration, HttpUrlText, Name, PositiveInt
from exporter.probes.security_target import SecurityExpectations

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
JsonValue = Any


class RequestSpec(Model):
    """What one HTTP request sends and what it expects back."""

    method: HttpMethod = "GET"
    path: str = "/"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    body: JsonValue = Field(default=None, alias="json")
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=list)
    expect: dict[str, JsonValue] = Field(default_factory=dict)
    timeout: Duration | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"expected a path starting with '/', got {value!r}")
        return value


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
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    expect: dict[str, JsonValue] = Field(default_factory=dict)
    capture: dict[Name, str] = Field(default_factory=dict)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

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
