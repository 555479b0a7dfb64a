"""The recommendation rules on data: each missed target's excess is shared out by magnitude, each cause named
only for the share it explains, with its fix and command; housekeeping apart; a healthy window quiet."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.collectors.jaeger.breakdown import CACHE, DB, HIT, MISS_FILLED, MISS_UNFILLED, POOL, SELF, SERIAL
from exporter.reports import recommendations as rec
from exporter.reports.attribution import CacheReads, PathTime, Route, RoutePeriod
from exporter.reports.diagnosis import BLOCKING_SQL, statement_name
from exporter.reports.facts import (
    Cache,
    CacheTtl,
    ChildSpan,
    Database,
    Endpoint,
    Facts,
    IndexCheck,
    KeyPattern,
    QueryP95,
    Queue,
    SerialGroup,
    Statement,
    Table,
    Targets,
    Tracing,
    statement_tables,
)

GW = "api-gateway"
SLOW_SQL = ("SELECT count(*), max(o.created_at) FROM tripo04os_demo.orders o CROSS JOIN pg_sleep($1) "
            "WHERE o.rider_id = $2")
SLOW_SPAN_SQL = ("select count(*), max(o.created_at) from tripo04os_demo.orders o cross join pg_sleep(?) "
                 "where o.rider_id = ?")
ITEM_SQL = "SELECT kind, amount_cents FROM tripo04os_demo.order_items WHERE order_id = $1 AND position = $2"
TRIP_SQL = "UPDATE tripo04os_demo.trips SET status = $1, updated_at = now() WHERE id = $2 RETURNING id"
ROUTES = {"create_order": ("POST", "/api/v1/orders"), "get_order": ("GET", "/api/v1/orders/{id}"),
          "update_trip_status": ("PATCH", "/api/v1/trips/{id}"),
          "update_location": ("POST", "/api/v1/trips/{id}/location"),
          "send_notification": ("POST", "/api/v1/notifications")}


def op(name: str) -> tuple[str, str]:
    method, path = ROUTES[name]
    return (GW, f"{method} {path}")


def endpoint(name: str, p95: float, requests: float = 100, baseline_p95: float | None = 0.01,
             wait: float | None = None, **kw: object) -> Endpoint:
    phases = {"connect": 0.0002, "wait": wait if wait is not None else p95 * 0.9, "receive": 0.0001}
    base = {"connect": 0.0002, "wait": 0.008, "receive": 0.0001} if baseline_p95 is not None else None
    return Endpoint("gateway", name, requests, mean_s=p95 * 0.9, p95_s=p95, p99_s=p95 * 1.1, phases_s=phases,
                    route=op(name) if name in ROUTES else None, baseline_p95_s=baseline_p95,
                    baseline_phases_s=base, **kw)  # type: ignore[arg-type]


def path(service: str, kind: str, operation: str, seconds: float, calls: float = 1.0, text: str = "") -> PathTime:
    return PathTime(service, kind, operation, seconds, calls, f"fp{abs(hash(text)) % 997}" if text else "",
                    text or None)


def route(name: str, now: tuple[PathTime, ...], before: tuple[PathTime, ...] | None = None, traces: float = 40,
          **kw: object) -> Route:
    service, operation = op(name)
    base = RoutePeriod(traces, before if before is not None else tuple(
        replace(p, seconds=0.001) for p in now if p.kind != SERIAL))
    return Route("jaeger", service, operation, RoutePeriod(traces, now, **kw), base)  # type: ignore[arg-type]


def facts(**kw: object) -> Facts:
    return Facts(60.0, Targets(endpoint_p95={"create_order": 0.3}), **kw)  # type: ignore[arg-type]


def orders_db(slow: bool = True, p95: QueryP95 | None = None, **kw: object) -> Database:
    statements = [Statement("main", "app", "111", "SELECT id FROM tripo04os_demo.orders WHERE id = $1", 500, 0.5,
                            "demo", rows=500, blocks=1500)]
    if slow:
        statements.append(Statement("main", "app", "222", SLOW_SQL, 40, 40 * 0.26, "demo", rows=40, blocks=40 * 270))
    return Database("main", tuple(statements),
                    (Table("main", "app", "tripo04os_demo", "orders", seq_scans=45, seq_rows_read=900_000,
                           idx_scans=500, live=20_000, dead=10),
                     Table("main", "app", "tripo04os_demo", "trips", seq_scans=0, live=10, dead=0)),
                    (("rider_active_orders", "tripo04os_demo.orders"),), p95, **kw)  # type: ignore[arg-type]


def by_kind(findings: rec.Findings) -> dict[str, rec.Recommendation]:
    return {r.kind: r for r in findings.recommendations if not r.housekeeping}


def test_statement_tables_reads_from_join_update_into_but_not_functions() -> None:
    assert statement_tables(SLOW_SQL) == ["tripo04os_demo.orders"]
    assert statement_tables("UPDATE trips SET status = $1") == ["trips"]
    assert statement_tables("INSERT INTO public.orders (a) VALUES ($1)") == ["public.orders"]
    assert statement_tables("SELECT * FROM a JOIN b ON a.id = b.id") == ["a", "b"]
    assert statement_tables(None) == []


def issue_example() -> Facts:
    """The issue's report: the gateway slow by 700 ms on every endpoint, a slow statement on order creation only
    (6 calls), the order cache off."""
    gateway = ("POST /api/v1/orders",)
    endpoints = (endpoint("create_order", 1.15, 20, baseline_p95=0.25),
                 *(endpoint(n, 0.72, 100) for n in ("get_order", "update_trip_status", "update_location",
                                                    "send_notification")))
    routes = [route("create_order", (path(GW, SELF, gateway[0], 0.7), path("order-service", DB, "SELECT orders",
                                                                            0.26, 1.0, SLOW_SPAN_SQL),
                                      path("pricing-service", SELF, "quote_fare", 0.18)),
                    (path(GW, SELF, gateway[0], 0.001), path("pricing-service", SELF, "quote_fare", 0.18)))]
    routes += [route(n, (path(GW, SELF, op(n)[1], 0.7), path("order-service", SELF, n, 0.002)),
                     (path(GW, SELF, op(n)[1], 0.001), path("order-service", SELF, n, 0.002)))
               for n in ("get_order", "update_trip_status", "update_location", "send_notification")]
    get = next(r for r in routes if r.operation == op("get_order")[1])
    routes[routes.index(get)] = replace(get, window=replace(get.window, cache_reads=(
        CacheReads("order-service", "GET order:{id}", MISS_UNFILLED, 300),)))
    return facts(endpoints=endpoints, routes=tuple(routes),
                 databases=(replace(orders_db(p95=QueryP95(0.26, "statements-estimate", 0.25, 0.27)),
                                    statements=(Statement("main", "app", "111", "SELECT 1", 500, 0.5),
                                                Statement("main", "app", "222", SLOW_SQL, 6, 6 * 0.26, "demo",
                                                          rows=6, blocks=6 * 270))),),
                 caches=(Cache("cache", hits=0, misses=300, patterns=(KeyPattern("order:*", sampled=0),
                                                                      KeyPattern("driver:location:*", sampled=40,
                                                                                 median_ttl_s=20))),))


def test_the_issues_report_names_each_cause_for_the_share_it_explains() -> None:
    findings = rec.recommend(issue_example())
    causes = by_kind(findings)
    # the gateway's own time explains nearly all of every endpoint's excess
    gateway = causes["service-time"]
    assert gateway.cause == "api-gateway's own work" and gateway.priority == rec.HIGH
    shares = {s.what.split(" ")[0]: round(s.share, 2) for s in gateway.symptoms if s.issue == rec.SLOW_API}
    assert shares == {"create_order": 0.73, "get_order": 1.0, "update_trip_status": 1.0, "update_location": 1.0,
                      "send_notification": 1.0}
    # the index explains only create_order's part: 260 of the 960 ms it added
    index = causes["scanning-statement"]
    assert index.command == "CREATE INDEX CONCURRENTLY ON tripo04os_demo.orders (rider_id);"
    api = [s for s in index.symptoms if s.issue == rec.SLOW_API]
    assert [s.what.split(" ")[0] for s in api] == ["create_order"] and api[0].share == pytest.approx(0.27, abs=0.01)
    assert any(s.issue == rec.SLOW_DB for s in index.symptoms)  # and the database's P95: one recommendation
    # the cache: its order reads miss and nothing fills them, from the traces' reads, not a sampled key
    cache = causes["cache-not-filled"]
    assert "order:*" in cache.where and "implement caching" in cache.solution
    assert "driver:location" not in cache.message
    assert [r.kind for r in findings.top(3)] == ["cache-not-filled", "service-time", "scanning-statement"]


def test_a_cause_under_a_fifth_of_an_excess_is_not_named() -> None:
    r = route("get_order", (path(GW, SELF, "GET /api/v1/orders/{id}", 0.85),
                            path("order-service", DB, "SELECT orders", 0.15, 1.0, "select id from orders")))
    findings = rec.recommend(facts(endpoints=(endpoint("get_order", 1.0),), routes=(r,)))
    assert [x.kind for x in findings.recommendations] == ["service-time"]  # the statement explains 15 %


def test_a_statement_run_once_per_item_is_one_query_per_item() -> None:
    r = route("get_order", (path("order-service", DB, "SELECT order_items", 0.55, 250,
                                 "select kind, amount_cents from tripo04os_demo.order_items where order_id = ? and "
                                 "position = ?"), path("order-service", SELF, "get_order", 0.002)))
    db = Database("main", (Statement("main", "app", "333", ITEM_SQL, 25_000, 25_000 * 0.0021, "demo", rows=25_000,
                                     blocks=75_000),))
    [found] = [x for x in rec.recommend(facts(endpoints=(endpoint("get_order", 0.6),), routes=(r,),
                                              databases=(db,))).recommendations if not x.housekeeping]
    assert found.kind == "n-plus-one" and "250 calls per request" in found.cause
    assert "one query" in found.solution and found.command is None
    assert found.statement == ("main", "app", "333")


def test_a_statement_seen_waiting_on_locks_is_a_lock_wait_with_the_blocking_query() -> None:
    trip = "update tripo04os_demo.trips set status = ?, updated_at = now() where id = ? returning id"
    r = route("update_trip_status", (path("trip-service", DB, "UPDATE trips", 0.9, 1.0, trip),))
    locked = Database("main", (Statement("main", "app", "444", TRIP_SQL, 60, 60 * 0.9, "demo", rows=60, blocks=240,
                                         lock_waiting=2),), idle_in_transaction=1, lock_waiting=2)
    [found] = [x for x in rec.recommend(facts(endpoints=(endpoint("update_trip_status", 0.95),), routes=(r,),
                                              databases=(locked,))).recommendations if not x.housekeeping]
    assert found.kind == "lock-wait" and found.command == BLOCKING_SQL
    assert "shorten it" in found.solution
    assert any("idle in transaction" in e.text for e in found.evidence)
    # the same statement without a lock wait seen, reading little: still no index advice
    plain = Database("main", (replace(locked.statements[0], lock_waiting=0),))
    [found] = [x for x in rec.recommend(facts(endpoints=(endpoint("update_trip_status", 0.95),), routes=(r,),
                                              databases=(plain,))).recommendations if not x.housekeeping]
    assert found.kind == "slow-statement" and "EXPLAIN" in found.solution


def test_a_slow_statement_scanning_a_table_gets_the_index_and_hypopg_decides_it() -> None:
    db = orders_db(p95=QueryP95(0.26, "statements-estimate", 0.25, 0.3))
    command = "CREATE INDEX CONCURRENTLY ON tripo04os_demo.orders (rider_id);"
    [found] = [x for x in rec.recommend(facts(databases=(db,))).recommendations if not x.housekeeping]
    # 40 of 540 calls are slow: excess 1.6 x traffic 0.07 = 0.12
    assert found.kind == "scanning-statement" and found.command == command and found.priority == rec.MEDIUM
    assert found.issue == rec.SLOW_DB and "100.0 %" in found.message
    assert any("900000 rows" in e.text for e in found.evidence)
    checked = replace(db, index_checks=(IndexCheck(command, 359.6, 84.5, True),))
    [found] = [x for x in rec.recommend(facts(databases=(checked,))).recommendations if not x.housekeeping]
    assert "the plan's cost falls from 360 to 84" in found.solution and found.command == command
    unused = replace(db, index_checks=(IndexCheck(command, 359.6, 359.6, False),))
    [found] = [x for x in rec.recommend(facts(databases=(unused,))).recommendations if not x.housekeeping]
    assert found.command is None and found.solution.startswith("the planner would not use")


def test_a_p95_bounded_within_the_target_gives_no_database_cause() -> None:
    db = orders_db(slow=False, p95=QueryP95(0.004, "statements-estimate", 0.001, 0.02))
    assert not [r for r in rec.recommend(facts(databases=(db,))).recommendations if not r.housekeeping]


def test_two_statements_with_the_same_text_are_told_apart() -> None:
    a = Statement("main", "app", "1", SLOW_SQL, 10, 3.0, "demo")
    b = Statement("main", "reports", "2", SLOW_SQL, 10, 3.0, "analyst")
    assert statement_name(a) != statement_name(b)
    db = Database("main", (a, b), p95=QueryP95(0.3, "statements-estimate", 0.29, 0.31))
    found = [r for r in rec.recommend(facts(databases=(db,))).recommendations if not r.housekeeping]
    assert {r.statement for r in found} == {("main", "app", "1"), ("main", "reports", "2")}
    assert any("app/demo queryid 1" in e.text for r in found for e in r.evidence)
    assert any("reports/analyst queryid 2" in e.text for r in found for e in r.evidence)


def test_waiting_for_a_connection_serial_calls_and_large_answers_are_causes_of_their_own() -> None:
    pool = route("get_order", (path("order-service", POOL, "acquire connection", 0.6),
                               path("order-service", SELF, "get_order", 0.002)))
    serial = route("create_order", (path("order-service", SERIAL, "create_order", 0.16),
                                    path("pricing-service", SELF, "quote_fare", 0.18)),
                   (path("pricing-service", SELF, "quote_fare", 0.18),))
    big = endpoint("update_location", 0.9, wait=0.01, response_bytes=800_000.0)
    big = replace(big, phases_s={**big.phases_s, "receive": 0.8})
    found = by_kind(rec.recommend(facts(endpoints=(endpoint("get_order", 0.7), endpoint("create_order", 0.36,
                                                                                     baseline_p95=0.2), big),
                                        routes=(pool, serial))))
    assert set(found) == {"connection-pool", "serial-calls", "payload"}
    assert "pool size" in found["connection-pool"].solution
    assert found["serial-calls"].solution.startswith("parallelize independent operations")
    assert "reduce payload sizes" in found["payload"].solution
    assert [s.what.split(" ")[0] for s in found["payload"].symptoms] == ["update_location"]


def test_no_trace_of_the_route_is_unexplained_time_with_the_next_place_to_look() -> None:
    findings = rec.recommend(facts(endpoints=(endpoint("get_order", 0.9),)))  # no routes at all
    [found] = findings.recommendations
    assert found.kind == "unexplained" and found.priority != rec.HIGH
    assert "look at Jaeger" in found.solution


def cache_facts(reads: tuple[CacheReads, ...], **cache: object) -> Facts:
    r = route("get_order", (path("order-service", CACHE, "GET order:{id}", 0.001),), cache_reads=reads)
    return facts(routes=(r,), caches=(Cache("cache", patterns=(KeyPattern("order:*", sampled=10),),
                                            **cache),),  # type: ignore[arg-type]
                 cache_ttls=(CacheTtl("order-service", "SET order:{id}", 1.0),))


def test_cache_misses_are_told_apart_by_what_the_traced_reads_did() -> None:
    unfilled = cache_facts((CacheReads("order-service", "GET order:{id}", MISS_UNFILLED, 90),
                            CacheReads("order-service", "GET order:{id}", HIT, 10)), hits=10, misses=90)
    [found] = [r for r in rec.recommend(unfilled).recommendations if not r.housekeeping]
    assert found.kind == "cache-not-filled" and found.priority == rec.HIGH and found.share == pytest.approx(1.0)
    expired = cache_facts((CacheReads("order-service", "GET order:{id}", MISS_FILLED, 90),), hits=10, misses=90,
                          expired=85)
    [found] = [r for r in rec.recommend(expired).recommendations if not r.housekeeping]
    assert found.kind == "cache-expiry" and "TTL 1 s" in found.cause and "increase the TTL" in found.solution
    cold = cache_facts((CacheReads("order-service", "GET order:{id}", MISS_FILLED, 90),), hits=10, misses=90)
    [found] = [r for r in rec.recommend(cold).recommendations if not r.housekeeping]
    assert found.kind == "cache-cold" and "write-through" in found.solution
    evicting = cache_facts((CacheReads("order-service", "GET order:{id}", MISS_FILLED, 90),), hits=10, misses=90,
                           evicted=80, memory_max=100.0)
    assert by_kind(rec.recommend(evicting))["cache-eviction"].command == "redis-cli CONFIG GET maxmemory*"
    untraced = facts(caches=(Cache("cache", hits=10, misses=90),))
    [found] = [r for r in rec.recommend(untraced).recommendations if not r.housekeeping]
    assert found.kind == "unexplained" and "no cache reads" in found.cause


def test_errors_are_put_where_the_traces_say_they_started() -> None:
    r = route("create_order", (path(GW, SELF, "POST /api/v1/orders", 0.002),), error_origins={"pricing-service": 30})
    failing = facts(endpoints=(endpoint("create_order", 0.2, failed=30, server_errors=30),
                               endpoint("get_order", 0.01)), routes=(r,))
    [found] = [x for x in rec.recommend(failing).recommendations if not x.housekeeping]
    assert found.kind == "service-errors" and found.where == "pricing-service" and found.priority == rec.HIGH
    assert "fix the application bugs in pricing-service" in found.solution
    timeouts = facts(endpoints=(Endpoint("gateway", "get_order", 100, failed=5, timeouts=5),))
    [found] = [x for x in rec.recommend(timeouts).recommendations if not x.housekeeping]
    assert "retry" in found.solution and "circuit breakers" in found.solution
    assert not rec.recommend(facts(endpoints=(Endpoint("gateway", "get_order", 1000, failed=5),))).recommendations


def test_a_slow_route_over_the_trace_target_is_attributed_along_its_traces() -> None:
    r = replace(route("create_order", (path("order-service", SELF, "create_order", 1.2),)), p95_s=1.4,
                baseline_p95_s=0.2)
    [found] = rec.recommend(facts(routes=(r,))).recommendations
    assert found.issue == rec.SLOW_TRACES and found.kind == "service-time" and found.where == "order-service"


def test_a_healthy_window_is_quiet_housekeeping_apart() -> None:
    db = orders_db(slow=False, p95=QueryP95(0.004, "statements-estimate", 0.001, 0.02), blocks_hit=989,
                   blocks_read=11, idle_in_transaction=1)
    f = facts(endpoints=(endpoint("create_order", 0.05), endpoint("get_order", 0.01, 300)), databases=(db,),
              caches=(Cache("cache", hits=290, misses=10),),
              tracing=(Tracing("jaeger", 100, 0.05, 0.0, {"order-service": 3.0},
                               (SerialGroup("order-service", "get_order", 30, 0.3),)),))
    findings = rec.recommend(f)
    assert findings.top(3) == []
    assert findings.recommendations and all(r.housekeeping and r.priority == rec.LOW
                                            for r in findings.recommendations)
    assert {r.issue for r in findings.housekeeping} >= {"Buffer cache hit ratio", "Serial execution",
                                                        "Idle in transaction"}


def test_housekeeping_checks_state_their_thresholds_and_commands() -> None:
    db = Database("main", tables=(Table("main", "app", "public", "events", live=1000, dead=9000),),
                  blocks_hit=500, blocks_read=500, oldest_query_s=3600, lock_waiting=3, idle_in_transaction=1,
                  connections=58, max_connections=60)
    cache = Cache("cache", hits=100, misses=0, evicted=50, memory_used=99, memory_max=100,
                  patterns=(KeyPattern("session:*", sampled=10, without_ttl=1.0),
                            KeyPattern("other", sampled=10, without_ttl=1.0)),
                  queues=(Queue("trip:location:updates", 10, 900, 900, 30.0),))
    found = rec.database_checks(facts(databases=(db,))) + rec.cache_checks(facts(caches=(cache,)))
    issues = {r.issue: r for r in found}
    assert set(issues) == {"Buffer cache hit ratio", "Connections near max_connections", "Long-running queries",
                           "Idle in transaction", "Lock waits", "Dead tuples", "Evictions under maxmemory",
                           "Memory near its limit", "Keys without TTL", "Growing queue"}
    assert all(r.priority == rec.LOW and r.housekeeping for r in found)
    assert issues["Keys without TTL"].where == "session:*"  # the keys of no configured pattern are left alone
    assert issues["Dead tuples"].command == "VACUUM (ANALYZE) public.events;"
    assert "pg_stat_activity" in (issues["Long-running queries"].command or "")


def test_priority_thresholds_and_caps() -> None:
    assert rec.priority(0.5) == rec.HIGH and rec.priority(0.49) == rec.MEDIUM and rec.priority(0.1) == rec.MEDIUM
    assert rec.priority(0.09) == rec.LOW and rec.priority(3.0, rec.MEDIUM) == rec.MEDIUM
    assert rec.priority(3.0, rec.LOW) == rec.LOW


def test_cache_aside_and_read_then_write_are_chains_not_parallel_work() -> None:
    aside = (ChildSpan("GET order:{id}", "redis", "GET", "order:7", 0),
             ChildSpan("SELECT tripo04os_demo.orders", "postgresql", "SELECT", "tripo04os_demo.orders", 10),
             ChildSpan("SET order:{id}", "redis", "SET", "order:7", 20))
    assert rec.chain_kind(aside)[0] == "cache-aside"
    assert rec.chain_kind(aside[:2])[0] == "cache-aside"
    rw = (ChildSpan("SELECT trips", "postgresql", "SELECT", "trips", 0),
          ChildSpan("UPDATE trips", "postgresql", "UPDATE", "trips", 5))
    assert rec.chain_kind(rw)[0] == "read-then-write"
    independent = (ChildSpan("SELECT orders", "postgresql", "SELECT", "orders", 0),
                   ChildSpan("quote_fare", "", "", "", 5))
    assert rec.chain_kind(independent)[0] == "independent"
    assert rec.chain_kind(None)[0] == "unknown"


def test_serial_sibling_advice_parallelises_only_independent_siblings() -> None:
    def advice(sample: tuple[ChildSpan, ...] | None) -> str:
        return rec.serial_advice(SerialGroup("order-service", "get_order", 300, 12.0, sample), 0.12)[1]

    chain = (ChildSpan("GET order:{id}", "redis", "GET", "order:1", 0),
             ChildSpan("SELECT o", "postgresql", "SELECT", "orders", 1),
             ChildSpan("SET order:{id}", "redis", "SET", "order:1", 2))
    assert advice(chain).startswith("do not parallelise order-service get_order: a cache-aside read")
    independent = (ChildSpan("SELECT orders", "postgresql", "SELECT", "orders", 0), ChildSpan("quote_fare", start_us=1))
    assert advice(independent).startswith("run the serial siblings of order-service get_order side by side (saves "
                                          "120 ms per trace), if neither needs the other's result")
    assert advice(None).startswith("check whether the serial siblings of order-service get_order depend on each")


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
