"""One load run per system under test at a time: ``bench`` holds an exclusive ``flock`` on a file named after the
target's base URL while it runs, and a second ``bench`` against the same target is refused (unless ``--force``).
Two load tests at once make both results worthless: each measures the other's load too.

The kernel drops a ``flock`` when its process ends, however it ends, so a crashed or killed run never leaves a
stale lock; the file itself stays and only says who held it last. The files live in one directory shared by the
machine's users (``PERF_EXPORTER_LOCK_DIR``, default ``<tmp>/perf-exporter-locks``), so the lock covers every
bench started on this machine, not benches on other machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from exporter.secrets import safe_url

LOCK_DIR_ENV = "PERF_EXPORTER_LOCK_DIR"
DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetBusy(RuntimeError):
    """Another bench holds the target's lock; ``str()`` says who and how to go ahead anyway."""


@dataclass(frozen=True)
class Holder:
    pid: int
    scenario: str
    since: str
    target: str


def target_key(base_url: str) -> str:
    """The target as the lock knows it: scheme, host and port (the default one filled in), lower case; no user,
    path or query. ``http://Gateway:80/api/`` and ``http://gateway`` are one target."""
    parts = urlsplit(base_url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:  # a port that is not a number: the text itself is the key
        return base_url.strip().lower()
    return f"{scheme}://{host}:{port}"


def lock_dir(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    return Path(environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "perf-exporter-locks")


def lock_path(base_url: str, directory: Path) -> Path:
    digest = hashlib.sha256(target_key(base_url).encode()).hexdigest()[:16]
    return directory / f"target-{digest}.lock"


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # another user's bench may own it: flock needs no write access
        if path.parent.stat().st_uid == os.geteuid():
            path.parent.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    return fd


def _holder(fd: int) -> Holder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096) or b"null")
        return Holder(int(data["pid"]), str(data["scenario"]), str(data["since"]), str(data["target"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def busy_message(base_url: str, holder: Holder | None) -> str:
    who = (f"bench {holder.scenario} (pid {holder.pid}, since {holder.since})" if holder is not None
           else "another bench")
    return (f"{safe_url(base_url)} is already under load by {who}: two load tests at once make both results "
            f"worthless; wait for it to finish, or pass --force to run anyway")


@contextlib.contextmanager
def target_lock(base_url: str, scenario: str, force: bool = False,
                directory: Path | None = None) -> Iterator[Path | None]:
    """Hold the target's lock for the ``with`` block; :class:`TargetBusy` when another bench holds it. With
    ``force`` nothing is locked or checked (yields None)."""
    if force:
        yield None
        return
    path = lock_path(base_url, directory or lock_dir())
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TargetBusy(busy_message(base_url, _holder(fd))) from None
        with contextlib.suppress(OSError):  # who holds it, for the message a second bench prints
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            since = datetime.now(UTC).isoformat(timespec="seconds")
            os.write(fd, json.dumps({"pid": os.getpid(), "scenario": scenario, "since": since,
                                     "target": safe_url(base_url)}).encode())
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
