"""The YAML configuration as typed models.

Loading goes: read YAML -> expand ``${VAR}`` / ``${VAR:-default}`` in every string value -> read ``*_file``
secrets -> validate into :class:`Config`. Every problem is raised as one :class:`ConfigError` whose lines read
``file: key.path[0].name: what was expected``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from exporter import metrics
from exporter.secrets import MASK, mask_url

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "0.0.0.0:9469"


def parse_listen(value: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces, or ``default_host``) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT like {default_host}:9469, got {value!r}")
    return host.strip("[]") or default_host, int(port)


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is ready to print, one problem per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


# ---------------------------------------------------------------------------------------------------------------
# Scalar types

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``'250ms'``, ``'15s'``, ``'1m'``, ``'1h'``, ``'30d'`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"expected a positive duration like '5s', got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"expected a duration like '5s', got {value!r}")


def parse_ratio(value: Any) -> float:
    """``'80%'`` or ``0.8`` -> 0.8."""
    ratio: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        ratio = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            ratio = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            ratio = None
    if ratio is None or not 0 <= ratio <= 1:
        raise ValueError(f"expected a ratio like '80%' or 0.8, got {value!r}")
    return ratio


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000, 3):g}ms"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


Duration = Annotated[float, BeforeValidator(parse_duration)]
HttpUrlText = Annotated[str, AfterValidator(_http_url)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=64)]
PositiveInt = Annotated[int, Field(ge=1)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} name {name!r} is used twice; names must be unique")
        seen.add(name)


def _check_timeout(timeout: float, interval: float) -> None:
    if timeout >= interval:
        raise ValueError(
            f"timeout ({format_duration(timeout)}) must be shorter than interval ({format_duration(interval)})"
        )


# ---------------------------------------------------------------------------------------------------------------
# Targets (the guide's performance targets)


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


# ---------------------------------------------------------------------------------------------------------------
# API probes

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


class TLSConfig(Model):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False


class ApiTarget(Model):
    name: Name
    base_url: HttpUrlText
    interval: Duration = 15.0
    timeout: Duration = 5.0
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    tls: TLSConfig = Field(default_factory=TLSConfig)
    follow_redirects: bool = True
    max_redirects: Annotated[int, Field(ge=0, le=50)] = 10
    max_body_bytes: PositiveInt = 10 * 1024 * 1024
    endpoints: list[Endpoint] = Field(default_factory=list)
    journeys: list[Journey] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ApiTarget:
        _check_timeout(self.timeout, self.interval)
        _unique([e.name for e in self.endpoints], "endpoint")
        _unique([j.name for j in self.journeys], "journey")
        known = {e.name for e in self.endpoints}
        for journey in self.journeys:
            for i, step in enumerate(journey.steps):
                if step.endpoint is not None and step.endpoint not in known:
                    raise ValueError(f"journey {journey.name!r} step {i} names endpoint {step.endpoint!r}, "
                                     f"which is not configured (known: {', '.join(sorted(known)) or 'none'})")
        if not self.endpoints and not self.journeys:
            raise ValueError("an api target needs at least one endpoint or journey")
        return self


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresQuery(Model):
    name: Name
    sql: str
    explain: bool = True


class PostgresTarget(Model):
    name: Name
    dsn: SecretStr | None = None
    dsn_file: Path | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
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

    @model_validator(mode="after")
    def _consistent(self) -> PostgresTarget:
        _check_timeout(self.timeout, self.interval)
        if self.statement_timeout is not None and self.statement_timeout > self.timeout:
            raise ValueError(f"statement_timeout ({format_duration(self.statement_timeout)}) cannot exceed "
                             f"timeout ({format_duration(self.timeout)})")
        _unique([q.name for q in self.queries], "query")
        if self.dsn is None and self.dsn_file is None and self.host is None:
            raise ValueError("set 'dsn' (for example ${DATABASE_URL}) or 'host' (with port, user, dbname)")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Redis


def as_redis_url(url: str) -> str:
    """The guide writes ``REDIS_URL=http://host:6379``: read ``http`` as ``redis`` and ``https`` as ``rediss``."""
    parts = urlsplit(url)
    scheme = {"http": "redis", "https": "rediss"}.get(parts.scheme)
    return urlunsplit((scheme, *parts[1:])) if scheme else url


