"""Benchmark: 50 endpoints probed every 5 s for 2 minutes, against prometheus-blackbox-exporter.

Prints: scrape latency p50/p99 of /metrics while probing, RSS, CPU seconds per probe request, our measured
duration against the server's own time for the same requests, and blackbox_exporter probing the same endpoint
in the same run, as ratios.

    .venv/bin/python bench/bench_http_probe.py [--duration 120] [--endpoints 50] [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measures import cpu_seconds, peak_rss_mb, percentile, rss_mb
from tests.servers import free_port, http_ok, wait_for

HERE = Path(__file__).resolve().parent


def metric_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--scrape-every", type=float, default=0.25, help="seconds between our scrapes")
    args = parser.parse_args()
    blackbox = shutil.which("prometheus-blackbox-exporter")
    work = Path(tempfile.mkdtemp(prefix="bench-http-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server_port = free_port()
        procs.append(subprocess.Popen([sys.executable, str(HERE / "delay_server.py"), str(server_port)]))
        server = f"http://127.0.0.1:{server_port}"
        wait_for(lambda: http_ok(f"{server}/stats"), what="delay server")

        endpoints = "\n".join(f"      - {{name: e{i:02d}, path: /delay/{args.delay_ms}}}"
                              for i in range(args.endpoints))
        (work / "cfg.yaml").write_text(f"""api:
  - name: bench
    base_url: {server}
    interval: {args.interval}s
    timeout: 2s
    endpoints:
{endpoints}
""")
        port = free_port()
        daemon = subprocess.Popen([sys.executable, "-m", "exporter", "run", "--config.file", str(work / "cfg.yaml"),
                                   "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warning"])
        procs.append(daemon)
        ours = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{ours}/-/ready"), what="daemon")
        cpu_at_start = cpu_seconds(daemon.pid)

        bb_port = free_port()
        if blackbox:
            (work / "blackbox.yml").write_text(
                "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                "    http: {preferred_ip_protocol: ip4}\n")
            procs.append(subprocess.Popen([blackbox, f"--config.file={work / 'blackbox.yml'}",
                                           f"--web.listen-address=127.0.0.1:{bb_port}", "--log.level=warn"]))
            wait_for(lambda: http_ok(f"http://127.0.0.1:{bb_port}/-/healthy"), what="blackbox_exporter")

        scrape_ms: list[float] = []
        bb_total: list[float] = []
        bb_phases: list[float] = []
        bb_phase_ms: dict[str, list[float]] = {}
        deadline = time.monotonic() + args.duration
        next_bb = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = client.get(f"{ours}/metrics")
                scrape_ms.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
                if blackbox and time.monotonic() >= next_bb:
                    next_bb = time.monotonic() + args.interval / 5
                    bb = client.get(f"http://127.0.0.1:{bb_port}/probe",
                                    params={"module": "http_2xx", "target": f"{server}/delay/{args.delay_ms}"})
                    samples = metric_samples(bb.text)
                    bb_total.extend(v for n, _, v in samples if n == "probe_duration_seconds")
                    bb_phases.append(sum(v for n, labels, v in samples if n == "probe_http_duration_seconds"
                                         and labels["phase"] in ("processing", "transfer")))
                    for n, labels, v in samples:
                        if n == "probe_http_duration_seconds":
                            bb_phase_ms.setdefault(labels["phase"], []).append(v * 1000)
                time.sleep(args.scrape_every)
            text = client.get(f"{ours}/metrics").text
            server_mean = client.get(f"{server}/stats").json()["mean_seconds"]
        rss, peak, cpu = rss_mb(daemon.pid), peak_rss_mb(daemon.pid), cpu_seconds(daemon.pid)
        samples = metric_samples(text)
        count = sum(v for n, labels, v in samples if n == "perf_http_request_duration_seconds_count")
        total = sum(v for n, labels, v in samples if n == "perf_http_request_duration_seconds_sum")
        outcomes: dict[str, float] = {}
        for n, labels, v in samples:
            if n == "perf_http_requests_total" and labels["outcome"] != "success" and v:
                outcomes[labels["outcome"]] = outcomes.get(labels["outcome"], 0) + v
        failures = sum(outcomes.values())
        ours_mean = total / count
        series = len(samples)

        print(f"perf-exporter: {args.endpoints} endpoints every {args.interval:g}s for {args.duration:g}s, "
              f"server delay {args.delay_ms} ms")
        print(f"  probe requests            {count:.0f} ({failures:.0f} not successful: {outcomes or 'none'})")
        print(f"  scrape latency            p50 {percentile(scrape_ms, 0.5):.2f} ms, "
              f"p99 {percentile(scrape_ms, 0.99):.2f} ms over {len(scrape_ms)} scrapes ({series} samples each)")
        print(f"  RSS                       {rss:.1f} MB (peak {peak:.1f} MB)")
        cpu -= cpu_at_start
        print(f"  CPU per probe request     {cpu / count * 1000:.3f} ms ({cpu:.2f} s after start-up, scrapes included)")
        print(f"  server's own time         {server_mean * 1000:.3f} ms (mean, measured inside the server)")
        overhead = (ours_mean - server_mean) * 1000
        print(f"  our measured duration     {ours_mean * 1000:.3f} ms (mean; {overhead:+.3f} ms against the "
              f"server's own time)")
        ours_phases: dict[str, list[float]] = {}
        for n, labels, v in samples:
            if n == "perf_http_phase_duration_seconds":
                ours_phases.setdefault(labels["phase"], []).append(v * 1000)
        print("  our phases, last request  " + ", ".join(f"{phase} {statistics.fmean(v):.3f}"
                                                         for phase, v in ours_phases.items()) + " (ms, mean)")
        if blackbox and bb_phases:
            bb_mean = statistics.fmean(bb_phases)
            print(f"blackbox_exporter: {len(bb_phases)} probes of the same endpoint in the same run")
            print(f"  processing + transfer     {bb_mean * 1000:.3f} ms (mean; the phases our duration measures)")
            print(f"  probe_duration_seconds    {statistics.fmean(bb_total) * 1000:.3f} ms (mean, whole probe)")
            print("  blackbox phases           " + ", ".join(f"{phase} {statistics.fmean(v):.3f}"
                                                         for phase, v in bb_phase_ms.items()) + " (ms, mean)")
            print(f"  ours - blackbox           {(ours_mean - bb_mean) * 1000:+.3f} ms "
                  f"(ratio ours/blackbox {ours_mean / bb_mean:.4f})")
        else:
            print("blackbox_exporter: not installed (Debian package prometheus-blackbox-exporter); no ratio")
        print("goals: |ours - blackbox| < 1 ms, scrape p99 < 10 ms, RSS < 80 MB")
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
