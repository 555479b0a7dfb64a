"""The HTTP side: /metrics, /-/healthy, /-/ready, POST /-/reload and an index page."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from exporter import __version__
from exporter.config.base import JobTarget
from exporter.scheduler import LastRun


class Runner(Protocol):
    """A job as the index page shows it: run here, or in a probe worker (exporter.workers)."""

    entry: JobTarget
    last: LastRun

    @property
    def collector(self) -> str: ...

    def cause(self) -> str: ...


class Served(Protocol):
    ready: bool
    config_source: str

    @property
    def runners(self) -> Mapping[str, Runner]: ...

    async def reload(self) -> str | None: ...

    def exposition(self) -> bytes: ...


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def build_app(daemon: Served) -> Starlette:

    async def metrics_endpoint(request: Request) -> Response:
        return Response(daemon.exposition(), media_type=CONTENT_TYPE)

    async def healthy(request: Request) -> Response:
        return PlainTextResponse("Healthy\n")

    async def ready(request: Request) -> Response:
        if daemon.ready:
            return PlainTextResponse("Ready\n")
        return PlainTextResponse("Not ready\n", status_code=503)

    async def reload(request: Request) -> Response:
        if not getattr(daemon, "reload_enabled", True):
            return PlainTextResponse("Reload is turned off (run without --no-web.enable-reload to allow "
                                     "POST /-/reload); SIGHUP still reloads\n", status_code=403)
        error = await daemon.reload()
        if error is None:
            return PlainTextResponse("Config reloaded\n")
        return PlainTextResponse(f"Config reload failed, the previous config stays in use:\n{error}\n",
                                 status_code=500)

    async def index(request: Request) -> Response:
        return HTMLResponse(index_page(daemon))

    routes: list[Route] = [
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/-/healthy", healthy, methods=["GET", "HEAD"]),
        Route("/-/ready", ready, methods=["GET", "HEAD"]),
        Route("/-/reload", reload, methods=["POST"]),
        Route("/", index, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def index_page(daemon: Served) -> str:
    rows = []
    now = time.time()
    for _, runner in sorted(daemon.runners.items()):
        last = runner.last
        ago = f"{now - last.finished_at:.0f}s ago" if last.finished_at else "not yet"
        took = f"{last.duration * 1000:.1f} ms" if last.duration is not None else ""
        rows.append(
            f"<tr><td>{html.escape(runner.collector)}</td><td>{html.escape(runner.entry.name)}</td>"
            f"<td>{runner.entry.interval:g}s</td><td class='{last.result}'>{html.escape(last.result)}</td>"
            f"<td>{ago}</td><td>{took}</td><td>{html.escape(runner.cause())}</td></tr>")
    table = "\n".join(rows) or "<tr><td colspan=7>No jobs configured.</td></tr>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>perf-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
.success{{color:#080}}.failure,.error,.timeout{{color:#b00}}</style></head>
<body><h1>perf-exporter {html.escape(__version__)}</h1>
<p>Config: {html.escape(daemon.config_source)}</p>
<ul><li><a href="/metrics">Metrics</a></li><li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li><li>Reload: <code>POST /-/reload</code></li></ul>
<table><tr><th>Collector</th><th>Target</th><th>Interval</th><th>Last result</th><th>When</th><th>Took</th>
<th>Cause</th></tr>
{table}
</table></body></html>
"""


