"""A real HTTP server on loopback whose delays, status codes and bodies the tests set per path.

Paths:
  /delay/<ms>          200 after <ms> milliseconds
  /stats               {"delays": [seconds each /delay request really took inside the server]}
  /status/<code>       that status
  /json                {"id": 42, "status": "created", "nested": {"items": [{"id": 7}]}}
  /big/<bytes>         a body of that many bytes
  /redirect/<n>        n redirects, then 200
  /loop                redirects to itself forever
  POST /orders         201 {"id": <new>, "status": "created"}
  GET /orders/<id>     200 {"id": <id>, "status": "created"} or 404
  POST /orders/<id>/cancel  200 {"id": <id>, "status": "cancelled"}
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port, port_open, wait_for


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without NODELAY, Nagle + delayed ACK add 40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode())

    def do_GET(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "delay":
            with self.server.lock:
                self.server.in_flight += 1
                self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
            started = time.perf_counter()
            time.sleep(int(parts[1]) / 1000)
            with self.server.lock:
                self.server.in_flight -= 1
                self.server.delays.append(time.perf_counter() - started)
            self._json(200, {"ok": True})
        elif parts[0] == "stats":
            self._json(200, {"delays": self.server.delays})
        elif parts[0] == "status":
            self._json(int(parts[1]), {"status": int(parts[1])})
        elif parts[0] == "json":
            self._json(200, {"id": 42, "status": "created", "nested": {"items": [{"id": 7}]}})
        elif parts[0] == "big":
            self._send(200, b"x" * int(parts[1]), "text/plain")
        elif parts[0] == "redirect":
            n = int(parts[1])
            if n > 0:
                self._send(302, headers={"Location": f"/redirect/{n - 1}"})
            else:
                self._json(200, {"arrived": True})
        elif parts[0] == "loop":
            self._send(302, headers={"Location": "/loop"})
        elif parts[0] == "orders" and len(parts) == 2:
            order = self.server.orders.get(parts[1])
            if order is None:
                self._json(404, {"error": "no such order"})
            else:
                self._json(200, order)
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["orders"]:
            order_id = str(next(self.server.ids))
            order = {"id": order_id, "status": "created", "request": body}
            self.server.orders[order_id] = order
            self._json(201, order)
        elif len(parts) == 3 and parts[0] == "orders" and parts[2] == "cancel":
            order = self.server.orders.get(parts[1])
            if order is None:
                self._json(404, {"error": "no such order"})
            else:
                order["status"] = "cancelled"
                self._json(200, order)
        else:
            self._json(404, {"error": "not found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.orders: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1000)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delays: list[float] = []  # how long each /delay request really slept


class HttpTarget:
    def __init__(self) -> None:
        self.port = free_port()
        self.server = _Server(self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpTarget:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts TCP connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except OSError:
                continue

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class HttpTargetProcess:
    """The same server in a process of its own, for timing tests: no GIL shared with the probe."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpTargetProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.http_target", str(self.port)])
        wait_for(lambda: port_open(self.port), timeout=15, what="HTTP target process")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)


if __name__ == "__main__":
    _Server(int(sys.argv[1])).serve_forever()
