"""One bench per system under test at a time: a second bench against a target another bench is loading is
refused (exit 3, naming who holds it) unless ``--force``; a killed bench leaves no stale lock. Real processes,
real ``flock``, the real demo and k6."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.load.sut_lock import LOCK_DIR_ENV, TargetBusy, lock_path, target_key, target_lock
from tests.servers import Demo, wait_for
from tests.test_load_bench import TARGETS

HOLD = ("import sys; from pathlib import Path; from exporter.load.sut_lock import target_lock\n"
        "with target_lock(sys.argv[1], 'steady', directory=Path(sys.argv[2])):\n"
        "    print('held', flush=True); sys.stdin.read()\n")


def held_by_another_process(url: str, directory: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url, str(directory)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def bench(*args: str, lock_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", "bench", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, LOCK_DIR_ENV: str(lock_dir), "THINK_TIME": "0.05"},
                          check=False)


def test_one_target_is_one_key_whatever_its_spelling() -> None:
    assert target_key("http://Gateway.example:80/api/") == target_key("http://gateway.example") == \
        "http://gateway.example:80"
    assert target_key("https://user:pw@gateway.example/") == "https://gateway.example:443"
    assert target_key("http://gateway.example:8020") != target_key("http://gateway.example:8021")


def test_a_second_bench_against_a_target_under_load_is_refused_naming_the_first(demo: Demo, tmp_path: Path) -> None:
    config = tmp_path / "targets.yaml"
    config.write_text(TARGETS)
    first = subprocess.Popen([sys.executable, "-m", "exporter", "bench", "api", "--base-url", demo.url, "--config.file",
                              str(config), "--vus", "1", "--duration", "6s", "--warmup", "0s", "--out",
                              str(tmp_path / "first"), "--no-history"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, LOCK_DIR_ENV: str(tmp_path), "THINK_TIME": "0.05"})
    try:
        path = lock_path(demo.url, tmp_path)
        wait_for(lambda: path.exists() and locked(path), timeout=30, what="the first bench's lock")
        second = bench("db-profiling", "--base-url", demo.url + "/", "--config.file",
                       str(config), "--vus", "1", "--duration", "1s", "--out", str(tmp_path / "second"),
                       lock_dir=tmp_path)
        assert second.returncode == 3, second.stderr
        assert f"is already under load by bench api (pid {first.pid}" in second.stderr
        assert "--force" in second.stderr
        assert "Traceback" not in second.stderr
        assert not (tmp_path / "second" / "db-profiling.json").exists()  # refused before k6 started

        forced = bench("db-profiling", "--base-url", demo.url, "--config.file", str(config), "--vus", "1", "--duration",
                       "1s", "--warmup", "0s", "--out", str(tmp_path / "forced"), "--no-history", "--force",
                       lock_dir=tmp_path)
        assert forced.returncode in (0, 1, 2), forced.stderr
        assert (tmp_path / "forced" / "db-profiling.json").exists()
    finally:
        _, err = first.communicate(timeout=60)
    assert first.returncode in (0, 1, 2), err
    assert not locked(lock_path(demo.url, tmp_path))  # released when the first bench ended


def test_a_killed_bench_leaves_no_stale_lock(tmp_path: Path) -> None:
    url = "http://staging.example:8020"
    holder = held_by_another_process(url, tmp_path)
    with pytest.raises(TargetBusy, match=r"already under load by bench steady \(pid \d+"), \
            target_lock(url, "api", directory=tmp_path):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    with target_lock(url, "api", directory=tmp_path) as path:  # the kernel dropped the dead process's flock
        assert path is not None and locked(path)
    with target_lock(url, "api", directory=tmp_path):  # and ours was released on leaving
        pass


def test_force_neither_waits_for_nor_takes_the_lock(tmp_path: Path) -> None:
    url = "http://staging.example:8020"
    holder = held_by_another_process(url, tmp_path)
    try:
        with target_lock(url, "api", force=True, directory=tmp_path) as path:
            assert path is None
    finally:
        holder.kill()
        holder.wait(10)
