"""Grafana dashboards: what Grafana's dashboard linter would check, without a Grafana server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from exporter import metrics
from exporter.config.loading import load_config
from exporter.config.schema import Config
from exporter.jobs import SloArea
from exporter.slo import dashboards as dashboards_module
from exporter.slo.dashboards import dashboards, slo_dashboard
from exporter.slo.render import dashboard_outputs
from exporter.slo.rules import rule_groups
from exporter.slo.slos import HitMissIndicator, OutcomeIndicator, Slo, all_slos

REPO = Path(__file__).resolve().parent.parent
GRAFANA = REPO / "grafana"
EXAMPLE = REPO / "examples" / "tripo04os.yaml"


def example_config() -> Config:
    return load_config(EXAMPLE, env={})


@pytest.fixture(scope="module")
def shipped() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows keep theirs inside
    return out


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


def concrete(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable on All."""
    return (expr.replace("$__rate_interval", "1m").replace('"$target"', '".*"')
            .replace('"$endpoint"', '".*"'))


def test_shipped_dashboards_are_exactly_what_render_produces_from_the_example_config() -> None:
    expected = dashboard_outputs(example_config())
    shipped = {p.relative_to(GRAFANA).as_posix(): p.read_text() for p in GRAFANA.rglob("*") if p.is_file()}
    assert sorted(shipped) == sorted(expected), "run: perf-exporter render dashboards --config examples/tripo04os.yaml"
    for relative, content in expected.items():
        assert shipped[relative] == content, f"grafana/{relative} drifted; re-render it"


def test_the_six_dashboards_have_unique_uids_titles_and_the_shared_tag(shipped: dict[str, dict[str, Any]]) -> None:
    assert sorted(shipped) == ["api", "cache", "database", "health", "overview", "tracing"]
    uids = [d["uid"] for d in shipped.values()]
    titles = [d["title"] for d in shipped.values()]
    assert len(set(uids)) == 6 and len(set(titles)) == 6
    for d in shipped.values():
        assert re.fullmatch(r"[a-z0-9-]{1,40}", d["uid"])
        assert d["title"].startswith("perf-exporter / ")
        assert "perf-exporter" in d["tags"]
        links = [link for link in d["links"] if link["type"] == "dashboards"]
        assert links and links[0]["tags"] == ["perf-exporter"]  # every dashboard links to the others


def test_panels_have_unique_ids_and_fit_the_24_column_grid_without_overlapping(
        shipped: dict[str, dict[str, Any]]) -> None:
    for name, d in shipped.items():
        ids = [p["id"] for p in panels(d)]
        assert len(ids) == len(set(ids)), name
        taken: set[tuple[int, int]] = set()
        for p in panels(d):
            g = p["gridPos"]
            assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, (name, p["title"], g)
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & taken, (name, p["title"], "overlaps another panel")
            taken |= cells


def test_every_panel_queries_prometheus_through_the_datasource_variable(shipped: dict[str, dict[str, Any]]) -> None:
    for name, d in shipped.items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["target"]["datasource"]["uid"] == "${datasource}"
        for p in panels(d):
            if p["type"] == "row":
                continue
            assert p["targets"], (name, p["title"], "has no query")
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (name, p["title"])
            for t in p["targets"]:
                assert t["expr"].strip(), (name, p["title"])
                assert t["datasource"]["uid"] == "${datasource}"
    assert "endpoint" in {v["name"] for v in shipped["api"]["templating"]["list"]}


