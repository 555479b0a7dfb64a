"""The real daemon as a child process on a free port, scraped over HTTP like Prometheus would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.servers import free_port, http_ok, wait_for


class DaemonProcess:
    def __init__(self, config: Path | None, log_path: Path, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = log_path
        args = [sys.executable, "-m", "exporter", "run", "--web.listen-address", f"127.0.0.1:{self.port}", *extra_args]
        if config is not None:
            args += ["--config.file", str(config)]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> DaemonProcess:
        wait_for(lambda: self.proc.poll() is not None or http_ok(f"{self.url}/-/ready"), timeout=timeout,
                 what="daemon ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def post(self, path: str, timeout: float = 10) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.url}{path}", method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = self.get("/metrics")
        assert status == 200
        out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, frozenset(labels.items())))

    def wait_value(self, name: str, predicate: object = None, timeout: float = 30, **labels: str) -> float:
        found: list[float] = []

        def check() -> bool:
            value = self.value(name, **labels)
            if value is None or (callable(predicate) and not predicate(value)):
                return False
            found.append(value)
            return True

        wait_for(check, timeout=timeout, what=f"{name}{labels}")
        return found[-1]

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
