"""Where one trace's time went, on traces built here (times in µs, worked out in the comments): the critical
path split into each service's own work, database statements, cache calls, connection waits and serial remote
calls; cache read results; where errors started; and statements that normalise alike."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.collectors.jaeger.breakdown import (
    CACHE,
    DB,
    HIT,
    MISS_FILLED,
    MISS_UNFILLED,
    POOL,
    SELF,
    SERIAL,
    Breakdown,
    CacheRead,
    Component,
    normalize_statement,
    statement_fingerprint,
)
from exporter.collectors.jaeger.decode import trace_from_v1, traces_from_otlp
from exporter.collectors.jaeger.traces import analyse
from tests.jaeger_replay import to_otlp

SERVICES = {"gw": "api-gateway", "orders": "order-service", "pricing": "pricing-service",
            "matching": "matching-service"}


def tag(key: str, value: Any) -> dict[str, Any]:
    kind = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "string"
    return {"key": key, "type": kind, "value": value}


def span(span_id: str, pid: str, operation: str, start: int, duration: int, parent: str | None = None,
         **tags: Any) -> dict[str, Any]:
    return {"traceID": "t1", "spanID": span_id, "operationName": operation, "startTime": start,
            "duration": duration, "processID": pid, "logs": [], "warnings": None,
            "tags": [tag(k.replace("_", "."), v) for k, v in tags.items()],
            "references": [] if parent is None else [{"refType": "CHILD_OF", "traceID": "t1", "spanID": parent}]}


def db(span_id: str, parent: str, start: int, duration: int, statement: str, pid: str = "orders") -> dict[str, Any]:
    return span(span_id, pid, statement.split()[0] + " orders", start, duration, parent, db_system="postgresql",
                db_statement=statement)


def redis(span_id: str, parent: str, start: int, duration: int, command: str, key: str,
          statement: str | None = None, **extra: Any) -> dict[str, Any]:
    return span(span_id, "orders", f"{command} order:{{id}}", start, duration, parent, db_system="redis",
                db_operation=command, db_redis_key=key, db_statement=statement or f"{command} {key}", **extra)


def trace(*spans: dict[str, Any]) -> dict[str, Any]:
    return {"traceID": "t1", "spans": list(spans), "warnings": None,
            "processes": {pid: {"serviceName": name, "tags": []} for pid, name in SERVICES.items()}}


def breakdown(v1: dict[str, Any]) -> Breakdown:
    """The breakdown of a v1 trace, checked to be the same when the trace arrives as OTLP (api_v3)."""
    found = analyse(trace_from_v1(v1), breakdown=True).breakdown
    [otlp] = traces_from_otlp(to_otlp([v1]))
    again = analyse(otlp, breakdown=True).breakdown
    assert found is not None and again is not None
    assert again.path == found.path and again.calls == found.calls and again.cache_reads == found.cache_reads
    return found


def ms(b: Breakdown) -> dict[tuple[str, str, str], float]:
    return {(c.service, c.kind, c.operation): v / 1000 for c, v in b.path.items()}


ORDER = "SELECT id FROM tripo04os_demo.orders WHERE id = %s"


def test_the_path_splits_into_own_work_statements_cache_calls_and_the_wait_for_a_connection() -> None:
    # root [0, 100] ms: authenticate [1, 3]; get_order [5, 95] with GET [6, 7], acquire [8, 10], SELECT [10, 40]
    # -> own work: root 100 - 2 - 90 = 8 ms, authenticate 2, get_order 90 - 1 - 2 - 30 = 57
    b = breakdown(trace(
        span("r", "gw", "GET /api/v1/orders/{id}", 0, 100_000),
        span("a", "gw", "authenticate", 1_000, 2_000, "r"),
        span("s", "orders", "get_order", 5_000, 90_000, "r"),
        redis("g", "s", 6_000, 1_000, "GET", "order:1", cache_hit=True),
        span("p", "orders", "acquire connection", 8_000, 2_000, "s", db_system="postgresql",
             db_client_connection_pool_name="demo"),
        db("q", "s", 10_000, 30_000, ORDER)))
    assert ms(b) == {("api-gateway", SELF, "GET /api/v1/orders/{id}"): 8.0,
                     ("api-gateway", SELF, "authenticate"): 2.0,
                     ("order-service", SELF, "get_order"): 57.0,
                     ("order-service", CACHE, "GET order:{id}"): 1.0,
                     ("order-service", POOL, "acquire connection"): 2.0,
                     ("order-service", DB, "SELECT orders"): 30.0}
    assert sum(b.path.values()) == b.duration == 100_000  # every microsecond once
    statement = next(c for c in b.path if c.kind == DB).statement
    assert statement == "select id from tripo04os_demo.orders where id = ?"
    assert b.cache_reads == {CacheRead("order-service", "GET order:{id}", HIT): 1}


def test_remote_calls_one_after_another_put_all_but_the_longest_on_the_serial_component() -> None:
    # create_order [0, 400]: quote (pricing) [10, 190], then match (matching) [190, 350]: two waves of remote calls.
    # Side by side the parent would wait 180 ms, not 340: the shorter wave's 160 ms is serial, not matching's own.
    b = breakdown(trace(
        span("r", "orders", "create_order", 0, 400_000),
        span("quote", "pricing", "quote_fare", 10_000, 180_000, "r"),
        span("match", "matching", "match_driver", 190_000, 160_000, "r")))
    assert ms(b) == {("order-service", SELF, "create_order"): 60.0,
                     ("pricing-service", SELF, "quote_fare"): 180.0,
                     ("order-service", SERIAL, "create_order"): 160.0}
    # side by side: one wave, no serial time; the path goes through the longer call only
    b = breakdown(trace(
        span("r", "orders", "create_order", 0, 200_000),
        span("quote", "pricing", "quote_fare", 10_000, 180_000, "r"),
        span("match", "matching", "match_driver", 10_000, 160_000, "r")))
    assert ms(b) == {("order-service", SELF, "create_order"): 20.0, ("pricing-service", SELF, "quote_fare"): 180.0}


def test_database_calls_in_a_row_are_never_serial_remote_calls() -> None:
    # one query per item, 10 in a row: what they need is one query, not a parallel run
    items = [db(f"i{n}", "r", 1_000 + 3_000 * n, 2_000, "SELECT kind FROM order_items WHERE order_id = %s AND "
             "position = %s") for n in range(10)]
    b = breakdown(trace(span("r", "orders", "get_order", 0, 40_000), *items))
    kinds = {c.kind for c in b.path}
    assert SERIAL not in kinds
    [item] = [c for c in b.calls if c.kind == DB]
    assert b.calls[item] == 10 and b.path[item] == 20_000


def test_nested_serial_calls_are_counted_once_by_the_outer_parent() -> None:
    # gateway [0, 100]: A (orders) [0, 60] then B (pricing) [60, 90]; inside A: C (pricing) [0, 20] then
    # D (matching) [20, 50]. The outer serial stretch is B's [60, 90] (A is the longer wave); the inner one is
    # C's [0, 20] (D longer), inside A, which is not serial at the outer level: both count, once each.
    b = breakdown(trace(
        span("r", "gw", "GET /x", 0, 100_000),
        span("a", "orders", "a", 0, 60_000, "r"),
        span("c", "pricing", "c", 0, 20_000, "a"),
        span("d", "matching", "d", 20_000, 30_000, "a"),
        span("b", "pricing", "b", 60_000, 30_000, "r")))
    assert ms(b)[("api-gateway", SERIAL, "GET /x")] == 30.0
    assert ms(b)[("order-service", SERIAL, "a")] == 20.0
    assert sum(b.path.values()) == 100_000


def test_cache_reads_are_hits_misses_filled_again_or_misses_nothing_filled() -> None:
    miss_filled = trace(
        span("r", "orders", "get_order", 0, 10_000),
        redis("g", "r", 0, 1_000, "GET", "order:7", cache_hit=False),
        db("q", "r", 1_000, 5_000, ORDER),
        redis("s", "r", 6_000, 1_000, "SET", "order:7", "SET order:7 ? EX 5"))
    b = breakdown(miss_filled)
    assert b.cache_reads == {CacheRead("order-service", "GET order:{id}", MISS_FILLED): 1}
    assert b.cache_ttls == {("order-service", "SET order:{id}"): [5]}
    # no cache.hit tag: a GET the same parent follows with a database read missed; nothing wrote the key back
    unfilled = trace(span("r", "orders", "get_order", 0, 10_000), redis("g", "r", 0, 1_000, "GET", "order:7"),
                     db("q", "r", 1_000, 5_000, ORDER))
    assert breakdown(unfilled).cache_reads == {CacheRead("order-service", "GET order:{id}", MISS_UNFILLED): 1}
    hit = trace(span("r", "orders", "get_order", 0, 10_000), redis("g", "r", 0, 1_000, "GET", "order:7"))
    assert breakdown(hit).cache_reads == {CacheRead("order-service", "GET order:{id}", HIT): 1}


@pytest.mark.parametrize(("statement", "ttl"), [("SET order:1 ? EX 60", 60), ("SET order:1 ? PX 1500", 1),
                                                ("SETEX order:1 30 ?", 30), ("SET order:1 ?", None)])
def test_the_ttl_a_write_sets_is_read_from_its_statement(statement: str, ttl: int | None) -> None:
    b = breakdown(trace(span("r", "orders", "w", 0, 10_000),
                        redis("s", "r", 0, 1_000, statement.split()[0], "order:1", statement)))
    assert b.cache_ttls == ({(("order-service", f"{statement.split()[0]} order:{{id}}")): [ttl]} if ttl else {})


def test_errors_start_in_the_error_span_with_no_error_below_it() -> None:
    b = breakdown(trace(
        span("r", "gw", "POST /api/v1/orders", 0, 10_000, error=True),
        span("s", "orders", "create_order", 1_000, 8_000, "r", error=True),
        span("p", "pricing", "quote_fare", 2_000, 2_000, "s", error=True),
        span("m", "matching", "match_driver", 2_000, 2_000, "s")))
    assert b.error_origins == {"pricing-service": 1}
    b = breakdown(trace(span("r", "gw", "POST /api/v1/orders", 0, 10_000, error=True),
                        span("s", "orders", "create_order", 1_000, 8_000, "r")))
    assert b.error_origins == {"api-gateway": 1}


def test_statements_normalise_alike_whatever_the_placeholders_and_lose_their_secrets() -> None:
    pg = "SELECT count(*) FROM orders WHERE rider_id = $1 AND status = $2"
    client = "select count(*)  from orders\nwhere rider_id = %s and status = 'created'"
    assert normalize_statement(pg) == normalize_statement(client) == (
        "select count(*) from orders where rider_id = ? and status = ?")
    assert normalize_statement("SELECT * FROM t WHERE a = :name AND b = ? AND c = %(c)s AND d = 42") == \
        "select * from t where a = ? and b = ? and c = ? and d = ?"
    assert "hunter2" not in normalize_statement("SELECT 1 -- postgres://app:hunter2@db/x")
    assert "hunter2" not in normalize_statement("ALTER ROLE app PASSWORD 'hunter2'")
    assert statement_fingerprint(normalize_statement(pg)) == statement_fingerprint(normalize_statement(client))
    assert len(statement_fingerprint("select 1")) == 16 and statement_fingerprint("") == ""


def test_only_the_tags_the_breakdown_reads_are_kept() -> None:
    v1 = trace(span("r", "orders", "get_order", 0, 10_000, http_url="https://x/?token=secret", db_system="redis",
                    db_statement="GET order:1"))
    [kept] = trace_from_v1(v1).spans
    assert kept.tags == {"db.system": "redis", "db.statement": "GET order:1"}
    assert Component("order-service", CACHE, "get_order") in analyse(trace_from_v1(v1), breakdown=True).breakdown.path
