"""Debian's nginx as the benchmarks' fast local target: 200 and a small JSON body on every path, kept-alive
connections for as long as the client wants, nothing logged."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import Process, free_port, http_ok, wait_for

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{ default_type application/json; return 200 '{{"id": 1, "status": "created"}}'; }}
  }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@contextmanager
def nginx(root: Path) -> Iterator[str]:
    """A running nginx on a free loopback port; its base URL. Raises RuntimeError when nginx is missing."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed: apt-get install nginx (scripts/test.sh installs it)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port))
    server = Process([binary, "-c", str(root / "nginx.conf"), "-p", str(root)], root / "nginx.out").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{url}/"), timeout=15, what="nginx")
        yield url
    finally:
        server.stop()
