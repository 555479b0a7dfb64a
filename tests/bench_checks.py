"""What a bench run's tests check of every run: the verdict a light load on the healthy demo must get, and k6's
own count of the requests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def healthy(done: subprocess.CompletedProcess[str], body: dict[str, Any]) -> None:
    """A light load on the healthy demo meets every target, unless other work saturated the machine, which the
    verdict then names (and so exits 2, never 1)."""
    verdict = body["verdict"]
    if verdict["status"] == "inconclusive":
        assert done.returncode == 2 and any("CPU" in r or "dropped" in r for r in verdict["reasons"]), verdict
    else:
        assert (done.returncode, verdict["status"]) == (0, "met"), done.stderr


def k6_counts(out: Path, scenario: str) -> tuple[int, int]:
    """k6's own count of the requests of its last run in ``out``: all of them, and the measured phase's."""
    (summary,) = sorted(out.glob(f"{scenario}.*.k6-summary.json"))[-1:]
    metrics = json.loads(summary.read_text())["metrics"]
    return int(metrics["http_reqs"]["count"]), int(metrics.get("http_reqs{phase:measure}", {}).get("count", 0))
