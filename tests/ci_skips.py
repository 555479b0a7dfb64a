"""Under ``CI=true`` a skipped test fails the run and names what was missing.

A skip marker says which tool a test needs (``promtool``, ``redis-server``...). On a developer's machine a
missing tool skips the tests that need it; in CI, where ``scripts/test.sh`` installs everything, a skip means an
install step is broken, so it must not pass as "fewer tests". The hooks are imported by tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

CI_VALUES = ("1", "true", "yes")
CI_SKIP_PROPERTY = "ci_skip"  # the user property of a report whose skip CI=true turned into a failure: the reason


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def skip_reason(report: pytest.TestReport) -> str:
    """The reason a skip marker or ``pytest.skip()`` gave, without pytest's location prefix."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        reason = skip_reason(report)
        report.outcome = "failed"
        report.longrepr = (f"skipped under CI=true, which must run every test: {reason}\n"
                           "scripts/test.sh (the README's test command) must install what this test needs.")
        # on the report, which pytest-xdist's workers send to the controller that prints the summary
        report.user_properties.append((CI_SKIP_PROPERTY, reason))


def ci_skips(terminalreporter: Any) -> list[tuple[str, str]]:
    """(test id, reason) of every skip turned into a failure, from the reports this process summarises: its own,
    or under pytest-xdist every worker's."""
    return [(report.nodeid, str(value)) for reports in terminalreporter.stats.values() for report in reports
            for name, value in getattr(report, "user_properties", ()) if name == CI_SKIP_PROPERTY]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skips = ci_skips(terminalreporter)
    if skips:
        terminalreporter.section("tests that would have been skipped (CI=true fails them)")
        for reason in sorted({r for _, r in skips}):
            count = sum(1 for _, r in skips if r == reason)
            terminalreporter.line(f"missing: {reason} ({count} tests)")
