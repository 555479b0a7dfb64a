"""``perf-exporter run --demo``: the daemon plus the demo target it probes, in one process tree.

The demo runs as a child process (``python -m exporter.demo``), not in the daemon's event loop: a probe should
measure a server the way it measures a real one, so the demo's request handling must not wait behind the
daemon's own work (scrapes, collector runs) on the same loop, nor the probe timings include the demo's. The
child runs in its own process group (a Ctrl-C reaches the daemon, which stops it after its last probes), dies
with its parent (``PR_SET_PDEATHSIG`` on Linux) and is stopped when the daemon stops.

The demo listens on ``DEMO_LISTEN`` (default ``127.0.0.1:8020``) and keeps its data in PostgreSQL / Redis:
``DEMO_DATABASE_URL`` / ``DEMO_REDIS_URL`` when set (read by the child from its environment, so no password is
in the process list), else a PostgreSQL 18 and a Valkey started here from the ``demo`` extra's wheels
(:mod:`exporter.demo.embedded`; they stop with the daemon, and die with it), else memory. The config
(``--config.file``, or the shipped ``tripo04os.yaml``) is expanded with ``TEST_BASE_URL`` and ``JAEGER_HOST`` set to
the demo, and ``DATABASE_URL`` / ``REDIS_URL`` defaulting to the demo's backends, so its collectors profile what
the demo uses.

The demo runs with its security on (``DEMO_SECURITY=on``): the launcher gives it a signing key
(``DEMO_SIGNING_KEY``, else a new random one) and mints, with that key, the tokens the config's security checks
use (:func:`demo_tokens`), handing them to the config's expansion only, never to a log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from exporter import child_process
from exporter.child_process import dies_with_parent
from exporter.config.loading import ConfigError, load_config
from exporter.daemon import Daemon
from exporter.demo.embedded import EmbeddedBackends, EmbeddedServer, start_backends
from exporter.demo.security import mint_token, security_from_env
from exporter.demo.server import DEFAULT_LISTEN, parse_listen
from exporter.logs import event

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


def example_config_path() -> Path:
    """The shipped example (``examples/tripo04os.yaml`` in the repository links to it)."""
    return Path(__file__).with_name("tripo04os.yaml")


def demo_url(listen: str) -> str:
    host, port = parse_listen(listen)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def config_environment(environ: Mapping[str, str], url: str) -> dict[str, str]:
    """The environment the config is expanded with: the API and Jaeger are the demo; the databases are the
    demo's when it has them and the user did not name others."""
    env = {**environ, "TEST_BASE_URL": url, "JAEGER_HOST": url}
    for wanted, demo in (("DATABASE_URL", "DEMO_DATABASE_URL"), ("REDIS_URL", "DEMO_REDIS_URL")):
        if not env.get(wanted) and env.get(demo):
            env[wanted] = env[demo]
    return env


def demo_tokens(environ: Mapping[str, str], now: float) -> tuple[dict[str, str], dict[str, str]]:
    """The demo's signing key (``DEMO_SIGNING_KEY``, else a new random one) for its environment, and the tokens
    the example config's checks read, minted with it: the dispatcher's (``API_TOKEN``), two riders' (7 in
    ``RIDER_TOKEN``, 8 in ``OTHER_RIDER_TOKEN``), the rate-limit burst's own dispatcher (``BURST_TOKEN``), and
    rider 7's expired an hour ago (``EXPIRED_TOKEN``). Raises ValueError naming a bad ``DEMO_*`` variable."""
    key = environ.get("DEMO_SIGNING_KEY") or secrets.token_urlsafe(32)
    settings = security_from_env({**environ, "DEMO_SECURITY": "on", "DEMO_SIGNING_KEY": key})
    assert settings is not None
    until = now + settings.token_ttl
    tokens = {
        "API_TOKEN": mint_token(settings.key, "dispatcher", "dispatcher", until),
        "RIDER_TOKEN": mint_token(settings.key, "7", "rider", until),
        "OTHER_RIDER_TOKEN": mint_token(settings.key, "8", "rider", until),
        "BURST_TOKEN": mint_token(settings.key, "burst", "dispatcher", until),
        "EXPIRED_TOKEN": mint_token(settings.key, "7", "rider", now - 3600),
    }
    return {"DEMO_SIGNING_KEY": key}, tokens


