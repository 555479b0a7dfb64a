"""``--web.config.file``: TLS and basic auth for every endpoint, in the Prometheus exporter-toolkit's format.

```yaml
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  min_version: TLS12              # TLS10, TLS11, TLS12 (default), TLS13
  max_version: TLS13
  client_auth_type: RequireAndVerifyClientCert   # NoClientCert (default), VerifyClientCertIfGiven
  client_ca_file: clients-ca.crt  # set alone, it means RequireAndVerifyClientCert
basic_auth_users:
  prometheus: $2y$10$...          # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\\n')
```

Relative paths are relative to the file. Every problem is one line naming the file and the key. A password
checked once is remembered (by its SHA-256) for the process' life, as the toolkit does: bcrypt is slow on purpose,
and a scrape every few seconds should not pay it each time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
import yaml
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from exporter.config.base import Model
from exporter.config.loading import ConfigError

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
ClientAuth = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
                     "RequestClientCert", "RequireAnyClientCert"]
# what Python's ssl module can do for each: a certificate asked for but not verified it cannot
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}


class TLSServerConfig(Model):
    cert_file: Path
    key_file: Path
    client_auth_type: ClientAuth | None = None
    client_ca_file: Path | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None
    cipher_suites: list[str] = Field(default_factory=list)  # Go names: accepted, Python's defaults are used
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        auth = self.client_auth_type
        if auth in ("RequestClientCert", "RequireAnyClientCert"):
            raise ValueError(f"client_auth_type {auth} (a client certificate taken without verifying it) is not "
                             "supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with "
                             "client_ca_file")
        if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {auth} needs client_ca_file, the CA that signs client "
                             "certificates")
        if self.max_version is not None and TLS_VERSIONS[self.max_version] < TLS_VERSIONS[self.min_version]:
            raise ValueError(f"max_version {self.max_version} is below min_version {self.min_version}")
        return self

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        if self.client_auth_type is None:
            return ssl.CERT_REQUIRED if self.client_ca_file is not None else ssl.CERT_NONE
        return CLIENT_AUTH[self.client_auth_type]


class HTTPServerConfig(Model):
    http2: bool = False
    headers: dict[str, str] = Field(default_factory=dict)


def _bcrypt_hash(hashed: str) -> str:
    if not (len(hashed) == 60 and hashed[:4] in ("$2a$", "$2b$", "$2y$") and hashed[4:6].isdigit()):
        raise ValueError("expected a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), not a password in clear; "
                         "make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'")
    return hashed


class WebConfig(Model):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, Annotated[str, AfterValidator(_bcrypt_hash)]] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _user_names(cls, users: dict[str, str]) -> dict[str, str]:
        for user in users:
            if ":" in user:
                raise ValueError(f"user {user!r}: a user name cannot hold ':' (basic auth splits on it)")
        return users


def load_web_config(path: Path) -> WebConfig:
    """The file parsed and checked, its certificates and keys loaded once to catch every problem at start."""
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(source, [f"(file): cannot read the web config: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(source, [f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a mapping, got {type(data).__name__}"])
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_problem(e) for e in exc.errors()]) from None
    tls = config.tls_server_config
    if tls is not None:
        base = path.parent
        tls = tls.model_copy(update={
            "cert_file": base / tls.cert_file, "key_file": base / tls.key_file,
            "client_ca_file": None if tls.client_ca_file is None else base / tls.client_ca_file})
        config = config.model_copy(update={"tls_server_config": tls})
        server_ssl_context(tls, source)  # raises ConfigError naming the key of a file that does not load
    return config


def _problem(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "missing":
        return f"{loc}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    # a user's entry may be a password written in clear: never repeated
    got = type(error.get("input")).__name__ if loc.startswith("basic_auth_users") else repr(error.get("input"))
    if kind == "literal_error":
        message = f"{message}, got {got}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"expected {message.removeprefix('Input should be ')}, got {got}"
    return f"{loc}: {message}"


def server_ssl_context(tls: TLSServerConfig, source: str) -> ssl.SSLContext:
    return reload_tls(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls, source)


def reload_tls(context: ssl.SSLContext, tls: TLSServerConfig, source: str) -> ssl.SSLContext:
    """``context`` set up from ``tls``: a live server's context takes a new certificate this way, for the
    handshakes after it."""
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.max_version is not None:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        which, why = _bad_pem(tls)
        raise ConfigError(source, [f"tls_server_config.{which}: cannot load the certificate and key "
                                   f"({tls.cert_file}, {tls.key_file}): {why or _ssl_reason(exc)}"]) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(tls.client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(source, [f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file}: "
                                       f"{_ssl_reason(exc)}"]) from None
    context.verify_mode = tls.verify_mode
    return context


def _bad_pem(tls: TLSServerConfig) -> tuple[str, str]:
    """Which of the two files is at fault, and why, as far as can be told from their contents."""
    for key, path, marker in (("cert_file", tls.cert_file, "CERTIFICATE-----"),
                              ("key_file", tls.key_file, "PRIVATE KEY-----")):
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            return key, f"cannot read {path}: {exc.strerror or exc}"
        if marker not in text:
            return key, f"{path} holds no PEM {marker.removesuffix('-----').lower()}"
    return "key_file", "the key does not belong to the certificate, or one of them is damaged"


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


BCRYPT_THREADS = 1  # one core at most for password checks: probes keep the other
BCRYPT_QUEUE = 8  # checks waiting beyond these are refused at once, unhashed: a flood of bad logins is a 401 flood


def _checkpw(password: bytes, hashed: bytes) -> bool:
    """bcrypt's check; a password past bcrypt's 72 bytes is wrong, not an error (the toolkit answers 401)."""
    if len(password) > 72:
        return False
    return bcrypt.checkpw(password, hashed)


class BasicAuth:
    """ASGI middleware: every request needs one of ``users``' passwords, else 401 with a Basic challenge.

    bcrypt runs on a pool of its own (:data:`BCRYPT_THREADS`, at most :data:`BCRYPT_QUEUE` checks waiting), never
    on the event loop or the executor the probes' DNS lookups use, so bad logins cannot slow what is measured; a
    password checked once is remembered (by its SHA-256), as the toolkit does. :meth:`update` takes a reloaded
    web config's users and headers."""

    def __init__(self, app: ASGIApp, users: dict[str, str], headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(BCRYPT_THREADS, thread_name_prefix="bcrypt")
        self.waiting = 0
        self._dummy = b""
        self.update(users, headers)

    def update(self, users: dict[str, str], headers: dict[str, str] | None = None) -> None:
        self.users = {name: hashed.replace("$2y$", "$2b$", 1).encode() for name, hashed in users.items()}
        self.headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self._good: set[bytes] = set()  # sha256(user:password:hash) of passwords already checked
        rounds = min((int(h[4:6]) for h in users.values()), default=4)
        # checked for an unknown user, so that it takes as long as a wrong password; made again (on the loop) only
        # when the users' cost changes, not at every reload
        if users and self._dummy[4:6] != b"%02d" % rounds:
            self._dummy = bcrypt.hashpw(b"perf-exporter", bcrypt.gensalt(rounds))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (not self.users and not self.headers):
            await self.app(scope, receive, send)
            return
        if self.users and not await self._authorized(dict(scope["headers"]).get(b"authorization", b"")):
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"www-authenticate", b'Basic realm="perf-exporter", charset="UTF-8"'),
                (b"content-type", b"text/plain; charset=utf-8"), *self.headers]})
            await send({"type": "http.response.body", "body": b"Unauthorized\n"})
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start" and self.headers:
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _check(self, password: bytes, hashed: bytes) -> bool:
        """On the pool, or refused at once when :data:`BCRYPT_QUEUE` checks already wait."""
        if self.waiting >= BCRYPT_QUEUE:
            return False
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, _checkpw, password, hashed)
        finally:
            self.waiting -= 1

    async def _authorized(self, header: bytes) -> bool:
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        hashed = self.users.get(user.decode(errors="replace"))
        if not sep or hashed is None:
            await self._check(password, self._dummy)
            return False
        digest = hashlib.sha256(user + b":" + password + b":" + hashed).digest()
        if any(hmac.compare_digest(digest, good) for good in self._good):
            return True
        if await self._check(password, hashed):  # slow on purpose: not on the loop
            self._good.add(digest)
            return True
        return False

