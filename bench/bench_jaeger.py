"""Benchmark: one Jaeger poll of 10,000 traces of 50 spans each, with each way of decoding the JSON.

The traces are generated (20 services x 500 traces, 500 being the default ``limit``; each trace a three-level
tree over three services, with serial and parallel children, clipped and error spans) as v1 JSON bodies, one
per service search, which is how a poll receives them. They are generated once per run, into a temporary
folder, and every measurement reads the same bytes. Each measurement runs in a fresh process, so that peak
memory is its own:

- ``parse``: the processing path alone, fed each service's response body as bytes: decode, analyse (critical
  path, serial siblings), bucket span durations and write the store. Wall and CPU time, and tracemalloc's peak
  (in a second pass: tracing slows everything down).
- ``http``: a whole ``JaegerCollector.run()`` against a local HTTP server (another process) that serves the 20
  bodies: network, decode, process, store. Wall and CPU time of the poll, and the collector process's peak RSS.

Decoders compared on the v1 path (the peer is the collector's former path, ``bench/jaeger_json_peer.py``):

- ``json``: ``json.loads`` of the whole body into dicts, then ``dict.get`` walks into spans (the former path);
- ``orjson``: the same walk after ``orjson.loads`` (measured when orjson is installed; the exporter does not use
  it);
- ``msgspec``: what the collector does now (``exporter/collectors/jaeger/v1.py``): typed Structs that
  declare only the fields read, decoded straight from the bytes; every trace is counted from a few passes over
  its spans (tags left undecoded: a search of the body for the error keys' text sends the traces that could
  have an error span down the full path), and a random sample of ``sample`` (100) traces is analysed whole, as
  on the api_v3 path.

The api_v3 path (trace summaries, then a sample of 100 traces fetched whole as OTLP JSON) is measured with the
collector's own decoder. Goal: a v1 poll under 2 s and 150 MB. There is no peer Jaeger exporter to compare
against.

Run: ``.venv/bin/python bench/bench_jaeger.py``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SERVICES = 20
TRACES_PER_SERVICE = 500
SPANS_PER_TRACE = 50


def make_trace(rng: random.Random, service: str, index: int, start_us: int) -> dict[str, Any]:
    """A 50-span trace: root -> 7 calls (in waves of 1 and 2) -> 6 children each (2 overlapping rows of 3)."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = iter(f"{rng.getrandbits(64):016x}" for _ in range(SPANS_PER_TRACE))
    spans: list[dict[str, Any]] = []

    def add(parent: str | None, pid: str, op: str, start: int, duration: int, error: bool = False) -> str:
        span_id = next(ids)
        tags: list[dict[str, Any]] = [{"key": "span.kind", "type": "string", "value": "server"},
                                      {"key": "http.status_code", "type": "int64", "value": 500 if error else 200}]
        if error:
            tags.append({"key": "error", "type": "bool", "value": True})
        spans.append({"traceID": trace_id, "spanID": span_id, "operationName": op,
                      "references": [] if parent is None else
                      [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}],
                      "startTime": start, "duration": duration, "tags": tags, "logs": [], "processID": pid,
                      "warnings": None})
        return span_id

    root = add(None, "p1", f"GET /api/v1/{service}/{index % 8}", start_us, 400_000)
    t = start_us + 1_000
    for call in range(7):
        width = 2 if call % 2 else 1
        for lane in range(width):
            if len(spans) >= SPANS_PER_TRACE:
                break
            duration = rng.randint(10_000, 40_000)
            child = add(root, "p2", f"call-{call}", t, duration, error=rng.random() < 0.01)
            for row in range(2):
                for k in range(3):
                    if len(spans) >= SPANS_PER_TRACE:
                        break
                    # the last one runs past its parent now and then (clock skew)
                    over = 5_000 if (row, k) == (1, 2) and rng.random() < 0.1 else 0
                    add(child, "p3", f"SELECT t{k}", t + 100 + row * duration // 2 + k * 50,
                        duration // 2 - 400 + over)
            t += 0 if lane + 1 < width else duration + 500
    while len(spans) < SPANS_PER_TRACE:
        add(root, "p3", "cache GET", t, 100)
        t += 200
    return {"traceID": trace_id, "spans": spans, "warnings": None, "processes": {
        "p1": {"serviceName": service, "tags": []}, "p2": {"serviceName": f"{service}-backend", "tags": []},
        "p3": {"serviceName": "postgres", "tags": []}}}


def service_body(service_index: int, now_us: int) -> bytes:
    rng = random.Random(service_index)
    service = f"svc-{service_index:02d}"
    first = now_us - 200_000_000
    traces = [make_trace(rng, service, i, first + i * 150_000 + service_index) for i in range(TRACES_PER_SERVICE)]
    return json.dumps({"data": traces, "total": 0, "limit": 0, "offset": 0, "errors": None}).encode()


def collector(url: str = "http://127.0.0.1:1", api: str = "v1") -> Any:
    from exporter.collectors.jaeger.collector import JaegerCollector
    from exporter.collectors.jaeger.target import JaegerTarget
    from exporter.jobs import JobContext, TraceLink
    from exporter.store import MetricStore

    cfg = JaegerTarget.model_validate({"name": "bench", "url": url, "api": api, "interval": "60s", "timeout": "50s",
                                       "limit": TRACES_PER_SERVICE})
    return JaegerCollector(cfg, JobContext(MetricStore(), TraceLink()))


def write_bodies(folder: Path) -> None:
    """The 20 service bodies, generated once for every measurement of a run."""
    now = int(time.time() * 1e6)
    for s in range(SERVICES):
        (folder / f"svc-{s:02d}.json").write_bytes(service_body(s, now))


def read_bodies(folder: Path) -> Iterator[bytes]:
    for s in range(SERVICES):
        yield (folder / f"svc-{s:02d}.json").read_bytes()


def v1_reader(decoder: str) -> Callable[[bytes, Callable[[str], bool]], list[Any]]:
    """Traces of one v1 body, not skipped, the way ``decoder`` reads them."""
    if decoder == "msgspec":  # the collector's path: every trace counted from its spans, a sample read whole
        from exporter.collectors.jaeger.v1 import found_in_v1, v1_response

        return lambda body, skip: list(found_in_v1(body, v1_response(body), skip))
    from bench.jaeger_json_peer import read_v1

    loads = json.loads
    if decoder == "orjson":
        import orjson

        loads = orjson.loads
    return lambda body, skip: read_v1(body, skip, loads)[0]


def bench_parse(path: str, decoder: str, bodies: Path, memory: bool) -> dict[str, float]:
    """``path`` is ``whole`` (v1 searches return every trace whole, read by ``decoder``) or ``summaries``
    (api_v3: every trace's summary, then the sample fetched whole as OTLP JSON). With ``memory``, tracemalloc
    measures the peak (and slows everything down: the time of that pass is not reported)."""
    from exporter.collectors.jaeger.client import bulk_objects
    from exporter.collectors.jaeger.collector import Poll
    from exporter.collectors.jaeger.otlp import traces_from_otlp
    from exporter.collectors.jaeger.summaries import facts_from_summaries
    from tests.jaeger_replay import summary_of, to_otlp

    job = collector()
    read = v1_reader(decoder)
    now = int(time.time() * 1e6)
    poll = Poll()
    elapsed = cpu = 0.0
    size = 0
    sample: list[bytes] = []
    peak = 0
    for body in read_bodies(bodies):
        if tracemalloc.is_tracing():
            tracemalloc.stop()  # preparing the input is not part of the measurement
        if path == "summaries":
            traces = json.loads(body)["data"]
            body = json.dumps({"summaries": [summary_of(t) for t in traces]}).encode()
            # the sample: whole traces the poll fetches by ID, as api_v3 serves them
            sample += [json.dumps(to_otlp([t])).encode() for t in traces[: job.cfg.sample // SERVICES]]
            del traces
        size += len(body)
        gc.collect()
        if memory:
            tracemalloc.start()
        started, started_cpu = time.perf_counter(), time.process_time()
        with bulk_objects():
            if path == "summaries":
                job._take_summaries(facts_from_summaries(body), now, poll)
            else:
                job._take_traces(read(body, job._is_known), now, poll)
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        if memory:
            peak = max(peak, tracemalloc.get_traced_memory()[1])
        del body
    started, started_cpu = time.perf_counter(), time.process_time()
    job._analyse_drawn(poll)
    for body in sample:
        size += len(body)
        with bulk_objects():
            for trace in traces_from_otlp(body):
                job._take_whole(trace, poll)
    job._write(poll)
    elapsed += time.perf_counter() - started
    cpu += time.process_time() - started_cpu
    if memory:
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert len(poll.facts) == SERVICES * TRACES_PER_SERVICE, len(poll.facts)
    spans = sum(f.span_count for f in poll.facts)
    assert spans == SERVICES * TRACES_PER_SERVICE * SPANS_PER_TRACE, spans
    return {"seconds": elapsed, "cpu_seconds": cpu, "peak_mb": peak / 2**20, "body_mb": size / 2**20,
            "traces": len(poll.facts), "whole": len(poll.whole)}


def serve(port_file: str, folder: Path) -> None:
    from bench.quiet_http import QuietHandler
    from tests.jaeger_replay import summary_of, to_otlp

    bodies = {f"svc-{s:02d}": body for s, body in enumerate(read_bodies(folder))}
    services = json.dumps({"data": sorted(bodies), "total": SERVICES, "limit": 0, "offset": 0,
                           "errors": None}).encode()
    v3_services = json.dumps({"services": sorted(bodies)}).encode()
    summaries: dict[str, bytes] = {}
    by_id: dict[str, bytes] = {}
    for name, body in bodies.items():
        traces = json.loads(body)["data"]
        summaries[name] = json.dumps({"summaries": [summary_of(t) for t in traces]}).encode()
        by_id.update((t["traceID"], json.dumps(to_otlp([t])).encode()) for t in traces)
    empty = b'{"data": [], "errors": null}'

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path == "/api/services":
                body = services
            elif parts.path == "/api/traces":
                body = bodies.get(query.get("service", [""])[0], empty)
            elif parts.path == "/api/v3/services":
                body = v3_services
            elif parts.path == "/api/v3/trace-summaries":
                body = summaries.get(query.get("query.service_name", [""])[0], b'{"summaries": []}')
            elif parts.path.startswith("/api/v3/traces/") and parts.path.rsplit("/", 1)[1] in by_id:
                body = by_id[parts.path.rsplit("/", 1)[1]]
            else:
                self.send_error(404)
                return
            self.reply(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def bench_http(url: str, api: str) -> dict[str, float]:
    job = collector(url, api)

    async def poll() -> tuple[bool, float]:
        started = time.perf_counter()
        ok = await job.run()
        elapsed = time.perf_counter() - started
        await job.close()
        return ok, elapsed

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok, elapsed = asyncio.run(poll())
    from exporter import metrics

    traces = sum(h.count for h in job.store.histograms[metrics.TRACE_DURATION].values())
    assert ok and traces == SERVICES * TRACES_PER_SERVICE, (ok, traces)
    return {"seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_mb": rss_before, "traces": traces,
            "whole": job.store.get(metrics.TRACE_ANALYSED, target="bench") or 0}


def bench_poll(url: str, path: str, decoder: str) -> dict[str, float]:
    """:func:`bench_http` with ``decoder`` reading the v1 bodies, and the CPU time of the whole poll."""
    import exporter.collectors.jaeger.collector  # imported before the CPU clock starts
    from exporter.collectors.jaeger.client import JaegerApi

    if decoder != "msgspec":  # the former path: read_v1 instead of the collector's decoder
        from bench.jaeger_json_peer import read_v1

        loads = json.loads if decoder == "json" else __import__("orjson").loads

        async def search(self: Any, service: str, start: int, end: int, limit: int,
                         skip: Any = None) -> tuple[list[Any], int, list[str]]:
            # the former path: every trace of the search decoded and analysed whole
            api = await self.detect()
            assert api == "v1"
            answer = await self.get("/api/traces", self._search_params(api, service, start, end, limit))
            traces, returned = read_v1(answer.body, skip, loads)
            return traces, returned, []

        JaegerApi.search = search  # type: ignore[method-assign]
    from bench.measures import peak_rss_mb, rss_mb

    rss_before = rss_mb(os.getpid())
    started = time.process_time()
    result = bench_http(url, "v3" if path == "summaries" else "v1")
    result["cpu_seconds"] = time.process_time() - started
    # getrusage's maxrss of a process started by exec begins at its parent's peak (the run's, which generated the
    # bodies): the peak of this process alone is VmHWM
    result["peak_rss_mb"], result["rss_before_mb"] = peak_rss_mb(os.getpid()), rss_before
    assert exporter.collectors.jaeger.collector
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["parse", "http", "serve", "all"], default="all")
    parser.add_argument("--path", choices=["whole", "summaries"], default="whole")
    parser.add_argument("--decoder", choices=["json", "orjson", "msgspec"], default="msgspec")
    parser.add_argument("--bodies", type=Path, help="the folder of generated bodies (made when not given)")
    parser.add_argument("--url")
    parser.add_argument("--port-file")
    parser.add_argument("--repeat", type=int, default=3, help="polls over HTTP with msgspec (the median is reported)")
    args = parser.parse_args()
    if args.mode == "parse":
        timed = bench_parse(args.path, args.decoder, args.bodies, memory=False)
        timed["peak_mb"] = bench_parse(args.path, args.decoder, args.bodies, memory=True)["peak_mb"]
        print(json.dumps(timed))
        return
    if args.mode == "serve":
        serve(args.port_file, args.bodies)
        return
    if args.mode == "http":
        print(json.dumps(bench_poll(args.url, args.path, args.decoder)))
        return

    me = [sys.executable, __file__]
    folder = Path(tempfile.mkdtemp(prefix="bench_jaeger_"))
    try:
        run_all(me, folder, args.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_all(me: list[str], folder: Path, repeat: int) -> None:
    print(f"one poll: {SERVICES} services x {TRACES_PER_SERVICE} traces x {SPANS_PER_TRACE} spans "
          f"= {SERVICES * TRACES_PER_SERVICE:,} traces, {SERVICES * TRACES_PER_SERVICE * SPANS_PER_TRACE:,} spans")
    write_bodies(folder)
    decoders = ["json", "orjson", "msgspec"] if importlib.util.find_spec("orjson") else ["json", "msgspec"]
    runs = [("summaries", "msgspec"), *(("whole", d) for d in decoders)]
    results: dict[tuple[str, str, str], dict[str, float]] = {}
    for path, decoder in runs:
        out = subprocess.run([*me, "--mode", "parse", "--path", path, "--decoder", decoder, "--bodies", str(folder)],
                             capture_output=True, text=True, check=True)
        results["parse", path, decoder] = parse = json.loads(out.stdout)
        print(f"[{path:9} {decoder:7}] parse+process (bytes in, store out): {parse['seconds']:.2f} s "
              f"(CPU {parse['cpu_seconds']:.2f} s), tracemalloc peak {parse['peak_mb']:.0f} MB; "
              f"{parse['body_mb']:.0f} MB of JSON, {parse['whole']:.0f} traces analysed whole")
    port_file = folder / "port"
    server = subprocess.Popen([*me, "--mode", "serve", "--port-file", str(port_file), "--bodies", str(folder)])
    try:
        deadline = time.monotonic() + 300
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the bench server did not start")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        for path, decoder in runs:
            if decoder == "orjson":
                continue  # its parse figures are enough to choose
            polls = []
            for _ in range(repeat if decoder == "msgspec" else 1):  # the peer's 15 s polls once
                out = subprocess.run([*me, "--mode", "http", "--path", path, "--decoder", decoder, "--url", url],
                                     capture_output=True, text=True, check=True)
                polls.append(json.loads(out.stdout))
            results["http", path, decoder] = http = sorted(polls, key=lambda r: r["seconds"])[len(polls) // 2]
            times = ", ".join(f"{r['seconds']:.2f}" for r in polls)
            each = f" (the median of {len(polls)}: {times} s)" if len(polls) > 1 else ""
            print(f"[{path:9} {decoder:7}] whole poll over HTTP (JaegerCollector.run): {http['seconds']:.2f} s "
                  f"(CPU {http['cpu_seconds']:.2f} s), peak RSS {http['peak_rss_mb']:.0f} MB "
                  f"(of which {http['rss_before_mb']:.0f} MB before the poll), {http['whole']:.0f} traces "
                  f"analysed whole{each}")
    finally:
        server.terminate()
        server.wait(10)
    before, after = results["http", "whole", "json"], results["http", "whole", "msgspec"]
    print(f"[whole] msgspec against the json peer: {before['seconds'] / after['seconds']:.1f}x faster "
          f"({before['seconds']:.2f} -> {after['seconds']:.2f} s; CPU {before['cpu_seconds']:.2f} -> "
          f"{after['cpu_seconds']:.2f} s), peak RSS {before['peak_rss_mb']:.0f} -> {after['peak_rss_mb']:.0f} MB")
    if ("parse", "whole", "orjson") in results:
        o, m = results["parse", "whole", "orjson"], results["parse", "whole", "msgspec"]
        print(f"[whole] parse+process, orjson peer against msgspec: {o['seconds']:.2f} s against "
              f"{m['seconds']:.2f} s, tracemalloc peak {o['peak_mb']:.0f} against {m['peak_mb']:.0f} MB")
    for path in ("summaries", "whole"):
        p, h = results["parse", path, "msgspec"], results["http", path, "msgspec"]
        met = p["seconds"] < 2 and p["peak_mb"] < 150 and h["seconds"] < 2 and h["peak_rss_mb"] < 150
        print(f"[{path:9}] goal (< 2 s, < 150 MB): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