def _answering(url: str) -> bool:
    """The demo answers /health (any HTTP status: a 503 says a backend is down, which the probes report)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _port_taken(listen: str) -> bool:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def start_demo(listen: str, log_level: str, log_format: str,
               env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "exporter.demo", "--web.listen-address", listen, "--log.level", log_level,
            "--log.format", log_format]
    # Its own process group: a Ctrl-C in the terminal reaches only the daemon, which lets its running probes
    # finish against the demo and then stops it.
    return subprocess.Popen(argv, process_group=0, env=None if env is None else dict(env),
                            preexec_fn=dies_with_parent(signal.SIGTERM))


def wait_until_answering(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _answering(url):
            return True
        time.sleep(0.1)
    return False


def stop_demo(proc: subprocess.Popen[bytes]) -> int | None:
    return child_process.stop(proc, signal.SIGTERM, STOP_TIMEOUT_SECONDS)


async def _watch_demo(proc: subprocess.Popen[bytes]) -> None:
    """If the demo dies while the daemon runs, say so once; the probes then report it as down."""
    while proc.poll() is None:
        await asyncio.sleep(0.5)
    event(log, logging.ERROR, "demo_exited", exit_code=proc.returncode)


async def _serve(daemon: Daemon, proc: subprocess.Popen[bytes]) -> None:
    watcher = asyncio.create_task(_watch_demo(proc))
    try:
        await daemon.serve()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def run_with_demo(args: argparse.Namespace) -> int:
    listen = os.environ.get("DEMO_LISTEN") or DEFAULT_LISTEN
    try:
        url = demo_url(listen)
    except ValueError as exc:
        print(f"DEMO_LISTEN: {exc}", file=sys.stderr)
        return 1
    if _port_taken(listen):
        print(f"cannot start the demo: {listen} is in use (set DEMO_LISTEN to another HOST:PORT)", file=sys.stderr)
        return 1
    config_path: Path = args.config or example_config_path()
    try:
        signing, tokens = demo_tokens(os.environ, time.time())
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:  # before anything starts
        load_config(config_path, env={**config_environment(os.environ, url), **tokens})
        if args.web_config_file:
            from exporter.web_config import load_web_config

            load_web_config(args.web_config_file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    backends = start_backends(postgres=not os.environ.get("DEMO_DATABASE_URL"),
                              valkey=not os.environ.get("DEMO_REDIS_URL"))
    try:
        return _run_demo_and_daemon(args, listen, url, config_path, backends, signing, tokens)
    finally:
        backends.stop()


def _run_demo_and_daemon(args: argparse.Namespace, listen: str, url: str, config_path: Path,
                         backends: EmbeddedBackends, signing: dict[str, str], tokens: dict[str, str]) -> int:
    # the example config's security checks need the demo's security on, and its tokens
    demo_env = {"DEMO_SECURITY": "on", **os.environ, **backends.environment(), **signing}
    env = {**config_environment(demo_env, url), **tokens}
    event(log, logging.INFO, "demo_starting", listen=listen, config=str(config_path),
          storage=_backend_name(demo_env, "DEMO_DATABASE_URL", backends.postgres),
          cache=_backend_name(demo_env, "DEMO_REDIS_URL", backends.redis))
    proc = start_demo(listen, args.log_level, args.log_format, demo_env)
    try:
        if not wait_until_answering(proc, url, HEALTH_TIMEOUT_SECONDS):
            code = proc.poll()
            print(f"the demo did not answer {url}/health within {HEALTH_TIMEOUT_SECONDS:g}s"
                  + (f" (it exited with {code})" if code is not None else ""), file=sys.stderr)
            return 1
        daemon = Daemon(config_path, args.listen, load=lambda: load_config(config_path, env=env),
                        web_config_file=args.web_config_file, reload_enabled=args.web_enable_reload)
        asyncio.run(_serve(daemon, proc))
    except (ConfigError, ValueError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        stop_demo(proc)
    return 0


def _backend_name(env: Mapping[str, str], variable: str, embedded: EmbeddedServer | None) -> str:
    if embedded is not None:
        return f"embedded {embedded.name} {embedded.version}"
    return "given" if env.get(variable) else "memory"
