"""What every HTTP client of a target shares: TLS settings, the headers the config asks for, and the size of
its reads."""

from __future__ import annotations

import functools
import ssl

from httpcore import AsyncHTTP11Connection

from exporter.config.base import HttpTarget, TLSConfig

# httpcore reads an HTTP/1.1 response 64 KiB at a time (a class attribute, chosen by measuring 1 MB bodies:
# encode/httpcore#135). A Jaeger search answer is tens of MB, and each read costs Python work in httpcore, h11
# and anyio: 256 KiB, what asyncio's transport reads from the socket at once, takes bench/bench_jaeger.py's
# 218 MB from about 0.75 s to 0.55 s. A read returns what has arrived, so small answers are not held back.
READ_BYTES = 256 * 1024
AsyncHTTP11Connection.READ_NUM_BYTES = max(AsyncHTTP11Connection.READ_NUM_BYTES, READ_BYTES)


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def shared_ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """One context per distinct TLS config (and version of its files) in the process: each holds the CA
    certificates (about 1 MB, and 20 ms to load), and hundreds of targets usually share one config."""
    stamps = []
    for path in (tls.ca_file, tls.cert_file, tls.key_file):
        try:
            stamps.append(path.stat().st_mtime_ns if path is not None else None)
        except OSError:
            stamps.append(None)  # ssl_context() says what is wrong with it
    return _context_for(tls, tuple(stamps))


@functools.lru_cache(maxsize=64)
def _context_for(tls: TLSConfig, stamps: tuple[int | None, ...]) -> ssl.SSLContext:
    return ssl_context(tls)


def base_headers(cfg: HttpTarget) -> dict[str, str]:
    """User-Agent, the configured headers, and the bearer token (which wins over a configured Authorization)."""
    headers = {"User-Agent": "perf-exporter"}
    headers.update({name: value.get_secret_value() for name, value in cfg.headers.items()})
    if cfg.bearer_token is not None:
        headers["Authorization"] = f"Bearer {cfg.bearer_token.get_secret_value()}"
    return headers
