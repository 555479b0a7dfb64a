"""Benchmark: one run spread over 3 k6 instances (``bench --segments 3``) against the same run as one instance,
both judged by perf-exporter; the single run is the peer.

1. Against the demo (in memory), the same scenario and shape as one instance and as 3 segments, alternating for
   ``--rounds`` rounds: total requests (they must agree within 1 %), P95 (the combined run's must lie within the
   spread of the single runs'), requests/s, and the time judging takes (reading the run back from Prometheus and
   summing it; the bench command's whole wall time beside it). A fixed amount of work (``--iterations``), so
   that the totals can be compared at all. And in each round the run as one instance judged from Prometheus
   (``--segments 1``): its P95 from the native histogram against k6's exact P95 of the same requests, which is
   what the histogram's resolution costs.
2. A latency fault (600 ms) on the demo: the combined verdict must fail, naming P95.
3. One segment killed mid-run (SIGKILL): the verdict must be inconclusive, naming it.

Each run sends to one Debian Prometheus started here with the remote-write receiver and native histograms.

    .venv/bin/python bench/bench_segments.py [--scenario mixed] [--iterations 1500] [--vus 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import Process, Prometheus, free_port, http_ok, wait_for

TARGETS = "targets: {api_latency_p95: 500ms, api_latency_p99: 1s, error_rate: 1%}\n"


class ReceivingPrometheus(Prometheus):
    def args(self) -> list[str]:
        return [*super().args(), "--web.enable-remote-write-receiver", "--enable-feature=native-histograms"]


def bench_env(root: Path, think_time: str) -> dict[str, str]:
    return {**os.environ, "THINK_TIME": think_time, "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s",
            "PERF_EXPORTER_LOCK_DIR": str(root / "locks")}


def run_file(out: Path, scenario: str) -> dict[str, Any]:
    """The run's ``<scenario>.json``, or nothing when the bench wrote none."""
    path = out / f"{scenario}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def bench(root: Path, name: str, args: list[str], extra: list[str]) -> tuple[int, dict[str, Any], float, str]:
    """One bench run: its exit code, its run file, its wall time and its stderr."""
    out = root / name
    env = bench_env(root, "0")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "exporter", "bench", *args, "--out", str(out), "--no-history",
                           *extra], capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - started
    return done.returncode, run_file(out, args[0]), wall, done.stderr


