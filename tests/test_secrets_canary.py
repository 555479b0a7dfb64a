"""One canary secret planted in every place a secret can enter the daemon, and every output searched for it.

Entries: the config file itself (a bearer token), the environment (``${CANARY}``), a secret file (Redis'
``password_file``), DSNs and URLs (PostgreSQL reached and unreachable, Redis unreachable), a request header, and
SQL text run on a real PostgreSQL (``ALTER ROLE ... PASSWORD``, read back from pg_stat_statements). Outputs: the
daemon's log at debug level, ``/metrics`` and the index page, ``check-config``, the errors of a bad config (on
the command line and on a reload), and ``perf-exporter report``'s files from a Prometheus that scraped the daemon,
all while every job really ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.daemon_process import DaemonProcess
from tests.http_target import HttpTarget
from tests.servers import Postgres, Prometheus, Redis, free_port, wait_for

CANARY = "canary-Zq7xK2pWv9"
ROLE = "perf_canary"


@pytest.fixture
def canary_redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path / "redis", password=CANARY).start()
    yield server
    server.stop()


@pytest.fixture
def http_target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


def plant_sql(pg: Postgres) -> None:
    """The canary as the password of a monitoring role, set by SQL that pg_stat_statements keeps verbatim."""
    pg.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN "
            f"CREATE ROLE {ROLE} LOGIN IN ROLE pg_monitor; END IF; END $$")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {ROLE} PASSWORD '{CANARY}'")  # type: ignore[arg-type]
        conn.execute(f"COMMENT ON ROLE {ROLE} IS 'rotated: {CANARY}'")  # type: ignore[arg-type]


def config_text(pg: Postgres, redis: Redis, http: HttpTarget) -> str:
    dead = free_port()
    return f"""
api:
  - name: gw
    base_url: {http.url}
    interval: 1s
    timeout: 500ms
    headers: {{Authorization: "Bearer ${{CANARY}}"}}
    endpoints:
      - {{name: ok, path: /json, expect_status: [200]}}
      - {{name: broken, path: /status/500, expect_status: [200]}}
postgres:
  - name: main
    dsn: postgresql://{ROLE}:${{CANARY}}@127.0.0.1:{pg.port}/postgres
    interval: 2s
    timeout: 1500ms
    top_statements: 2000
  - name: gone
    dsn: postgresql://postgres:{CANARY}@127.0.0.1:{dead}/postgres
    interval: 1s
    timeout: 500ms
redis:
  - name: cache
    url: redis://127.0.0.1:{redis.port}/0
    password_file: redis-password
    interval: 1s
    timeout: 500ms
  - name: gone
    url: redis://:{CANARY}@127.0.0.1:{dead}/0
    interval: 1s
    timeout: 500ms
jaeger:
  - name: traces
    url: http://127.0.0.1:{dead}
    bearer_token: {CANARY}
    interval: 2s
    timeout: 1s
    settle: 1s
    lookback: 1m
"""


def report_outputs(tmp_path: Path, daemon: DaemonProcess, cfg: Path, env: dict[str, str]) -> dict[str, str]:
    """``perf-exporter report`` from a Prometheus that scraped the daemon: its files, stdout and stderr."""
    scrape = (f"global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: perf\n"
              f"    static_configs: [{{targets: ['127.0.0.1:{daemon.port}']}}]\n")
    prometheus = Prometheus(tmp_path / "prometheus", scrape).start()
    try:
        def scraped() -> bool:
            query = urllib.parse.quote('perf_pg_statement_info{query=~"ALTER ROLE.*"}')
            with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?query={query}", timeout=5) as answer:
                return bool(json.loads(answer.read())["data"]["result"])
        wait_for(scraped, timeout=30, what="Prometheus holding the statement series")
        out = tmp_path / "reports"
        done = subprocess.run([sys.executable, "-m", "exporter", "report", "--prometheus", prometheus.url,
                               "--window", "5m", "--config", str(cfg), "--format", "json,md,html", "--out", str(out),
                               "--no-history"], capture_output=True, text=True, env={**os.environ, **env},
                              timeout=120)
    finally:
        prometheus.stop()
    files = {f"report {p.relative_to(out)}": p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()}
    assert files, f"report wrote nothing: {done.stdout}{done.stderr}"
    return {**files, "report output": done.stdout + done.stderr}


def test_the_canary_secret_appears_in_no_output(tmp_path: Path, postgres: Postgres, canary_redis: Redis,
                                                http_target: HttpTarget) -> None:
    plant_sql(postgres)
    (tmp_path / "redis-password").write_text(CANARY + "\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config_text(postgres, canary_redis, http_target))
    env = {"CANARY": CANARY}
    outputs: dict[str, str] = {}

    check = subprocess.run([sys.executable, "-m", "exporter", "check-config", str(cfg)], capture_output=True,
                           text=True, env={**os.environ, **env})
    assert check.returncode == 0, check.stderr
    assert "password" in check.stdout and "Authorization" in check.stdout  # the secrets' keys are shown
    outputs["check-config"] = check.stdout + check.stderr

    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", ("--log-level", "debug"), env=env)
    try:
        daemon.wait_ready()
        # every job ran with its secret: the ones that can reach their server are up, the others down
        daemon.wait_value("perf_target_up", lambda v: v == 1, collector="api", target="gw")
        daemon.wait_value("perf_target_up", lambda v: v == 1, collector="redis", target="cache")
        daemon.wait_value("perf_target_up", lambda v: v == 1, collector="postgres", target="main")
        for collector, target in (("postgres", "gone"), ("redis", "gone"), ("jaeger", "traces")):
            daemon.wait_value("perf_job_runs_total", lambda v: v >= 2, collector=collector, target=target,
                              result="failure")
        labels = {dict(labels).get("query", "") for (name, labels) in daemon.samples()
                  if name == "perf_pg_statement_info"}
        assert f"ALTER ROLE {ROLE} PASSWORD '<redacted>'" in labels  # the statement is there, its secret not
        assert f"COMMENT ON ROLE {ROLE} IS '<redacted>'" in labels
        for path in ("/metrics", "/"):
            status, body = daemon.get(path)
            assert status == 200
            outputs[path] = body
        outputs.update(report_outputs(tmp_path, daemon, cfg, env))

        # a bad config that holds the canary: refused on reload, with an error that names the key
        good = cfg.read_text()
        cfg.write_text(good.replace("    top_statements: 2000", f"    top_statements: 2000\n    password: [{CANARY}]"))
        status, body = daemon.post("/-/reload")
        assert status >= 400 and "postgres[0].password" in body
        outputs["reload error"] = body
        bad = subprocess.run([sys.executable, "-m", "exporter", "check-config", str(cfg)], capture_output=True,
                             text=True, env={**os.environ, **env})
        assert bad.returncode == 1 and "postgres[0].password" in bad.stdout + bad.stderr
        outputs["check-config error"] = bad.stdout + bad.stderr
    finally:
        daemon.stop()
    outputs["daemon log"] = daemon.log()
    assert "pg_unreachable" in outputs["daemon log"]  # the error paths were logged, and searched

    leaks = [where for where, text in outputs.items() if CANARY in text]
    assert not leaks, f"the canary secret shows in: {', '.join(leaks)}"
