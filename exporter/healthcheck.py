"""``perf-exporter healthcheck``: the container's health check, whether or not ``--web.config.file`` turned TLS or
basic auth on. It asks the daemon on loopback for ``/-/healthy`` (or ``--path /-/ready``): over plain HTTP, and
over TLS when the daemon answers plain HTTP with a TLS alert (the certificate is not verified: this is the
process itself, on loopback, and what is checked is that it answers). With ``PERF_EXPORTER_HEALTHCHECK_AUTH``
(``user:password``) it logs in; without, a 401 from ``/-/healthy`` still says the daemon answers, which is what a
liveness check asks, while ``/-/ready`` needs the credentials to say more."""

from __future__ import annotations

import base64
import http.client
import os
import ssl
from collections.abc import Mapping

AUTH_VARIABLE = "PERF_EXPORTER_HEALTHCHECK_AUTH"
TIMEOUT = 5.0


def _get(host: str, port: int, path: str, headers: Mapping[str, str], tls: bool) -> int:
    connection: http.client.HTTPConnection
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("GET", path, headers=dict(headers))
        return connection.getresponse().status
    finally:
        connection.close()


def status(listen: str, path: str, environ: Mapping[str, str]) -> int:
    """The status the daemon answers ``path`` with, over HTTP or else TLS."""
    host, _, port = listen.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host.strip("[]")
    headers = {}
    credentials = environ.get(AUTH_VARIABLE)
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    try:
        return _get(host, int(port), path, headers, tls=False)
    except (http.client.HTTPException, ConnectionResetError):  # a TLS server answering plain HTTP
        return _get(host, int(port), path, headers, tls=True)


def check(listen: str, path: str, environ: Mapping[str, str] = os.environ) -> tuple[bool, str]:
    """Whether the daemon is healthy (or ready), and what it answered."""
    try:
        code = status(listen, path, environ)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return False, f"{listen}: {type(exc).__name__}: {exc}"
    if code == 200:
        return True, f"{path}: 200"
    if code == 401 and path == "/-/healthy" and not environ.get(AUTH_VARIABLE):
        return True, f"{path}: 401 (basic auth is on: it answers; set {AUTH_VARIABLE} to log in)"
    return False, f"{path}: {code}"
