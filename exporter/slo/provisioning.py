"""Grafana provisioning files: a Prometheus datasource and a provider that loads the dashboards from disk."""

from __future__ import annotations

from typing import Any

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/perf-exporter"
PROMETHEUS_URL = "http://prometheus:9090"


def provisioning_files() -> dict[str, dict[str, Any]]:
    """Path under grafana/ -> YAML content. Mount grafana/provisioning at /etc/grafana/provisioning and
    grafana/dashboards at the provider's path."""
    return {
        "provisioning/datasources/perf-exporter.yml": {
            "apiVersion": 1,
            "datasources": [{
                "name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
                "url": PROMETHEUS_URL, "isDefault": True, "editable": True,
                "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
            }],
        },
        "provisioning/dashboards/perf-exporter.yml": {
            "apiVersion": 1,
            "providers": [{
                "name": "perf-exporter", "orgId": 1, "folder": "perf-exporter", "folderUid": "perf-exporter",
                "type": "file", "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }],
        },
    }
