"""CPU time of a process and of the whole machine, from /proc (Linux), to tell whether the load generator was
the bottleneck. Readers return None where /proc is not there."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuMark:
    """One reading: the process's CPU seconds, the machine's busy and total CPU seconds (all cores)."""

    process: float | None
    machine_busy: float | None
    machine_total: float | None


def process_cpu_seconds(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces; skip past it
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of all cores since boot."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return (total - idle) / TICKS, total / TICKS


def mark(pid: int) -> CpuMark:
    machine = machine_cpu_seconds()
    return CpuMark(process_cpu_seconds(pid), machine[0] if machine else None, machine[1] if machine else None)


def shares(start: CpuMark, end: CpuMark, wall: float, cores: int) -> tuple[float | None, float | None]:
    """(process share of all cores, machine busy share) between two readings ``wall`` seconds apart."""
    process = None
    if start.process is not None and end.process is not None and wall > 0:
        process = (end.process - start.process) / (wall * cores)
    machine = None
    if None not in (start.machine_busy, start.machine_total, end.machine_busy, end.machine_total):
        total = end.machine_total - start.machine_total  # type: ignore[operator]
        if total > 0:
            machine = (end.machine_busy - start.machine_busy) / total  # type: ignore[operator]
    return process, machine
