"""The report's infrastructure section: the guide's "Infrastructure" metrics (CPU, memory, disk I/O, network
I/O) over the window, from node_exporter's series in Prometheus, each judged against the threshold its alert uses
(:mod:`exporter.slo.infrastructure`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.reports.model import Window
from exporter.slo.infrastructure import CPU_BUSY, DISK_BUSY, FILESYSTEMS, MEMORY_USED, NIC

Query = Callable[[str], list[tuple[dict[str, str], float]]]  # an instant query at the window's end


@dataclass(frozen=True)
class Reading:
    """One infrastructure figure: its PromQL, unit, and the threshold above which it is a problem (or none)."""

    key: str
    title: str
    expr: str
    unit: str
    limit: float | None = None


def readings(window: Window) -> list[Reading]:
    w = f"{max(1, round(window.seconds))}s"
    return [
        Reading("cpu_busy_max", "CPU busy (highest instance, window mean)",
                f'max by (instance) (1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{{mode="idle"}}[{w}])))',
                "ratio", CPU_BUSY),
        Reading("memory_used_max", "Memory used (highest over the window)",
                f"max by (instance) (max_over_time((1 - node_memory_MemAvailable_bytes / "
                f"node_memory_MemTotal_bytes)[{w}:]))", "ratio", MEMORY_USED),
        Reading("disk_busy_max", "Disk busy (busiest device, window mean)",
                f"max by (instance) (rate(node_disk_io_time_seconds_total[{w}]))", "ratio", DISK_BUSY),
        Reading("disk_read", "Disk read", f"sum by (instance) (rate(node_disk_read_bytes_total[{w}]))", "bytes/s"),
        Reading("disk_written", "Disk written", f"sum by (instance) (rate(node_disk_written_bytes_total[{w}]))",
                "bytes/s"),
        Reading("network_received", "Network received",
                f"sum by (instance) (rate(node_network_receive_bytes_total{{{NIC}}}[{w}]))", "bytes/s"),
        Reading("network_sent", "Network sent",
                f"sum by (instance) (rate(node_network_transmit_bytes_total{{{NIC}}}[{w}]))", "bytes/s"),
        Reading("filesystem_free_min", "Filesystem free (fullest)",
                f"min by (instance) (node_filesystem_avail_bytes{{{FILESYSTEMS}}} / "
                f"node_filesystem_size_bytes{{{FILESYSTEMS}}})", "ratio"),
    ]


def judged(reading: Reading, values: dict[str, float]) -> dict[str, Any]:
    """A reading's figure per instance and its status: met, missed (above its limit) or no data."""
    figure: dict[str, Any] = {"title": reading.title, "unit": reading.unit, "source": f"prometheus: {reading.expr}"}
    if not values:
        return {**figure, "status": "no data", "reason": "no node_exporter series in the window"}
    figure["byInstance"] = {instance: round(value, 6) for instance, value in sorted(values.items())}
    if reading.limit is None:
        return {**figure, "status": "measured"}
    worst = max(values, key=lambda i: values[i])
    figure["limit"] = reading.limit
    if values[worst] > reading.limit:
        return {**figure, "status": "missed", "reason": f"{worst} at {values[worst]:.1%}, above {reading.limit:.0%}"}
    return {**figure, "status": "met"}


def infrastructure_section(query: Query, window: Window) -> dict[str, Any]:
    """Every reading over ``window``; a Prometheus that has no node_exporter series says so once."""
    out: dict[str, Any] = {}
    for reading in readings(window):
        values = {labels.get("instance", ""): value for labels, value in query(reading.expr)}
        out[reading.key] = judged(reading, values)
    if all(figure["status"] == "no data" for figure in out.values()):
        return {"status": "no data", "reason": "this Prometheus scrapes no node_exporter (the guide's "
                                               "Infrastructure metrics come from prometheus-node-exporter)",
                "readings": out}
    missed = [key for key, figure in out.items() if figure["status"] == "missed"]
    return {"status": "missed" if missed else "met", "missed": missed, "readings": out}


NOT_RECORDED = {"status": "no data", "reason": "a bench run's own measurements hold no node_exporter series: "
                                               "report from Prometheus (--prometheus) for the Infrastructure section"}
