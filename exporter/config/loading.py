"""Reading a config: YAML, then ``${VAR}`` / ``${VAR:-default}`` in every string value, then ``*_file`` secrets
(read here and nowhere else), then validation into :class:`~exporter.config.schema.Config`. Every problem is
raised as one :class:`ConfigError` whose lines read ``file: key.path[0].name: what was expected``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from exporter.config.schema import Config, config_model
from exporter.secrets import mask_url


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is ready to print, one problem per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = [_one_line(p) for p in problems]
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


# what str.splitlines() breaks on: a key or value quoted in a problem must not split it in two
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(problem: str) -> str:
    return problem.translate(_LINE_BREAKS)



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
    """The keys ``model`` accepts: its fields, and ``<name>_file`` beside each secret."""
    if model is None:
        return ""
    names = []
    for name, field in model.model_fields.items():
        names.append(field.alias or name)
        if field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ()):
            names.append(f"{name}_file")
    return ", ".join(sorted(names))


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that owns the key at ``loc``, to list what keys it accepts."""
    model: Any = config_model()
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
    # a secret's value is never repeated, only its type: a wrong one may still be the secret (or hold it)
    got = f"a {type(error.get('input')).__name__}" if _is_secret(loc) else repr(error.get("input"))
    if kind in ("literal_error", "enum"):
        message = f"{message}, got {got}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"expected {message.removeprefix('Input should be ')}, got {got}"
    return f"{_path_text(loc)}: {mask_url(message)}"


def _is_secret(loc: tuple[int | str, ...]) -> bool:
    """Whether the key at ``loc`` is a secret or inside one (a SecretStr field, or a mapping of them)."""
    model: Any = config_model()
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        field = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return False
        if _mentions(field.annotation, SecretStr):
            return True
        model = _inner_model(field.annotation)
    return False


def _mentions(annotation: Any, kind: type) -> bool:
    return annotation is kind or any(_mentions(arg, kind) for arg in getattr(annotation, "__args__", ()) or ())


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
        return config_model().model_validate(data)
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
    """The config used without ``--config.file``: the guide's defaults, plus PostgreSQL when DATABASE_URL is set."""
    env = os.environ if env is None else env
    data = yaml.safe_load(DEFAULT_CONFIG_YAML)
    if env.get("DATABASE_URL"):
        data.update(yaml.safe_load(DEFAULT_POSTGRES_YAML))
    return parse_config(data, "(built-in default config)", env)