class RedisTarget(Model):
    name: Name
    url: SecretStr = SecretStr("redis://localhost:6379/0")
    url_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    tls: TLSConfig = Field(default_factory=TLSConfig)
    interval: Duration = 15.0
    timeout: Duration = 2.0
    key_patterns: list[str] = Field(default_factory=list)
    scan_budget: Annotated[int, Field(ge=0)] = 1000
    memory_samples: Annotated[int, Field(ge=0)] = 16
    queues: list[str] = Field(default_factory=list)

    @field_validator("url", mode="before")
    @classmethod
    def _redis_scheme(cls, value: Any) -> Any:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        url = as_redis_url(raw)
        given, used = urlsplit(raw).scheme, urlsplit(url).scheme
        if used != given:
            log.warning("config_warning", extra={"fields": {
                "key": "redis.url",
                "msg": f"{given}:// is not a Redis URL scheme; using {used}:// "
                       f"(write {used}://host:port in REDIS_URL)"}})
        if used not in ("redis", "rediss", "unix"):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> RedisTarget:
        _check_timeout(self.timeout, self.interval)
        if "other" in self.key_patterns:
            raise ValueError("key pattern 'other' is reserved: keys matching no pattern are counted under it")
        if len(set(self.key_patterns)) != len(self.key_patterns):
            raise ValueError("key_patterns lists a pattern twice; a key belongs to the first pattern it matches")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Jaeger


class JaegerTarget(Model):
    name: Name
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
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    tls: TLSConfig = Field(default_factory=TLSConfig)

    @model_validator(mode="after")
    def _consistent(self) -> JaegerTarget:
        _check_timeout(self.timeout, self.interval)
        if self.interval + self.settle > self.lookback:
            raise ValueError(
                f"lookback ({format_duration(self.lookback)}) must be at least interval + settle "
                f"({format_duration(self.interval + self.settle)}), or a trace held back by settle leaves the "
                "window before the next poll reads it again")
        return self


# ---------------------------------------------------------------------------------------------------------------
# The whole file


