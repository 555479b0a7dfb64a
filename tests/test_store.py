"""The metric store and its text exposition: what Prometheus parses is what the jobs wrote."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.store import StoreCollector


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
    a.observe(metrics.HTTP_REQUEST_DURATION, ("a", "create_order", "POST"), 0.12)
    a.observe(metrics.HTTP_REQUEST_DURATION, ("a", "create_order", "POST"), 0.6)
    b.observe(metrics.HTTP_REQUEST_DURATION, ("b", "health", "GET"), 20.0)
    a.inc(metrics.HTTP_REQUESTS, ("a", "create_order", "POST", "success"), 2)
    b.set(metrics.PG_STATEMENT_INFO, ("b", "42", 'select "x"\nfrom t where a = \\1'), 1)
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
    a.set(metrics.REDIS_UP, ("a",), 1)
    assert "perf_redis_up" in stores.render()
    stores.drop("redis/a")
    assert "perf_redis_up" not in stores.render()
    again = stores.add("redis/a")
    again.set(metrics.REDIS_UP, ("a",), 0)
    assert parsed(stores.render())[("perf_redis_up", frozenset({("target", "a")}))] == 0


def test_a_write_after_a_scrape_shows_in_the_next_scrape() -> None:
    stores = StoreCollector()
    a = stores.add("api/a")
    a.inc(metrics.HTTP_REQUESTS, ("a", "e", "GET", "success"))
    first = parsed(stores.render())
    a.inc(metrics.HTTP_REQUESTS, ("a", "e", "GET", "success"))
    second = parsed(stores.render())
    key = ("perf_http_requests_total", frozenset({"target": "a", "endpoint": "e", "method": "GET",
                                                  "outcome": "success"}.items()))
    assert (first[key], second[key]) == (1, 2)


def test_removed_label_sets_disappear() -> None:
    stores = StoreCollector()
    a = stores.add("postgres/main")
    for queryid in ("1", "2", "3"):
        a.inc(metrics.PG_STATEMENT_CALLS, ("main", "db", "u", queryid), 1)
    stores.render()
    a.remove_where(metrics.PG_STATEMENT_CALLS, [("main", "db", "u", "2")])
    names = {dict(k[1]).get("queryid") for k in parsed(stores.render()) if k[0] == "perf_pg_statement_calls_total"}
    assert names == {"2"}
