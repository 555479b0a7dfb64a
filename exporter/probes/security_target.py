"""The ``security:`` block of an api endpoint: which of the guide's security checks it gets, each with the data it
needs (exporter.probes.security runs them; docs/security.md says what each proves).

A credential (a header's value, a token) is a secret: masked by ``check-config``, never repeated in an error, and
readable from a file with its ``<field>_file`` twin.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.config.base import Model
from exporter.config.units import Duration, HttpMethod, HttpStatus, Name, UrlPath

InjectionMethod = Literal["error", "boolean", "time"]
INJECTION_METHODS: tuple[InjectionMethod, ...] = ("error", "boolean", "time")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")
Credentials = Annotated[dict[str, SecretStr], Field(min_length=1)]


class CheckRequest(Model):
    """A request a check sends besides the endpoint's own: a JSON body (``json``) or a form (``form``)."""

    method: HttpMethod = "GET"
    path: UrlPath
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> CheckRequest:
        if self.body is not None and self.form is not None:
            raise ValueError("set either 'json' or 'form', not both")
        return self


class CreateRequest(CheckRequest):
    capture: Annotated[dict[Name, str], Field(min_length=1)]  # variable -> JSON field of the answer (dotted)


class LowerRole(Model):
    """The request as a role that may not do it: these headers replace the target's credentials."""

    headers: Credentials
    expect: HttpStatus = 403


class TokenTampering(Model):
    """A valid ``token`` must be let in; the same token with its signature changed (and, for a JWT, with ``alg``
    none and with its claims changed under the old signature) and ``expired_token`` must each get ``expect``."""

    token: SecretStr
    expired_token: SecretStr
    header: str = "Authorization"
    scheme: str = "Bearer"  # written before the token, with a space; "" for none
    expect: HttpStatus = 401


class ObjectAuthorization(Model):
    """User B (``owner``) creates an object in the run; user A (``other``) asks for it with each of ``attempts``
    (their paths name what ``create`` captured, as ``{id}``) and must get 403 or 404. The first attempt is then
    asked by the owner, who must get a 2xx: the object is there. ``cleanup``, by the owner, ends its life."""

    owner: Credentials
    other: Credentials
    create: CreateRequest
    attempts: Annotated[list[CheckRequest], Field(min_length=1)]
    cleanup: CheckRequest | None = None

    @model_validator(mode="after")
    def _captured(self) -> ObjectAuthorization:
        named = [(f"attempts[{i}]", a) for i, a in enumerate(self.attempts)]
        if self.cleanup is not None:
            named.append(("cleanup", self.cleanup))
        for where, request in named:
            for variable in PLACEHOLDER.findall(request.path):
                if variable not in self.create.capture:
                    raise ValueError(f"{where}.path names {{{variable}}}, which create does not capture (it "
                                     f"captures: {', '.join(sorted(self.create.capture))})")
        return self


class RateLimit(Model):
    """A burst of ``requests`` sent together, within ``within``: at least one must get ``expect``. ``headers``
    (a credential of its own, say) replace the target's, so the burst does not limit the other probes."""

    requests: Annotated[int, Field(ge=2, le=1000)] = 50
    within: Duration = 1.0
    expect: HttpStatus = 429
    headers: dict[str, SecretStr] = Field(default_factory=dict)


class AnonymousRateLimit(Model):
    """The same burst without any credential: a client nobody knows must be limited too."""

    requests: Annotated[int, Field(ge=2, le=1000)] = 50
    within: Duration = 1.0
    expect: HttpStatus = 429


class Injection(Model):
    """SQL injection into the named query parameters and top-level JSON fields, each given with a harmless value
    the endpoint accepts. Judged by what the server does: ``error`` (a 5xx or a database error where the harmless
    value got a 2xx), ``boolean`` (a true and a false condition answered differently), ``time`` (``pg_sleep``
    slowing the answer by its ``sleep``)."""

    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, str] = Field(default_factory=dict, alias="json")
    methods: Annotated[list[InjectionMethod], Field(min_length=1)] = Field(
        default_factory=lambda: list(INJECTION_METHODS))
    sleep: Duration = 1.0

    @field_validator("sleep")
    @classmethod
    def _sleep_range(cls, value: float) -> float:
        if not 0.2 <= value <= 10:
            raise ValueError(f"expected between 200ms and 10s, got {value:g}s")
        return value

    @model_validator(mode="after")
    def _some_parameter(self) -> Injection:
        if not self.query and not self.body:
            raise ValueError("name at least one parameter, with a harmless value, in 'query' or 'json' "
                             "(such as query: {status: created})")
        return self


class Xss(Model):
    """A unique marker in each named query parameter and top-level JSON field must not come back unescaped in
    an answer a browser renders as HTML."""

    query: list[str] = Field(default_factory=list)
    body: list[str] = Field(default_factory=list, alias="json")

    @model_validator(mode="after")
    def _some_parameter(self) -> Xss:
        if not self.query and not self.body:
            raise ValueError("name at least one query parameter or JSON field to send the marker in "
                             "(such as query: [status])")
        return self


class Csrf(Model):
    """``login`` sets a session cookie; the endpoint's own request with that cookie alone must be let in; then
    ``request``, a state change, sent with the cookie from a foreign ``origin`` and without a CSRF token, must be
    refused."""

    login: CheckRequest
    request: CheckRequest
    origin: str = "https://csrf-check.invalid"

    @field_validator("request")
    @classmethod
    def _state_change(cls, value: CheckRequest) -> CheckRequest:
        if value.method in SAFE_METHODS:
            raise ValueError(f"expected a state change (POST, PUT, PATCH or DELETE), got {value.method}")
        return value


class SecurityExpectations(Model):
    """The guide's security checklist for one endpoint: each check given runs every run."""

    unauthenticated: HttpStatus | None = None  # without credentials: e.g. 401
    lower_role: LowerRole | None = None
    token_tampering: TokenTampering | None = None
    object_authorization: ObjectAuthorization | None = None
    rate_limit: RateLimit | None = None
    anonymous_rate_limit: AnonymousRateLimit | None = None
    injection: Injection | None = None
    xss: Xss | None = None
    csrf: Csrf | None = None

    @model_validator(mode="after")
    def _some_check(self) -> SecurityExpectations:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(f"expected at least one check ({', '.join(type(self).model_fields)})")
        return self
