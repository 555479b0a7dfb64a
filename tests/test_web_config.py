"""``--web.config.file`` (the exporter-toolkit format): real TLS with certificates made here, mutual TLS, basic
auth with bcrypt hashes on every endpoint, a Prometheus scraping through all of it, reload turned off, and a
clear error for each kind of bad web config."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exporter.config.loading import ConfigError
from exporter.web_config import load_web_config
from tests.daemon_process import DaemonProcess
from tests.servers import Prometheus, free_port, wait_for

PASSWORD = "scrape-pw-7Hq"
ENDPOINTS = [("GET", "/metrics"), ("GET", "/"), ("GET", "/-/healthy"), ("GET", "/-/ready"),
             ("POST", "/-/reload")]


# ---------------------------------------------------------------------------------------------------------------
# Certificates, made in the test


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from a CA the server does not trust
    stranger_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str,
          server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = _ca("perf-exporter test CA")
    server, server_key = _leaf(ca, ca_key, "localhost", server=True)
    client, client_key = _leaf(ca, ca_key, "prometheus", server=False)
    other_ca, other_key = _ca("someone else's CA")
    stranger, stranger_key = _leaf(other_ca, other_key, "stranger", server=False)
    return Pki(_write_cert(ca, d / "ca.crt"), _write_cert(server, d / "server.crt"),
               _write_key(server_key, d / "server.key"), _write_cert(client, d / "client.crt"),
               _write_key(client_key, d / "client.key"), _write_cert(stranger, d / "stranger.crt"),
               _write_key(stranger_key, d / "stranger.key"))


def bcrypt_hash(password: str, prefix: str = "$2b$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(6)).decode()
    return prefix + hashed[4:]


# ---------------------------------------------------------------------------------------------------------------
# The daemon behind TLS and basic auth


class SecureDaemon:
    def __init__(self, tmp_path: Path, web_config: str, *extra: str) -> None:
        web = tmp_path / "web.yml"
        web.write_text(web_config)
        self.process = DaemonProcess(None, tmp_path / "daemon.log", ("--web.config.file", str(web), *extra))
        self.url = f"https://127.0.0.1:{self.process.port}"

    def client(self, pki: Pki, cert: tuple[Path, Path] | None = None, auth: tuple[str, str] | None = None,
               tls_max: ssl.TLSVersion | None = None) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(pki.ca))
        if cert is not None:
            context.load_cert_chain(*cert)
        if tls_max is not None:
            context.maximum_version = tls_max
        return httpx.Client(base_url=self.url, verify=context, auth=auth, timeout=5)

    def wait_ready(self, pki: Pki, cert: tuple[Path, Path] | None = None) -> None:
        def ready() -> bool:
            if self.process.proc.poll() is not None:
                raise RuntimeError(self.process.log())
            with self.client(pki, cert, ("prometheus", PASSWORD)) as c:
                return c.get("/-/ready").status_code == 200
        wait_for(ready, timeout=30, what="the daemon ready over TLS")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def daemons() -> Iterator[list[SecureDaemon]]:
    made: list[SecureDaemon] = []
    yield made
    for daemon in made:
        daemon.stop()


def tls_web_config(pki: Pki, extra_tls: str = "", users: str | None = None) -> str:
    users = users if users is not None else f"  prometheus: {bcrypt_hash(PASSWORD, '$2y$')}\n"
    return (f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n{extra_tls}"
            f"basic_auth_users:\n{users}")


def test_every_endpoint_needs_the_password_over_tls(tmp_path: Path, pki: Pki, daemons: list[SecureDaemon]) -> None:
    daemon = SecureDaemon(tmp_path, tls_web_config(pki, "  min_version: TLS12\n"))
    daemons.append(daemon)
    daemon.wait_ready(pki)
    with daemon.client(pki) as anonymous, daemon.client(pki, auth=("prometheus", "wrong")) as wrong, \
            daemon.client(pki, auth=("nobody", PASSWORD)) as stranger, \
            daemon.client(pki, auth=("prometheus", PASSWORD)) as good:
        for method, path in ENDPOINTS:
            for client in (anonymous, wrong, stranger):
                response = client.request(method, path)
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.headers["www-authenticate"].startswith("Basic")
                assert "perf_" not in response.text
            response = good.request(method, path)
            assert response.status_code == 200, (method, path, response.text)
        assert "perf_exporter_build_info" in good.get("/metrics").text
        assert good.get("/-/reload").status_code == 405  # reload is POST only
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer it could read
        httpx.get(f"http://127.0.0.1:{daemon.process.port}/metrics", timeout=5)


def test_min_version_refuses_older_clients(tmp_path: Path, pki: Pki, daemons: list[SecureDaemon]) -> None:
    daemon = SecureDaemon(tmp_path, tls_web_config(pki, "  min_version: TLS13\n"))
    daemons.append(daemon)
    daemon.wait_ready(pki)
    with daemon.client(pki, auth=("prometheus", PASSWORD), tls_max=ssl.TLSVersion.TLSv1_2) as old, \
            pytest.raises(httpx.ConnectError):
        old.get("/metrics")
    with daemon.client(pki, auth=("prometheus", PASSWORD)) as current:
        assert current.get("/metrics").status_code == 200


def test_mutual_tls_takes_only_certificates_of_the_client_ca(tmp_path: Path, pki: Pki,
                                                             daemons: list[SecureDaemon]) -> None:
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
    daemon = SecureDaemon(tmp_path, tls_web_config(pki, extra))
    daemons.append(daemon)
    good_cert = (pki.client_cert, pki.client_key)
    daemon.wait_ready(pki, good_cert)
    for cert in (None, (pki.stranger_cert, pki.stranger_key)):
        with daemon.client(pki, cert, ("prometheus", PASSWORD)) as refused, pytest.raises(httpx.HTTPError):
            refused.get("/metrics")
    with daemon.client(pki, good_cert) as no_password:
        assert no_password.get("/metrics").status_code == 401  # a certificate does not replace the password
    with daemon.client(pki, good_cert, ("prometheus", PASSWORD)) as good:
        assert good.get("/metrics").status_code == 200


def test_prometheus_scrapes_through_mutual_tls_and_basic_auth(tmp_path: Path, pki: Pki,
                                                              daemons: list[SecureDaemon]) -> None:
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
    daemon = SecureDaemon(tmp_path, tls_web_config(pki, extra))
    daemons.append(daemon)
    daemon.wait_ready(pki, (pki.client_cert, pki.client_key))
    scrape = f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: perf
    scheme: https
    basic_auth: {{username: prometheus, password: {PASSWORD}}}
    tls_config: {{ca_file: {pki.ca}, cert_file: {pki.client_cert}, key_file: {pki.client_key}}}
    static_configs: [{{targets: ["127.0.0.1:{daemon.process.port}"]}}]
  - job_name: perf-without-password
    scheme: https
    tls_config: {{ca_file: {pki.ca}, cert_file: {pki.client_cert}, key_file: {pki.client_key}}}
    static_configs: [{{targets: ["127.0.0.1:{daemon.process.port}"]}}]
"""
    prometheus = Prometheus(tmp_path / "prometheus", scrape).start()
    try:
        def up(job: str) -> float | None:
            query = urllib.parse.quote(f'up{{job="{job}"}}')
            with httpx.Client(timeout=5) as c:
                result = json.loads(c.get(f"{prometheus.url}/api/v1/query?query={query}").text)["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        wait_for(lambda: up("perf") == 1, timeout=30, what="Prometheus scraping perf-exporter over mTLS")
        wait_for(lambda: up("perf-without-password") == 0, timeout=30, what="the scrape without password down")

        def has_build_info() -> bool:
            query = urllib.parse.quote('perf_exporter_build_info{job="perf"}')
            with httpx.Client(timeout=5) as c:
                return bool(json.loads(c.get(f"{prometheus.url}/api/v1/query?query={query}").text)["data"]["result"])
        wait_for(has_build_info, timeout=30, what="perf_exporter_build_info scraped")
    finally:
        prometheus.stop()


def test_reload_can_be_turned_off(tmp_path: Path, pki: Pki, daemons: list[SecureDaemon]) -> None:
    daemon = SecureDaemon(tmp_path, tls_web_config(pki), "--no-web.enable-reload")
    daemons.append(daemon)
    daemon.wait_ready(pki)
    with daemon.client(pki, auth=("prometheus", PASSWORD)) as good:
        response = good.post("/-/reload")
        assert response.status_code == 403 and "turned off" in response.text


# ---------------------------------------------------------------------------------------------------------------
# Bad web configs: one line naming the file and the key


def bad_cases(pki: Pki, tmp_path: Path) -> list[tuple[str, str]]:
    not_a_cert = tmp_path / "not-a-cert.pem"
    not_a_cert.write_text("hello\n")
    tls = f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
    return [
        ("basic_auth_users: {prometheus: plain-password}\n", "basic_auth_users.prometheus: expected a bcrypt hash"),
        ("tls_server_config: {cert_file: a.crt}\n", "tls_server_config.key_file: required key is missing"),
        (tls + "  min_versoin: TLS12\n", "tls_server_config.min_versoin: unknown key"),
        (tls + "  min_version: TLS14\n",
         "tls_server_config.min_version: Input should be 'TLS10', 'TLS11', 'TLS12' or 'TLS13', got 'TLS14'"),
        (f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.client_key}\n",
         "tls_server_config.key_file: cannot load the certificate and key"),
        (tls + "  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
        (tls + "  client_auth_type: RequireAnyClientCert\n", "is not supported"),
        (tls + "  min_version: TLS13\n  max_version: TLS12\n", "max_version TLS12 is below min_version TLS13"),
        (f"tls_server_config:\n  cert_file: {tmp_path}/missing.crt\n  key_file: {pki.server_key}\n",
         "tls_server_config.cert_file: cannot load the certificate and key"),
        (f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {not_a_cert}\n",
         "tls_server_config.key_file: cannot load the certificate and key"),
        (tls + f"  client_ca_file: {not_a_cert}\n", "tls_server_config.client_ca_file: cannot load"),
        ("tls_server_config: [\n", "invalid YAML"),
        ("- just\n- a list\n", "(top level): expected a mapping"),
        ("basic_auth_users: {prometheus: 7}\n", "basic_auth_users.prometheus: expected a valid string, got int"),
    ]


def test_each_bad_web_config_gets_one_line_naming_file_and_key(tmp_path: Path, pki: Pki) -> None:
    for i, (text, expected) in enumerate(bad_cases(pki, tmp_path)):
        path = tmp_path / f"bad-{i}.yml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_web_config(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and expected in message, (text, message)
        assert "plain-password" not in message
    with pytest.raises(ConfigError, match="cannot read the web config"):
        load_web_config(tmp_path / "absent.yml")


def test_the_daemon_does_not_start_on_a_bad_web_config(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users: {prometheus: hunter2}\n")
    out = subprocess.run([sys.executable, "-m", "exporter", "run", "--web.listen-address", "127.0.0.1:0",
                          "--web.config.file",
                          str(web)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"{web}: basic_auth_users.prometheus: expected a bcrypt hash" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout


# ---------------------------------------------------------------------------------------------------------------
# As exporter-toolkit users expect: long passwords, a bounded bcrypt, SIGHUP, health checks, run --demo


def test_a_password_longer_than_bcrypt_reads_is_a_401_not_a_500(tmp_path: Path, pki: Pki,
                                                                 daemons: list[SecureDaemon]) -> None:
    daemon = SecureDaemon(tmp_path, tls_web_config(pki))
    daemons.append(daemon)
    daemon.wait_ready(pki)
    for password in ("x" * 73, "é" * 200, PASSWORD + "x" * 80):
        with daemon.client(pki, auth=("prometheus", password)) as client:
            assert client.get("/metrics").status_code == 401


def test_sighup_reads_the_web_config_again_and_a_bad_one_keeps_the_running_one(
        tmp_path: Path, pki: Pki, daemons: list[SecureDaemon]) -> None:
    import signal

    daemon = SecureDaemon(tmp_path, tls_web_config(pki))
    daemons.append(daemon)
    daemon.wait_ready(pki)
    web = tmp_path / "web.yml"
    web.write_text(tls_web_config(pki, users=f"  grafana: {bcrypt_hash('new-pw-93')}\n"))
    daemon.process.proc.send_signal(signal.SIGHUP)

    def status(user: str, password: str) -> int:
        with daemon.client(pki, auth=(user, password)) as client:
            return client.get("/metrics").status_code

    wait_for(lambda: status("grafana", "new-pw-93") == 200, timeout=20, what="the new user let in")
    assert status("prometheus", PASSWORD) == 401  # the old user is gone
    web.write_text("basic_auth_users: {grafana: not-a-hash}\n")
    daemon.process.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config_reload_failed" in daemon.process.log(), timeout=20, what="the bad reload said")
    assert status("grafana", "new-pw-93") == 200  # the running web config stays
    assert "not-a-hash" not in daemon.process.log()


def test_bad_logins_wait_on_bcrypts_own_pool_and_beyond_its_queue_are_refused_unhashed() -> None:
    import asyncio
    import base64

    from exporter import web_config

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("no bad login reaches the app")

    auth = web_config.BasicAuth(app, {"prometheus": bcrypt_hash(PASSWORD)})
    hashed: list[str] = []
    real = web_config._checkpw

    def counted(password: bytes, hashed_pw: bytes) -> bool:
        import threading

        hashed.append(threading.current_thread().name)
        return real(password, hashed_pw)

    web_config._checkpw = counted  # type: ignore[assignment]
    try:
        header = b"Basic " + base64.b64encode(b"prometheus:wrong")

        async def flood() -> list[bool]:
            return list(await asyncio.gather(*(auth._authorized(header) for _ in range(40))))

        results = asyncio.run(flood())
    finally:
        web_config._checkpw = real  # type: ignore[assignment]
    assert results == [False] * 40
    assert len(hashed) == web_config.BCRYPT_QUEUE  # the rest refused at once, never hashed
    assert all(name.startswith("bcrypt") for name in hashed)  # never the loop's default executor (the probes' DNS)


def test_the_healthcheck_finds_tls_and_logs_in_when_told_how(tmp_path: Path, pki: Pki,
                                                             daemons: list[SecureDaemon]) -> None:
    import os

    daemon = SecureDaemon(tmp_path, tls_web_config(pki))
    daemons.append(daemon)
    daemon.wait_ready(pki)
    listen = f"127.0.0.1:{daemon.process.port}"

    def healthcheck(*args: str, auth: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "PERF_EXPORTER_HEALTHCHECK_AUTH"}
        if auth is not None:
            env["PERF_EXPORTER_HEALTHCHECK_AUTH"] = auth
        return subprocess.run([sys.executable, "-m", "exporter", "healthcheck", "--web.listen-address", listen,
                               *args], capture_output=True, text=True, timeout=60, env=env)

    alive = healthcheck()  # over TLS, without credentials: it answers (401), so it is alive
    assert alive.returncode == 0 and "401" in alive.stderr, alive.stderr
    assert healthcheck("--path", "/-/ready").returncode == 1  # readiness needs to log in
    ready = healthcheck("--path", "/-/ready", auth=f"prometheus:{PASSWORD}")
    assert ready.returncode == 0 and "/-/ready: 200" in ready.stderr, ready.stderr
    assert healthcheck("--path", "/-/ready", auth="prometheus:wrong").returncode == 1
    daemon.stop()
    assert healthcheck().returncode == 1  # nothing answers


def test_run_demo_takes_the_web_config_and_no_reload(tmp_path: Path, pki: Pki) -> None:
    web = tmp_path / "web.yml"
    web.write_text(tls_web_config(pki))
    demo_port = free_port()
    env = {"DEMO_LISTEN": f"127.0.0.1:{demo_port}", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DEMO_DATABASE_URL": "", "DEMO_REDIS_URL": "",
           "TEST_BASE_URL": "http://192.0.2.1:1"}
    daemon = DaemonProcess(None, tmp_path / "daemon.log", ("--demo", "--web.config.file", str(web),
                                                           "--no-web.enable-reload"), env=env)
    secure = SecureDaemon.__new__(SecureDaemon)
    secure.process, secure.url = daemon, f"https://127.0.0.1:{daemon.port}"
    try:
        secure.wait_ready(pki)
        with secure.client(pki) as anonymous:
            assert anonymous.get("/metrics").status_code == 401
        with secure.client(pki, auth=("prometheus", PASSWORD)) as good:
            assert good.get("/metrics").status_code == 200
            assert good.post("/-/reload").status_code == 403
    finally:
        daemon.stop()
