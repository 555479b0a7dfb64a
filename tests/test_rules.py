"""Alert and recording rules from the targets: promtool lints them and runs a unit test for every alert."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import metrics
from exporter.config.loading import load_config, parse_config
from exporter.config.schema import Config
from exporter.slo.render import render, rule_outputs
from exporter.slo.rules import rule_groups
from exporter.slo.slos import le_matcher

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
EXAMPLE = REPO / "examples" / "tripo04os.yaml"

# only the tests that run promtool need it; the drift and structure checks run everywhere
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")


def example_config() -> Config:
    return load_config(EXAMPLE, env={})


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def run_unit_tests(directory: Path, names: list[str] | None = None) -> dict[str, subprocess.CompletedProcess[str]]:
    """promtool test rules on each test file, two at a time (the machine has two cores)."""
    files = sorted((directory / "tests").glob("*.test.yml"))
    if names is not None:
        files = [f for f in files if f.name.removesuffix(".test.yml") in names]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda f: promtool("test", "rules", f.name, cwd=f.parent), files)
        return {f.name: r for f, r in zip(files, results, strict=True)}


def rendered(tmp_path: Path, config: Config) -> Path:
    for relative, content in rule_outputs(config).items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path


def alerts_in(directory: Path) -> set[str]:
    names = set()
    for path in directory.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["alert"] for r in group["rules"] if "alert" in r}
    return names


# -- the shipped files -------------------------------------------------------------------------------------------


def test_shipped_rules_are_exactly_what_render_produces_from_the_example_config() -> None:
    expected = rule_outputs(example_config())
    shipped = {p.relative_to(RULES).as_posix(): p.read_text() for p in RULES.rglob("*") if p.is_file()}
    assert sorted(shipped) == sorted(expected), "run: perf-exporter render rules --config examples/tripo04os.yaml"
    for relative, content in expected.items():
        assert shipped[relative] == content, f"rules/{relative} drifted; re-render it"


@needs_promtool
def test_every_rule_file_passes_promtool_check_with_all_lints() -> None:
    files = sorted(RULES.glob("*.rules.yml"))
    assert [f.stem.removesuffix(".rules") for f in files] == ["api", "cache", "database", "health", "tracing"]
    for path in files:
        result = promtool("check", "rules", "--lint=all", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_silent() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in (RULES / "tests").glob("*.test.yml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group["alert_rule_test"]:
                (fires if case["exp_alerts"] else silent).add(case["alertname"])
    assert alerts_in(RULES) - fires == set()
    assert alerts_in(RULES) - silent == set()


@needs_promtool
def test_shipped_promtool_unit_tests_pass() -> None:
    results = run_unit_tests(RULES)
    assert len(results) >= 8
    failures = {name: r.stdout[-3000:] + r.stderr[-2000:] for name, r in results.items() if r.returncode != 0}
    assert failures == {}


def test_each_percentile_target_counts_the_histogram_bucket_at_its_threshold() -> None:
    api = yaml.safe_load((RULES / "api.rules.yml").read_text())["groups"][0]["rules"]
    p95 = next(r for r in api if r.get("record") == "slo:sli_error:ratio_rate5m"
               and r["labels"]["sloth_slo"] == "latency-p95")
    assert 'le="0.5"' in p95["expr"] and 'endpoint!~"create_order"' in p95["expr"]
    override = next(r for r in api if r.get("record") == "slo:sli_error:ratio_rate5m"
                    and r["labels"]["sloth_slo"] == "create-order-latency-p95")
    assert 'le="0.3"' in override["expr"] and 'endpoint="create_order"' in override["expr"]
    p99 = next(r for r in api if r.get("record") == "slo:sli_error:ratio_rate5m"
               and r["labels"]["sloth_slo"] == "latency-p99")
    assert 'le=~"1(\\\\.0)?"' in p99["expr"]


@pytest.mark.parametrize(("bound", "matches", "rejects"), [
    (1.0, ["1", "1.0"], ["10.0", "0.1", "1.5"]),
    (0.5, ["0.5"], ["0.50", "5.0"]),
    (10.0, ["10", "10.0"], ["1.0", "100.0"]),
])
def test_whole_number_bounds_match_both_prometheus_2_and_3_le_labels(bound: float, matches: list[str],
                                                                      rejects: list[str]) -> None:
    matcher = le_matcher(bound)
    if "=~" in matcher:
        pattern = matcher.split('"')[1].replace("\\\\", "\\")
        def hit(le: str) -> bool:
            return re.fullmatch(pattern, le) is not None
    else:
        def hit(le: str) -> bool:
            return matcher == f'le="{le}"'
    assert all(hit(le) for le in matches)
    assert not any(hit(le) for le in rejects)


def test_every_metric_the_rules_read_is_one_the_exporter_declares_or_a_rule_records() -> None:
    files = rule_groups(example_config())
    declared = set()
    for family in metrics.FAMILIES:
        declared.add(family.name)
        if family.kind is metrics.Kind.HISTOGRAM:
            declared |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
    recorded = {r["record"] for c in files.values() for g in c["groups"] for r in g["rules"] if "record" in r}
    used = set()
    for content in files.values():
        for group in content["groups"]:
            for rule in group["rules"]:
                used |= set(re.findall(r"\b(perf_[a-z0-9_]+|[a-z_]+:[a-z0-9_:]+)\b", rule["expr"]))
    assert used - declared - recorded == set()


def test_every_alert_links_to_its_section_of_the_shipped_runbook() -> None:
    anchors = {m.lower() for m in re.findall(r"^## (\w+)$", (RULES / "runbooks.md").read_text(), re.MULTILINE)}
    for path in RULES.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                assert rule["labels"]["severity"] in ("critical", "warning", "info")
                assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
                url = rule["annotations"]["runbook_url"]
                assert url == f"rules/runbooks.md#{rule['alert'].lower()}"
                assert rule["alert"].lower() in anchors
                assert rule["annotations"]["summary"].endswith(".")
                if "slo" in rule["labels"]:  # SLO alerts say which target, the value and the objective
                    description = rule["annotations"]["description"]
                    assert "{{ $labels.target }}" in description and "{{ $value" in description


# -- behaviour promtool proves on hand-written series ------------------------------------------------------------


def _expr_test(rule_file: Path, series: list[dict[str, str]], cases: list[dict[str, Any]], tmp_path: Path) -> str:
    test = {"rule_files": [str(rule_file)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": cases}]}
    path = tmp_path / "case.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_no_traffic_gives_no_sli_series_instead_of_nan(tmp_path: Path) -> None:
    base = 'target="gateway", endpoint="health", method="GET"'
    series = [{"series": f'{metrics.HTTP_REQUEST_DURATION.name}_bucket{{{base}, le="{le}"}}', "values": "0+0x30"}
              for le in ("0.5", "1.0", "+Inf")]
    series.append({"series": f"{metrics.HTTP_REQUEST_DURATION.name}_count{{{base}}}", "values": "0+0x30"})
    series += [{"series": f'{metrics.HTTP_REQUESTS.name}{{{base}, outcome="{o}"}}', "values": "0+0x30"}
               for o in metrics.HTTP_OUTCOMES]
    _expr_test(RULES / "api.rules.yml", series, [
        {"expr": "slo:sli_error:ratio_rate5m", "eval_time": "20m", "exp_samples": []},
        {"expr": "slo:sli_error:ratio_rate1h", "eval_time": "20m", "exp_samples": []},
        {"expr": "target_endpoint:perf_http_request_duration_seconds:p95_rate5m", "eval_time": "20m",
         "exp_samples": []},
        {"expr": "target:perf_http_requests:error_ratio_rate5m", "eval_time": "20m", "exp_samples": []},
        {"expr": "slo:current_burn_rate:ratio", "eval_time": "20m", "exp_samples": []},
    ], tmp_path)


@needs_promtool
def test_the_period_error_ratio_weighs_events_not_windows(tmp_path: Path) -> None:
    # 60 minutes of 1000 requests/min without errors, then 60 of 10 requests/min with 2 failing: 120 errors in
    # 60600 requests is 0.2 %, 20 % of the 1 % budget; an average of the 5-minute ratios would be about 10 %.
    base = 'target="gateway", endpoint="health", method="GET"'
    series = [
        {"series": f'{metrics.HTTP_REQUESTS.name}{{{base}, outcome="success"}}', "values": "0+1000x60 60008+8x59"},
        {"series": f'{metrics.HTTP_REQUESTS.name}{{{base}, outcome="http_5xx"}}', "values": "0+0x60 2+2x59"},
    ]
    labels = {"sloth_id": "api-errors", "sloth_service": "api", "sloth_slo": "errors", "target": "gateway"}
    _expr_test(RULES / "api.rules.yml", series, [
        {"expr": 'round(slo:sli_error:ratio_rate30d{sloth_slo="errors"}, 0.001)', "eval_time": "120m",
         "exp_samples": [{"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in {**labels,
                                                                             "sloth_window": "30d"}.items()) + "}",
                          "value": 0.002}]},
        {"expr": 'round(slo:period_error_budget_remaining:ratio{sloth_slo="errors"}, 0.1)', "eval_time": "120m",
         "exp_samples": [{"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}",
                          "value": 0.8}]},
    ], tmp_path)


# -- the generator on other targets ------------------------------------------------------------------------------


def other_targets() -> Config:
    return parse_config({
        "targets": {"api_latency_p95": "300ms", "error_rate": "0.5%", "cache_hit_rate": "90%",
                    "endpoints": {"create_order": {"error_rate": "2%"}}},
        "api": [{"name": "gateway", "base_url": "http://127.0.0.1:1", "endpoints": [{"name": "health"}]}],
        "redis": [{"name": "cache"}],
    }, "other.yaml", env={})


@needs_promtool
def test_other_targets_give_rules_and_unit_tests_that_pass(tmp_path: Path) -> None:
    config = other_targets()
    directory = rendered(tmp_path, config)
    for path in sorted(directory.glob("*.rules.yml")):
        result = promtool("check", "rules", "--lint=all", str(path))
        assert result.returncode == 0, result.stdout
    cache = yaml.safe_load((directory / "cache.rules.yml").read_text())["groups"][0]["rules"]
    pages = [r for r in cache if r.get("alert") == "CacheHitRateErrorBudgetBurn"
             and r["labels"]["severity"] == "critical"]
    # a 10 % budget cannot burn 14.4x, but it can burn 6x: the page keeps only that condition
    assert len(pages) == 1 and "> 0.6)" in pages[0]["expr"] and "1.44" not in pages[0]["expr"]
    assert (directory / "tests" / "api-create-order-errors.test.yml").exists()
    results = run_unit_tests(directory, ["api-latency-p95", "api-create-order-errors", "cache-hit-rate"])
    assert len(results) == 3
    assert {n: r.returncode for n, r in results.items()} == dict.fromkeys(results, 0), \
        "\n".join(r.stderr[-2000:] for r in results.values())


@needs_promtool
def test_the_unit_tests_fail_against_rules_with_the_wrong_threshold(tmp_path: Path) -> None:
    # tests generated for a 300 ms P95, run against rules generated for 500 ms: the violations they write
    # (requests between 300 and 400 ms) no longer count, so the alerts they expect must not fire
    rendered(tmp_path, other_targets())
    wrong = rule_outputs(parse_config({"targets": {}, "api": [{"name": "gateway", "base_url": "http://127.0.0.1:1",
                                                                "endpoints": [{"name": "health"}]}]}, "x", env={}))
    (tmp_path / "api.rules.yml").write_text(wrong["api.rules.yml"])
    result = run_unit_tests(tmp_path, ["api-latency-p95"])["api-latency-p95.test.yml"]
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+)", result.stderr))
    assert failed == {"ApiLatencyP95High", "ApiLatencyP95ErrorBudgetBurn"}


def test_render_writes_the_files_and_removes_what_an_earlier_render_left(tmp_path: Path) -> None:
    assert render("rules", other_targets(), tmp_path) == 0
    assert (tmp_path / "tests" / "api-create-order-errors.test.yml").exists()
    mine = tmp_path / "tests" / "my-own.test.yml"
    mine.write_text("# not generated\n")
    assert render("rules", example_config(), tmp_path) == 0
    assert not (tmp_path / "tests" / "api-create-order-errors.test.yml").exists()
    assert mine.exists()
    assert (tmp_path / "api.rules.yml").read_text() == (RULES / "api.rules.yml").read_text()


def test_render_warns_about_a_per_endpoint_target_for_an_endpoint_nobody_probes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = parse_config({"targets": {"endpoints": {"create_ordr": {"api_latency_p95": "300ms"}}},
                           "api": [{"name": "gateway", "base_url": "http://127.0.0.1:1",
                                    "endpoints": [{"name": "create_order"}]}]}, "typo.yaml", env={})
    assert render("rules", config, tmp_path) == 0
    assert "targets.endpoints.create_ordr: no api target has an endpoint named 'create_ordr'" in \
        capsys.readouterr().err
    assert render("rules", example_config(), tmp_path / "example") == 0
    assert "warning" not in capsys.readouterr().err


def test_render_from_the_command_line(tmp_path: Path) -> None:
    import sys
    result = subprocess.run([sys.executable, "-m", "exporter", "render", "rules", "--config.file", str(EXAMPLE),
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "health.rules.yml").read_text() == (RULES / "health.rules.yml").read_text()
