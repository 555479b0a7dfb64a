"""The SQL the PostgreSQL collector runs, per server and extension version.

Everything here works for a role granted ``pg_monitor`` (superuser is never needed) on PostgreSQL 12 to 18
(tested on 15 and 18). pg_stat_statements columns are read from the installed view rather than guessed from the
server version, because the extension's version (not the server's) decides them: ``total_time`` before 1.8
(PostgreSQL 12), ``total_exec_time`` after; ``toplevel`` and ``pg_stat_statements_info`` from 1.9 (PostgreSQL 14);
1.10 (15, 16) adds JIT and temp-block timings; ``stats_since`` and ``minmax_stats_since`` from 1.11 (PostgreSQL
17, which also renamed the block-time columns; we read none of those); 1.12 (PostgreSQL 18) adds WAL-buffer and
parallel-worker counters we do not read, and folds lists of constants (``IN (1, 2, 3)``) into one entry. Table
and session views read here are unchanged from 15 to 18.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

EXTENSION_SCHEMA = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

# Whether the role sees other roles' statements and sessions.
PRIVILEGES = """
SELECT current_user::text,
       r.rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
FROM pg_roles r WHERE r.rolname = current_user
"""

DATABASES = """
SELECT datname FROM pg_database
WHERE datallowconn AND NOT datistemplate AND has_database_privilege(datname, 'CONNECT')
ORDER BY datname
"""

VIEW_COLUMNS = """
SELECT attname::text FROM pg_attribute
WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped
"""

# Sessions of clients (not background workers), the collector's own included.
ACTIVITY = """
SELECT coalesce(datname, ''), coalesce(state, 'unknown'), coalesce(wait_event_type, 'none'), count(*),
       coalesce(extract(epoch FROM max(now() - query_start)), 0)::float8,
       coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3
"""

BLOCKED_LOCKS = "SELECT mode, count(*) FROM pg_locks WHERE NOT granted GROUP BY mode"

# Sessions waiting on a lock, by the statement they run (query_id: PostgreSQL 14 on, with compute_query_id, which
# pg_stat_statements turns on; read through jsonb so that older servers answer with none).
LOCK_WAITING_STATEMENTS = """
SELECT coalesce(datname, ''), to_jsonb(a) ->> 'query_id', count(*)
FROM pg_stat_activity a
WHERE backend_type = 'client backend' AND wait_event_type = 'Lock'
GROUP BY 1, 2
"""

LOCK_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
              "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

DATABASE_STATS = """
SELECT datname, blks_hit, blks_read, xact_commit, xact_rollback, deadlocks, temp_files, temp_bytes
FROM pg_stat_database WHERE datname IS NOT NULL
"""

TABLE_STATS = """
SELECT schemaname::text, relname::text, coalesce(seq_scan, 0), coalesce(seq_tup_read, 0),
       coalesce(idx_scan, 0), coalesce(n_live_tup, 0), coalesce(n_dead_tup, 0)
FROM pg_stat_user_tables
ORDER BY seq_tup_read DESC NULLS LAST, schemaname, relname
LIMIT %s
"""

# Rows of a table, for "a Seq Scan on a table above seq_scan_min_rows": the planner's estimate, or the
# statistics collector's when the table was never analyzed (reltuples = -1 since PostgreSQL 14).
TABLE_ROWS = """
SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples ELSE coalesce(s.n_live_tup, 0) END::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE n.nspname = %s AND c.relname = %s
"""


@dataclass(frozen=True)
class StatementQueries:
    """The pg_stat_statements SQL for the extension installed in one database."""

    counters: sql.Composed
    texts: sql.Composed
    info: sql.Composed | None


def statement_queries(schema: str, columns: set[str], has_info: bool) -> StatementQueries:
    """``columns``: the columns of ``<schema>.pg_stat_statements``; ``has_info``: whether
    ``pg_stat_statements_info`` exists.

    Counters are read with ``showtext := false``: the texts (the costly part with thousands of statements) are
    fetched only for the statements exported, by :attr:`StatementQueries.texts`.
    """
    exec_time = "total_exec_time" if "total_exec_time" in columns else "total_time"
    since = ("extract(epoch FROM max(s.stats_since))::float8" if "stats_since" in columns else "NULL::float8")
    # the spread of the calls (exporter.collectors.postgres.query_latency): sum of squares from the population
    # stddev, and
    # the fastest and slowest call since minmax_stats_since (PostgreSQL 17) or the entry's start
    timing = "_exec_time" if "total_exec_time" in columns else "_time"
    minmax_since = ("extract(epoch FROM max(s.minmax_stats_since))::float8" if "minmax_stats_since" in columns
                    else "NULL::float8")
    ns = sql.Identifier(schema)
    counters = sql.SQL("""
SELECT coalesce(d.datname::text, ''), coalesce(r.rolname::text, ''), coalesce(s.queryid::text, ''),
       coalesce(sum(s.calls), 0)::float8, coalesce(sum(s.{exec_time}) / 1000, 0)::float8,
       coalesce(sum(s.rows), 0)::float8, coalesce(sum(s.shared_blks_hit), 0)::float8,
       coalesce(sum(s.shared_blks_read), 0)::float8, coalesce(sum(s.temp_blks_written), 0)::float8,
       {since},
       coalesce(sum(CASE WHEN s.calls > 0 THEN s.calls * s.{stddev} ^ 2 + s.{exec_time} ^ 2 / s.calls END)
                / 1e6, 0)::float8,
       coalesce(min(s.{min_time}) / 1000, 0)::float8, coalesce(max(s.{max_time}) / 1000, 0)::float8,
       {minmax_since}
FROM {ns}.pg_stat_statements(false) s
LEFT JOIN pg_database d ON d.oid = s.dbid
LEFT JOIN pg_roles r ON r.oid = s.userid
GROUP BY 1, 2, 3
""").format(exec_time=sql.Identifier(exec_time), since=sql.SQL(since), ns=ns,
             stddev=sql.Identifier(f"stddev{timing}"), min_time=sql.Identifier(f"min{timing}"),
             max_time=sql.Identifier(f"max{timing}"), minmax_since=sql.SQL(minmax_since))
    texts = sql.SQL("""
SELECT s.queryid::text, min(s.query) FROM {ns}.pg_stat_statements(true) s
WHERE s.queryid = ANY(%s::bigint[]) GROUP BY 1
""").format(ns=ns)
    info = sql.SQL("SELECT extract(epoch FROM stats_reset)::float8, dealloc::float8 "
                   "FROM {ns}.pg_stat_statements_info").format(ns=ns) if has_info else None
    return StatementQueries(counters, texts, info)
