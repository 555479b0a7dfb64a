"""Benchmark: a whole platform on one replica, and on three shards, against blackbox_exporter in the same run.

For each size (1,000, 2,000 and 5,000 endpoints: api targets of 50 endpoints each, every endpoint a path of one
local nginx, each probed every 15 s), perf-exporter runs as its users run it (default flags: probe workers
chosen by the load) while prometheus-blackbox-exporter probes the same URLs, driven by a real Prometheus that
scrapes /probe for each of them every 15 s. After a warm-up, over a measured window, it prints:

- probes run / due: probe requests made against endpoints x window / interval; and how many of them started
  within 1 s of their plan (``perf_exporter_schedule_lag_seconds``);
- our mean duration (``perf_http_request_duration_seconds`` sum / count over the window) against blackbox's mean
  ``processing + transfer`` (the same phases), and the share of our timings discarded as untrustworthy;
- CPU per probe: the CPU time of all our processes (serving process and probe workers) over the window, per
  probe request, against blackbox_exporter's CPU per probe, and their ratio;
- /metrics p50, p99 and max over the benchmark's own scrapes (one every 5 s; Prometheus does not scrape us), and
  the samples one scrape holds;
- RSS of all our processes at the end of the window (and the sum of their peaks), and at start-up, when the
  daemon said it was ready, with how long that took.

Then the same at 5,000 endpoints split over three replicas (``--shard 0..2 --total-shards 3``), summed.

    .venv/bin/python bench/bench_scale.py [--sizes 1000,2000,5000] [--window 120] [--warmup 30] [--no-sharded]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measures import cpu_seconds, peak_rss_mb, percentile, rss_mb
from bench.nginx import nginx
from tests.servers import Process, Prometheus, free_port, http_ok, wait_for

INTERVAL = 15.0
PER_TARGET = 50
ON_TIME = 1.0  # seconds of schedule lag within which a probe counts as on time (a bound of the lag buckets)
SCRAPE_EVERY = 5.0


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def config_text(url: str, endpoints: int) -> str:
    lines = ["api:"]
    for t in range(endpoints // PER_TARGET):
        lines += [f"  - name: t{t:03d}", f"    base_url: {url}", f"    interval: {INTERVAL:g}s", "    timeout: 5s",
                  "    endpoints:"]
        lines += [f"      - {{name: e{e:02d}, path: /t{t:03d}/e{e:02d}}}" for e in range(PER_TARGET)]
    return "\n".join(lines) + "\n"


def urls(url: str, endpoints: int) -> list[str]:
    return [f"{url}/t{t:03d}/e{e:02d}" for t in range(endpoints // PER_TARGET) for e in range(PER_TARGET)]


LINE = re.compile(r'^([a-z_:]+)(?:\{(.*)\})? (\S+)$')


@dataclass
class Reading:
    """What one scrape of our /metrics says, summed over endpoints and processes."""

    requests: float = 0.0
    duration_sum: float = 0.0
    duration_count: float = 0.0
    discarded: float = 0.0
    lag_on_time: float = 0.0
    lag_all: float = 0.0
    skipped: float = 0.0
    samples: int = 0

    def add(self, text: str) -> None:
        for line in text.splitlines():
            if not line or line[0] == "#":
                continue
            self.samples += 1
            if not line.startswith(("perf_http_", "perf_exporter_schedule_lag", "perf_job_runs_total")):
                continue
            match = LINE.match(line)
            if match is None:
                continue
            name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
            if name == "perf_http_requests_total":
                self.requests += value
            elif name == "perf_http_request_duration_seconds_sum":
                self.duration_sum += value
            elif name == "perf_http_request_duration_seconds_count":
                self.duration_count += value
            elif name == "perf_http_timings_discarded_total":
                self.discarded += value
            elif name == "perf_exporter_schedule_lag_seconds_bucket":
                if f'le="{ON_TIME!r}"' in labels:
                    self.lag_on_time += value
                elif 'le="+Inf"' in labels:
                    self.lag_all += value
            elif name == "perf_job_runs_total" and 'result="skipped"' in labels:
                self.skipped += value

    def minus(self, before: Reading) -> Reading:
        """The counters' growth since ``before``; the samples this scrape held."""
        return Reading(**{f.name: getattr(self, f.name) - getattr(before, f.name) for f in fields(self)
                          if f.name != "samples"}, samples=self.samples)


