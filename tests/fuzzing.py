"""Shared by the tests/test_fuzz_*.py files: bounded hypothesis settings and a count of the inputs tried.

Each fuzz test runs in seconds (``max_examples``; no deadline, as a loaded CI machine would otherwise fail a slow
example rather than a wrong one). ``INPUTS`` counts every input a fuzzed function was given; the count is printed
at the end of each fuzz module by :func:`report_inputs`, which every fuzz module imports."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)
INPUTS: Counter[str] = Counter()

# JSON documents of any shape: what a broken or hostile server could send
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture(scope="module", autouse=True)
def report_inputs(request: pytest.FixtureRequest) -> Iterator[None]:
    """At the end of each fuzz module, one line on the terminal: how many inputs each fuzzed function got."""
    yield
    module = request.module.__name__.rsplit(".", 1)[-1]
    counts = {k.split(":", 1)[1]: v for k, v in INPUTS.items() if k.startswith(module + ":")}
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and counts:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{module}: fuzz inputs tried: "
                                + ", ".join(f"{k} {v}" for k, v in counts.items())
                                + f" (total {sum(counts.values())})")


def tried(module: str, what: str) -> None:
    INPUTS[f"{module.rsplit('.', 1)[-1]}:{what}"] += 1
