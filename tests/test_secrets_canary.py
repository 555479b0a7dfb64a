"""One canary secret planted in every place a secret can enter the daemon, and every output searched for it.

Entries: the config file itself (a bearer token), the environment (``${CANARY}``), a secret file (Redis'
``password_file``), DSNs and URLs (PostgreSQL reached and unreachable, Redis unreachable), a request header, and
SQL text run on a real PostgreSQL (``ALTER ROLE ... PASSWORD``, read back from pg_stat_statements). Outputs: the
daemon's log at debug level, ``/metrics`` and the index page, ``check-config``, the errors of a bad config (on
the command line and on a reload), and ``perf-exporter report``'s files from a Prometheus that scraped the daemon,
all while every job really ran.

Then drawn secrets (hypothesis, a few examples each: every example starts real processes) in every shape they
travel in: a URL's password with ``@`` inside, the scheme in any case, a query token, Bearer and Basic headers, an
API-key header and a cookie, a libpq ``password=...``. No drawn secret may show in any file or stream that
``check-config``, ``bench`` (a real k6 run, and ``--k6-operator`` manifests), ``report`` (a real Prometheus, and a
closed port), ``compare`` (run and report files that carry it, a history URL that holds it) and the daemon
(``run``: its log, ``/metrics``, the index page) write.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
import yaml
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from exporter.exit_codes import ExitCode
from exporter.load.run import write_run
from tests.bench_runs import bench_run
from tests.daemon_process import DaemonProcess
from tests.fuzzing import FUZZ
from tests.http_target import HttpTarget
from tests.secret_shapes import CLIENT_PASSWORD_CHARS, MARKER, any_case
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
                               "--window", "5m", "--config.file", str(cfg), "--format", "json,md,html", "--out",
                                   str(out),
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

    daemon = DaemonProcess(cfg, tmp_path / "daemon.log", ("--log.level", "debug"), env=env)
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


# -- drawn secrets ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Drawn:
    """One drawn secret and the case of the schemes that carry it."""

    secret: str
    http: str  # "http" in some case: HTTP, Http...
    postgres: str
    redis: str

    def forms(self) -> tuple[str, ...]:
        """Every way the secret could be written out: as it is, percent-encoded, inside a Basic header, and its part
        after an ``@`` (what a reading that ends the password at the first ``@`` would show)."""
        return (self.secret, urllib.parse.quote(self.secret, safe=""), urllib.parse.quote_plus(self.secret),
                self.basic(), self.secret.rpartition("@")[2])

    def basic(self) -> str:
        return base64.b64encode(f"perf:{self.secret}".encode()).decode()

    def url(self, port: int, path: str = "") -> str:
        return f"{self.http}://perf:{self.secret}@127.0.0.1:{port}{path}"


# what the clients take in a URL's password as written (no $: the config would expand ${...}), with an @ inside or
# not; the marker after the last @, so that the rest of a password cut at an @ is still unmistakably the secret
_CHARS = CLIENT_PASSWORD_CHARS.replace("$", "")
drawn_secrets = st.builds(Drawn, st.builds(lambda head, at, tail: f"{head}{'@' if at else ''}{MARKER}{tail}",
                                           st.text(_CHARS, max_size=6), st.booleans(),
                                           st.text(_CHARS.replace("@", ""), min_size=2, max_size=12)),
                          any_case("http"), any_case("postgresql"), any_case("redis"))
AT_AND_UPPER_CASE = Drawn(f"pa:ss@{MARKER}word", "HTTP", "POSTGRESQL", "REDIS")
# each example starts the commands as processes: a few, and a failure reported as drawn (shrinking would rerun them)
FEW = settings(FUZZ, max_examples=2, phases=(Phase.explicit, Phase.generate))


def drawn_config(drawn: Drawn, http_port: int, dead: int) -> dict[str, Any]:
    """A config carrying the secret in every place one goes: an api target's base URL, query and headers (API
    key, cookie, Basic, Bearer), a PostgreSQL URL and libpq keywords, a Redis URL, a Jaeger URL."""
    fast = {"interval": "1s", "timeout": "500ms"}
    secret = drawn.secret
    return {
        "api": [{"name": "gw", "base_url": drawn.url(http_port), **fast,
                 "headers": {"X-Api-Key": secret, "Cookie": f"session={secret}; theme=dark"},
                 "endpoints": [{"name": "ok", "path": f"/json?token={secret}&page=2", "expect_status": [200]}]},
                {"name": "basic", "base_url": f"http://127.0.0.1:{dead}", **fast,
                 "headers": {"Authorization": f"Basic {drawn.basic()}"}, "endpoints": [{"name": "e", "path": "/"}]},
                {"name": "bearer", "base_url": f"http://127.0.0.1:{dead}/?access_token={secret}", **fast,
                 "bearer_token": secret, "endpoints": [{"name": "e", "path": "/"}]}],
        "postgres": [{"name": "url", "dsn": f"{drawn.postgres}://perf:{secret}@127.0.0.1:{dead}/tripo", **fast},
                     {"name": "keywords", "dsn": f"host=127.0.0.1 port={dead} user=perf password='{secret}'",
                      **fast}],
        "redis": [{"name": "cache", "url": f"{drawn.redis}://:{secret}@127.0.0.1:{dead}/0", **fast}],
        "jaeger": [{"name": "traces", "url": drawn.url(dead), "interval": "2s", "timeout": "1s", "settle": "1s",
                    "lookback": "1m"}],
    }


def written(directory: Path, leave_out: tuple[Path, ...] = ()) -> dict[str, bytes]:
    """Every file under ``directory`` but the inputs the test wrote, by its path."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p not in leave_out}


