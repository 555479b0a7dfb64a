"""The README and docs/ as a reader uses them: links that lead somewhere, the README's two commands being the
ones CI runs, and a metrics catalogue that matches the declared families."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import metrics
from exporter.config.loading import parse_config

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))

INSTALL_AND_RUN_DEMO = ("python3 -m venv .venv && .venv/bin/pip install -e '.[demo]' "
                        "&& .venv/bin/perf-exporter run --demo")
TEST_COMMAND = "bash scripts/test.sh"

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets and parentheses are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto: ...


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file: lower case, punctuation dropped, spaces as '-',
    a repeated heading numbered -1, -2 ..."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", FENCE.sub("", path.read_text()), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_leads_to_a_file_and_heading_in_the_repository(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.is_relative_to(REPO) or not destination.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: {destination.relative_to(REPO)} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_readme_links_every_page_of_the_docs() -> None:
    linked = {(REPO / target.partition("#")[0]).resolve() for target in relative_links(README)}
    unlinked = [p.name for p in DOCS if p not in linked]
    assert DOCS and not unlinked, f"the README's Documentation list does not link docs/{unlinked}"


def test_the_readme_gives_the_demo_command_and_the_test_command_that_ci_runs() -> None:
    readme = README.read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```bash\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block is not None, "the README's 'Two commands' section has no bash block"
    commands = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert commands == [INSTALL_AND_RUN_DEMO, TEST_COMMAND]

    ci = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert TEST_COMMAND in ci, ".ci/run no longer runs the README's test command"
    test_script = (REPO / "scripts/test.sh").read_text()
    # the test command installs into the same virtualenv the first command creates, and runs the suite there
    assert "python3 -m venv .venv" in test_script and ".venv/bin/pytest" in test_script


def test_the_demo_commands_script_extra_and_flags_exist(capsys: pytest.CaptureFixture[str]) -> None:
    from exporter.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    assert exited.value.code == 0
    assert "--demo" in capsys.readouterr().out
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["perf-exporter"] == "exporter.cli:main"
    assert "demo" in project["optional-dependencies"]  # the extra the first command installs


def test_every_benchmark_script_is_described_in_docs_benchmarks() -> None:
    described = (REPO / "docs/benchmarks.md").read_text()
    scripts = sorted(p.name for p in (REPO / "bench").glob("bench_*.py"))
    missing = [name for name in scripts if f"(../bench/{name})" not in described]
    assert scripts and not missing, f"docs/benchmarks.md has no row linking ../bench/ for: {missing}"


PROMETHEUS_KEYS = {"scrape_configs", "rule_files"}  # blocks of Prometheus' own config, not ours
WEB_CONFIG_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}  # --web.config.file's
KUBERNETES_KEYS = {"apiVersion", "kind"}  # a Kubernetes object (the Role bench --kubeconfig needs)
ENV = {"TEST_BASE_URL": "http://gateway:8020", "DATABASE_URL": "postgresql://perf@db/tripo", "API_TOKEN": "t",
       "REDIS_URL": "redis://cache:6379/0", "JAEGER_HOST": "http://jaeger:16686"}


def config_examples() -> list[tuple[str, dict[str, Any]]]:
    examples = []
    for page in DOCS:
        for block in re.findall(r"^```yaml\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and not (PROMETHEUS_KEYS | WEB_CONFIG_KEYS | KUBERNETES_KEYS) & set(data):
                examples.append((f"{page.name}:{'+'.join(data)}", data))
    return examples


def secret_files(node: Any, parent: str = "") -> list[str]:
    """The ``*_file`` values the loader reads (``tls`` files are opened later, by the job)."""
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in (
            [value] if key.endswith("_file") and isinstance(value, str) and parent != "tls"
            else secret_files(value, key))]
    if isinstance(node, list):
        return [found for item in node for found in secret_files(item, parent)]
    return []


@pytest.mark.parametrize("example", config_examples(), ids=lambda e: e[0])
def test_every_config_example_in_the_docs_is_a_valid_config(example: tuple[str, dict[str, Any]],
                                                             tmp_path: Path) -> None:
    _, data = example
    for relative in secret_files(data):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("secret\n")
    parse_config(data, "example.yaml", env=ENV, base_dir=tmp_path)


def documented_families() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, labels) from the tables of docs/metrics.md."""
    rows = {}
    for line in (REPO / "docs/metrics.md").read_text().splitlines():
        row = re.match(r"\| `(perf_[a-z0-9_]+)` \| (\w+) \|([^|]*)\|", line)
        if row:
            labels = tuple(label.strip() for label in row.group(3).split(",") if label.strip())
            rows[row.group(1)] = (row.group(2), labels)
    return rows


def test_every_metric_family_has_a_row_in_docs_metrics_with_its_type_and_labels() -> None:
    documented = documented_families()
    wrong = []
    for family in metrics.FAMILIES:
        declared = (family.kind.value, family.labels)
        if documented.get(family.name) != declared:
            wrong.append(f"{family.name}: documented {documented.get(family.name)}, declared {declared}")
    stale = sorted(set(documented) - {f.name for f in metrics.FAMILIES})
    assert not wrong and not stale, f"docs/metrics.md: {wrong}; rows for no family: {stale}"
