"""k6 gets only the variables its scripts read, its own options and what the Go runtime needs
(exporter.load.environment): bench's ``DATABASE_URL`` and any other credential of its environment stay with bench."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.load.catalog import scenarios_dir
from exporter.load.environment import SCRIPT_VARIABLES, k6_environment
from tests.http_target import HttpTarget


def test_the_allowlist_names_exactly_the_variables_the_scripts_read() -> None:
    read = {name for script in scenarios_dir().rglob("*.js")
            for name in re.findall(r"__ENV\.([A-Za-z_][A-Za-z0-9_]*)", script.read_text())}
    assert not re.search(r"__ENV\s*\[", "".join(p.read_text() for p in scenarios_dir().rglob("*.js")))
    assert read == SCRIPT_VARIABLES


def test_k6_gets_the_scripts_variables_its_options_and_the_runtimes_and_nothing_else() -> None:
    environ = {"PATH": "/k6-test/bin", "HOME": "/k6-test/home", "HTTPS_PROXY": "http://proxy:3128",
               "THINK_TIME": "0.05",
               "K6_NO_USAGE_REPORT": "true", "DATABASE_URL": "postgresql://perf:pw@db/tripo",
               "REDIS_URL": "redis://:pw@cache", "AWS_SECRET_ACCESS_KEY": "k", "API_TOKEN": "t",
               "TEST_BASE_URL": "http://from-the-shell"}
    assert k6_environment(environ, {"TEST_BASE_URL": "http://gateway:8020", "VUS": "2"}) == {
        "PATH": "/k6-test/bin", "HOME": "/k6-test/home", "HTTPS_PROXY": "http://proxy:3128", "THINK_TIME": "0.05",
        "K6_NO_USAGE_REPORT": "true", "TEST_BASE_URL": "http://gateway:8020", "VUS": "2"}


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


def test_bench_hands_k6_no_variable_of_its_own_environment(tmp_path: Path, target: HttpTarget) -> None:
    """A stand-in k6 (``K6_BINARY``) writes down the environment of each call: ``k6 version`` and ``k6 run``."""
    fake = tmp_path / "k6"
    fake.write_text(f"#!/bin/sh\nenv > {tmp_path}/k6-$1.env\n"
                    '[ "$1" = version ] && echo "k6 v1.1.0 (stand-in)"\nexit 0\n')
    fake.chmod(0o755)
    env = {**os.environ, "K6_BINARY": str(fake), "THINK_TIME": "0.05",
           "DATABASE_URL": "postgresql://perf:db-Zq7@127.0.0.1:1/tripo", "CLOUD_TOKEN": "cloud-Zq7"}
    done = subprocess.run([sys.executable, "-m", "exporter", "bench", "api", "--base-url", target.url, "--vus", "1",
                           "--duration", "1s", "--no-history", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    seen = {call: dict(line.split("=", 1) for line in (tmp_path / f"k6-{call}.env").read_text().splitlines()
                       if "=" in line) for call in ("version", "run")}
    assert "k6 v1.1.0 (stand-in)" in done.stderr
    for call, variables in seen.items():
        assert not {"DATABASE_URL", "CLOUD_TOKEN"} & set(variables), call
        assert variables["PATH"] == os.environ["PATH"]
    assert seen["run"]["THINK_TIME"] == "0.05"
    assert seen["run"]["TEST_BASE_URL"] == target.url
    assert {"THRESHOLDS", "WARMUP"} <= set(seen["run"])
