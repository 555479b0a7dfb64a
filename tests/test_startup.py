"""Start-up: `--version` and `check-config` load what they need, not every collector and the Grafana SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LOADED = """
import contextlib, io, json, sys
from exporter.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_loaded_by(*argv: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", LOADED, *argv], capture_output=True, text=True, cwd=REPO,
                          check=True)
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return set(loaded)


# the job code of every kind (each collector package's target model is light: the config needs it), the daemon,
# the drivers and the Grafana SDK
HEAVY = ("grafana_foundation_sdk", "exporter.slo", "exporter.probes.api", "exporter.collectors.jaeger.collector",
         "exporter.collectors.postgres.collector", "exporter.collectors.redis.collector", "exporter.daemon",
         "psycopg", "redis", "httpx", "uvicorn", "starlette")


def heavy(loaded: set[str], *extra: str) -> set[str]:
    """The loaded modules that are one of ``HEAVY`` (or ``extra``) or inside one."""
    return {m for m in loaded for h in (*HEAVY, *extra) if m == h or m.startswith(f"{h}.")}


def test_version_loads_no_config_layer_probe_collector_or_grafana_sdk() -> None:
    loaded = modules_loaded_by("--version")
    assert not heavy(loaded, "exporter.config", "pydantic", "exporter.collectors", "exporter.probes")


def test_check_config_loads_the_target_models_but_no_job_code_or_grafana_sdk() -> None:
    loaded = modules_loaded_by("check-config", str(REPO / "examples" / "tripo04os.yaml"))
    assert "exporter.probes.api_target" in loaded and "exporter.config.schema" in loaded  # it did validate
    assert not heavy(loaded)