class Config(Model):
    targets: Targets = Field(default_factory=Targets)
    api: list[ApiTarget] = Field(default_factory=list)
    postgres: list[PostgresTarget] = Field(default_factory=list)
    redis: list[RedisTarget] = Field(default_factory=list)
    jaeger: list[JaegerTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for section in ("api", "postgres", "redis", "jaeger"):
            _unique([t.name for t in getattr(self, section)], f"{section} target")
        return self


# ---------------------------------------------------------------------------------------------------------------
# Loading

_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _path_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _expand_string(value: str, env: Mapping[str, str], loc: tuple[int | str, ...], problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found is not None and (found != "" or default is None):
            return found
        if default is not None:
            return default
        problems.append(f"{_path_text(loc)}: environment variable {name} is not set "
                        f"(set it, or write ${{{name}:-default}})")
        return ""

    return _VAR_RE.sub(replace, value)


def _expand(node: Any, env: Mapping[str, str], loc: tuple[int | str, ...], problems: list[str]) -> Any:
    if isinstance(node, str):
        return _expand_string(node, env, loc, problems)
    if isinstance(node, list):
        return [_expand(item, env, (*loc, i), problems) for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {key: _expand(value, env, (*loc, str(key)), problems) for key, value in node.items()}
    return node


def _read_secret_files(node: Any, base_dir: Path, loc: tuple[int | str, ...], problems: list[str]) -> Any:
    """Replace every ``x_file: path`` with ``x: <file content>`` (stripped of its final newline)."""
    if isinstance(node, list):
        return [_read_secret_files(item, base_dir, (*loc, i), problems) for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        key_text = str(key)
        if key_text.endswith("_file") and key_text not in ("ca_file", "cert_file", "key_file") and value is not None:
            twin = key_text[: -len("_file")]
            if twin in node and node[twin] not in (None, ""):
                problems.append(f"{_path_text((*loc, key_text))}: set either {twin!r} or {key_text!r}, not both")
                continue
            path = Path(str(value))
            path = path if path.is_absolute() else base_dir / path
            try:
                out[twin] = path.read_text().rstrip("\r\n")
            except OSError as exc:
                problems.append(f"{_path_text((*loc, key_text))}: cannot read secret file {str(path)!r}: "
                                f"{exc.strerror or exc}")
            continue
        out[key_text] = _read_secret_files(value, base_dir, (*loc, key_text), problems)
    return out


def _allowed_keys(model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    names = []
    for name, field in model.model_fields.items():
        names.append(field.alias or name)
    return ", ".join(sorted(names))


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that owns the key at ``loc``, to list what keys it accepts."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(_model_at(loc))
        return f"{_path_text(loc)}: unknown key" + (f" (expected one of: {allowed})" if allowed else "")
    if kind == "missing":
        return f"{_path_text(loc)}: required key is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in ("literal_error", "enum"):
        message = f"{message}, got {error.get('input')!r}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"expected {message.removeprefix('Input should be ')}, got {error.get('input')!r}"
    return f"{_path_text(loc)}: {message}"


def parse_config(data: Any, source: str, env: Mapping[str, str] | None = None,
                 base_dir: Path | None = None) -> Config:
    """Validate already-parsed YAML data; ``source`` names it in errors."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a mapping of sections, got {type(data).__name__}"])
    problems: list[str] = []
    data = _expand(data, env, (), problems)
    data = _read_secret_files(data, base_dir or Path.cwd(), (), problems)
    if problems:
        raise ConfigError(source, problems)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}invalid YAML: {problem}"]) from None
    return parse_config(data, str(path), env, path.parent)


DEFAULT_CONFIG_YAML = """\
# Built in: probes the guide's default endpoints (see performance-testing-guide.md, "Configuration Options").
api:
  - name: gateway
    base_url: ${TEST_BASE_URL:-http://localhost:8020}
    interval: 15s
    timeout: 5s
    endpoints:
      - {name: health, path: /health}
redis:
  - name: cache
    url: ${REDIS_URL:-redis://localhost:6379/0}
jaeger:
  - name: tracing
    url: ${JAEGER_HOST:-http://localhost:16686}
"""

DEFAULT_POSTGRES_YAML = """\
postgres:
  - name: main
    dsn: ${DATABASE_URL}
"""


def default_config(env: Mapping[str, str] | None = None) -> Config:
    """The config used without ``--config``: the guide's defaults, plus PostgreSQL when DATABASE_URL is set."""
    env = os.environ if env is None else env
    data = yaml.safe_load(DEFAULT_CONFIG_YAML)
    if env.get("DATABASE_URL"):
        data.update(yaml.safe_load(DEFAULT_POSTGRES_YAML))
    return parse_config(data, "(built-in default config)", env)


# ---------------------------------------------------------------------------------------------------------------
# Showing a config without its secrets

_SENSITIVE_HEADER = re.compile(r"auth|token|secret|key|cookie|password|session", re.IGNORECASE)


def masked(config: Config) -> dict[str, Any]:
    """The effective config as plain data, secrets replaced, ready for YAML."""
    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, SecretStr):
            raw = node.get_secret_value()
            return mask_url(raw) if key in ("dsn", "url") else MASK
        if isinstance(node, BaseModel):
            out = {}
            for name, field in type(node).model_fields.items():
                value = getattr(node, name)
                if isinstance(value, float) and _parsed_by(field, parse_duration):
                    out[field.alias or name] = format_duration(value)
                elif isinstance(value, float) and _parsed_by(field, parse_ratio):
                    out[field.alias or name] = f"{value * 100:g}%"
                else:
                    out[field.alias or name] = walk(value, name)
            return out
        if isinstance(node, dict):
            if key == "headers":
                return {k: MASK if _SENSITIVE_HEADER.search(k)
                        else v.get_secret_value() if isinstance(v, SecretStr) else v
                        for k, v in node.items()}
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item, key) for item in node]
        if isinstance(node, Path):
            return str(node)
        return node

    result: dict[str, Any] = walk(config)
    return result


def _parsed_by(field: FieldInfo, parser: Any) -> bool:
    """Whether the field's type is Duration or Ratio (also inside ``| None``): known by its validator."""
    def mentions(node: Any) -> bool:
        return getattr(node, "func", None) is parser or any(mentions(arg) for arg in get_args(node))

    return any(getattr(m, "func", None) is parser for m in field.metadata) or mentions(field.annotation)


def dump_masked(config: Config) -> str:
    return yaml.safe_dump(masked(config), sort_keys=False, default_flow_style=False)
