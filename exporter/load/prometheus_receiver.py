"""The Prometheus a distributed run sends its samples to and is judged from: one ``bench`` starts (Debian's
``prometheus`` with the remote-write receiver and native histograms), or one given by ``--prometheus-rw``.

What it must be: Prometheus 2.40 or later (the first with native histograms, which k6 sends its Trends as), with
``--web.enable-remote-write-receiver``, and before 3.8 also ``--enable-feature=native-histograms`` (from 3.8 on
native histograms are stable and stored without it). Its build info and flags say so
(``/api/v1/status/buildinfo``, ``/api/v1/status/flags``); a receiver that hides them (a proxy, another product)
is used as given, and the run checks afterwards that its histograms arrived.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from exporter import child_process
from exporter.child_process import dies_with_parent, free_loopback_port, owned_temp_dir
from exporter.config.units import parse_duration
from exporter.reports.model import ReportError
from exporter.reports.prometheus import PrometheusClient
from exporter.secrets import mask_url, safe_url

MIN_VERSION = (2, 40, 0)  # native histograms, and their remote write
STABLE_HISTOGRAMS = (3, 8, 0)  # native histograms stored without --enable-feature
WRITE_PATH = "/api/v1/write"
DEFAULT_LOOKBACK = 300.0
BINARY_ENV = "PROMETHEUS_BINARY"
DIR_PREFIX = "perf-exporter-prometheus-"  # its data, removed after the run (or by the next, if bench was killed)
FLAGS = ("--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
DEFAULT_PUSH_INTERVAL = "5s"


class ReceiverError(RuntimeError):
    """A Prometheus a distributed run cannot use; ``str()`` says why and what to change."""


@dataclass(frozen=True)
class Receiver:
    write_url: str  # where k6 sends: .../api/v1/write
    query_url: str  # where bench reads the run back
    version: str  # "2.42.0", or what the receiver said it is
    lookback: float  # seconds an instant query looks back for a series' last sample


def remote_write_env(url: str, stale_markers: bool = True) -> dict[str, str]:
    """k6's remote-write output to ``url`` (a Prometheus, or its write URL): Trends as native histograms (they add
    up; no percentile gauges), pushed every ``K6_PROMETHEUS_RW_PUSH_INTERVAL`` (5s unless set). Without
    ``stale_markers`` a run's series stay readable after it ends (a distributed run is read back then)."""
    env = {"K6_PROMETHEUS_RW_SERVER_URL": write_url_of(url), "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true",
           "K6_PROMETHEUS_RW_PUSH_INTERVAL": os.environ.get("K6_PROMETHEUS_RW_PUSH_INTERVAL") or DEFAULT_PUSH_INTERVAL}
    if not stale_markers:
        env["K6_PROMETHEUS_RW_STALE_MARKERS"] = "false"
    return env


def write_url_of(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(WRITE_PATH) else url + WRITE_PATH


def query_url_of(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len(WRITE_PATH)] if url.endswith(WRITE_PATH) else url


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``2.42.0+ds`` -> (2, 42, 0); None when it is no version."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)) if match else None


def requirements_problem(version: str, flags: dict[str, str] | None) -> str | None:
    """Why a Prometheus of ``version`` started with ``flags`` cannot store the run (None: it can). ``flags`` None:
    not known."""
    found = parse_version(version)
    if found is None:
        return None
    if found < MIN_VERSION:
        return (f"Prometheus {version} cannot store k6's native histograms: it needs Prometheus 2.40 or later, "
                f"started with {' '.join(FLAGS)}")
    if flags is None:
        return None
    if flags.get("web.enable-remote-write-receiver", "").lower() != "true":
        return f"Prometheus {version} does not accept remote write: start it with --web.enable-remote-write-receiver"
    features = {f.strip() for f in flags.get("enable-feature", "").split(",")}
    if found < STABLE_HISTOGRAMS and "native-histograms" not in features:
        return (f"Prometheus {version} drops native histograms unless started with "
                f"--enable-feature=native-histograms (needed before 3.8)")
    return None


def _status(client: PrometheusClient, what: str) -> dict[str, Any] | None:
    try:
        data = client.status(what)
    except ReportError:
        return None
    return data if isinstance(data, dict) else None


def check_receiver(write_url: str, query_url: str) -> Receiver:
    """The receiver, checked: :class:`ReceiverError` when it is unreachable or cannot store the run."""
    client = PrometheusClient(query_url, timeout=10)
    try:
        try:
            client.check()
        except ReportError as exc:
            raise ReceiverError(f"--prometheus-rw: {mask_url(str(exc))}") from None
        build = _status(client, "buildinfo") or {}
        version = str(build.get("version", "unknown"))
        application = str(build.get("application", "prometheus")).lower()
        flags = _status(client, "flags")
        if "prometheus" in application:
            problem = requirements_problem(version, {k: str(v) for k, v in flags.items()} if flags else None)
            if problem:
                raise ReceiverError(f"{safe_url(query_url)}: {problem}")
        lookback = DEFAULT_LOOKBACK
        with contextlib.suppress(ValueError, TypeError):
            lookback = parse_duration(str((flags or {}).get("query.lookback-delta", "5m")))
        return Receiver(write_url, query_url, version, lookback)
    finally:
        client.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def local_prometheus(timeout: float = 30.0) -> Iterator[str]:
    """A Prometheus of this machine's (``PROMETHEUS_BINARY``, else ``prometheus`` on PATH) for one bench: the
    remote-write receiver and native histograms on, no scrape targets, a temporary data directory removed after.
    Yields its URL."""
    binary = os.environ.get(BINARY_ENV) or shutil.which("prometheus")
    if not binary:
        raise ReceiverError("--segments needs a Prometheus to send the samples to: install one "
                            "(apt-get install prometheus) or pass --prometheus-rw URL")
    root = owned_temp_dir(DIR_PREFIX)
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    url = f"http://127.0.0.1:{free_loopback_port()}"
    log = open(root / "prometheus.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}",
                             f"--web.listen-address={url[len('http://'):]}", f"--storage.tsdb.path={root / 'data'}",
                             "--log.level=warn", *FLAGS], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=dies_with_parent())
    try:
        deadline = time.monotonic() + timeout
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "prometheus.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise ReceiverError(f"the Prometheus for --segments ({binary}) did not start: "
                                    f"{tail[0] if tail else 'no output'}")
            time.sleep(0.1)
        yield url
    finally:
        child_process.stop(proc, grace=15)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