def faults(url: str, body: dict[str, Any] | None) -> None:
    request = urllib.request.Request(f"{url}/admin/faults", method="POST" if body else "DELETE",
                                     data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(request, timeout=10):
        pass


def killed_segment(root: Path, base: list[str], prometheus: str) -> tuple[int, dict[str, Any], str]:
    out = root / "killed"
    env = bench_env(root, "0.05")
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "bench", *base, "--segments", "3", "--prometheus-rw",
                             prometheus, "--out", str(out), "--no-history"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"instance_id=2" in argv and any(str(out).encode() in a for a in argv):
                victim = int(entry.name)
        time.sleep(0.2)
    time.sleep(4)
    if victim is not None:
        os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    return proc.returncode, run_file(out, base[0]), err


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="mixed")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--vus", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        root = Path(tmp)
        prometheus = ReceivingPrometheus(root / "prometheus", "global: {}\n").start()
        url = f"http://127.0.0.1:{free_port()}"
        demo = Process([sys.executable, "-m", "exporter", "demo", "--web.listen-address", url[len("http://"):],
                        "--log.level",
                        "warning"], root / "demo.log").start()
        try:
            wait_for(lambda: http_ok(f"{url}/health"), timeout=60, what="demo")
            (root / "targets.yaml").write_text(TARGETS)
            shape = [args.scenario, "--base-url", url, "--config.file", str(root / "targets.yaml"), "--vus",
                     str(args.vus),
                     "--iterations", str(args.iterations), "--duration", "300s", "--warmup", "0s"]
            print(f"{os.cpu_count()} cores shared by k6, the demo, Prometheus and other work; {args.scenario}, "
                  f"{args.vus} VUs, {args.iterations} iterations, no think time, {args.rounds} alternating rounds")
            singles: list[tuple[dict[str, Any], float]] = []
            combined: list[tuple[dict[str, Any], float]] = []
            resolution: list[tuple[float, float]] = []  # (histogram P95, k6's exact P95) of one run
            for i in range(args.rounds):
                _, one, one_wall, err = bench(root, f"single-{i}", shape, [])
                assert one, err
                _, three, three_wall, err = bench(root, f"segments-{i}", shape,
                                                  ["--segments", "3", "--prometheus-rw", prometheus.url])
                assert three, err
                singles.append((one, one_wall))
                combined.append((three, three_wall))
                _, alone, _, err = bench(root, f"one-segment-{i}", shape,
                                         ["--segments", "1", "--prometheus-rw", prometheus.url])
                assert alone, err
                exact = json.loads((root / f"one-segment-{i}" / f"{args.scenario}.instance-1.k6-summary.json")
                                   .read_text())["metrics"]["http_req_duration{phase:measure}"]["p(95)"]
                resolution.append((alone["measured"]["p95_ms"], float(exact)))
            print(f"{'':<22} {'requests':>9} {'req/s':>7} {'P95 ms':>8} {'P99 ms':>8} {'judging s':>10} "
                  f"{'bench wall s':>13} verdict")
            for label, runs in (("one instance", singles), ("3 segments", combined)):
                for run, wall in runs:
                    m = run["measured"]
                    judging = run.get("distributed", {}).get("judgingSeconds")
                    print(f"{label:<22} {m['requests']:>9} {m['requests_per_second']:>7.0f} {m['p95_ms']:>8.1f} "
                          f"{m['p99_ms']:>8.1f} {judging if judging is not None else '-':>10} {wall:>13.1f} "
                          f"{run['verdict']['status']} {'; '.join(run['verdict']['reasons'])[:60]}")
            single_req = statistics.median(r["measured"]["requests"] for r, _ in singles)
            three_req = statistics.median(r["measured"]["requests"] for r, _ in combined)
            p95s = [r["measured"]["p95_ms"] for r, _ in singles]
            combined_p95s = [r["measured"]["p95_ms"] for r, _ in combined]
            inside = sum(min(p95s) <= p <= max(p95s) for p in combined_p95s)
            print(f"requests: 3 segments / one instance = {three_req / single_req:.4f} "
                  f"({100 * abs(three_req - single_req) / single_req:.2f} % apart; goal < 1 %)")
            print(f"P95: single runs {min(p95s):.1f}-{max(p95s):.1f} ms (median {statistics.median(p95s):.1f}); "
                  f"3 segments median {statistics.median(combined_p95s):.1f} ms, ratio "
                  f"{statistics.median(combined_p95s) / statistics.median(p95s):.3f}; {inside} of {len(combined)} "
                  f"combined P95s inside the single runs' spread")
            rps = statistics.median(r["measured"]["requests_per_second"] for r, _ in singles)
            rps3 = statistics.median(r["measured"]["requests_per_second"] for r, _ in combined)
            print(f"requests/s: 3 segments / one instance = {rps3 / rps:.3f}")
            errors = [100 * (h - e) / e for h, e in resolution]
            print("the same run's P95, native histogram / k6 exact: " + ", ".join(
                f"{h:.1f}/{e:.1f} ms ({d:+.1f} %)" for (h, e), d in zip(resolution, errors, strict=True)))
            judging = [r["distributed"]["judgingSeconds"] for r, _ in combined]
            print(f"judging (read back from Prometheus and summed): median {statistics.median(judging):.3f} s, "
                  f"max {max(judging):.3f} s")

            faults(url, {"latency_ms": 600})
            try:
                code, slow, _, err = bench(root, "fault", [args.scenario, "--base-url", url, "--config.file",
                                                           str(root / "targets.yaml"), "--vus", "3", "--duration",
                                                           "5s", "--warmup", "1s"],
                                           ["--segments", "3", "--prometheus-rw", prometheus.url])
            finally:
                faults(url, None)
            missed = [f["text"] for f in slow["verdict"]["findings"] if not f["met"] and f["observed"] is not None]
            print(f"latency fault 600 ms, 3 segments: exit {code}, {slow['verdict']['status']}: "
                  f"{'; '.join(m for m in missed if 'p95' in m)}; reasons: {slow['verdict']['reasons'] or '-'}")

            code, killed, err = killed_segment(root, [args.scenario, "--base-url", url, "--config.file",
                                                      str(root / "targets.yaml"), "--vus", "3", "--duration", "8s",
                                                      "--warmup", "1s"], prometheus.url)
            named = [r for r in killed.get("verdict", {}).get("reasons", []) if r.startswith("instance ")]
            print(f"segment 2 killed mid-run: exit {code}, {killed.get('verdict', {}).get('status')}: "
                  f"{'; '.join(named) or err.strip().splitlines()[-1:]}")
        finally:
            demo.stop()
            prometheus.stop()


if __name__ == "__main__":
    main()