def assert_no_leak(drawn: Drawn, outputs: dict[str, bytes | str]) -> None:
    forms = [form.encode() for form in drawn.forms()]
    leaks = [where for where, text in outputs.items()
             if any(form in (text.encode() if isinstance(text, str) else text) for form in forms)]
    assert not leaks, f"the drawn secret {drawn.secret!r} shows in: {', '.join(leaks)}"


def cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_BASE_URL", "JAEGER_HOST")}
    return subprocess.Popen([sys.executable, "-m", "exporter", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finished(procs: dict[str, subprocess.Popen[str]]) -> dict[str, tuple[int, str]]:
    """Each command's exit code and its stdout and stderr together, once all have ended."""
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        out[name] = (proc.returncode, stdout + stderr)
    return out


def run_files(directory: Path, drawn: Drawn, dead: int) -> tuple[Path, Path]:
    """Two bench run files whose base URL carries the secret (as an older perf-exporter wrote them)."""
    paths = []
    for name, p95 in (("before", 10.0), ("after", 30.0)):
        path = directory / name / "api.json"
        path.parent.mkdir(parents=True)
        run = msgspec.structs.replace(bench_run("api", p95=p95), base_url=drawn.url(dead, f"/?token={drawn.secret}"))
        paths.append(write_run(path, run))
    return paths[0], paths[1]


def report_files(summary_json: str, directory: Path, drawn: Drawn, dead: int) -> tuple[Path, Path]:
    """Two copies of a report's performance-summary.json whose source is a URL that carries the secret."""
    summary = json.loads(summary_json)
    summary["source"]["where"] = drawn.url(dead)
    paths = []
    for name in ("a", "b"):
        path = directory / name / "performance-summary.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(summary))
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), "global: {scrape_interval: 1m}\n").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def report_summary(tmp_path_factory: pytest.TempPathFactory, prometheus_server: Prometheus) -> str:
    """A report's performance-summary.json (made once, from an empty Prometheus), for compare to read."""
    out = tmp_path_factory.mktemp("plain-report")
    done = subprocess.run([sys.executable, "-m", "exporter", "report", "--prometheus", prometheus_server.url,
                           "--window", "5m", "--format", "json", "--out", str(out), "--no-history"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1, 2), done.stderr
    return (out / "performance-summary.json").read_text()


@pytest.fixture(scope="module")
def api_target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


@FEW
@given(drawn=drawn_secrets)
@example(drawn=AT_AND_UPPER_CASE)
def test_no_drawn_secret_in_what_check_config_bench_manifests_report_and_compare_write(
        drawn: Drawn, tmp_path_factory: pytest.TempPathFactory, prometheus_server: Prometheus,
        api_target: HttpTarget, report_summary: str) -> None:
    tmp = tmp_path_factory.mktemp("drawn")
    dead = free_port()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(drawn_config(drawn, api_target.port, dead)))
    before, after = run_files(tmp / "runs", drawn, dead)
    a, b = report_files(report_summary, tmp / "summaries", drawn, dead)
    prometheus_port = int(prometheus_server.url.rsplit(":", 1)[1])
    history_url = f"{drawn.postgres}://perf:{drawn.secret}@127.0.0.1:{dead}/history"
    done = finished({
        "check-config": cli("check-config", str(cfg)),
        "bench --k6-operator": cli("bench", "api", "--k6-operator", "2", "--config.file", str(cfg), "--out",
                                   str(tmp / "manifests"), "--prometheus-rw", drawn.url(dead, "/?token=x")),
        "report from a closed port": cli("report", "--prometheus", drawn.url(dead), "--window", "5m", "--out",
                                         str(tmp / "report-closed")),
        "report from Prometheus": cli("report", "--prometheus", drawn.url(prometheus_port), "--window", "5m",
                                      "--config.file", str(cfg), "--out", str(tmp / "report"), "--history",
                                          history_url),
        "compare run files": cli("compare", str(before), str(after), "--format", "table,md,junit,json", "--out",
                                 str(tmp / "compared-runs")),
        "compare report files": cli("compare", str(a), str(b), "--out", str(tmp / "compared-reports")),
    })
    assert done["check-config"][0] == 0, done["check-config"][1]
    assert done["bench --k6-operator"][0] == 0, done["bench --k6-operator"][1]
    assert done["report from a closed port"][0] == 3 and "not reachable" in done["report from a closed port"][1]
    # the report is written, and storing it in the history (the URL, closed) fails
    assert done["report from Prometheus"][0] == ExitCode.NO_HISTORY and (tmp / "report" / "report.html").exists()
    assert "cannot connect" in done["report from Prometheus"][1]
    assert done["compare run files"][0] == 1, done["compare run files"][1]  # the P95 tripled
    assert done["compare report files"][0] == 0, done["compare report files"][1]
    inputs = (cfg, before, after, a, b)
    assert_no_leak(drawn, {**{name: text for name, (_, text) in done.items()}, **written(tmp, inputs)})


