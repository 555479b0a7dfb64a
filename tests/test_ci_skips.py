"""CI=true turns a skip into a failure that names what was missing; elsewhere a skip stays a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

NEEDS_A_TOOL = """
import pytest

@pytest.mark.skipif(True, reason="frobnicator (Debian package frob)")
def test_needs_the_tool():
    pass

def test_needs_nothing():
    pass
"""


def test_under_ci_a_skipped_test_fails_and_names_what_was_missing(pytester: pytest.Pytester,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(NEEDS_A_TOOL)
    result = pytester.runpytest("-p", "tests.ci_skips")
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skipped under CI=true*frobnicator (Debian package frob)*",
                                 "missing: frobnicator (Debian package frob) (1 tests)"])


def test_a_skip_called_inside_a_test_fails_under_ci_too(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile("import pytest\n\ndef test_x():\n    pytest.skip('no redis-server on PATH')\n")
    result = pytester.runpytest("-p", "tests.ci_skips")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*no redis-server on PATH*"])


def test_under_ci_a_skip_in_a_pytest_xdist_worker_fails_the_run_and_the_summary_names_it(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """scripts/test.sh runs pytest with workers: the skip happens in a worker, the summary is the controller's."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))  # where tests.ci_skips is
    pytester.makepyfile(test_a=NEEDS_A_TOOL, test_b="import pytest\n\ndef test_y():\n    pytest.skip('no amtool')\n")
    # in a process of its own: pytest-xdist's workers start with the sys.path their controller started with
    result = pytester.runpytest_subprocess("-p", "tests.ci_skips", "-n", "2")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skipped under CI=true*", "*tests that would have been skipped*"])
    result.stdout.fnmatch_lines(["missing: frobnicator (Debian package frob) (1 tests)",
                                 "missing: no amtool (1 tests)"])


def test_outside_ci_a_missing_tool_only_skips_the_tests_that_need_it(pytester: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(NEEDS_A_TOOL)
    result = pytester.runpytest("-p", "tests.ci_skips")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == 0


def test_every_debian_package_a_skip_marker_names_is_one_the_test_command_installs() -> None:
    """A fresh machine runs scripts/test.sh; a tool it does not install would fail CI as a skip."""
    import re

    repo = Path(__file__).resolve().parent.parent
    script = (repo / "scripts" / "test.sh").read_text()
    listed = re.search(r"DEBIAN_PACKAGES=\(([^)]*)\)", script)
    assert listed is not None
    installed = set(listed.group(1).split())
    named = {name for path in repo.glob("tests/*.py") if path.name != Path(__file__).name
             for name in re.findall(r"Debian package ([a-z0-9.+-]+)", path.read_text())}
    named |= {"prometheus", "prometheus-alertmanager", "redis-server", "postgresql"}  # binaries the fixtures start
    assert "prometheus" in named and named - installed == set()
