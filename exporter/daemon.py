"""Wires config, scheduler and web server into one asyncio process, with reload and signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from exporter import __version__, metrics
from exporter.config.loading import ConfigError, default_config, load_config
from exporter.config.schema import Config
from exporter.config.units import parse_listen
from exporter.logs import event
from exporter.scheduler import JobRunner, Scheduler
from exporter.store import StoreCollector
from exporter.web import build_app
from exporter.web_config import BasicAuth, WebConfig, server_ssl_context

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon owns SIGTERM, SIGINT and SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Config(uvicorn.Config):
    """uvicorn's config with the web config's own TLS context (minimum and maximum version, client CA)."""

    def __init__(self, app: Any, web: WebConfig | None, **kwargs: Any) -> None:
        self.web = web
        tls = web.tls_server_config if web is not None else None
        if tls is not None:
            kwargs.update(ssl_certfile=str(tls.cert_file), ssl_keyfile=str(tls.key_file))
        super().__init__(app, **kwargs)

    def load(self) -> None:
        super().load()
        if self.web is not None and self.web.tls_server_config is not None:
            self.ssl = server_ssl_context(self.web.tls_server_config, "web config")


class Daemon:
    def __init__(self, config_path: Path | None, listen: str,
                 load: Callable[[], Config] | None = None, web_config: WebConfig | None = None,
                 reload_enabled: bool = True) -> None:
        self.web_config = web_config
        self.reload_enabled = reload_enabled  # POST /-/reload; SIGHUP reloads either way
        self.config_path = config_path
        self.config_source = str(config_path) if config_path else "(built-in default config)"
        self._load = load or (lambda: load_config(config_path) if config_path else default_config())
        self.host, self.port = parse_listen(listen)
        self.stores = StoreCollector()
        self.registry = CollectorRegistry(auto_describe=False)  # the client's own process and runtime metrics
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.own = self.stores.add("exporter")
        self.own.set(metrics.BUILD_INFO, 1, version=__version__)
        self.scheduler = Scheduler(self.stores)
        self.ready = False
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()

    @property
    def runners(self) -> dict[str, JobRunner]:
        return self.scheduler.runners

    async def reload(self) -> str | None:
        """Re-read the config; on error keep the running one and return the message."""
        async with self._reload_lock:
            try:
                config = self._load()
            except ConfigError as exc:
                self.own.set(metrics.CONFIG_RELOAD_OK, 0)
                event(log, logging.ERROR, "config_reload_failed", config=self.config_source, cause=str(exc))
                return str(exc)
            await self.scheduler.apply(config)
            self.own.set(metrics.CONFIG_RELOAD_OK, 1)
            self.own.set(metrics.CONFIG_RELOAD_TIME, time.time())
            event(log, logging.INFO, "config_loaded", config=self.config_source, jobs=len(self.runners))
            return None

    def exposition(self) -> bytes:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to count
            self.own.set(metrics.ASYNCIO_TASKS, float(len(asyncio.all_tasks())))
        return self.stores.render().encode() + generate_latest(self.registry)

    def stop(self) -> None:
        self._stop.set()

    async def serve(self, on_started: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`stop`). Raises ConfigError if the first config is bad."""
        config = self._load()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        self.scheduler.start()
        await self.scheduler.apply(config)
        self.own.set(metrics.CONFIG_RELOAD_OK, 1)
        self.own.set(metrics.CONFIG_RELOAD_TIME, time.time())
        app: Any = build_app(self)
        if self.web_config is not None:
            app = BasicAuth(app, self.web_config.basic_auth_users, self.web_config.http_server_config.headers)
        server = _Server(_Config(app, self.web_config, host=self.host, port=self.port, log_config=None,
                                 access_log=False, lifespan="off", timeout_graceful_shutdown=2))
        server_task = asyncio.create_task(server.serve())
        while not server.started and not server_task.done():
            await asyncio.sleep(0.01)
        if server_task.done():
            await self.scheduler.shutdown(0)
            server_task.result()
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.ready = True
        event(log, logging.INFO, "started", listen=f"{self.host}:{self.port}", config=self.config_source,
              jobs=len(self.runners), version=__version__)
        if on_started:
            on_started()
        stop_wait = asyncio.create_task(self._stop.wait())
        await asyncio.wait({stop_wait, server_task}, return_when=asyncio.FIRST_COMPLETED)
        self.ready = False
        event(log, logging.INFO, "stopping", grace_seconds=SHUTDOWN_GRACE_SECONDS)
        cancelled = await self.scheduler.shutdown(SHUTDOWN_GRACE_SECONDS)
        server.should_exit = True
        await server_task
        stop_wait.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        event(log, logging.INFO, "stopped", runs_cancelled=cancelled)
