"""The recommendation rules on data: each of the guide's common issues leads from its symptom through the linked
signals to a cause and the guide's solution; chains are not advised to run side by side; checks; priorities."""

from __future__ import annotations

from exporter.analysis import recommendations as rec
from exporter.analysis.recommendations_facts import (
    Cache,
    ChildSpan,
    Database,
    Endpoint,
    Facts,
    KeyPattern,
    QueryP95,
    Queue,
    SerialGroup,
    SpanTime,
    Statement,
    Table,
    Targets,
    Tracing,
    statement_tables,
)

SLOW_SQL = ("SELECT count(*), max(o.created_at) FROM tripo04os_demo.orders o CROSS JOIN pg_sleep($1) "
            "WHERE o.rider_id = $2")


def endpoint(name: str, p95: float, requests: float = 100, **kw: object) -> Endpoint:
    return Endpoint("gateway", name, requests, mean_s=p95 / 2, p95_s=p95, p99_s=p95 * 1.2, **kw)  # type: ignore[arg-type]


def facts(**kw: object) -> Facts:
    return Facts(60.0, Targets(endpoint_p95={"create_order": 0.3}), sources={"statements": "prometheus: stmts"},
                 **kw)  # type: ignore[arg-type]


def orders_db(slow: bool = True, p95: QueryP95 | None = None) -> Database:
    statements = [Statement("main", "app", "111", "SELECT id FROM tripo04os_demo.orders WHERE id = $1", 500, 0.5)]
    if slow:
        statements.append(Statement("main", "app", "222", SLOW_SQL, 40, 40 * 0.26))
    return Database("main", tuple(statements),
                    (Table("main", "app", "tripo04os_demo", "orders", seq_scans=45, seq_rows_read=90_000,
                           idx_scans=500, live=2000, dead=10),
                     Table("main", "app", "tripo04os_demo", "trips", seq_scans=0, live=10, dead=0)),
                    (("rider_active_orders", "tripo04os_demo.orders"),), p95)


def test_statement_tables_reads_from_join_update_into_but_not_functions() -> None:
    assert statement_tables(SLOW_SQL) == ["tripo04os_demo.orders"]
    assert statement_tables("UPDATE trips SET status = $1") == ["trips"]
    assert statement_tables("INSERT INTO public.orders (a) VALUES ($1)") == ["public.orders"]
    assert statement_tables("SELECT * FROM a JOIN b ON a.id = b.id") == ["a", "b"]
    assert statement_tables(None) == []


def test_a_slow_endpoint_leads_through_the_traces_to_the_statement_and_the_table_it_scans() -> None:
    f = facts(endpoints=(endpoint("create_order", 0.9, 50, phases_s={"connect": 0.0002}),
                         endpoint("get_order", 0.02, 300)),
              databases=(orders_db(),),
              tracing=(Tracing("jaeger", 100, 0.5, 0.0, {"order-service": 40.0, "api-gateway": 5.0},
                               spans=(SpanTime("order-service", "SELECT tripo04os_demo.orders", 0.26, 40),)),))
    [found] = rec.slow_api_endpoints(f)
    assert found.where == "create_order -> statement 222 -> table tripo04os_demo.orders"
    assert found.command == "CREATE INDEX CONCURRENTLY ON tripo04os_demo.orders (rider_id);"
    assert found.cause == "a slow database statement"
    # the guide's four diagnosis steps, each with what it found
    assert [s.step for s in found.diagnosis] == ["Check Grafana for high response times",
                                                 "Review Jaeger traces for slow services",
                                                 "Check database query times", "Identify network latency"]
    assert "order-service holds 88.9 %" in found.diagnosis[1].found
    assert "rules network latency out" in found.diagnosis[3].found
    # 50 of 350 requests, P95 three times its 300 ms target: excess 2 x share 0.14 = 0.29
    assert found.priority == rec.MEDIUM and abs(found.score - 2 * 50 / 350) < 1e-9
    assert "excess 2.00 x share 0.14" in found.score_basis


