"""Every metric family perf-exporter exports, declared once: name, help, type, labels and buckets.

Jobs write series of these families into their :class:`exporter.store.MetricStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, eq=False)
class Family:
    name: str
    help: str
    kind: Kind
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.kind is Kind.COUNTER and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        if self.kind is Kind.HISTOGRAM and list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError(f"histogram {self.name} needs sorted unique buckets")
        FAMILIES.append(self)
        BY_NAME[self.name] = self


FAMILIES: list[Family] = []
BY_NAME: dict[str, Family] = {}


def counter(name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, help, Kind.COUNTER, labels)


def gauge(name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, help, Kind.GAUGE, labels)


def histogram(name: str, help: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Family:
    return Family(name, help, Kind.HISTOGRAM, labels, buckets)


# Latency buckets: every threshold a target may use must be one of these bounds (config.Targets checks it).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0,
                   2.5, 3.0, 5.0, 10.0)
TRACE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
SPAN_COUNT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
JOB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TTL_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400)

CT = ("collector", "target")

# ---------------------------------------------------------------------------------------------------------------
# The exporter itself

BUILD_INFO = gauge("perf_exporter_build_info", "perf-exporter version, always 1.", ("version",))
ASYNCIO_TASKS = gauge("perf_exporter_asyncio_tasks", "asyncio tasks alive in the daemon, counted at each scrape "
                      "(a number that keeps growing is a leak: bench/soak.py watches it).")
JOB_DURATION = histogram("perf_job_duration_seconds", "Time one run of a probe or collector job took.",
                         CT, JOB_BUCKETS)
JOB_RUNS = counter("perf_job_runs_total",
                   "Job runs by result: success, failure (target measured as down), error, timeout, skipped (due "
                   "while its previous run was still going).", (*CT, "result"))
JOB_LAST_SUCCESS = gauge("perf_job_last_success_timestamp_seconds",
                         "Unix time of the job's last successful run.", CT)
TARGET_UP = gauge("perf_target_up", "1 if the last run reached the target, else 0.", CT)
CONFIG_RELOAD_OK = gauge("perf_config_last_reload_successful", "1 if the last config (re)load succeeded.")
CONFIG_RELOAD_TIME = gauge("perf_config_last_reload_success_timestamp_seconds",
                           "Unix time of the last successful config (re)load.")

# ---------------------------------------------------------------------------------------------------------------
# The exporter's own timing: how late its processes run what is due (exporter.timing), and its shard

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PROCESS = ("process",)  # main (serves /metrics), or probe-<n> (a probe worker)
EVENT_LOOP_DELAY = histogram("perf_exporter_event_loop_delay_seconds",
                             "How late the process's event loop ran a wake-up that was due, sampled every 100 ms.",
                             PROCESS, LAG_BUCKETS)
SCHEDULE_LAG = histogram("perf_exporter_schedule_lag_seconds",
                         "How late job runs and the probes within them started against their schedule.",
                         PROCESS, LAG_BUCKETS)
CPU_WAIT = counter("perf_exporter_cpu_wait_seconds_total",
                   "Time the process's event loop thread was ready to run but waited for a CPU (kernel schedstat).",
                   PROCESS)
SHARD_INFO = gauge("perf_exporter_shard_info",
                   "Always 1: this replica's --shard and --total-shards (0 and 1 when not sharded).",
                   ("shard", "total_shards"))

# ---------------------------------------------------------------------------------------------------------------
# Synthetic API probes

HTTP_OUTCOMES = ("success", "http_4xx", "http_5xx", "timeout", "connect_error", "unexpected_status",
                 "assertion_failed")
HTTP_PHASES = ("resolve", "connect", "tls", "send", "wait", "receive")

HTTP_REQUEST_DURATION = histogram(
    "perf_http_request_duration_seconds",
    "Server time of a probe request: from the first byte on the wire (or connect) to the last byte read.",
    ("target", "endpoint", "method"), LATENCY_BUCKETS)
HTTP_REQUESTS = counter("perf_http_requests_total", "Probe requests by outcome.",
                        ("target", "endpoint", "method", "outcome"))
HTTP_PHASE_DURATION = gauge("perf_http_phase_duration_seconds",
                            "Phases of the endpoint's last request (final hop when redirected).",
                            ("target", "endpoint", "phase"))
HTTP_REDIRECTS = gauge("perf_http_redirects", "Redirects followed by the endpoint's last request.",
                       ("target", "endpoint"))
HTTP_RESPONSE_SIZE = gauge("perf_http_response_size_bytes", "Body size of the endpoint's last response.",
                           ("target", "endpoint"))
JOURNEY_DURATION = histogram("perf_journey_duration_seconds", "Time a whole journey took.",
                             ("target", "journey"), LATENCY_BUCKETS)
JOURNEY_STEP_DURATION = histogram("perf_journey_step_duration_seconds", "Time one journey step took.",
                                  ("target", "journey", "step"), LATENCY_BUCKETS)
JOURNEY_RUNS = counter("perf_journey_runs_total", "Journey runs by outcome (a step's outcome when one failed).",
                       ("target", "journey", "outcome"))
HTTP_TIMINGS_DISCARDED = counter(
    "perf_http_timings_discarded_total",
    "Probe requests whose duration was not observed: the probe's process ran other code or waited for a CPU for "
    "too long while the request was in flight, so the duration would have been partly the process's own.",
    ("target",))
PROBE_SUCCESS = gauge("perf_probe_success", "1 if the probe's (endpoint's or journey's) last run succeeded.",
                      ("target", "probe"))
# the `check` label: one per key of an endpoint's security: block (exporter.probes.security_target)
SECURITY_CHECKS = ("unauthenticated", "lower_role", "token_tampering", "object_authorization", "rate_limit",
                   "anonymous_rate_limit", "injection", "xss", "csrf")
SECURITY_CHECK_SUCCESS = gauge("perf_security_check_success",
                               "1 if the endpoint held its security check at the last run (check: "
                               + ", ".join(SECURITY_CHECKS) + ").", ("target", "endpoint", "check"))

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL

PG_STMT = ("target", "datname", "user", "queryid")
PG_STATEMENT_CALLS = counter("perf_pg_statement_calls_total", "Calls of a statement (pg_stat_statements).",
                             PG_STMT)
PG_STATEMENT_EXEC = counter("perf_pg_statement_exec_seconds_total", "Execution time of a statement.", PG_STMT)
PG_STATEMENT_ROWS = counter("perf_pg_statement_rows_total", "Rows returned or affected by a statement.", PG_STMT)
PG_STATEMENT_BLOCKS_HIT = counter("perf_pg_statement_shared_blocks_hit_total",
                                  "Shared buffer hits of a statement.", PG_STMT)
PG_STATEMENT_BLOCKS_READ = counter("perf_pg_statement_shared_blocks_read_total",
                                   "Shared blocks a statement read from disk or OS cache.", PG_STMT)
PG_STATEMENT_TEMP_WRITTEN = counter("perf_pg_statement_temp_blocks_written_total",
                                    "Temp blocks a statement wrote.", PG_STMT)
PG_STATEMENT_INFO = gauge("perf_pg_statement_info", "Normalized (truncated) text of an exported statement.",
                          ("target", "queryid", "query"))
PG_STATEMENT_MEAN = gauge("perf_pg_statement_mean_seconds",
                          "Mean execution time of a statement over the last collection interval.", PG_STMT)
PG_SLOW_STATEMENTS = gauge("perf_pg_slow_statements",
                           "Statements whose mean over the last interval exceeded slow_query.",
                           ("target", "datname"))
PG_QUERY_DURATION = histogram(
    "perf_pg_query_duration_seconds",
    "Statement durations, approximated: each statement's calls in an interval observed at its interval mean "
    "(hides spread within a statement; the P95 to trust is perf_pg_query_p95_*).",
    ("target", "datname"), LATENCY_BUCKETS)
# The database's P95 over the last collection interval, all statements together, from pg_stat_statements' sums
# (estimated; exporter.collectors.postgres.query_latency). The synthetic queries' exact, client-timed figures are
# PG_PROBE_DURATION.
PG_QUERY_P95 = gauge("perf_pg_query_p95_seconds",
                     "Estimated P95 of statement durations over the last interval (pg_stat_statements: lognormal "
                     "per statement fitted to its mean and stddev, mixed by calls).", ("target",))
PG_QUERY_P95_UPPER = gauge("perf_pg_query_p95_upper_bound_seconds",
                           "The P95 of statement durations over the last interval is at most this, whatever the "
                           "calls' distribution (from pg_stat_statements' calls, mean, stddev, min and max).",
                           ("target",))
PG_QUERY_P95_LOWER = gauge("perf_pg_query_p95_lower_bound_seconds",
                           "The P95 of statement durations over the last interval is at least this, whatever the "
                           "calls' distribution.", ("target",))
PG_PROBE_DURATION = histogram("perf_pg_probe_duration_seconds", "Exact duration of a synthetic query.",
                              ("target", "probe"), LATENCY_BUCKETS)
PG_PROBE_SUCCESS = gauge("perf_pg_probe_success", "1 if the synthetic query's last run succeeded.",
                         ("target", "probe"))
PG_STATEMENT_EVICTIONS = counter("perf_pg_statement_evictions_total",
                                 "pg_stat_statements entries evicted because pg_stat_statements.max was full.",
                                 ("target",))
PG_PROBE_SEQ_SCAN = gauge("perf_pg_probe_seq_scan",
                          "1 if the synthetic query's plan has a Seq Scan on a table above seq_scan_min_rows.",
                          ("target", "probe", "table"))
PG_EXTENSION_AVAILABLE = gauge("perf_pg_extension_available",
                               "1 if the extension is usable (shared_preload_libraries + CREATE EXTENSION).",
                               ("target", "datname", "extension"))
PG_CONNECTIONS = gauge("perf_pg_connections", "Backends by database, state and wait event type.",
                       ("target", "datname", "state", "wait_event_type"))
PG_OLDEST_QUERY_AGE = gauge("perf_pg_oldest_query_age_seconds", "Age of the longest running active query.",
                            ("target",))
PG_OLDEST_XACT_AGE = gauge("perf_pg_oldest_transaction_age_seconds", "Age of the oldest open transaction.",
                           ("target",))
PG_IDLE_IN_XACT = gauge("perf_pg_idle_in_transaction", "Sessions idle in transaction.", ("target", "datname"))
PG_LOCK_WAITING = gauge("perf_pg_lock_waiting_sessions", "Sessions waiting on a lock.", ("target", "datname"))
PG_BLOCKED_LOCKS = gauge("perf_pg_blocked_locks", "Lock requests not granted, by mode.", ("target", "mode"))
PG_LOCK_WAITING_STATEMENTS = gauge("perf_pg_lock_waiting_statements",
                                   "Sessions waiting on a lock at the last collection, by the statement they run "
                                   "(pg_stat_activity.query_id, PostgreSQL 14 and later).",
                                   ("target", "datname", "queryid"))
PG_DB = ("target", "datname")
PG_DB_BLOCKS_HIT = counter("perf_pg_database_blocks_hit_total", "Buffer cache hits.", PG_DB)
PG_DB_BLOCKS_READ = counter("perf_pg_database_blocks_read_total", "Blocks read outside the buffer cache.", PG_DB)
PG_DB_COMMITS = counter("perf_pg_database_commits_total", "Committed transactions.", PG_DB)
PG_DB_ROLLBACKS = counter("perf_pg_database_rollbacks_total", "Rolled back transactions.", PG_DB)
PG_DB_DEADLOCKS = counter("perf_pg_database_deadlocks_total", "Deadlocks detected.", PG_DB)
PG_DB_TEMP_FILES = counter("perf_pg_database_temp_files_total", "Temp files created.", PG_DB)
PG_DB_TEMP_BYTES = counter("perf_pg_database_temp_bytes_total", "Bytes written to temp files.", PG_DB)
PG_TABLE = ("target", "datname", "schema", "table")
PG_TABLE_SEQ_SCANS = counter("perf_pg_table_seq_scans_total", "Sequential scans of a table.", PG_TABLE)
PG_TABLE_SEQ_TUPLES = counter("perf_pg_table_seq_tuples_read_total", "Rows read by sequential scans.", PG_TABLE)
PG_TABLE_IDX_SCANS = counter("perf_pg_table_idx_scans_total", "Index scans of a table.", PG_TABLE)
PG_TABLE_LIVE = gauge("perf_pg_table_live_tuples", "Estimated live rows.", PG_TABLE)
PG_TABLE_DEAD = gauge("perf_pg_table_dead_tuples", "Estimated dead rows.", PG_TABLE)

# ---------------------------------------------------------------------------------------------------------------
# Redis

R = ("target",)
REDIS_UP = gauge("perf_redis_up", "1 if Redis answered the last collection.", R)
REDIS_HITS = counter("perf_redis_keyspace_hits_total", "Application key lookups that found the key.", R)
REDIS_MISSES = counter("perf_redis_keyspace_misses_total", "Application key lookups that missed.", R)
REDIS_MEMORY_USED = gauge("perf_redis_memory_used_bytes", "used_memory.", R)
REDIS_MEMORY_MAX = gauge("perf_redis_memory_max_bytes", "maxmemory (0: no limit).", R)
REDIS_MEMORY_RSS = gauge("perf_redis_memory_rss_bytes", "used_memory_rss.", R)
REDIS_EVICTED = counter("perf_redis_evicted_keys_total", "Keys evicted by the maxmemory policy.", R)
REDIS_EXPIRED = counter("perf_redis_expired_keys_total", "Keys expired by TTL.", R)
REDIS_KEYS = gauge("perf_redis_keys", "Keys per database.", ("target", "db"))
REDIS_KEYS_EXPIRING = gauge("perf_redis_keys_expiring", "Keys with a TTL per database.", ("target", "db"))
REDIS_CLIENTS = gauge("perf_redis_connected_clients", "Connected clients.", R)
REDIS_BLOCKED = gauge("perf_redis_blocked_clients", "Clients blocked on a blocking call.", R)
REDIS_COMMANDS = counter("perf_redis_commands_total", "Commands processed, by command.", ("target", "cmd"))
REDIS_COMMAND_DURATION = counter("perf_redis_command_duration_seconds_total", "CPU time spent per command.",
                                 ("target", "cmd"))
# ``percentile`` (p50, p99, p99.9, as Redis names them), not ``quantile``: Prometheus keeps that label for summaries.
REDIS_COMMAND_LATENCY = gauge("perf_redis_command_latency_seconds",
                              "Command latency percentiles from INFO latencystats.", ("target", "cmd", "percentile"))
REDIS_SLOWLOG_LENGTH = gauge("perf_redis_slowlog_length", "Entries in the slow log.", R)
REDIS_ROLE = gauge("perf_redis_role", "1 for the server's current role.", ("target", "role"))
REDIS_PING = histogram("perf_redis_ping_duration_seconds", "PING round trip.", R, LATENCY_BUCKETS)
REDIS_QUEUE_LENGTH = gauge("perf_redis_queue_length", "Length of a list or stream used as a queue.",
                           ("target", "queue"))
REDIS_QUEUE_LAG = gauge("perf_redis_queue_consumer_lag", "Entries a stream consumer group has not read yet.",
                        ("target", "queue", "group"))
REDIS_PATTERN_SAMPLED = gauge("perf_redis_pattern_keys_sampled",
                              "Keys matching the pattern in the last full SCAN pass.", ("target", "pattern"))
REDIS_PATTERN_NO_TTL = gauge("perf_redis_pattern_keys_without_ttl_ratio",
                             "Share of sampled keys of the pattern that never expire.", ("target", "pattern"))
REDIS_PATTERN_TTL = histogram("perf_redis_pattern_ttl_seconds", "Remaining TTL of sampled keys with a TTL.",
                              ("target", "pattern"), TTL_BUCKETS)
REDIS_PATTERN_MEMORY = gauge("perf_redis_pattern_memory_bytes",
                             "Mean MEMORY USAGE of sampled keys of the pattern.", ("target", "pattern"))
REDIS_SCANNED_KEYS = counter("perf_redis_scanned_keys_total",
                             "Keys the pattern sampling looked at (at most scan_budget per collection).", R)
REDIS_SCAN_PASSES = counter("perf_redis_scan_passes_total",
                            "Complete SCAN passes over the keyspace by the pattern sampling.", R)

# ---------------------------------------------------------------------------------------------------------------
# Jaeger

TRACE_DURATION = histogram("perf_trace_duration_seconds",
                           "End-to-end trace duration, by the root span's service and operation.",
                           ("target", "service", "operation"), TRACE_BUCKETS)
TRACE_SPANS = histogram("perf_trace_spans", "Spans per trace.", ("target", "service"), SPAN_COUNT_BUCKETS)
TRACE_ERRORS = counter("perf_trace_errors_total", "Spans tagged error.", ("target", "service"))
TRACE_SPAN_DURATION = histogram("perf_trace_span_duration_seconds",
                                "Span durations of the top operations by time (the rest as operation=other).",
                                ("target", "service", "operation"), TRACE_BUCKETS)
TRACE_CRITICAL_PATH = counter("perf_trace_critical_path_seconds_total",
                              "Time each service spends on traces' critical path.", ("target", "service"))
TRACE_SERIAL_CHILDREN = counter("perf_trace_serial_children_total",
                                "Sibling spans that ran one after another and could have run side by side.",
                                ("target", "service", "operation"))
TRACE_SERIAL_SAVING = counter("perf_trace_serial_saving_seconds_total",
                              "Time that running serial siblings side by side would have saved.",
                              ("target", "service", "operation"))
# target: the Jaeger target that looked the trace up; probe_target and probe: the API target and endpoint that
# sent it. Each Jaeger target meant to see a probe's traces looks them up on its own.
TRACE_PROBE_LABELS = ("target", "probe_target", "probe")
TRACE_PROBE_DURATION = gauge("perf_trace_probe_duration_seconds", "End-to-end duration of the probe's trace.",
                             TRACE_PROBE_LABELS)
TRACE_PROBE_SPANS = gauge("perf_trace_probe_spans", "Spans in the probe's trace.", TRACE_PROBE_LABELS)
TRACE_PROBE_SERVICES = gauge("perf_trace_probe_services", "Services the probe's trace reached.",
                             TRACE_PROBE_LABELS)
TRACE_PROBE_VISIBILITY = gauge("perf_trace_probe_visibility_seconds",
                               "Time from the probe's request until Jaeger served its trace.", TRACE_PROBE_LABELS)
TRACE_PROBE_MISSING = counter("perf_trace_probe_missing_total",
                              "Probe traces Jaeger still did not serve when the collector gave up looking.",
                              TRACE_PROBE_LABELS)
TRACE_ANALYSED = counter("perf_trace_analysed_total",
                         "Whole traces analysed for span durations, critical path and serial siblings.", ("target",))
TRACE_ANOMALIES = counter("perf_trace_anomalies_total",
                          "Oddities in traces: duplicate_span, missing_parent, child_outside_parent (clock skew), "
                          "truncated, warning, invalid_span.", ("target", "kind"))
# Where the time of each root operation's analysed traces went (exporter.collectors.jaeger.breakdown): the root span's
# service and operation, then the component on the critical path.
TRACE_ROOT = ("target", "root_service", "root_operation")
TRACE_PATH_LABELS = (*TRACE_ROOT, "service", "kind", "operation", "statement")
TRACE_ROOT_ANALYSED = counter("perf_trace_root_analysed_total",
                              "Whole traces analysed, by their root span's service and operation.", TRACE_ROOT)
TRACE_PATH_SECONDS = counter(
    "perf_trace_path_seconds_total",
    "Time on the critical path of the root's analysed traces, by component: a service's own work (kind=self), a "
    "database statement (db; statement is its fingerprint), a cache call (cache), waiting for a database "
    "connection (pool), or remote calls made one after another (serial, by the calling span).", TRACE_PATH_LABELS)
TRACE_PATH_CALLS = counter("perf_trace_path_calls_total",
                           "Spans of each component in the root's analysed traces, on the critical path or not.",
                           TRACE_PATH_LABELS)
TRACE_CACHE_READS = counter("perf_trace_cache_reads_total",
                            "Cache reads in the root's analysed traces, by result: hit, miss_filled (the trace then "
                            "wrote the key), miss_unfilled.", (*TRACE_ROOT, "service", "operation", "result"))
TRACE_CACHE_WRITE_TTL = histogram("perf_trace_cache_write_ttl_seconds",
                                  "TTL that the analysed traces' cache writes set (EX/PX in db.statement).",
                                  ("target", "service", "operation"), TTL_BUCKETS)
TRACE_ERROR_ORIGINS = counter("perf_trace_error_origins_total",
                              "Error spans with no error span below them (where errors started) in the root's "
                              "analysed traces, by the span's service.", (*TRACE_ROOT, "service"))
TRACE_STATEMENT_INFO = gauge("perf_trace_statement_info",
                             "Normalised text of a statement the traces' database spans run; statement is the "
                             "fingerprint perf_trace_path_* use.", ("target", "statement", "query"))
TRACE_SEARCH_TRUNCATED = counter("perf_trace_searches_truncated_total",
                                 "Searches that returned `limit` traces even in the narrowest window: traces "
                                 "were missed.", ("target", "service"))
