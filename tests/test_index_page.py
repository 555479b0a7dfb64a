"""The index page as a user opens it when targets are down: each failing job shows its cause."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.daemon_process import DaemonProcess
from tests.servers import free_port, wait_for


def rows(page: str) -> dict[tuple[str, str], list[str]]:
    """(collector, target) -> the row's cells, as text."""
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        if len(cells) == 7:
            found[(cells[0], cells[1])] = cells
    return found


@pytest.mark.parametrize("level", ["info", "error"])
def test_a_down_postgres_redis_and_api_each_show_why_on_the_index_page(tmp_path: Path, level: str) -> None:
    """The cause is the run's outcome, not a log line: at any log level."""
    pg_port, redis_port, api_port = free_port(), free_port(), free_port()
    config = tmp_path / "cfg.yaml"
    config.write_text(f"""
api:
  - name: gateway
    base_url: http://127.0.0.1:{api_port}
    interval: 5s
    timeout: 1s
    endpoints: [{{name: health, path: /health}}]
postgres:
  - name: main
    dsn: postgresql://app:hunter2secret@127.0.0.1:{pg_port}/postgres
    interval: 5s
    timeout: 2s
redis:
  - name: cache
    url: redis://:hunter2secret@127.0.0.1:{redis_port}/0
    interval: 5s
    timeout: 1s
""")
    daemon = DaemonProcess(config, tmp_path / "daemon.log", ("--log.level", level, "--probe-workers", "0"))
    try:
        daemon.wait_ready()

        def all_ran() -> bool:
            return all(cells[3] != "pending" for cells in rows(daemon.get("/")[1]).values())

        wait_for(all_ran, timeout=20, what="every job's first run")
        page = daemon.get("/")[1]
    finally:
        daemon.stop()
    got = rows(page)
    assert set(got) == {("api", "gateway"), ("postgres", "main"), ("redis", "cache")}
    for (collector, _), cells in got.items():
        result, cause = cells[3], cells[6]
        assert result == "failure", cells
        assert re.search(r"connect", cause, re.I), f"{collector}: the cause says it could not connect: {cells}"
    assert got[("postgres", "main")][6].startswith("pg_unreachable: ")
    assert got[("redis", "cache")][6].startswith("redis_down: ")
    assert got[("api", "gateway")][6].startswith("probe_failed: ")
    assert "hunter2secret" not in page