def test_every_endpoint_slow_is_high_and_the_service_holding_the_path_is_named() -> None:
    slow = tuple(endpoint(n, 0.95, 100) for n in ("health", "get_order", "update_location"))
    f = facts(endpoints=slow, databases=(orders_db(slow=False),),
              tracing=(Tracing("jaeger", 100, 0.9, 0.0, {"order-service": 80.0, "pricing-service": 5.0}),))
    [found] = rec.slow_api_endpoints(f)
    assert found.priority == rec.HIGH
    assert found.cause == "time in order-service" and "optimize the algorithms of order-service" in found.solution


def test_network_phases_that_dominate_the_latency_make_the_network_the_cause() -> None:
    f = facts(endpoints=(endpoint("get_order", 0.9, 100, phases_s={"connect": 0.5, "tls": 0.2}),))
    [found] = rec.slow_api_endpoints(f)
    assert found.cause == "network latency" and "rules network latency in" in found.diagnosis[3].found


def test_endpoints_within_their_targets_give_nothing() -> None:
    f = facts(endpoints=(endpoint("create_order", 0.25), endpoint("get_order", 0.45)))
    assert rec.slow_api_endpoints(f) == []


def test_high_error_rate_tells_server_errors_from_timeouts() -> None:
    server = facts(endpoints=(Endpoint("gateway", "create_order", 100, failed=20, server_errors=20),
                              Endpoint("gateway", "get_order", 100)))
    [found] = rec.high_error_rate(server)
    # 10 % errors against 1 %: excess 9 x share 0.5
    assert found.priority == rec.HIGH and found.where == "create_order"
    assert found.cause.startswith("server errors") and "fix the application bugs" in found.solution
    timeouts = facts(endpoints=(Endpoint("gateway", "get_order", 100, failed=5, timeouts=5),))
    [found] = rec.high_error_rate(timeouts)
    assert "retry" in found.solution and "circuit breakers" in found.solution
    assert rec.high_error_rate(facts(endpoints=(Endpoint("gateway", "get_order", 1000, failed=5),))) == []


def test_low_cache_hit_rate_names_the_pattern_the_traces_read_and_why_it_misses() -> None:
    cache = Cache("cache", hits=5, misses=95, patterns=(KeyPattern("order:*", sampled=0, without_ttl=None),
                                                        KeyPattern("driver:location:*", sampled=40, without_ttl=0.0)))
    spans = (SpanTime("order-service", "GET order:{id}", 0.001, 300),
             SpanTime("order-service", "SET driver:location:{id}", 0.001, 30))
    [found] = rec.low_cache_hit_rate(facts(caches=(cache,), tracing=(Tracing("j", spans=spans),),
                                           databases=(orders_db(slow=False),)))
    assert found.priority == rec.HIGH and found.where == "cache cache -> order:*"
    assert "not in the cache" in found.cause and "write-through" in found.solution
    assert any("reach the database" in e.text for e in found.evidence)
    assert [s.step for s in found.diagnosis] == ["Check Redis hit/miss statistics", "Review cache key patterns",
                                                 "Analyze TTL settings", "Check cache invalidation"]


def test_short_ttls_lead_to_raising_the_ttl() -> None:
    cache = Cache("cache", hits=60, misses=40, patterns=(KeyPattern("order:*", sampled=50, median_ttl_s=5),))
    [found] = rec.low_cache_hit_rate(facts(caches=(cache,)))
    assert "increase the TTL of order:*" in found.solution and found.priority == rec.MEDIUM  # 1 - 0.6/0.8 = 0.25


def test_slow_database_queries_name_the_statement_its_calls_and_the_scanned_table() -> None:
    db = orders_db(p95=QueryP95(0.26, "statements-estimate", 0.25, 0.3))
    [found] = rec.slow_database_queries(facts(databases=(db,)))
    assert found.priority == rec.HIGH
    assert "pg_sleep" in found.message and "40 calls" in found.message
    assert "scans tripo04os_demo.orders" in found.message
    assert found.command == "CREATE INDEX CONCURRENTLY ON tripo04os_demo.orders (rider_id);"
    assert "rider_active_orders: Seq Scan on tripo04os_demo.orders" in found.diagnosis[2].found


def test_a_p95_bounded_within_the_target_gives_no_database_recommendation() -> None:
    db = orders_db(slow=False, p95=QueryP95(0.004, "statements-estimate", 0.001, 0.02))
    assert rec.slow_database_queries(facts(databases=(db,))) == []


