"""The soak's 2-minute version: bench/soak.py against the demo on a real PostgreSQL and Redis, a fault every 15 s
(PostgreSQL restarted fast and immediate, Redis restarted, demo latency, errors and cache off, Jaeger garbage all
along). It must end with every check held: no counter went down, no job stopped running, RSS flat within 10 %.
Its figures (RSS, descriptors, asyncio tasks, scrape p99) are printed, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_two_minutes_of_cycling_faults_leave_counters_monotonic_and_no_job_stale() -> None:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), "--duration", "120", "--fault-every",
                          "15"], capture_output=True, text=True, timeout=400, cwd=REPO)
    print(out.stdout)
    summary_line = next((line for line in out.stdout.splitlines() if line.startswith("summary ")), None)
    assert summary_line is not None, out.stdout + out.stderr[-3000:]
    summary = json.loads(summary_line.removeprefix("summary "))
    assert summary["faults"] >= 7  # the whole cycle, PostgreSQL's and Redis' restarts included
    assert summary["counters_down"] == [], summary["counters_down"]
    assert summary["stale_jobs"] == [], summary["stale_jobs"]
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
