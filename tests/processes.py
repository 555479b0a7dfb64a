"""What /proc says of the processes the tests start: their command lines, and which of them still run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path


def command_lines() -> Iterator[tuple[int, list[bytes]]]:
    """Every process's pid and argv (those that exit while being read are left out)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        yield int(entry.name), argv


def running(pids: Iterable[int]) -> set[int]:
    """The pids still running (a zombie has finished: only its parent's wait is missing)."""
    found = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.add(pid)
    return found
