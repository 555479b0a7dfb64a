"""Fuzzing /metrics: whatever text a statement or a URL holds, its label value is escaped so that Prometheus'
parser (prometheus_client's) reads back exactly that value, and every other series stays intact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.collectors.postgres.collector import short_query
from exporter.collectors.postgres.scrub import scrub_statement
from exporter.store import StoreCollector
from tests.fuzzing import FUZZ, report_inputs, tried  # noqa: F401 - report_inputs: fixture

# statement texts and URLs, with what breaks naive escaping: quotes, backslashes, newlines, braces, '#', unicode
hostile = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300) | st.sampled_from([
    '\\', '"', '\\"', '\\n', '\n', 'a"} 1\nperf_x{y="', '# HELP x', "SELECT '\\' ", "}", "{", "=", ","])


def parsed(text: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(dict(sample.labels))
    return out


@FUZZ
@given(st.lists(hostile, min_size=1, max_size=4, unique=True), hostile)
def test_statement_texts_and_urls_round_trip_through_the_exposition(texts: list[str], url: str) -> None:
    tried(__name__, "label values")
    stores = StoreCollector()
    store = stores.add("postgres/main")
    labels = [short_query(scrub_statement(text)) for text in texts]
    for i, query in enumerate(labels):
        store.set(metrics.PG_STATEMENT_INFO, 1.0, target="main", queryid=str(i), query=query)
    store.set(metrics.TARGET_UP, 1.0, collector="api", target=url)
    samples = parsed(stores.render())
    assert sorted(s["query"] for s in samples["perf_pg_statement_info"]) == sorted(labels)
    assert samples["perf_target_up"] == [{"collector": "api", "target": url}]
