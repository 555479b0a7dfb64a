"""The guide's security checklist: the alert on ``perf_security_check_success`` (exporter.probes.security), its
promtool unit tests and its runbook, in ``rules/security/`` apart from the SLO files generated from ``targets:``.
"""

from __future__ import annotations

from typing import Any

from exporter import metrics
from exporter.slo.alert_tests import expand

FOLDER = "security"
RULES_PATH = f"{FOLDER}/security.rules.yml"
TESTS_PATH = f"{FOLDER}/tests/security.test.yml"
RUNBOOKS_PATH = f"{FOLDER}/runbooks.md"
ALERT = "SecurityCheckFailing"
FOR = "5m"  # the checks run every probe interval (15 s in the example): a lasting failure, not one odd answer

RUNBOOK = (
    "An endpoint has failed one of its security checks (the `check` label) for 5 minutes: every run of the api job "
    "found the same hole, or could not show that it is closed. The daemon's log has one `security_check_failed` "
    "line per endpoint and check with its cause (again when the cause changes), and the index page shows the "
    "checks failing now beside the api target. docs/security.md says what each check sends and how it judges.",
    "Reproduce the cause with curl, fix the gateway, and the check holds again at the next run:")
# check -> (what failing means, where the fix lies); one row each, in the order of metrics.SECURITY_CHECKS
CHECK_RUNBOOK = {
    "unauthenticated": ("the request without credentials was not refused with the expected status (401)",
                        "the authentication middleware: every route behind it"),
    "lower_role": ("a lower role's request was not refused (403)", "the role mapping of the route"),
    "token_tampering": ("a token with its signature changed, unsigned (`alg: none`), with changed claims, or "
                        "expired was not refused with 401 (or the valid token itself was refused)",
                        "token verification: check the signature with a fixed algorithm, and the expiry"),
    "object_authorization": ("another user reached an object that a user created in the run (anything but 403 or "
                             "404), or the owner could not read it", "an owner check on every object route"),
    "rate_limit": ("a burst with credentials got no 429, or a 5xx", "the per-client rate limiter (with Retry-After)"),
    "anonymous_rate_limit": ("a burst without credentials got no 429, or a 5xx",
                             "the rate limiter for unauthenticated callers (per address)"),
    "injection": ("SQL injection: a 5xx or database error for a quote, a true and a false condition answered "
                  "differently, or a `pg_sleep` that slowed the answer", "bind parameters; never paste input into SQL"),
    "xss": ("a unique marker came back unescaped in a page rendered as HTML", "escape output by its context"),
    "csrf": ("a cookie-authenticated state change without a CSRF token, from a foreign origin, was accepted (or "
             "the check had no session to try)", "a CSRF token on every cookie-authenticated state change"),
}


def security_rules() -> dict[str, Any]:
    alert = {
        "alert": ALERT, "expr": f"{metrics.SECURITY_CHECK_SUCCESS.name} == 0", "for": FOR,
        "labels": {"severity": "warning", "area": FOLDER},
        "annotations": {
            "summary": "An endpoint fails a security check of the guide's checklist.",
            "description": "{{ $labels.target }} {{ $labels.endpoint }} has failed its {{ $labels.check }} check "
                           "for 5 minutes.",
            "runbook_url": f"rules/{RUNBOOKS_PATH}#{ALERT.lower()}"}}
    return {"groups": [{"name": "perf-exporter-security", "rules": [alert]}]}


def security_tests(rules: dict[str, Any]) -> dict[str, Any]:
    rule = rules["groups"][0]["rules"][0]
    labels = {"job": "perf-exporter", "instance": "perf:9469", "target": "gateway", "endpoint": "update_trip_status",
              "check": "rate_limit"}
    series = ", ".join(f'{k}="{v}"' for k, v in labels.items())

    def case(name: str, values: str, fires: bool) -> dict[str, Any]:
        expected = [{"exp_labels": {**labels, **rule["labels"]},
                     "exp_annotations": {k: expand(v, labels, 0.0) for k, v in rule["annotations"].items()}}]
        return {"name": name, "interval": "1m",
                "input_series": [{"series": f"{metrics.SECURITY_CHECK_SUCCESS.name}{{{series}}}", "values": values}],
                "alert_rule_test": [{"eval_time": "10m", "alertname": ALERT, "exp_alerts": expected if fires else []}]}

    return {"rule_files": ["../security.rules.yml"], "evaluation_interval": "1m", "tests": [
        case(f"{ALERT}: fires after 5 minutes of failing", "1 1 1 0x10", True),
        case(f"{ALERT}: silent while it passes", "1x10", False),
        case(f"{ALERT}: silent for a failure that did not last", "1 1 1 1 1 1 1 0 0 1 1", False),
    ]}


def security_runbooks(rules: dict[str, Any]) -> str:
    if tuple(CHECK_RUNBOOK) != metrics.SECURITY_CHECKS:
        raise ValueError(f"CHECK_RUNBOOK must describe the checks of metrics.SECURITY_CHECKS, in order: "
                         f"{', '.join(metrics.SECURITY_CHECKS)}")
    meaning, action = RUNBOOK
    rule = rules["groups"][0]["rules"][0]
    table = ["| check | failing means | fix |", "|---|---|---|",
             *(f"| `{check}` | {means} | {fix} |" for check, (means, fix) in CHECK_RUNBOOK.items())]
    return "\n".join(["# Security runbooks", "",
                      "Generated by `perf-exporter render rules`; the alert is in `security.rules.yml`.", "",
                      f"## {ALERT}", "", meaning, "", f"Expression: `{rule['expr']}` for {rule['for']}.", "", action,
                      "", *table, ""])


def rule_outputs() -> dict[str, Any]:
    """Path under rules/ -> content: YAML data for the rule and test files, text for the runbook."""
    rules = security_rules()
    return {RULES_PATH: rules, TESTS_PATH: security_tests(rules), RUNBOOKS_PATH: security_runbooks(rules)}
