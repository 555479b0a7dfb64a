"""The repository stands alone: nothing under tests/, bench/ or scripts/ reads a path outside it.

A clean clone, with nothing beside it, must pass its own tests: test data lives in ``tests/fixtures/`` (with
its SOURCES), and no file reaches for a sibling folder, a path that climbs above the repository root, or an
absolute path on the machine it was written on. The check reads file texts; it is a tripwire for the ways such
paths get written (``../x``, ``Path(__file__)`` with one ``.parent`` too many, ``REPO.parent``, ``/work/...``),
not a proof.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "bench", "scripts")
CHECKER = Path(__file__).resolve()  # this file: its patterns and samples spell out what they look for

# a run of ".." path segments ("../..", not "..." nor a regex's "\..")
_DOTDOT = re.compile(r"""(?<![\w.\\])\.\.(?:/\.\.)*(?=/|["'\s)]|$)""")
# `$(dirname "$0")/..`, `$(dirname $0)/../..`: climbing from the script's own folder
_SCRIPT_DIR_CLIMB = re.compile(r"""\$\(dirname\s+["']?\$(?:0|\{BASH_SOURCE\[0\]\}|BASH_SOURCE)["']?\)((?:/\.\.)+)""")
# Path(__file__)[.resolve()|.absolute()] followed by .parent / .parents[n]
_FILE_PARENTS = re.compile(r"Path\(__file__\)(?:\.(?:resolve|absolute)\(\))?((?:\.parent\b|\.parents\[\d+\])+)")
_ROOT_PARENT = re.compile(r"\b(?:REPO|REPO_ROOT|ROOT|PROJECT|PROJECT_ROOT)\.parents?\b")
_SIBLING = re.compile(r"""\bshared/(?:fixtures|seed|hooks|STYLE)|/\s*["']shared["']""")
_ABSOLUTE = re.compile(r"""(?<![\w.:/-])/(?:work|home|root|Users)/""")
_HOME = re.compile(r"\bexpanduser\(|\bPath\.home\(\)")


def _climbs(chain: str) -> int:
    """How many folders a ``.parent.parents[1]...`` chain goes up."""
    return sum(1 if part == "parent" else int(part) + 1 for part in re.findall(r"parent\b|(?<=parents\[)\d+", chain))


def outside_references(relpath: str, text: str) -> list[str]:
    """``file:line: reason`` for every reference in ``text`` (the file at ``relpath``, relative to the repository
    root) to a path outside the repository."""
    depth = len(PurePosixPath(relpath).parts) - 1  # folders between the repository root and the file
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{relpath}:{number}"
        rest = line
        for match in _SCRIPT_DIR_CLIMB.finditer(line):
            if match.group(1).count("..") > depth:
                found.append(f"{where}: climbs above the repository from the script's folder: {match.group(0)}")
            rest = rest.replace(match.group(0), "")
        for match in _DOTDOT.finditer("" if line.lstrip().startswith("#") else rest):  # a comment reads nothing
            # read from the file's own folder, as promtool's rule_files, Markdown links and shell scripts do
            if match.group(0).count("..") > depth:
                found.append(f"{where}: '..' climbs above the repository: {line.strip()}")
        for match in _FILE_PARENTS.finditer(line):
            if _climbs(match.group(1)) > depth + 1:  # the first .parent is the file's own folder
                found.append(f"{where}: {match.group(0)} is above the repository root")
        for pattern, reason in ((_ROOT_PARENT, "the folder above the repository root"),
                                (_SIBLING, "a folder beside the repository"),
                                (_ABSOLUTE, "an absolute path on this machine"),
                                (_HOME, "the user's home folder")):
            if pattern.search(line):
                found.append(f"{where}: {reason}: {line.strip()}")
    return found


def scanned_files() -> list[Path]:
    files: list[Path] = []
    for top in SCANNED:
        for folder, dirs, names in os.walk(REPO / top):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            files += [Path(folder) / n for n in sorted(names) if not n.endswith((".pyc", ".pyo"))]
    files = [f for f in files if f.resolve() != CHECKER]
    return files


def test_no_file_under_tests_bench_or_scripts_reaches_outside_the_repository() -> None:
    files = scanned_files()
    assert any(f.name == "jaeger_replay.py" for f in files) and any(f.suffix == ".sh" for f in files)
    found: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data holds no paths we write
        found += outside_references(path.relative_to(REPO).as_posix(), text)
    assert found == []


def test_the_jaeger_fixtures_are_in_the_repository_with_their_sources() -> None:
    folder = REPO / "tests" / "fixtures" / "jaeger"
    sources = (folder / "SOURCES.md").read_text()
    data = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))
    assert "api_v3/FindTraces.json" in data and "jaeger-ui_testTrace.trace.json" in data
    for name in data:
        assert f"`{name}`" in sources, f"{name} has no line in SOURCES.md"
    assert "Apache" in sources


