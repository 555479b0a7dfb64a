"""The child processes the commands start (the demo and its embedded servers, k6, bench's own Prometheus): each
dies with the process that started it, however that one dies, and is stopped one way."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
OWNER_FILE = "owner.pid"


def _prctl() -> Callable[..., int] | None:
    if sys.platform != "linux":  # elsewhere only a clean stop of the parent stops the child
        return None
    try:
        found: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return found
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # looked up here: the child, between fork and exec, only calls it


def dies_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when the process that started it dies (Linux's PR_SET_PDEATHSIG).
    It runs after ``subprocess`` has switched the user, which would otherwise clear the setting."""
    parent = os.getpid()

    def arrange() -> None:
        if _PRCTL is None:
            return
        with contextlib.suppress(Exception):
            _PRCTL(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody would signal us
            os._exit(1)

    return arrange


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_loopback_address() -> str:
    """``127.0.0.1:PORT`` with a port free now, for a child to listen on."""
    return f"127.0.0.1:{free_loopback_port()}"


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, grace: float = 10.0) -> int | None:
    """Send ``sig``, give the child ``grace`` seconds to exit, then kill it; its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_dirs(parent: Path, prefix: str) -> list[Path]:
    """Remove the directories named ``prefix...`` whose owner died without cleaning up (a SIGKILL): their
    children died with it, their data would only fill the disk."""
    removed = []
    for candidate in parent.glob(f"{prefix}*"):
        try:
            owner = int((candidate / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def owned_temp_dir(prefix: str) -> Path:
    """A new temporary directory for this process's children, marked with its owner's pid, after removing those of
    ``prefix`` that a killed owner left behind."""
    parent = Path(tempfile.gettempdir())
    remove_stale_dirs(parent, prefix)
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    return root
