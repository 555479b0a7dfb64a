"""Wires config, scheduler and web server into one asyncio process, with reload and signal handling.

The jobs this replica owns (its ``--shard``, :mod:`exporter.sharding`) run here, or in probe worker processes
(:mod:`exporter.workers`) when there are any: then this process only serves, and joins what they rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from exporter import __version__, metrics
from exporter.config.base import JobTarget
from exporter.config.loading import ConfigError, default_config, load_config
from exporter.config.schema import Config
from exporter.config.units import parse_listen
from exporter.jobs import JobKind
from exporter.logs import event
from exporter.scheduler import Scheduler, job_key
from exporter.sharding import Shard
from exporter.store import StoreCollector
from exporter.timing import ProcessWatch, process_age_seconds, rss_bytes
from exporter.web import Runner, build_app
from exporter.web_config import BasicAuth, WebConfig, load_web_config, reload_tls, server_ssl_context
from exporter.workers import ProbeWorkers, load, usable_cpus

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
# --probe-workers auto: below this many probe requests per second (150 endpoints every 15 s) the jobs run in the
# serving process; from it on, one worker per usable CPU.
AUTO_WORKERS_FROM = 10.0


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
                 load: Callable[[], Config] | None = None, web_config_file: Path | None = None,
                 reload_enabled: bool = True, shard: Shard | None = None, probe_workers: int | None = 0,
                 log_level: str = "info", log_format: str = "logfmt") -> None:
        """``probe_workers``: processes to run the jobs in (0: this one; None: decided from the first config,
        :data:`AUTO_WORKERS_FROM`). ``web_config_file`` is read here (a bad one is a ConfigError before anything
        starts) and again on every reload."""
        self.shard = shard or Shard()
        self.probe_workers = probe_workers
        self.log_level, self.log_format = log_level, log_format
        self.web_config_file = web_config_file
        self.web_config: WebConfig | None = load_web_config(web_config_file) if web_config_file else None
        self.auth: BasicAuth | None = None
        self.tls: ssl.SSLContext | None = None
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
        self.own.set(metrics.SHARD_INFO, 1, shard=str(self.shard.index), total_shards=str(self.shard.total))
        self.watch = ProcessWatch(self.own, "main")
        self.scheduler = Scheduler(self.stores, late=self.watch.late)
        self.workers: ProbeWorkers | None = None  # chosen by serve()
        self.ready = False
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()

    @property
    def jobs(self) -> Scheduler | ProbeWorkers:
        """Where the jobs run: in probe workers when serve() started some, else in this process."""
        return self.workers if self.workers is not None else self.scheduler

    @property
    def runners(self) -> Mapping[str, Runner]:
        return self.jobs.runners

    def owned(self, config: Config) -> list[tuple[JobKind[Any], JobTarget]]:
        """The config's jobs that this replica's shard runs."""
        return [(kind, entry) for kind, entry in config.jobs() if self.shard.owns(job_key(kind, entry))]

    def _worker_count(self, jobs: Sequence[tuple[JobKind[Any], JobTarget]]) -> int:
        if self.probe_workers is not None:
            return self.probe_workers
        rate = sum(load(entry) for _, entry in jobs)
        if rate < AUTO_WORKERS_FROM:
            return 0
        cpus = usable_cpus()
        return cpus if cpus > 1 else 0

    def _reload_web_config(self) -> None:
        """The web config read again: its users and headers from now on, its certificate, key and client CA for
        the next handshakes. Turning TLS on or off needs a restart (said, the rest applied)."""
        if self.web_config_file is None or self.auth is None:
            return
        fresh = load_web_config(self.web_config_file)
        self.auth.update(fresh.basic_auth_users, fresh.http_server_config.headers)
        tls = fresh.tls_server_config
        if (tls is None) != (self.tls is None):
            event(log, logging.WARNING, "web_config_tls_needs_restart", web_config=str(self.web_config_file))
        elif tls is not None and self.tls is not None:
            reload_tls(self.tls, tls, str(self.web_config_file))
        self.web_config = fresh
        event(log, logging.INFO, "web_config_loaded", web_config=str(self.web_config_file),
              users=len(fresh.basic_auth_users), tls=tls is not None)

    async def reload(self) -> str | None:
        """Re-read the config and the web config; on error keep the running ones and return the message."""
        async with self._reload_lock:
            try:
                config = self._load()
                self._reload_web_config()
            except ConfigError as exc:
                self.own.set(metrics.CONFIG_RELOAD_OK, 0)
                event(log, logging.ERROR, "config_reload_failed", config=self.config_source, cause=str(exc))
                return str(exc)
            await self.jobs.apply(self.owned(config))
            self.own.set(metrics.CONFIG_RELOAD_OK, 1)
            self.own.set(metrics.CONFIG_RELOAD_TIME, time.time())
            event(log, logging.INFO, "config_loaded", config=self.config_source, jobs=len(self.runners))
            return None

    def exposition(self) -> bytes:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to count
            self.own.set(metrics.ASYNCIO_TASKS, float(len(asyncio.all_tasks())))
        return self.stores.render_bytes() + generate_latest(self.registry)

    def stop(self) -> None:
        self._stop.set()

    async def serve(self, on_started: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`stop`). Raises ConfigError if the first config is bad."""
        config = self._load()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        jobs = self.owned(config)
        count = self._worker_count(jobs)
        if count:
            self.workers = ProbeWorkers(count, self.stores, self.log_level, self.log_format)
            await self.workers.start()
        else:
            self.scheduler.start()
        await self.jobs.apply(jobs)
        watching = asyncio.create_task(self.watch.watch())
        self.own.set(metrics.CONFIG_RELOAD_OK, 1)
        self.own.set(metrics.CONFIG_RELOAD_TIME, time.time())
        app: Any = build_app(self)
        if self.web_config is not None:
            app = self.auth = BasicAuth(app, self.web_config.basic_auth_users,
                                        self.web_config.http_server_config.headers)
        server_config = _Config(app, self.web_config, host=self.host, port=self.port, log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        server = _Server(server_config)
        server_task = asyncio.create_task(server.serve())
        while not server.started and not server_task.done():
            await asyncio.sleep(0.01)
        self.tls = server_config.ssl
        if server_task.done():
            await self.jobs.shutdown(0)
            watching.cancel()
            server_task.result()
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        self.ready = True
        pids = [os.getpid(), *(self.workers.pids() if self.workers is not None else ())]
        event(log, logging.INFO, "started", listen=f"{self.host}:{self.port}", config=self.config_source,
              jobs=len(self.runners), shard=self.shard.index, total_shards=self.shard.total, probe_workers=count,
              startup_seconds=round(process_age_seconds(), 3), rss_bytes=sum(rss_bytes(pid) for pid in pids),
              version=__version__)
        if on_started:
            on_started()
        stop_wait = asyncio.create_task(self._stop.wait())
        await asyncio.wait({stop_wait, server_task}, return_when=asyncio.FIRST_COMPLETED)
        self.ready = False
        event(log, logging.INFO, "stopping", grace_seconds=SHUTDOWN_GRACE_SECONDS)
        cancelled = await self.jobs.shutdown(SHUTDOWN_GRACE_SECONDS)
        server.should_exit = True
        await server_task
        stop_wait.cancel()
        watching.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        event(log, logging.INFO, "stopped", runs_cancelled=cancelled)