def test_cache_aside_and_read_then_write_are_chains_not_parallel_work() -> None:
    aside = (ChildSpan("GET order:{id}", "redis", "GET", "order:7", 0),
             ChildSpan("SELECT tripo04os_demo.orders", "postgresql", "SELECT", "tripo04os_demo.orders", 10),
             ChildSpan("SET order:{id}", "redis", "SET", "order:7", 20))
    assert rec.chain_kind(aside)[0] == "cache-aside"
    # with the cache fault the SET is gone: the read after a missed GET still depends on it
    assert rec.chain_kind(aside[:2])[0] == "cache-aside"
    rw = (ChildSpan("SELECT trips", "postgresql", "SELECT", "trips", 0),
          ChildSpan("UPDATE trips", "postgresql", "UPDATE", "trips", 5))
    assert rec.chain_kind(rw)[0] == "read-then-write"
    independent = (ChildSpan("SELECT orders", "postgresql", "SELECT", "orders", 0),
                   ChildSpan("quote_fare", "", "", "", 5))
    assert rec.chain_kind(independent)[0] == "independent"
    assert rec.chain_kind(None)[0] == "unknown"


def test_trace_advice_parallelises_only_independent_siblings() -> None:
    def advice(sample: tuple[ChildSpan, ...] | None) -> str:
        group = SerialGroup("order-service", "get_order", 300, 12.0, sample)
        t = Tracing("jaeger", 100, 1.6, 0.4, {"order-service": 100.0}, (group,))
        [found] = rec.high_trace_duration(facts(tracing=(t,)))
        return found.solution

    chain = (ChildSpan("GET order:{id}", "redis", "GET", "order:1", 0),
             ChildSpan("SELECT o", "postgresql", "SELECT", "orders", 1),
             ChildSpan("SET order:{id}", "redis", "SET", "order:1", 2))
    assert advice(chain).startswith("do not parallelise order-service get_order: a cache-aside read")
    independent = (ChildSpan("SELECT orders", "postgresql", "SELECT", "orders", 0), ChildSpan("quote_fare", start_us=1))
    assert advice(independent).startswith("run the serial siblings of order-service get_order side by side (saves "
                                          "120 ms per trace), if neither needs the other's result")
    assert advice(None).startswith("check whether the serial siblings of order-service get_order depend on each")


def test_checks_are_capped_at_medium_and_state_their_thresholds() -> None:
    db = Database("main", tables=(Table("main", "app", "public", "events", live=1000, dead=9000),),
                  blocks_hit=500, blocks_read=500, oldest_query_s=3600, lock_waiting=3, idle_in_transaction=1,
                  connections=58, max_connections=60)
    cache = Cache("cache", hits=100, misses=0, evicted=50, memory_used=99, memory_max=100,
                  patterns=(KeyPattern("session:*", sampled=10, without_ttl=1.0),),
                  queues=(Queue("trip:location:updates", 10, 900, 900, 30.0),))
    found = rec.database_checks(facts(databases=(db,))) + rec.cache_checks(facts(caches=(cache,)))
    issues = {r.issue: r for r in found}
    assert set(issues) == {"Buffer cache hit ratio", "Connections near max_connections", "Long-running queries",
                           "Idle in transaction", "Lock waits", "Dead tuples", "Evictions under maxmemory",
                           "Memory near its limit", "Keys without TTL", "Growing queue"}
    assert all(r.priority != rec.HIGH for r in found)
    assert issues["Long-running queries"].score > rec.HIGH_SCORE  # the score says how far, the cap keeps MEDIUM
    assert issues["Dead tuples"].command == "VACUUM (ANALYZE) public.events;"
    assert "pg_stat_activity" in (issues["Long-running queries"].command or "")


def test_a_healthy_window_has_no_bottleneck_and_nothing_high() -> None:
    f = facts(endpoints=(endpoint("create_order", 0.05), endpoint("get_order", 0.01, 300)),
              databases=(orders_db(slow=False, p95=QueryP95(0.004, "statements-estimate", 0.001, 0.02)),),
              caches=(Cache("cache", hits=290, misses=10),),
              tracing=(Tracing("jaeger", 100, 0.05, 0.0, {"order-service": 3.0},
                               (SerialGroup("order-service", "get_order", 30, 0.3),)),))
    findings = rec.recommend(f)
    assert findings.top(3) == []
    assert {r.priority for r in findings.recommendations} <= {rec.LOW}


