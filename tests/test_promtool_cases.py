"""Hand-written promtool cases (tests/promtool/) for the alert maths, run against the generated rule files.

The cases are independent of exporter/slo: their series and expected alerts are worked out by hand from the SRE
workbook's multiwindow, multi-burn-rate table and Sloth's defaults (the reasoning is in each file's header), so a
wrong burn factor or window in the generator fails them, where the generated rules/tests/ would change with it.
The mutation check proves that: each factor and each window of the page and the ticket, changed on its own, must
make at least one hand-written case fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.loading import load_config, parse_config
from exporter.config.schema import Config
from exporter.slo import rules as slo_rules
from exporter.slo.render import rule_outputs

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "tests" / "promtool"
RULES = REPO / "rules"
EXAMPLE = REPO / "examples" / "tripo04os.yaml"

# the workbook's and Sloth's example objective: 99.9 % of requests succeed, over 30 days
WORKBOOK_CASES = {"workbook-page.test.yml": "PAGE", "workbook-ticket.test.yml": "TICKET"}
WORKBOOK_SLO = "api-errors"  # the SLO the workbook cases write series for (the error-rate target)

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")


def workbook_config() -> Config:
    return parse_config({"targets": {"error_rate": "0.1%", "slo_window": "30d"},
                         "api": [{"name": "gateway", "base_url": "http://127.0.0.1:1",
                                  "endpoints": [{"name": "health"}]}]}, "workbook.yaml", env={})


def render_rules(config: Config, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for relative, content in rule_outputs(config).items():
        if relative.endswith(".rules.yml") and "/" not in relative:
            (directory / relative).write_text(content)
    return directory


def run_case(case: Path, rules_dir: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """promtool test rules on a copy of ``case`` whose rule_files name the same files in ``rules_dir``."""
    test: dict[str, Any] = yaml.safe_load(case.read_text())
    test["rule_files"] = [str(rules_dir / Path(f).name) for f in test["rule_files"]]
    work.mkdir(parents=True, exist_ok=True)
    copy = work / case.name
    copy.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(["promtool", "test", "rules", str(copy)], capture_output=True, text=True, timeout=600)


def failed_cases(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-4000:] + result.stderr[-4000:]


# -- the cases pass on the rules as generated ----------------------------------------------------------------------


@needs_promtool
@pytest.mark.parametrize("name", ["tripo04os-api.test.yml", "tripo04os-other-areas.test.yml"])
def test_our_targets_cases_pass_on_the_shipped_rules(name: str, tmp_path: Path) -> None:
    # the shipped files are the example config's render (test_rules checks that); a case file names them as
    # ../../rules/*.rules.yml, so `promtool test rules tests/promtool/<file>` runs it by hand too
    assert load_config(EXAMPLE, env={}).targets.slo_window == 30 * 86400
    result = run_case(CASES / name, RULES, tmp_path)
    assert result.returncode == 0, failed_cases(result)


def test_every_case_file_is_run_by_this_module() -> None:
    run = set(WORKBOOK_CASES) | {"tripo04os-api.test.yml", "tripo04os-other-areas.test.yml"}
    assert {p.name for p in CASES.glob("*.test.yml")} == run


# -- the mutation check --------------------------------------------------------------------------------------------


def mutations() -> list[Any]:
    """Each burn factor times 1.25 and 0.8, and each window moved to its neighbours among the recorded windows.
    The constants are read by name (PAGE, TICKET, WINDOWS in exporter/slo/rules.py)."""
    windows = list(slo_rules.WINDOWS)
    params = []
    for constant in WORKBOOK_CASES.values():
        alert = getattr(slo_rules, constant)
        for index, condition in enumerate(alert.conditions):
            where = f"{constant}[{condition.factor:g}x {condition.long}/{condition.short}]"
            for scale in (1.25, 0.8):
                factor = round(condition.factor * scale, 6)
                params.append(pytest.param(constant, index, "factor", factor, id=f"{where}.factor={factor:g}"))
            for field in ("long", "short"):
                position = windows.index(getattr(condition, field))
                for neighbour in (position - 1, position + 1):
                    if 0 <= neighbour < len(windows):
                        w = windows[neighbour]
                        params.append(pytest.param(constant, index, field, w, id=f"{where}.{field}={w}"))
    return params


def alert_rules(content: dict[str, Any], name: str, severity: str) -> list[dict[str, Any]]:
    return [r for g in content["groups"] for r in g["rules"]
            if r.get("alert") == name and r["labels"]["severity"] == severity]


def record_rules(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in content["groups"] for r in g["rules"] if "record" in r]


def failing_alerts(result: subprocess.CompletedProcess[str]) -> set[str]:
    """The alert names in the queries promtool reports as failed; an error that is no failed query raises."""
    output = result.stdout + result.stderr
    failed = re.findall(r'expr: "(.*)", time:', output)
    if result.returncode != 0 and not failed:
        raise AssertionError(f"promtool could not run the case:\n{output[-3000:]}")
    return {name for expr in failed for name in re.findall(r'alertname=\\"(\w+)\\"', expr)}


@pytest.fixture(scope="module")
def workbook_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[set[str], str]]:
    """Case file -> (alerts whose queries failed, promtool's output), run on the rules rendered for 99.9 % plus
    one renamed copy of the burn-rate alert per mutant (``Mutant<n>ApiErrorRateErrorBudgetBurn``), each with
    a copy of the case's queries that names it. A mutation changes only that alert (checked below), so one run
    per case file evaluates the days of samples once for the real rules and every mutant."""
    root = tmp_path_factory.mktemp("workbook")
    base_dir = render_rules(workbook_config(), root / "base")
    base = yaml.safe_load((base_dir / "api.rules.yml").read_text())
    (alert_name,) = {r["alert"] for g in base["groups"] for r in g["rules"]
                     if r.get("alert", "").endswith("BudgetBurn") and r["labels"]["slo"] == WORKBOOK_SLO}
    severity = {"PAGE": slo_rules.PAGE.severity, "TICKET": slo_rules.TICKET.severity}
    mutants: dict[str, list[tuple[str, str, dict[str, Any]]]] = {case: [] for case in WORKBOOK_CASES}
    for number, param in enumerate(mutations()):
        constant, index, field, value = param.values
        alert = getattr(slo_rules, constant)
        conditions = list(alert.conditions)
        conditions[index] = replace(conditions[index], **{field: value})
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(slo_rules, constant, replace(alert, conditions=tuple(conditions)))
            mutated = yaml.safe_load(render_rules(workbook_config(), root / f"m{number}").joinpath(
                "api.rules.yml").read_text())
        assert record_rules(mutated) == record_rules(base), f"{param.id} changed a recording rule"
        (rule,) = [r for r in alert_rules(mutated, alert_name, severity[constant])
                   if r["labels"]["slo"] == WORKBOOK_SLO]
        assert rule not in alert_rules(base, alert_name, severity[constant]), f"{param.id} changed nothing"
        case = next(c for c, a in WORKBOOK_CASES.items() if a == constant)
        mutants[case].append((param.id, f"Mutant{number}{alert_name}", rule))

    def run(case: str) -> tuple[set[str], str]:
        directory = root / case.removesuffix(".test.yml")
        directory.mkdir()
        content = yaml.safe_load((base_dir / "api.rules.yml").read_text())
        # in the group that records their inputs, after it: evaluated on this evaluation's values, as the original
        (group,) = [g for g in content["groups"] if any(r.get("alert") == alert_name for r in g["rules"])]
        group["rules"] += [{**rule, "alert": renamed} for _, renamed, rule in mutants[case]]
        (directory / "api.rules.yml").write_text(yaml.safe_dump(content, sort_keys=False))
        test = yaml.safe_load((CASES / case).read_text())
        for group in test["tests"]:
            original = group["promql_expr_test"]
            group["promql_expr_test"] = original + [
                {**q, "expr": q["expr"].replace(f'alertname="{alert_name}"', f'alertname="{renamed}"')}
                for _, renamed, _ in mutants[case] for q in original]
        (directory / case).write_text(yaml.safe_dump(test, sort_keys=False))
        result = run_case(directory / case, directory, directory / "run")
        return failing_alerts(result), result.stdout[-6000:]

    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores
        outcomes = dict(zip(WORKBOOK_CASES, pool.map(run, WORKBOOK_CASES), strict=True))
    for case, named in mutants.items():
        failed, output = outcomes[case]
        for mutant_id, renamed, _ in named:
            outcomes[mutant_id] = ({renamed} & failed, output)
        outcomes[case] = ({alert_name} & failed, output)
    return outcomes


@needs_promtool
@pytest.mark.parametrize("name", sorted(WORKBOOK_CASES))
def test_workbook_cases_pass_on_the_rules_rendered_for_a_99_9_percent_objective(
        name: str, workbook_runs: dict[str, tuple[set[str], str]]) -> None:
    failed, output = workbook_runs[name]
    assert not failed, output


@needs_promtool
@pytest.mark.parametrize(("constant", "index", "field", "value"), mutations())
def test_a_burn_factor_or_window_changed_alone_fails_a_hand_written_case(
        constant: str, index: int, field: str, value: object, workbook_runs: dict[str, tuple[set[str], str]],
        request: pytest.FixtureRequest) -> None:
    failed, _ = workbook_runs[request.node.callspec.id]
    assert failed, f"no hand-written case noticed {constant}.conditions[{index}].{field} = {value}"
