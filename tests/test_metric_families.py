"""Every metric family exporter/metrics.py declares is named by some test, which asserts a value it caused.

A family no test names can break (a wrong label, a counter that never moves, a gauge left stale) with the
suite green. This test cannot see whether the value asserted is right; it makes sure there is one to look at:
a test names a family by its metric name (``perf_job_duration_seconds``, or a ``_bucket``/``_count``/``_sum``
series of it) or by its constant (``metrics.JOB_DURATION``).
"""

from __future__ import annotations

import re
from pathlib import Path

from exporter import metrics

TESTS = Path(__file__).resolve().parent


def texts_of_the_tests() -> str:
    return "\n".join(p.read_text() for p in sorted(TESTS.rglob("*.py")) if p.name != Path(__file__).name)


def test_every_metric_family_is_named_by_a_test() -> None:
    constants = {family.name: name for name, family in vars(metrics).items() if isinstance(family, metrics.Family)}
    text = texts_of_the_tests()
    unnamed = []
    for family in metrics.FAMILIES:
        by_name = re.search(rf"\b{re.escape(family.name)}(_bucket|_count|_sum)?\b", text)
        constant = constants.get(family.name)
        by_constant = constant is not None and re.search(rf"\bmetrics\.{constant}\b", text)
        if not (by_name or by_constant):
            unnamed.append(family.name)
    assert unnamed == [], f"no test asserts a value of: {unnamed}"


def test_the_families_are_the_declared_ones() -> None:
    declared = [f for f in vars(metrics).values() if isinstance(f, metrics.Family)]
    assert sorted(f.name for f in metrics.FAMILIES) == sorted(f.name for f in declared)
    assert len(metrics.FAMILIES) >= 90