def test_the_top_three_bottlenecks_come_first_ranked_by_score() -> None:
    f = facts(endpoints=(Endpoint("gateway", "get_order", 100, failed=30, server_errors=30, mean_s=0.3, p95_s=0.9),),
              caches=(Cache("cache", hits=10, misses=90),),
              databases=(orders_db(p95=QueryP95(0.26, "statements-estimate", 0.25, 0.3)),))
    top = rec.recommend(f).top(3)
    assert [r.issue for r in top] == ["High error rate", "Slow database queries", "Low cache hit rate"]
    assert all(r.priority == rec.HIGH for r in top)
    assert [r.score for r in top] == sorted((r.score for r in top), reverse=True)


def test_priority_thresholds() -> None:
    assert rec.priority(0.5) == rec.HIGH and rec.priority(0.49) == rec.MEDIUM and rec.priority(0.1) == rec.MEDIUM
    assert rec.priority(0.09) == rec.LOW and rec.priority(3.0, rec.MEDIUM) == rec.MEDIUM


def test_a_sample_trace_gives_the_children_of_the_serial_groups_parent() -> None:
    from exporter.reports.jaeger_sample import children_of

    def tag(key: str, value: str) -> dict[str, str]:
        return {"key": key, "type": "string", "value": value}

    trace = {"traceID": "ab", "processes": {"p1": {"serviceName": "api-gateway"}, "p2": {"serviceName":
                                                                                          "order-service"}},
             "spans": [
                 {"spanID": "1", "operationName": "GET /api/v1/orders/{id}", "processID": "p1", "references": []},
                 {"spanID": "2", "operationName": "get_order", "processID": "p2", "startTime": 10,
                  "references": [{"refType": "CHILD_OF", "spanID": "1"}]},
                 {"spanID": "3", "operationName": "GET order:{id}", "processID": "p2", "startTime": 11,
                  "references": [{"refType": "CHILD_OF", "spanID": "2"}],
                  "tags": [tag("db.system", "redis"), tag("db.operation", "GET"), tag("db.redis.key", "order:1")]},
                 {"spanID": "4", "operationName": "SELECT tripo04os_demo.orders", "processID": "p2", "startTime": 15,
                  "references": [{"refType": "CHILD_OF", "spanID": "2"}],
                  "tags": [tag("db.system", "postgresql"),
                           tag("db.statement", "SELECT id FROM tripo04os_demo.orders WHERE id = %s")]}]}
    children = children_of(trace, "order-service", "get_order")
    assert children is not None
    assert [(c.system, c.command, c.key) for c in children] == [
        ("redis", "GET", "order:1"), ("postgresql", "SELECT", "tripo04os_demo.orders")]
    assert rec.chain_kind(children)[0] == "cache-aside"
    assert children_of(trace, "order-service", "cancel_order") is None


def test_a_hypopg_check_is_quoted_or_withdraws_the_index_advice() -> None:
    from dataclasses import replace

    from exporter.analysis.recommendations_facts import IndexCheck

    db = orders_db(p95=QueryP95(0.26, "statements-estimate", 0.25, 0.3))
    command = "CREATE INDEX CONCURRENTLY ON tripo04os_demo.orders (rider_id);"
    [found] = rec.slow_database_queries(facts(databases=(replace(db, index_checks=(
        IndexCheck(command, 359.6, 84.5, True),)),)))
    assert "the plan's cost falls from 360 to 84" in found.solution and found.command == command
    assert any(e.source.startswith("hypopg: ") and "cost 360 -> 84" in e.text for e in found.evidence)
    assert "hypopg" in found.diagnosis[2].found
    [found] = rec.slow_database_queries(facts(databases=(replace(db, index_checks=(
        IndexCheck(command, 359.6, 359.6, False),)),)))
    assert found.command is None and found.solution.startswith("the planner would not use")
