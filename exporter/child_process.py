"""The child processes the commands start (the demo and its embedded servers, k6, bench's own Prometheus): each
dies with the process that started it, however that one dies, and is stopped one way."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


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
