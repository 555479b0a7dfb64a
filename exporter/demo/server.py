"""Runs the demo target: connects its backends, serves the app with uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import psycopg
import uvicorn

from exporter import __version__
from exporter.config import units
from exporter.demo.app import DemoState, build_app
from exporter.demo.cache import QUEUES, Cache, CacheUnavailable, MemoryCache, RedisCache
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


async def _run_server(server: uvicorn.Server) -> None:
    with contextlib.suppress(SystemExit):  # uvicorn exits the process when it cannot bind; we report instead
        await server.serve()


async def _serve(listen: str, postgres: str | None, redis: str | None) -> int:
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
    state = DemoState(store=store, cache=cache, rng=rng)
    if not await cache.healthy():  # cache-aside: the demo still serves, reads go to the database
        state.backend_failed("redis", f"no answer from {safe_url(redis or '')}")
    server = uvicorn.Server(uvicorn.Config(build_app(state), host=host, port=port, log_config=None,
                                           access_log=False, lifespan="off", timeout_graceful_shutdown=2))
    consumer = asyncio.create_task(consume_queues(cache, state))
    serving = asyncio.create_task(_run_server(server))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        event(log, logging.INFO, "demo_started", listen=f"{host}:{port}", storage=store.kind, cache=cache.kind,
              version=__version__)
    try:
        await serving
    finally:
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


def serve_demo(listen: str, postgres: str | None, redis: str | None) -> int:
    """Blocking: serve until SIGTERM or SIGINT; 0 after a clean stop, 1 if it could not start."""
    try:
        return asyncio.run(_serve(listen, postgres, redis))
    except ValueError as exc:
        event(log, logging.ERROR, "demo_bad_argument", cause=str(exc))
        return 1
