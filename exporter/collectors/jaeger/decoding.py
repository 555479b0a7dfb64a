"""What Jaeger's wire formats share when decoded with msgspec: the errors, the Struct base and the helpers.

Jaeger serves traces in two shapes, each decoded by a module of its own into
:mod:`exporter.collectors.jaeger.traces`'s plain types: the v1 "UI" JSON (:mod:`~exporter.collectors.jaeger.v1`,
``/api/traces``) and OTLP JSON (:mod:`~exporter.collectors.jaeger.otlp`, ``/api/v3``), whose api_v3 also has trace
summaries (:mod:`~exporter.collectors.jaeger.summaries`). Each declares typed :class:`msgspec.Struct` classes with
only the fields we read: msgspec decodes a body straight into them and skips the rest (logs, tag types, process
tags, most attributes) without building it, which is what makes a poll of 10,000 traces fast
(``bench/bench_jaeger.py`` compares it with ``json.loads`` and ``orjson.loads`` of the whole body).

A body that is not JSON raises :class:`BodyNotJson`; JSON of the wrong shape raises :class:`TraceDataError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec
from msgspec import Raw, Struct

Skip = Callable[[str], bool]
Bytes = bytes | bytearray
Body = Bytes | Mapping[str, Any]  # a response body as received, or already parsed (tests, fixtures)
TRUE = (True, 1, "true", "True", "TRUE", "1")
Int = int | float | str  # int64 may arrive as a string; anything else is checked when it is read
T = TypeVar("T")


class TraceDataError(ValueError):
    """A response or trace that does not have the shape Jaeger's API documents."""


class BodyNotJson(TraceDataError):
    """A body that is not JSON at all (HTML, truncated, empty)."""


class Decoded(Struct, gc=False):
    """Base of every decoded shape: no reference cycles, so the cyclic GC need not track them."""


def as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TraceDataError(f"{what} is not an integer: {value!r}")
    try:
        return int(value)  # int64 values may arrive as strings (above 2^53, and always in OTLP JSON)
    except (TypeError, ValueError):
        raise TraceDataError(f"{what} is not an integer: {value!r}") from None


def decode(decoder: msgspec.json.Decoder[T], body: Bytes | Raw) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise TraceDataError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BodyNotJson(str(exc)) from None


