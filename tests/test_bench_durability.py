"""No run is lost: a bench stores each repeat as it finishes, stops k6 when it is interrupted or killed, and a
history that cannot be used stops it before any load, with its own exit code. Real processes and signals, the
real k6 against the demo (in memory), real SQLite files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.exit_codes import ExitCode
from exporter.history import migrations
from exporter.history.sql import History, HistoryUnusable
from exporter.load.history_entry import history_runs
from tests.bench_runs import bench_run
from tests.processes import command_lines
from tests.servers import Demo, wait_for


def start_bench(url: str, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "exporter", "bench", "api", "--base-url", url, "--vus", "2",
                             "--warmup", "0s", "--out", str(out), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "THINK_TIME": "0.05"})


def k6_of(out: Path) -> list[int]:
    """The k6 processes writing into ``out``."""
    return [pid for pid, argv in command_lines()
            if argv[0].endswith(b"k6") and any(str(out).encode() in a for a in argv)]


def stored(path: Path) -> list[tuple[int, str, int]]:
    """(run id, state, repeats) of each run in a history file, read as another process would."""
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return [(int(r[0]), str(r[1]), int(r[2])) for r in conn.execute(
                "SELECT runs.id, runs.state, count(repeats.id) FROM runs LEFT JOIN repeats ON repeats.run_id = "
                "runs.id GROUP BY runs.id")]
        except sqlite3.OperationalError:  # not migrated yet
            return []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_bench_keeps_its_finished_repeats_marks_the_run_and_stops_k6(
        demo: Demo, tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    history = out / "history.sqlite"
    proc = start_bench(demo.url, out, "--duration", "2s", "--repeat", "5")
    try:
        wait_for(lambda: any(n >= 1 for _, _, n in stored(history)), timeout=60, what="a first repeat stored")
        wait_for(lambda: bool(k6_of(out)), timeout=30, what="the next repeat's k6 running")
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    ((_, state, repeats),) = stored(history)
    assert state == "interrupted" and 1 <= repeats < 5, stderr
    assert f"{repeats} repeat" in stderr and "interrupted" in stderr
    wait_for(lambda: not k6_of(out), timeout=10, what="k6 stopped with bench")
    assert len(list(out.glob("api.*.k6.log"))) == repeats + 1  # each repeat's k6 log has a name of its own


def test_a_killed_bench_takes_its_k6_with_it(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_bench(demo.url, out, "--duration", "30s")
    try:
        wait_for(lambda: bool(k6_of(out)), timeout=30, what="k6 running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not k6_of(out), timeout=10, what="k6 gone with its bench")
    finally:
        proc.kill()


def test_a_history_that_cannot_be_used_stops_bench_before_any_load_with_its_own_code(demo: Demo,
                                                                                      tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"\x00garbage" * 64)
    for location, said in ((blocker / "history.sqlite", "cannot create its folder"),
                           (corrupt, "not a perf-exporter history")):
        out = tmp_path / f"out-{location.name}"
        done = subprocess.run([sys.executable, "-m", "exporter", "bench", "api", "--base-url", demo.url, "--vus",
                               "1", "--duration", "1s", "--out", str(out), "--history", str(location)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == ExitCode.NO_HISTORY, done.stderr
        lines = [line for line in done.stderr.splitlines() if said in line]
        assert len(lines) == 1 and "nothing was run" in lines[0] and "Traceback" not in done.stderr
        assert not (out / "api.json").exists()
    assert corrupt.read_bytes() == b"\x00garbage" * 64


WRITER = """
import sys
from exporter.history.sql import History
from exporter.load.history_entry import history_runs
from tests.bench_runs import bench_run
with History(sys.argv[1]) as history:
    for run in history_runs([(bench_run(), None)], 0, None, "k6", {}):
        history.add_run(run)
"""


def test_writers_creating_one_history_at_once_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parent.parent) for _ in range(6)]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0] * 6, errors
    assert len(stored(path)) == 6
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_migration_that_fails_half_way_leaves_nothing_and_the_next_open_migrates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.sqlite"
    broken = [*migrations.MIGRATIONS, (migrations.LATEST + 1, ["CREATE TABLE later (x INTEGER)", "NOT SQL AT ALL"])]
    monkeypatch.setattr("exporter.history.connection.MIGRATIONS", broken)
    monkeypatch.setattr("exporter.history.connection.LATEST", migrations.LATEST + 1)
    with pytest.raises(HistoryUnusable, match="nothing was changed"):
        History(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
    monkeypatch.undo()
    with History(path) as history:
        (run,) = history_runs([(bench_run(), None)], 0, None, "k6", {})
        history.add_run(run)
        assert history.schema_version() == migrations.LATEST
    assert stored(path) == [(run.id, "complete", 1)]
