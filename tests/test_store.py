"""The metric store and its text exposition: what Prometheus parses is what the jobs wrote."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.store import LabelError, StoreCollector


def parsed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def registry_samples(stores: StoreCollector) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(stores)
    return {(s.name, frozenset(s.labels.items())): s.value for f in registry.collect() for s in f.samples
            if not s.name.endswith("_created")}


def test_rendered_text_parses_to_exactly_what_was_written() -> None:
    stores = StoreCollector()
    a, b = stores.add("api/a"), stores.add("api/b")
    a.observe(metrics.HTTP_REQUEST_DURATION, 0.12, target="a", endpoint="create_order", method="POST")
    a.observe(metrics.HTTP_REQUEST_DURATION, 0.6, method="POST", endpoint="create_order", target="a")
    b.observe(metrics.HTTP_REQUEST_DURATION, 20.0, target="b", endpoint="health", method="GET")
    a.inc(metrics.HTTP_REQUESTS, 2, target="a", endpoint="create_order", method="POST", outcome="success")
    b.set(metrics.PG_STATEMENT_INFO, 1, target="b", queryid="42", query='select "x"\nfrom t where a = \\1')
    text = stores.render()
    assert parsed(text) == registry_samples(stores)
    samples = parsed(text)
    bucket = "perf_http_request_duration_seconds_bucket"
    labels = {"target": "a", "endpoint": "create_order", "method": "POST"}
    assert samples[(bucket, frozenset({**labels, "le": "0.1"}.items()))] == 0
    assert samples[(bucket, frozenset({**labels, "le": "0.15"}.items()))] == 1
    assert samples[(bucket, frozenset({**labels, "le": "+Inf"}.items()))] == 2
    assert samples[(bucket, frozenset({"target": "b", "endpoint": "health", "method": "GET",
                                       "le": "10.0"}.items()))] == 0
    assert samples[("perf_pg_statement_info", frozenset({"target": "b", "queryid": "42",
                                                         "query": 'select "x"\nfrom t where a = \\1'}.items()))] == 1
    assert text.count("# TYPE perf_http_request_duration_seconds histogram") == 1


def test_a_dropped_store_takes_its_series_with_it_even_from_the_cache() -> None:
    stores = StoreCollector()
    a = stores.add("redis/a")
    a.set(metrics.REDIS_UP, 1, target="a")
    assert "perf_redis_up" in stores.render()
    stores.drop("redis/a")
    assert "perf_redis_up" not in stores.render()
    again = stores.add("redis/a")
    again.set(metrics.REDIS_UP, 0, target="a")
    assert parsed(stores.render())[("perf_redis_up", frozenset({("target", "a")}))] == 0


def test_a_write_after_a_scrape_shows_in_the_next_scrape() -> None:
    stores = StoreCollector()
    a = stores.add("api/a")
    a.inc(metrics.HTTP_REQUESTS, target="a", endpoint="e", method="GET", outcome="success")
    first = parsed(stores.render())
    a.inc(metrics.HTTP_REQUESTS, target="a", endpoint="e", method="GET", outcome="success")
    second = parsed(stores.render())
    key = ("perf_http_requests_total", frozenset({"target": "a", "endpoint": "e", "method": "GET",
                                                  "outcome": "success"}.items()))
    assert (first[key], second[key]) == (1, 2)


def test_removed_label_sets_disappear() -> None:
    stores = StoreCollector()
    a = stores.add("postgres/main")
    for queryid in ("1", "2", "3"):
        a.inc(metrics.PG_STATEMENT_CALLS, 1, target="main", datname="db", user="u", queryid=queryid)
    stores.render()
    a.remove_where(metrics.PG_STATEMENT_CALLS, [("main", "db", "u", "2")])
    names = {dict(k[1]).get("queryid") for k in parsed(stores.render()) if k[0] == "perf_pg_statement_calls_total"}
    assert names == {"2"}


def test_a_write_with_the_wrong_label_names_raises_naming_the_family_its_labels_and_what_was_given() -> None:
    stores = StoreCollector()
    a = stores.add("api/a")
    a.inc(metrics.HTTP_REQUESTS, target="a", endpoint="e", method="GET", outcome="success")
    before = stores.render()
    writes = [
        lambda: a.inc(metrics.HTTP_REQUESTS, target="a", endpoint="e", method="GET"),  # one missing
        lambda: a.inc(metrics.HTTP_REQUESTS, target="a", endpoint="e", method="GET", outcome="success", x="1"),
        lambda: a.set(metrics.REDIS_UP, 1, target="a", endpont="e"),  # a misspelt name in place of none
        lambda: a.observe(metrics.HTTP_REQUEST_DURATION, 0.1, target="a", endpoint="e", methd="GET"),
        lambda: a.ensure_counter(metrics.HTTP_REQUESTS, target="a"),
        lambda: a.ensure_histogram(metrics.JOB_DURATION, collector="api"),
        lambda: a.set(metrics.CONFIG_RELOAD_OK, 1, target="a"),  # a family without labels
        lambda: a.remove(metrics.REDIS_UP),
        lambda: a.get(metrics.REDIS_UP, targte="a"),
    ]
    for write in writes:
        with pytest.raises(LabelError) as error:
            write()
        assert "perf_" in str(error.value) and "takes labels (" in str(error.value)
    with pytest.raises(LabelError) as error:
        a.inc(metrics.HTTP_REQUESTS, target="a", endpoint="e", method="GET")
    assert str(error.value) == ("perf_http_requests_total takes labels (target, endpoint, method, outcome), "
                                "got (target='a', endpoint='e', method='GET')")
    assert stores.render() == before  # nothing half-written


def test_a_label_value_that_is_not_a_string_is_refused_when_written() -> None:
    stores = StoreCollector()
    a = stores.add("redis/a")
    with pytest.raises(LabelError, match=r"perf_redis_keys takes labels \(target, db\), got \(target='a', db=0\)"):
        a.set(metrics.REDIS_KEYS, 3, target="a", db=0)  # type: ignore[arg-type]
    with pytest.raises(LabelError, match=r"perf_redis_keys takes labels \(target, db\), got \('a', 0\)"):
        a.replace(metrics.REDIS_KEYS, {("a", 0): 3})  # type: ignore[dict-item]
    assert "perf_redis_keys" not in stores.render()


def test_tuple_keyed_writes_check_each_key_against_the_family() -> None:
    stores = StoreCollector()
    a = stores.add("postgres/main")
    a.replace(metrics.PG_TABLE_LIVE, {("main", "db", "public", "orders"): 10})
    before = stores.render()
    with pytest.raises(LabelError, match=r"perf_pg_table_live_tuples takes labels \(target, datname, schema, "
                                         r"table\), got \('main', 'db', 'orders'\)"):
        a.replace(metrics.PG_TABLE_LIVE, {("main", "db", "public", "orders"): 11, ("main", "db", "orders"): 1})
    with pytest.raises(LabelError, match="perf_redis_up takes labels"):
        a.replace(metrics.REDIS_UP, {"a": 1})  # type: ignore[dict-item]  # a str, not a one-tuple
    with pytest.raises(LabelError, match="perf_pg_statement_calls_total"):
        a.inc_many(metrics.PG_STATEMENT_CALLS, {("main", "db", "u"): 1})
    with pytest.raises(LabelError, match="perf_pg_table_live_tuples"):
        a.remove_where(metrics.PG_TABLE_LIVE, [("main", "db")])
    assert stores.render() == before
    a.inc_many(metrics.PG_STATEMENT_CALLS, {("main", "db", "u", "1"): 2})
    a.inc_many(metrics.PG_STATEMENT_CALLS, {("main", "db", "u", "1"): 3, ("main", "db", "u", "2"): 0})
    assert a.get(metrics.PG_STATEMENT_CALLS, target="main", datname="db", user="u", queryid="1") == 5
    assert a.get(metrics.PG_STATEMENT_CALLS, target="main", datname="db", user="u", queryid="2") == 0


def test_observe_many_fills_the_same_buckets_as_one_observe_per_value_and_checks_its_keys() -> None:
    values = [0.004, 0.2, 0.2, 3.0, 1e9]
    one, many = StoreCollector(), StoreCollector()
    a, b = one.add("jaeger/main"), many.add("jaeger/main")
    for value in values:
        a.observe(metrics.TRACE_DURATION, value, target="main", service="api", operation="GET /")
    b.observe_many(metrics.TRACE_DURATION, {("main", "api", "GET /"): values})
    assert many.render() == one.render()
    assert 'perf_trace_duration_seconds_count{target="main",service="api",operation="GET /"} 5.0' in many.render()
    with pytest.raises(LabelError, match=r"perf_trace_duration_seconds takes labels \(target, service, operation\)"):
        b.observe_many(metrics.TRACE_DURATION, {("main", "api"): [1.0]})
    assert many.render() == one.render()