@settings(FEW, max_examples=2)
@given(drawn=drawn_secrets)
@example(drawn=AT_AND_UPPER_CASE)
def test_no_drawn_secret_in_what_the_daemon_logs_and_serves(drawn: Drawn, tmp_path_factory: pytest.TempPathFactory,
                                                            api_target: HttpTarget) -> None:
    tmp = tmp_path_factory.mktemp("drawn-daemon")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(drawn_config(drawn, api_target.port, free_port())))
    daemon = DaemonProcess(cfg, tmp / "daemon.log", ("--log.level", "debug"))
    outputs: dict[str, bytes | str] = {}
    try:
        daemon.wait_ready()
        daemon.wait_value("perf_target_up", lambda v: v == 1, collector="api", target="gw")  # the secret works
        for collector, target in (("api", "basic"), ("api", "bearer"), ("postgres", "url"), ("postgres", "keywords"),
                                  ("redis", "cache"), ("jaeger", "traces")):
            daemon.wait_value("perf_job_runs_total", lambda v: v >= 1, collector=collector, target=target,
                              result="failure")
        for path in ("/metrics", "/"):
            outputs[path] = daemon.get(path)[1]
    finally:
        daemon.stop()
    outputs["daemon log"] = daemon.log()
    assert "pg_unreachable" in str(outputs["daemon log"])  # the error paths were logged, and searched
    assert_no_leak(drawn, outputs)


@settings(FEW, max_examples=1)
@given(drawn=drawn_secrets)
@example(drawn=AT_AND_UPPER_CASE)
def test_no_drawn_secret_in_what_a_real_bench_run_writes(drawn: Drawn, tmp_path_factory: pytest.TempPathFactory,
                                                         api_target: HttpTarget) -> None:
    tmp = tmp_path_factory.mktemp("drawn-bench")
    out = tmp / "out"
    done = finished({"bench": cli("bench", "api", "--base-url", drawn.url(api_target.port), "--vus", "1",
                                  "--duration", "1s", "--warmup", "0s", "--out", str(out))})
    code, text = done["bench"]
    assert code in (0, 1, 2), text  # it ran: the target was reachable with the secret in its URL
    assert json.loads((out / "api.json").read_text())["baseUrl"] == f"{drawn.http}://perf:<secret>@127.0.0.1:" \
        f"{api_target.port}"
    assert_no_leak(drawn, {"bench output": text, **written(out)})