def test_raw_rates_use_the_rate_interval_and_honour_the_target_variable(shipped: dict[str, dict[str, Any]]) -> None:
    for name, d in shipped.items():
        for expr in queries(d):
            for window in re.findall(r"(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", (name, expr)
            # the exporter's own series (perf_exporter_*: per process and replica) have no target
            if re.search(r"\bperf_", expr) and "perf_config_last_reload" not in expr \
                    and not re.search(r"\bperf_exporter_", expr):
                assert '$target' in expr, (name, expr)


def test_every_metric_a_dashboard_reads_is_exported_or_recorded(shipped: dict[str, dict[str, Any]]) -> None:
    declared = {"ALERTS"}
    for family in metrics.FAMILIES:
        declared.add(family.name)
        if family.kind is metrics.Kind.HISTOGRAM:
            declared |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
    files = rule_groups(example_config())
    recorded = {r["record"] for c in files.values() for g in c["groups"] for r in g["rules"] if "record" in r}
    for name, d in shipped.items():
        for expr in queries(d):
            used = set(re.findall(r"\b(perf_[a-z0-9_]+|[a-z_]+:[a-z0-9_:]+|ALERTS)\b", expr))
            assert used - declared - recorded == set(), (name, expr)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")
def test_every_dashboard_query_is_valid_promql(shipped: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query_{i}:check", "expr": concrete(expr)}
             for i, expr in enumerate(q for d in shipped.values() for q in queries(d))]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_targets_are_drawn_as_threshold_lines(shipped: dict[str, dict[str, Any]]) -> None:
    t = example_config().targets
    expected = {("api", "P95 response time"): t.api_latency_p95, ("api", "P99 response time"): t.api_latency_p99,
                ("api", "Error rate"): t.error_rate, ("database", "Query P95 (all statements)"): t.db_query_p95,
                ("cache", "Cache hit rate"): t.cache_hit_rate, ("tracing", "Trace P95 by service"): t.trace_p95}
    for (name, title), value in expected.items():
        panel = next(p for p in panels(shipped[name]) if p.get("title") == title)
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"
        assert value in [s["value"] for s in defaults["thresholds"]["steps"]], (name, title)


def test_the_overview_opens_with_the_guides_performance_targets_table(shipped: dict[str, dict[str, Any]]) -> None:
    overview = shipped["overview"]
    first_row, table = overview["panels"][0], overview["panels"][1]
    assert first_row["type"] == "row" and first_row["title"] == "Performance targets"
    assert table["type"] == "table" and table["gridPos"]["y"] == first_row["gridPos"]["y"] + 1
    current, status, budget, burn = (t["expr"] for t in table["targets"])
    for slo in all_slos(example_config()):
        assert f'"{slo.title}"' in current and f'"{slo.target_text}"' in current
        assert f'"{slo.title}"' in status
        assert f'sloth_id="{slo.sloth_id}"' in budget and f'sloth_id="{slo.sloth_id}"' in burn
    renames = next(t for t in table["transformations"] if t["id"] == "organize")["options"]["renameByName"]
    assert set(renames.values()) == {"Metric", "Source", "Target", "Current", "Unit", "Status", "Error budget left",
                                     "Burn rate"}
    titles = [p["title"] for p in overview["panels"]]
    assert "Error budget remaining" in titles and "Burn rate (5m)" in titles


def test_dashboards_follow_other_targets() -> None:
    from exporter.config.loading import parse_config
    config = parse_config({"targets": {"api_latency_p95": "300ms", "cache_hit_rate": "90%"}}, "x", env={})
    built = dashboards(config)
    p95 = next(p for p in panels(built["api"]) if p.get("title") == "P95 response time")
    assert 0.3 in [s["value"] for s in p95["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert '"< 300 ms"' in built["overview"]["panels"][1]["targets"][0]["expr"]
    assert '"> 90 %"' in built["overview"]["panels"][1]["targets"][0]["expr"]


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "perf-exporter.yml").read_text())
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "perf-exporter.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    assert providers["providers"][0]["options"]["path"].startswith("/")


def test_an_area_of_its_own_draws_a_hit_rate_floor_as_hits_and_an_error_ceiling_as_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    hits = Slo("toycache", "hit-rate", "ToyHitRate", "Toy Hit Rate", 0.8, HitMissIndicator(by=("target",)), "> 80 %",
               "hits", "cache", threshold=0.8)
    errors = Slo("toycache", "errors", "ToyErrors", "Toy Errors", 0.99, OutcomeIndicator(by=("target",)), "< 1 %",
                 "errors", "errors", threshold=0.01)
    monkeypatch.setattr(dashboards_module, "all_slos", lambda config: [hits, errors])
    area = SloArea("toycache", "Toy cache", "lookups", metrics.REDIS_HITS.name, lambda targets: [hits, errors])
    board = json.loads(json.dumps(slo_dashboard(area)(example_config()).build(), cls=JSONEncoder))
    exprs = {p["title"]: p["targets"][0]["expr"] for p in panels(board) if p.get("targets")}
    numerator = {title: expr.split("\n/\n")[0] for title, expr in exprs.items()}
    assert metrics.REDIS_HITS.name in numerator["Toy Hit Rate"]
    assert metrics.REDIS_MISSES.name not in numerator["Toy Hit Rate"]
    assert 'outcome!="success"' in numerator["Toy Errors"]