@dataclass
class Ours:
    """One perf-exporter replica: its serving process and its probe workers."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    scrape_ms: list[float] = field(default_factory=list)

    def pids(self) -> list[int]:
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            kids = []
        return [self.proc.pid, *(int(k) for k in kids)]

    def started(self) -> dict[str, str]:
        for line in self.log.read_text(errors="replace").splitlines():
            if "event=started" in line:
                return dict(re.findall(r"(\w+)=(\S+)", line))
        return {}

    def scrape(self, client: httpx.Client, timed: bool = True) -> str:
        started = time.perf_counter()
        response = client.get(f"http://127.0.0.1:{self.port}/metrics")
        if timed:
            self.scrape_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        return response.text


def our_pids(daemons: list[Ours]) -> list[int]:
    return [p for d in daemons for p in d.pids()]


@dataclass(frozen=True)
class Snapshot:
    """Our counters, our processes' CPU seconds and blackbox_exporter's, at one moment (unix seconds)."""

    reading: Reading
    cpu: float
    bb_cpu: float
    at: float


def snapshot(daemons: list[Ours], client: httpx.Client, bb_pid: int) -> Snapshot:
    reading = Reading()
    for d in daemons:
        reading.add(d.scrape(client, timed=False))
    return Snapshot(reading, sum(cpu_seconds(p) for p in our_pids(daemons)), cpu_seconds(bb_pid), time.time())


def start_ours(config: Path, root: Path, name: str, extra: tuple[str, ...] = ()) -> Ours:
    port = free_port()
    log = root / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exporter", "run", "--config.file", str(config),
                                 "--web.listen-address",
                                 f"127.0.0.1:{port}", *extra], stdout=out,
                                stderr=subprocess.STDOUT)
    ours = Ours(proc, port, log)
    wait_for(lambda: proc.poll() is not None or http_ok(f"http://127.0.0.1:{port}/-/ready"), timeout=60,
             what=f"{name} ready")
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited:\n{log.read_text()}")
    return ours


def prometheus_config(targets: list[str], blackbox_port: int) -> str:
    listed = ",".join(f"'{t}'" for t in targets)
    return f"""global: {{scrape_interval: {INTERVAL:g}s, scrape_timeout: 10s}}
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {{module: [http_2xx]}}
    static_configs: [{{targets: [{listed}]}}]
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: '127.0.0.1:{blackbox_port}'}}
"""


def prom_value(prometheus: Prometheus, expr: str, at: float) -> float:
    answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr, "time": at}, timeout=60).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


@dataclass
class Row:
    label: str
    endpoints: int
    due: float
    run: float
    on_time: float
    ours_mean_ms: float
    bb_mean_ms: float
    discarded: float
    ours_cpu_ms: float
    bb_cpu_ms: float
    scrape_ms: list[float]
    samples: int
    rss: float
    peak: float
    ready_s: float
    ready_rss: float
    skipped: float
    load: str


def run_case(label: str, endpoints: int, shards: int, args: argparse.Namespace, url: str, root: Path,
             blackbox: str) -> Row:
    case = root / label.replace(" ", "-")
    case.mkdir()
    config = case / "config.yaml"
    config.write_text(config_text(url, endpoints))
    load_at_start = load_average()
    started: list[Process | Prometheus] = []
    daemons: list[Ours] = []
    try:
        bb_port = free_port()
        (case / "blackbox.yml").write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                                           "    http: {preferred_ip_protocol: ip4}\n")
        bb = Process([blackbox, f"--config.file={case / 'blackbox.yml'}",
                      f"--web.listen-address=127.0.0.1:{bb_port}", "--log.level=warn"], case / "blackbox.log").start()
        started.append(bb)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{bb_port}/-/healthy"), what="blackbox_exporter")
        assert bb.proc is not None
        for shard in range(shards):
            flags = ("--shard", str(shard), "--total-shards", str(shards)) if shards > 1 else ()
            daemons.append(start_ours(config, case, f"perf-exporter-{shard}", flags))
        prometheus = Prometheus(case / "prometheus", prometheus_config(urls(url, endpoints), bb_port)).start()
        started.append(prometheus)
        ready = [d.started() for d in daemons]
        time.sleep(args.warmup)
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            before = snapshot(daemons, client, bb.proc.pid)
            end = time.monotonic() + args.window
            while time.monotonic() < end:
                tick = time.monotonic()
                for d in daemons:
                    d.scrape(client)
                time.sleep(max(0.0, SCRAPE_EVERY - (time.monotonic() - tick)))
            after = snapshot(daemons, client, bb.proc.pid)
        rss = sum(rss_mb(p) for p in our_pids(daemons))
        peak = sum(peak_rss_mb(p) for p in our_pids(daemons))
        window = f"{round(after.at - before.at)}s"
        bb_probes = prom_value(prometheus, f'sum(count_over_time(probe_success[{window}]))', after.at)
        bb_phases = prom_value(prometheus, 'sum(sum_over_time(probe_http_duration_seconds{phase=~"processing|'
                                           f'transfer"}}[{window}]))', after.at)
    finally:
        for d in daemons:
            d.proc.terminate()
        for d in daemons:
            try:
                d.proc.wait(30)
            except subprocess.TimeoutExpired:
                d.proc.kill()
        for thing in reversed(started):
            thing.stop()
    delta = after.reading.minus(before.reading)
    due = endpoints * (after.at - before.at) / INTERVAL
    return Row(label, endpoints, due, delta.requests,
               delta.lag_on_time / delta.lag_all if delta.lag_all else float("nan"),
               delta.duration_sum / delta.duration_count * 1000 if delta.duration_count else float("nan"),
               bb_phases / bb_probes * 1000 if bb_probes else float("nan"),
               delta.discarded / delta.requests if delta.requests else float("nan"),
               (after.cpu - before.cpu) / delta.requests * 1000 if delta.requests else float("nan"),
               (after.bb_cpu - before.bb_cpu) / bb_probes * 1000 if bb_probes else float("nan"),
               [ms for d in daemons for ms in d.scrape_ms], after.reading.samples, rss, peak,
               max(float(r.get("startup_seconds", "nan")) for r in ready),
               sum(float(r.get("rss_bytes", "nan")) for r in ready) / 2**20, delta.skipped,
               f"{load_at_start} -> {load_average()}")


def print_table(rows: list[Row]) -> None:
    print()
    print("| endpoints | probes run / due | on time (lag <= 1 s) | our mean duration | blackbox's | discarded "
          "| our CPU per probe (blackbox's) | ratio | /metrics p50 (p99, max) | samples | RSS (peaks) "
          "| ready after (RSS) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r.scrape_ms
        print(f"| {r.label} | {r.run / r.due:.1%} ({r.run:,.0f} / {r.due:,.0f}) | {r.on_time:.2%} "
              f"| {r.ours_mean_ms:.3f} ms | {r.bb_mean_ms:.3f} ms | {r.discarded:.2%} "
              f"| {r.ours_cpu_ms:.3f} ms ({r.bb_cpu_ms:.3f} ms) | {r.ours_cpu_ms / r.bb_cpu_ms:.2f} "
              f"| {statistics.median(s):.0f} ms ({percentile(s, 0.99):.0f}, {max(s):.0f} ms; {len(s)} scrapes) "
              f"| {r.samples:,} | {r.rss:.0f} MB ({r.peak:.0f} MB) | {r.ready_s:.2f} s ({r.ready_rss:.0f} MB) "
              f"| {r.load} |")
    print()
    print("goals (issue 22): run/due >= 99 % on time; |ours - blackbox| < 1 ms; CPU ratio <= 1.2; /metrics p99 "
          "< 1 s; RSS < 300 MB")
    for r in rows:
        late = f"; {r.skipped:.0f} runs skipped" if r.skipped else ""
        print(f"  {r.label}: on time {min(1.0, r.run / r.due) * r.on_time:.2%} of due, mean "
              f"{r.ours_mean_ms - r.bb_mean_ms:+.3f} ms against blackbox, CPU x{r.ours_cpu_ms / r.bb_cpu_ms:.2f}, "
              f"/metrics p99 {percentile(r.scrape_ms, 0.99):.0f} ms, RSS {r.rss:.0f} MB{late}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,2000,5000")
    parser.add_argument("--window", type=float, default=120.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring (first runs are "
                        "spread over the first interval)")
    parser.add_argument("--no-sharded", action="store_true", help="skip the three-replica case")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what it started on the way out
    blackbox = shutil.which("prometheus-blackbox-exporter")
    if blackbox is None or shutil.which("prometheus") is None:
        print("prometheus-blackbox-exporter and prometheus are needed (scripts/test.sh installs them)")
        return 1
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    rows: list[Row] = []
    try:
        with nginx(root / "nginx") as url:
            print(f"nginx at {url}; {os.cpu_count()} CPUs; every endpoint every {INTERVAL:g} s; warm-up "
                  f"{args.warmup:g} s, then {args.window:g} s measured per case; load average {load_average()}")
            cases = [(f"{n:,}", n, 1) for n in (int(s) for s in args.sizes.split(","))]
            if not args.no_sharded:
                cases.append(("5,000 on 3 shards", 5000, 3))
            for label, endpoints, shards in cases:
                rows.append(run_case(label, endpoints, shards, args, url, root, blackbox))
                r = rows[-1]
                print(f"  {label}: {r.run:,.0f} probes of {r.due:,.0f} due, ours {r.ours_mean_ms:.3f} ms, "
                      f"blackbox {r.bb_mean_ms:.3f} ms, CPU {r.ours_cpu_ms:.3f} / {r.bb_cpu_ms:.3f} ms, "
                      f"load {r.load}", flush=True)
        print_table(rows)
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
