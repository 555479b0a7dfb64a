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


def test_the_helm_chart_ships_the_rendered_rules() -> None:
    template = (REPO / "helm/perf-exporter/templates/prometheusrule.yaml").read_text()
    pattern = re.search(r'Files.Glob "rules/([^"]+)"', template)
    assert pattern is not None
    shipped = sorted(p.name for p in (REPO / "helm/perf-exporter/rules").glob(pattern.group(1)))
    rendered = sorted(p.name for p in (REPO / "rules").glob("*.yml"))
    assert shipped == rendered and len(rendered) == 5


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
