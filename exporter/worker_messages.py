"""What the serving process and its probe workers tell each other, and how it travels: pickled frames with a
4-byte length, on the worker's stdin and stdout (its stderr is the daemon's log)."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass
from typing import Any

from exporter.config.base import JobTarget
from exporter.jobs import SentTrace
from exporter.scheduler import LastRun

MAX_FRAME = 1 << 30


# -- serving process -> worker ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Assign:
    """Run exactly these jobs (config section, target entry); an unchanged entry keeps running as it is."""

    jobs: tuple[tuple[str, JobTarget], ...]


@dataclass(frozen=True)
class Stop:
    grace: float


# -- worker -> serving process ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Update:
    """A job's (or the worker's own, ``key="probe-<n>"``) sample lines by family name, for the families written
    since the last update; and, for a job, its last run (with its cause)."""

    key: str
    lines: dict[str, bytes]
    last: LastRun | None = None


@dataclass(frozen=True)
class Assigned:
    """The jobs of an :class:`Assign` run, and their series (at 0 before a first run) have been sent."""


@dataclass(frozen=True)
class Dropped:
    """A job was removed: its series go."""

    key: str


@dataclass(frozen=True)
class Stopped:
    cancelled: int


# -- both ways --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Traces:
    """Traces a probe started, for the trace collectors named (none: all) wherever they run."""

    sent: tuple[tuple[SentTrace, tuple[str, ...]], ...]


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message; raises ``asyncio.IncompleteReadError`` at the end of the stream."""
    size = int.from_bytes(await reader.readexactly(4), "big")
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes")
    return pickle.loads(await reader.readexactly(size))
