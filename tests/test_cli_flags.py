"""The flags the Prometheus ecosystem uses (``--web.listen-address``, ``--config.file``, ``--log.level``,
``--log.format``), the old names still taken for one release with a line saying the new one, and a usage error
with the command's own exit code, never argparse's 2 (a gate's "inconclusive")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "tripo04os.yaml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=60)


def test_render_takes_config_file_and_its_old_name_with_one_deprecation_line(tmp_path: Path) -> None:
    new = cli("render", "rules", "--config.file", str(EXAMPLE), "--out", str(tmp_path / "new"))
    old = cli("render", "rules", "--config", str(EXAMPLE), "--out", str(tmp_path / "old"))
    assert new.returncode == old.returncode == 0, new.stderr + old.stderr
    assert "deprecated" not in new.stderr
    assert old.stderr.count("--config is deprecated and goes in the next release: use --config.file") == 1
    assert (tmp_path / "new" / "api.rules.yml").read_text() == (tmp_path / "old" / "api.rules.yml").read_text()


@pytest.mark.parametrize(("old", "new", "value"), [("--listen", "--web.listen-address", "127.0.0.1:9"),
                                                   ("--log-level", "--log.level", "error"),
                                                   ("--log-format", "--log.format", "json")])
def test_run_takes_each_flag_under_either_name_and_says_the_new_one(old: str, new: str, value: str,
                                                                   tmp_path: Path) -> None:
    for flag in (old, new):  # a config that cannot be read ends the run before it listens: exit 1, its line
        done = cli("run", flag, value, "--config.file", str(tmp_path / "missing.yaml"))
        assert done.returncode == 1 and "missing.yaml: cannot read the file" in done.stderr, done.stderr
        assert (f"{old} is deprecated and goes in the next release: use {new}" in done.stderr) == (flag == old)


def test_a_bad_value_is_named_under_both_names() -> None:
    done = cli("run", "--log-level", "loud")
    assert done.returncode == 1 and "argument --log.level/--log-level: invalid choice: 'loud'" in done.stderr


def test_a_usage_error_of_a_gate_exits_3_and_of_the_daemon_1() -> None:
    assert cli("bench", "api", "--no-such-flag").returncode == 3
    assert cli("compare", "--tolerance").returncode == 3
    assert cli("bench", "api", "--repeat", "0").returncode == 3
    assert cli("run", "--no-such-flag").returncode == 1
    assert cli("check-config", "a", "b").returncode == 1
