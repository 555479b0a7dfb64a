"""What ships besides the code: the chart's default config, the image's inputs, the documented metrics."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from exporter import metrics
from exporter.config.loading import parse_config

REPO = Path(__file__).resolve().parent.parent


def test_the_helm_charts_default_config_is_valid() -> None:
    values = yaml.safe_load((REPO / "helm/perf-exporter/values.yaml").read_text())
    config = parse_config(values["config"], "helm/perf-exporter/values.yaml", env={})
    assert [t.name for t in config.api] == ["gateway"]


CHART = REPO / "helm" / "perf-exporter"


def test_the_helm_charts_rule_files_are_what_render_writes(tmp_path: Path) -> None:
    """The files the PrometheusRule template globs inside the chart, read as helm packages them, against a fresh
    `render rules` of the example config (the one rules/ is rendered from) in a directory of the test's own."""
    from exporter.config.loading import load_config
    from exporter.slo.render import render

    template = (CHART / "templates" / "prometheusrule.yaml").read_text()
    pattern = re.search(r'Files.Glob "([^"]+)"', template)
    assert pattern is not None
    shipped = {p.name: p.read_text() for p in sorted(CHART.glob(pattern.group(1)))}
    assert render("rules", load_config(REPO / "examples" / "tripo04os.yaml", env={}), tmp_path) == 0
    # the top-level rule files: rules/infrastructure/ (node_exporter's) is not under the chart's glob
    written = {p.name: p.read_text() for p in sorted(tmp_path.glob("*.rules.yml"))}
    assert sorted(shipped) == sorted(written) == ["api.rules.yml", "cache.rules.yml", "database.rules.yml",
                                                   "health.rules.yml", "tracing.rules.yml"]
    for name, content in written.items():
        assert shipped[name] == content, f"the chart ships a {name} that render no longer writes"
    # what the template puts in the PrometheusRule: every group of every file, each file's groups as written
    groups = [g for name in sorted(shipped) for g in yaml.safe_load(shipped[name])["groups"]]
    assert [g["name"] for g in groups] == [f"perf-exporter-{s}" for s in ("api", "cache", "database", "health",
                                                                         "tracing")]
    assert all(g["rules"] for g in groups)


def value_paths(values: dict[str, object], prefix: str = "") -> set[str]:
    """Dotted paths of every key in values.yaml, leaves and subtrees."""
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict):
            paths |= value_paths(value, f"{path}.")
    return paths


def test_every_value_the_chart_documents_is_used_by_a_template_and_every_used_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = value_paths(values)
    used = {m for t in (CHART / "templates").glob("*.*")  # the manifests and the named templates (_pod.tpl)
            for m in re.findall(r"\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)", t.read_text())}
    assert used - documented == set(), "templates read values that values.yaml does not document"
    # a value is used when a template reads it or a subtree holding it (`toYaml .Values.config`)
    unused = {p for p in documented if not any(p == u or p.startswith(f"{u}.") for u in used)}
    # a subtree is used when something under it is
    unused = {p for p in unused if not any(u.startswith(f"{p}.") for u in used)}
    assert unused == set(), "values.yaml documents values no template reads"


def test_everything_the_dockerfile_copies_exists() -> None:
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_every_metric_family_is_documented_in_docs_metrics() -> None:
    catalogue = (REPO / "docs/metrics.md").read_text()
    documented = set(re.findall(r"`(perf_[a-z0-9_]+)`", catalogue))
    missing = [f.name for f in metrics.FAMILIES if f.name not in documented]
    assert not missing, f"docs/metrics.md's tables lack: {missing}"
