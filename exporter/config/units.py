"""Config values with units: durations, ratios, URLs, names and listen addresses."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, Field

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


def parse_listen(value: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces, or ``default_host``) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT like {default_host}:9469, got {value!r}")
    return host.strip("[]") or default_host, int(port)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
HttpMethod = Annotated[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], BeforeValidator(_upper)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
UrlPath = Annotated[str, AfterValidator(_absolute_path)]
HttpUrlText = Annotated[str, AfterValidator(_http_url)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=64)]
PositiveInt = Annotated[int, Field(ge=1)]


def as_redis_url(url: str) -> str:
    """The guide writes ``REDIS_URL=http://host:6379``: read ``http`` as ``redis`` and ``https`` as ``rediss``."""
    parts = urlsplit(url)
    scheme = {"http": "redis", "https": "rediss"}.get(parts.scheme)
    return urlunsplit((scheme, *parts[1:])) if scheme else url


def as_libpq_url(dsn: str) -> str:
    """A URL as the masking rule reads it (exporter.secrets): the scheme in any case, the password up to the last
    ``@`` before the host. libpq reads only a lower-case scheme and ends the password at the first ``@``, so the
    scheme is lowered and an ``@`` in the user or password percent-encoded. Anything else is returned as it is."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme.lower() not in ("postgres", "postgresql"):
        return dsn
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    return f"{scheme.lower()}://{userinfo.replace('@', '%40')}{at}{host}{rest[end:]}"


_KEYWORD_PAIRS = re.compile(r"""\s*(?:[A-Za-z_]+\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s']+)\s*)*""")


def libpq_readable(dsn: str) -> bool:
    """Whether libpq can read a connection string: a ``postgresql://`` URL (as :func:`as_libpq_url` gives it)
    with a numeric port, or ``keyword=value`` pairs (a value quoted when it has spaces). Checked here without
    libpq, so that loading a config loads no database driver."""
    scheme, sep, _ = dsn.partition("://")
    if sep:
        if scheme not in ("postgres", "postgresql"):
            return False
        try:
            parts = urlsplit(dsn)
            for host in (parts.netloc.rpartition("@")[2] or "").split(","):
                port = host.rpartition("]")[2].rpartition(":")[2] if ":" in host.rpartition("]")[2] else ""
                if port and not port.isdigit():
                    return False
        except ValueError:
            return False
        return True
    return _KEYWORD_PAIRS.fullmatch(dsn) is not None
