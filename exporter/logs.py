"""Structured logging: one event per line, as logfmt or JSON.

Call sites log an event name as the message and put facts in ``extra={"fields": {...}}`` (see :func:`event`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from exporter.secrets import mask_url

_RESERVED = {"ts", "level", "logger", "event"}


def event(logger: logging.Logger, level: int, name: str, **fields: Any) -> None:
    logger.log(level, name, extra={"fields": fields})


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or any(c in text for c in ' "=\\\n\t'):
        return json.dumps(text)
    return text


def _masked(value: Any) -> Any:
    """A field's value through the masking rule: strings, the strings inside lists and mappings, and anything else
    that would be written as its ``str()`` (an exception, a path)."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return mask_url(str(value))


class _Formatter(logging.Formatter):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.json = style == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": mask_url(record.getMessage()),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            key = f"field_{key}" if key in _RESERVED else key
            fields[key] = _masked(value)
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = mask_url(f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
        if self.json:
            return json.dumps(fields, default=str)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


def setup_logging(level: str = "info", style: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(style))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
