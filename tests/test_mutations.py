"""The mutation check: a one-character change to a rule users rely on makes a test fail. Each case copies the
package, changes one comparison in the copy, and runs the tests that guard it against the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# (module, the exact text, its mutant, the tests that must catch it)
MUTANTS = [
    ("exporter/load/verdict.py", "met = observed is None or observed < t.limit",
     "met = observed is None or observed <= t.limit", "tests/test_load_analysis.py"),
    ("exporter/load/verdict.py", "return all(value is None or limit is None or value < limit for value, limit",
     "return all(value is None or limit is None or value <= limit for value, limit", "tests/test_load_analysis.py"),
    # the masking rule: a query parameter named token, and a password up to the last @ (not the first)
    ("exporter/secrets.py", 'r"secret", r"token", r"key(?![a-z])"', 'r"secret", r"tokne", r"key(?![a-z])"',
     "tests/test_secrets_masking.py"),
    ("exporter/secrets.py", r"""([^\s/?#\"]*)@""", r"""([^\s/?#\"]*?)@""", "tests/test_secrets_masking.py"),
]


@pytest.mark.parametrize(("module", "original", "mutant", "tests"), MUTANTS,
                         ids=[f"{Path(m).stem}:{i}" for i, (m, *_) in enumerate(MUTANTS)])
def test_a_mutant_of_a_rule_fails_its_tests(module: str, original: str, mutant: str, tests: str,
                                            tmp_path: Path) -> None:
    for part in ("exporter", "tests"):  # pytest puts the tests' root first on sys.path: both are the copy's
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    target = tmp_path / module
    source = target.read_text()
    assert source.count(original) == 1, f"{module} no longer has {original!r}: update the mutant"
    target.write_text(source.replace(original, mutant))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist",
                           tests], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1 and " failed" in done.stdout, f"the mutant survived {tests}:\n{done.stdout[-2000:]}"
