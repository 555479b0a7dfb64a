"""Redis ``INFO`` as plain data: the fields we export, and counters that survive a server restart.

``INFO`` counters (keyspace hits, evictions, command calls...) restart from zero when Redis restarts or
someone runs ``CONFIG RESETSTAT``. We never mirror them as-is: :class:`CounterMirror` turns each reading into
the increase since the previous one, which the collector adds to its own counters, so they only ever go up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Info = Mapping[str, Any]

_DB_RE = re.compile(r"^db(\d+)$")
_QUANTILE_RE = re.compile(r"^p(\d+(?:\.\d+)?)$")


@dataclass
class CounterMirror:
    """Increases of server-side counters between readings, across restarts and resets.

    A reading carries the server's ``run_id``: a new ``run_id`` (restart) or a value below the last one
    (reset) means the counter started again from zero, so the whole new value is the increase. The first
    reading only sets the baseline: what happened before we started watching is not ours to count.
    """

    run_id: str | None = None
    last: dict[str, float] = field(default_factory=dict)
    seen_first: bool = False

    def advance(self, run_id: str, values: Mapping[str, float]) -> dict[str, float]:
        """The increase of each counter since the last reading; then ``values`` becomes the baseline."""
        restarted = self.run_id is not None and run_id != self.run_id
        deltas: dict[str, float] = {}
        for key, value in values.items():
            previous = self.last.get(key)
            if restarted or (previous is not None and value < previous):
                deltas[key] = value
            elif previous is not None:
                deltas[key] = value - previous
            elif self.seen_first:
                deltas[key] = value  # a counter that appeared since (e.g. a command's first call)
            else:
                deltas[key] = 0.0
        self.rebase(run_id, values)
        self.seen_first = True
        return deltas

    def rebase(self, run_id: str, values: Mapping[str, float]) -> None:
        """Take ``values`` as the new baseline without counting anything (our own commands' share)."""
        if self.run_id is not None and run_id != self.run_id:
            self.last = {}
        self.run_id = run_id
        self.last.update(values)


def number(info: Info, key: str) -> float | None:
    """A numeric field, or None when this server does not report it (older Redis, a compatible server)."""
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def numbers(info: Info, keys: tuple[str, ...]) -> dict[str, float]:
    """The numeric fields among ``keys`` the server reports."""
    out: dict[str, float] = {}
    for key in keys:
        value = number(info, key)
        if value is not None:
            out[key] = value
    return out


def keyspace(info: Info) -> dict[str, tuple[float, float]]:
    """``db`` number (as text) -> (keys, keys with a TTL), from ``INFO keyspace``."""
    out: dict[str, tuple[float, float]] = {}
    for key, value in info.items():
        match = _DB_RE.match(key)
        if match and isinstance(value, Mapping) and (keys := number(value, "keys")) is not None:
            out[match.group(1)] = (keys, number(value, "expires") or 0.0)
    return out


@dataclass(frozen=True)
class CommandStat:
    calls: float
    seconds: float


def command_stats(info: Info) -> dict[str, CommandStat]:
    """Command name (``get``, ``client|list``) -> calls and total time, from ``INFO commandstats``."""
    out: dict[str, CommandStat] = {}
    for key, value in info.items():
        if key.startswith("cmdstat_") and isinstance(value, Mapping) and (calls := number(value, "calls")) is not None:
            out[key[len("cmdstat_"):]] = CommandStat(calls, (number(value, "usec") or 0.0) / 1e6)
    return out


def quantile_label(name: str) -> str | None:
    """``p99.9`` -> ``0.999``; None for anything else."""
    match = _QUANTILE_RE.match(name)
    if not match:
        return None
    return f"{float(match.group(1)) / 100:.6g}"


def latency_percentiles(info: Info) -> dict[tuple[str, str], float]:
    """(command, quantile) -> seconds, from ``INFO latencystats`` (Redis >= 7; empty before)."""
    out: dict[tuple[str, str], float] = {}
    prefix = "latency_percentiles_usec_"
    for key, value in info.items():
        if key.startswith(prefix) and isinstance(value, Mapping):
            for name, usec in value.items():
                quantile = quantile_label(str(name))
                if quantile is not None and isinstance(usec, int | float):
                    out[(key[len(prefix):], quantile)] = float(usec) / 1e6
    return out
