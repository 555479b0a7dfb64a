"""Infrastructure: the guide's CPU, memory, disk I/O and network I/O, from node_exporter.

The guide lists them under "Infrastructure" and names one alert, "High Database CPU: Database CPU > 90 %". The
exporter does not measure hosts itself: node_exporter (Debian's ``prometheus-node-exporter``) on each host does,
and Prometheus scrapes both. So these rules and this dashboard read node_exporter's metrics beside the exporter's
own process metrics, and live in folders of their own (``rules/infrastructure/``,
``grafana/dashboards/infrastructure/``), apart from the SLO files generated from ``targets:``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from exporter import metrics
from exporter.slo.alert_tests import expand
from exporter.slo.dashboards import RI, TAG, datasource_variable, graph, label_variable, query, single

if TYPE_CHECKING:
    from exporter.config.schema import Config

CPU_BUSY = 0.90  # the guide's "High Database CPU": CPU > 90 %
MEMORY_USED = 0.90
FILESYSTEM_FREE = 0.10
DISK_BUSY = 0.90  # share of the time the device had I/O in flight
FOR = "10m"
RATE = "5m"

FOLDER = "infrastructure"
RULES_PATH = f"{FOLDER}/infrastructure.rules.yml"
TESTS_PATH = f"{FOLDER}/tests/infrastructure.test.yml"
RUNBOOKS_PATH = f"{FOLDER}/runbooks.md"
DASHBOARD_PATH = f"dashboards/{FOLDER}/infrastructure.json"
UID = "perf-infrastructure"

CPU_RECORD = f"instance:node_cpu_utilisation:rate{RATE}"
MEMORY_RECORD = "instance:node_memory_utilisation:ratio"
DISK_RECORD = f"instance_device:node_disk_io_time_seconds:rate{RATE}"
# filesystems that hold data: not the kernel's, not a container's read-only layers
FILESYSTEMS = 'fstype!~"tmpfs|ramfs|devtmpfs|squashfs|overlay|nsfs|proc|sysfs|cgroup2?|autofs|fuse.lxcfs"'
NIC = 'device!="lo"'
I = 'instance=~"$instance"'  # noqa: E741 - the dashboard's instance matcher, as dashboards.T is the target's
OURS = f"on (job, instance) group_left() {metrics.BUILD_INFO.name}"  # the exporter's processes, not others'


# -- rules ---------------------------------------------------------------------------------------------------------


def _alert(name: str, expr: str, summary: str, description: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": FOR, "labels": {"severity": "warning", "area": FOLDER},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"rules/{RUNBOOKS_PATH}#{name.lower()}"}}


def filesystem_free(where: str = "") -> str:
    match = f"{FILESYSTEMS}{', ' + where if where else ''}"
    return f"node_filesystem_avail_bytes{{{match}}} / node_filesystem_size_bytes{{{match}}}"


def infrastructure_rules() -> dict[str, Any]:
    records = [
        {"record": CPU_RECORD, "expr": f'1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{{mode="idle"}}'
                                       f"[{RATE}]))"},
        {"record": MEMORY_RECORD, "expr": "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes"},
        {"record": DISK_RECORD, "expr": f"rate(node_disk_io_time_seconds_total[{RATE}])"},
    ]
    alerts = [
        _alert("HostCpuHigh", f"{CPU_RECORD} > {CPU_BUSY:g}",
               "A host's CPU is above 90 % busy (the guide's High Database CPU).",
               "{{ $labels.instance }} has been {{ $value | humanizePercentage }} busy for 10 minutes; on the "
               "database host, look at the slowest statements first."),
        _alert("HostMemoryHigh", f"{MEMORY_RECORD} > {MEMORY_USED:g}",
               "A host has less than 10 % of its memory available.",
               "{{ $labels.instance }} has used {{ $value | humanizePercentage }} of its memory for 10 minutes; "
               "the kernel will soon reclaim caches or kill processes."),
        _alert("HostDiskSpaceLow", f"{filesystem_free()} < {FILESYSTEM_FREE:g}",
               "A filesystem has less than 10 % free space.",
               "{{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} has only "
               "{{ $value | humanizePercentage }} free."),
        _alert("HostDiskBusy", f"{DISK_RECORD} > {DISK_BUSY:g}",
               "A disk has had I/O in flight more than 90 % of the time.",
               "{{ $labels.device }} on {{ $labels.instance }} has been busy {{ $value | humanizePercentage }} "
               "of the time for 10 minutes: requests queue behind it."),
    ]
    return {"groups": [{"name": "perf-exporter-infrastructure", "rules": records + alerts}]}


# -- promtool unit tests -------------------------------------------------------------------------------------------

NODE = {"job": "node", "instance": "db-host:9100"}


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in {**labels, **NODE}.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _case(rules: dict[str, Any], alert: str, series: list[dict[str, str]], labels: dict[str, str],
          value: float | None) -> dict[str, Any]:
    """At 20 minutes: the alert firing with ``value`` (its annotations expanded as Prometheus does), or silent."""
    rule = next(r for r in rules["groups"][0]["rules"] if r.get("alert") == alert)
    expected: list[dict[str, Any]] = []
    if value is not None:
        alert_labels = {**labels, **NODE}
        expected = [{"exp_labels": {**alert_labels, **rule["labels"]},
                     "exp_annotations": {k: expand(v, alert_labels, value)
                                         for k, v in rule["annotations"].items()}}]
    state = "fires" if value is not None else "silent"
    return {"name": f"{alert}: {state}", "interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "20m", "alertname": alert, "exp_alerts": expected}]}


def infrastructure_tests(rules: dict[str, Any]) -> dict[str, Any]:
    """One case where each alert fires and one where it stays silent, 5 % past or short of its threshold.
    Counters grow by whole seconds per minute, so the rates (and the values in the texts) are exact."""
    cpu = {"cpu": "0", "mode": "idle"}
    disk = {"device": "vda"}
    fs = {"device": "/dev/vda1", "fstype": "ext4", "mountpoint": "/var/lib/postgresql"}
    memory = [("node_memory_MemTotal_bytes", "10000000000+0x30")]
    tests = [
        _case(rules, "HostCpuHigh", [_series("node_cpu_seconds_total", cpu, "0+3x30")], {}, 0.95),
        _case(rules, "HostCpuHigh", [_series("node_cpu_seconds_total", cpu, "0+9x30")], {}, None),
        _case(rules, "HostMemoryHigh", [*(_series(n, {}, v) for n, v in memory),
                                        _series("node_memory_MemAvailable_bytes", {}, "500000000+0x30")], {}, 0.95),
        _case(rules, "HostMemoryHigh", [*(_series(n, {}, v) for n, v in memory),
                                        _series("node_memory_MemAvailable_bytes", {}, "1500000000+0x30")], {}, None),
        _case(rules, "HostDiskSpaceLow", [_series("node_filesystem_avail_bytes", fs, "5000000000+0x30"),
                                          _series("node_filesystem_size_bytes", fs, "100000000000+0x30")], fs, 0.05),
        _case(rules, "HostDiskSpaceLow", [_series("node_filesystem_avail_bytes", fs, "15000000000+0x30"),
                                          _series("node_filesystem_size_bytes", fs, "100000000000+0x30")], fs,
              None),
        _case(rules, "HostDiskBusy", [_series("node_disk_io_time_seconds_total", disk, "0+57x30")], disk, 0.95),
        _case(rules, "HostDiskBusy", [_series("node_disk_io_time_seconds_total", disk, "0+51x30")], disk, None),
    ]
    return {"rule_files": ["../infrastructure.rules.yml"], "evaluation_interval": "1m", "tests": tests}


RUNBOOKS = {
    "HostCpuHigh": ("The guide's \"High Database CPU\": the host has been more than 90 % busy for 10 minutes.",
                    "On the database host, the slowest statements are the first suspects:\n\n```sql\nSELECT query, "
                    "calls, mean_exec_time FROM pg_stat_statements ORDER BY mean_exec_time DESC LIMIT 10;\n```\n\n"
                    "Add the indexes they lack (the Database dashboard's sequential scans and "
                    "`perf_pg_probe_seq_scan` name the tables). Elsewhere, `top` names the process."),
    "HostMemoryHigh": ("Less than 10 % of the host's memory has been available for 10 minutes.",
                       "Find the largest processes (`ps aux --sort=-rss | head`); on the database host check "
                       "`shared_buffers` and `work_mem` against the memory, on the cache host Redis's "
                       "`used_memory` and `maxmemory`."),
    "HostDiskSpaceLow": ("A data filesystem has less than 10 % free space.",
                         "`du -xh --max-depth=2 <mountpoint> | sort -h | tail` finds what grew; for PostgreSQL, "
                         "WAL kept by an inactive replication slot is a usual cause "
                         "(`SELECT * FROM pg_replication_slots`)."),
    "HostDiskBusy": ("The device has had I/O in flight more than 90 % of the last 10 minutes.",
                     "`iostat -x 5` shows who waits; on the database host, statements reading many blocks "
                     "(`perf_pg_statement_shared_blocks_read_total`) are the usual cause."),
}


def infrastructure_runbooks(rules: dict[str, Any]) -> str:
    lines = ["# Infrastructure runbooks", "",
             "Generated by `perf-exporter render rules`; the alerts are in `infrastructure.rules.yml` and read "
             "node_exporter's metrics.", ""]
    for rule in rules["groups"][0]["rules"]:
        if "alert" in rule:
            meaning, action = RUNBOOKS[rule["alert"]]
            lines += [f"## {rule['alert']}", "", meaning, "", f"Expression: `{rule['expr']}` for {rule['for']}.",
                      "", action, ""]
    return "\n".join(lines)


def rule_outputs() -> dict[str, Any]:
    """Path under rules/ -> content: YAML data for the rule and test files, text for the runbooks."""
    rules = infrastructure_rules()
    return {RULES_PATH: rules, TESTS_PATH: infrastructure_tests(rules), RUNBOOKS_PATH: infrastructure_runbooks(rules)}


# -- dashboard -----------------------------------------------------------------------------------------------------


def _rate(metric: str, where: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{where}}}[{RI}]))"


def infrastructure_dashboard(config: Config | None = None) -> db.Dashboard:
    cpu_busy = f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle", {I}}}[{RI}]))'
    memory_used = f"1 - node_memory_MemAvailable_bytes{{{I}}} / node_memory_MemTotal_bytes{{{I}}}"
    red_above = ((None, "green"), (CPU_BUSY, "red"))
    return (db.Dashboard("perf-exporter / Infrastructure").uid(UID).tags([TAG, "node_exporter"]).refresh("30s")
            .description("The guide's infrastructure metrics from node_exporter: CPU, memory, disk I/O and network "
                         "I/O per host, and the exporter's own process.")
            .time("now-3h", "now").timezone("browser").editable().tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .link(db.DashboardLink("perf-exporter").type(dm.DashboardLinkType.DASHBOARDS).tags([TAG])
                  .as_dropdown(True).include_vars(False).keep_time(True))
            .with_variable(datasource_variable())
            .with_variable(label_variable("instance", "Host", "node_uname_info"))
            .with_row(db.Row("CPU"))
            .with_panel(single("CPU busy (busiest host)", query(f"max({cpu_busy})", instant=True), "percentunit",
                               red_above))
            .with_panel(single("Memory used (fullest host)", query(f"max({memory_used})", instant=True),
                               "percentunit", ((None, "green"), (MEMORY_USED, "red"))))
            .with_panel(single("Load (1m) per CPU", query(
                f"max(node_load1{{{I}}} / on (instance) count by (instance) "
                f'(node_cpu_seconds_total{{mode="idle", {I}}}))', instant=True), "short",
                ((None, "green"), (1, "red"))))
            .with_panel(single("Least free filesystem", query(f"min({filesystem_free(I)})", instant=True),
                               "percentunit", ((None, "red"), (FILESYSTEM_FREE, "green"))))
            .with_panel(graph("CPU busy", query(cpu_busy, "{{instance}}"), unit="percentunit", line=CPU_BUSY,
                              description="The guide's High Database CPU alert fires above the line for 10 minutes."))
            .with_panel(graph("CPU by mode", query(_rate("node_cpu_seconds_total", f'mode!="idle", {I}',
                                                         "instance, mode"), "{{instance}} {{mode}}"),
                              unit="short", stack=True, description="CPU seconds per second (cores busy)."))
            .with_row(db.Row("Memory"))
            .with_panel(graph("Memory used", query(memory_used, "{{instance}}"), unit="percentunit",
                              line=MEMORY_USED))
            .with_panel(graph("Memory", query(f"node_memory_MemTotal_bytes{{{I}}} - node_memory_MemAvailable_bytes"
                                              f"{{{I}}}", "{{instance}} used"),
                              query(f"node_memory_MemAvailable_bytes{{{I}}}", "{{instance}} available", ref="B"),
                              unit="bytes"))
            .with_row(db.Row("Disk I/O"))
            .with_panel(graph("Disk read and written", query(_rate("node_disk_read_bytes_total", I,
                                                                   "instance, device"), "{{instance}} {{device}} read"),
                              query(_rate("node_disk_written_bytes_total", I, "instance, device"),
                                    "{{instance}} {{device}} written", ref="B"), unit="Bps", width=8))
            .with_panel(graph("Disk busy", query(f"rate(node_disk_io_time_seconds_total{{{I}}}[{RI}])",
                                                 "{{instance}} {{device}}"), unit="percentunit", line=DISK_BUSY,
                              width=8))
            .with_panel(graph("Filesystem free", query(filesystem_free(I), "{{instance}} {{mountpoint}}"),
                              unit="percentunit", line=FILESYSTEM_FREE, width=8))
            .with_row(db.Row("Network I/O"))
            .with_panel(graph("Received", query(_rate("node_network_receive_bytes_total", f"{NIC}, {I}",
                                                      "instance, device"), "{{instance}} {{device}}"),
                              unit="Bps", width=8))
            .with_panel(graph("Sent", query(_rate("node_network_transmit_bytes_total", f"{NIC}, {I}",
                                                  "instance, device"), "{{instance}} {{device}}"), unit="Bps",
                              width=8))
            .with_panel(graph("Errors and drops", query(
                _rate("node_network_receive_errs_total", f"{NIC}, {I}", "instance") + " + "
                + _rate("node_network_transmit_errs_total", f"{NIC}, {I}", "instance"), "{{instance}} errors"),
                query(_rate("node_network_receive_drop_total", f"{NIC}, {I}", "instance") + " + "
                      + _rate("node_network_transmit_drop_total", f"{NIC}, {I}", "instance"), "{{instance}} drops",
                      ref="B"), unit="pps", width=8))
            .with_row(db.Row("perf-exporter process"))
            .with_panel(graph("Exporter CPU", query(f"rate(process_cpu_seconds_total[{RI}]) * {OURS}",
                                                    "{{instance}}"), unit="short", width=8,
                              description="CPU seconds per second of each perf-exporter process."))
            .with_panel(graph("Exporter memory", query(f"process_resident_memory_bytes * {OURS}", "{{instance}}"),
                              unit="bytes", width=8))
            .with_panel(graph("Exporter open files", query(f"process_open_fds * {OURS}", "{{instance}} open"),
                              query(f"process_max_fds * {OURS}", "{{instance}} limit", ref="B"), unit="short",
                              width=8)))
