"""Runs the demo target: connects its backends, serves the app with uvicorn until SIGTERM/SIGINT.

With ``workers`` above 1, that many processes serve one listening socket (forked after it is bound; the kernel
spreads connections over them), each with its own queue consumer: more requests/s and a faster queue drain. Their
data is shared only through PostgreSQL and Redis: in memory each worker has its own orders and traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
from typing import Any

import psycopg
import uvicorn

from exporter import __version__
from exporter.config import units
from exporter.demo.cache import QUEUES, Cache, CacheUnavailable, MemoryCache, RedisCache
from exporter.demo.routes import build_app
from exporter.demo.security import DemoGuard, DemoSecurity, security_from_env
from exporter.demo.state import DemoState
from exporter.demo.storage import MemoryStore, PostgresStore, Store
from exporter.logs import event
from exporter.secrets import safe_url

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8020"
CONSUME_EVERY_SECONDS = 1.0
CONSUME_BATCH = 50


def parse_listen(value: str) -> tuple[str, int]:
    """The demo listens on loopback unless told otherwise."""
    return units.parse_listen(value, default_host="127.0.0.1")


async def consume_queues(cache: Cache, state: DemoState) -> None:
    """The queues' consumer: drains a batch per queue every second, so their length shows backlog."""
    while True:
        await asyncio.sleep(CONSUME_EVERY_SECONDS)
        for queue in QUEUES:
            try:
                await cache.consume(queue, CONSUME_BATCH)
            except CacheUnavailable as exc:
                state.backend_failed("redis", str(exc))


async def _run_server(server: uvicorn.Server, sock: socket.socket | None = None) -> None:
    with contextlib.suppress(SystemExit):  # uvicorn exits the process when it cannot bind; we report instead
        await server.serve(sockets=[sock] if sock is not None else None)


async def _serve(listen: str, postgres: str | None, redis: str | None, security: DemoSecurity | None,
                 sock: socket.socket | None = None) -> int:
    host, port = parse_listen(listen)
    rng = random.Random()
    store: Store
    if postgres:
        try:
            store = await PostgresStore(postgres).open()
        except (psycopg.Error, OSError) as exc:
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            event(log, logging.ERROR, "demo_postgres_unreachable", dsn=postgres, cause=cause)
            return 1
    else:
        store = MemoryStore(rng)
    cache: Cache = RedisCache(redis) if redis else MemoryCache(rng)
    state = DemoState(store=store, cache=cache, rng=rng, security=security)
    if not await cache.healthy():  # cache-aside: the demo still serves, reads go to the database
        state.backend_failed("redis", f"no answer from {safe_url(redis or '')}")
    admin_token = os.environ.get("DEMO_ADMIN_TOKEN") or None
    app: Any = DemoGuard(build_app(state), lambda: state.faults, security, admin_token)
    if security is not None:
        event(log, logging.INFO, "demo_security_on",
              rate_limit=f"{security.limit.requests}/{security.limit.window:g}s",
              anonymous_rate_limit=f"{security.anonymous_limit.requests}/{security.anonymous_limit.window:g}s",
              max_body_bytes=security.max_body_bytes,
              signing_key="generated" if security.key_generated else "DEMO_SIGNING_KEY",
              admin="DEMO_ADMIN_TOKEN" if admin_token else "loopback only")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                           access_log=False, lifespan="off", timeout_graceful_shutdown=2))
    consumer = asyncio.create_task(consume_queues(cache, state))
    serving = asyncio.create_task(_run_server(server, sock))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        event(log, logging.INFO, "demo_started", listen=f"{host}:{port}", storage=store.kind, cache=cache.kind,
              version=__version__)
    try:
        await serving
    finally:
        await state.hold_trip_locks(False)
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await cache.close()
        await store.close()
    if not server.started:
        event(log, logging.ERROR, "demo_listen_failed", listen=f"{host}:{port}")
        return 1
    event(log, logging.INFO, "demo_stopped")
    return 0


def _serve_workers(listen: str, postgres: str | None, redis: str | None, security: DemoSecurity | None,
                   workers: int) -> int:
    host, port = parse_listen(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        event(log, logging.ERROR, "demo_listen_failed", listen=f"{host}:{port}", cause=str(exc))
        return 1
    sock.listen(2048)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own event loop, backends and consumer on the shared socket
            code = 1
            for signum in (signal.SIGTERM, signal.SIGINT):  # uvicorn re-raises the signal it stopped on:
                signal.signal(signum, lambda *_: None)       # let the worker then exit with its own code
            try:
                code = asyncio.run(_serve(listen, postgres, redis, security, sock))
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) for child in children]
    return max(codes, default=0)


def serve_demo(listen: str, postgres: str | None, redis: str | None, workers: int = 1) -> int:
    """Blocking: serve until SIGTERM or SIGINT; 0 after a clean stop, 1 if it could not start."""
    try:
        security = security_from_env(os.environ)  # off unless DEMO_SECURITY=on; one key for every worker
        if workers > 1:
            return _serve_workers(listen, postgres, redis, security, workers)
        return asyncio.run(_serve(listen, postgres, redis, security))
    except ValueError as exc:
        event(log, logging.ERROR, "demo_bad_argument", cause=str(exc))
        return 1