# The checker itself, on lines written the ways that reached outside before.

SIBLING = '"sha' + 'red"'
SIBLING_PATH = "../sha" + "red"


@pytest.mark.parametrize(("relpath", "line"), [
    # the lines that reached the sibling shared folder before the fixtures moved into tests/fixtures/ (spelt in
    # pieces here, so that this file does not itself read as reaching there)
    ("tests/jaeger_replay.py",
     'FIXTURES = Path(__file__).resolve().parent.parent.parent / ' + SIBLING + ' / "fixtures" / "jaeger"'),
    ("tests/conftest.py", 'SHARED = REPO.parent / ' + SIBLING),
    ("tests/jaeger_replay.py", "It holds v1 trace objects (the fixtures under ``" + SIBLING_PATH
     + "/fixtures/jaeger/``"),
    ("tests/test_x.py", 'open("../../data.json")'),
    ("tests/promtool/x.test.yml", "  - ../../../rules/api.rules.yml"),
    ("bench/bench_x.py", 'DATA = Path(__file__).parents[2] / "data"'),
    ("scripts/run.sh", 'cd "$(dirname "$0")/../.."'),
    ("tests/test_x.py", 'CONFIG = "/work/main/examples/tripo04os.yaml"'),
    ("bench/bench_x.py", "Path('~/data').expanduser()"),
])
def test_the_checker_catches_paths_outside_the_repository(relpath: str, line: str) -> None:
    assert len(outside_references(relpath, f"import x\n{line}\n")) >= 1


@pytest.mark.parametrize(("relpath", "line"), [
    ("tests/test_rules.py", "REPO = Path(__file__).resolve()" + ".parent" * 2),
    ("tests/jaeger_replay.py", 'FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jaeger"'),
    ("bench/bench_postgres.py", "REPO = HERE.parent"),
    ("scripts/test.sh", 'cd "$(dirname "$0")/.."'),
    ("tests/test_alerting_e2e.py", '"group_by": ["..."]'),
    ("tests/fixtures/jaeger/SOURCES.md", "| `api_v3/GetTrace.json` | `.../apiv3/snapshots/GetTrace.json` |"),
    ("tests/test_x.py", 'url = "http://127.0.0.1:9090/api/v1/query"'),
    ("tests/promtool/tripo04os-api.test.yml", "  - ../../rules/api.rules.yml"),
    ("tests/test_docs.py", 'missing = [name for name in scripts if f"(../bench/{name})" not in described]'),
    ("tests/test_x.py", r'block = re.search(r"# 1\..*?\n(?P<command>python3 -m venv .*?)\n", text)'),
    ("tests/test_promtool_cases.py", "    # ../../rules/*.rules.yml, so promtool runs it by hand too"),
])
def test_the_checker_lets_paths_inside_the_repository_pass(relpath: str, line: str) -> None:
    assert outside_references(relpath, line) == []
