"""Figures every benchmark reads: percentiles, and a process's memory and CPU from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def proc_status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def rss_mb(pid: int) -> float:
    """Resident memory now; NaN when the process has none to report."""
    value = proc_status(pid).get("VmRSS")
    return int(value.split()[0]) / 1024 if value else float("nan")


def peak_rss_mb(pid: int) -> float:
    value = proc_status(pid).get("VmHWM")
    return int(value.split()[0]) / 1024 if value else float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
