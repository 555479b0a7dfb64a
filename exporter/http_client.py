"""What every HTTP client of a target shares: TLS settings and the headers the config asks for."""

from __future__ import annotations

import ssl

from exporter.config.base import HttpTarget, TLSConfig


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def base_headers(cfg: HttpTarget) -> dict[str, str]:
    """User-Agent, the configured headers, and the bearer token (which wins over a configured Authorization)."""
    headers = {"User-Agent": "perf-exporter"}
    headers.update({name: value.get_secret_value() for name, value in cfg.headers.items()})
    if cfg.bearer_token is not None:
        headers["Authorization"] = f"Bearer {cfg.bearer_token.get_secret_value()}"
    return headers
