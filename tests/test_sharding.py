"""Sharding across replicas (--shard, --total-shards): every job runs in exactly one replica, bad flags are
refused at start, and a real Prometheus computes the same recording rules from three shards as from one daemon
with the whole config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter import cli
from exporter.sharding import Shard, shard_of
from tests.daemon_process import DaemonProcess
from tests.http_target import HttpTarget
from tests.servers import Prometheus, wait_for

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("argv", "message"), [
    (["--shard", "3", "--total-shards", "3"], "--shard: expected a whole number from 0 to 2 (--total-shards 3), "
                                              "got 3"),
    (["--shard", "-1", "--total-shards", "2"], "--shard: expected a whole number from 0 to 1 (--total-shards 2), "
                                               "got -1"),
    (["--shard", "one", "--total-shards", "2"], "--shard: expected a whole number from 0 to 1 (--total-shards 2) "
                                                "or a StatefulSet pod's name ending in it, got 'one'"),
    (["--shard", "perf-exporter-2", "--total-shards", "2"], "--shard: expected a whole number from 0 to 1 "
                                                            "(--total-shards 2), got 2"),
    (["--shard", "1"], "--shard needs --total-shards too"),
    (["--total-shards", "3"], "--total-shards needs --shard too"),
    (["--shard", "0", "--total-shards", "0"], "--total-shards: expected a whole number of replicas (1 or more), "
                                              "got '0'"),
    (["--shard", "0", "--total-shards", "2", "--demo"], "--demo runs one daemon over the whole example config"),
])
def test_bad_shard_flags_are_refused_at_start_naming_the_flag(argv: list[str], message: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--web.listen-address", "127.0.0.1:1", *argv]) == 1  # refused before it would listen
    assert message in capsys.readouterr().err


def test_a_statefulset_pods_name_gives_its_ordinal_as_the_shard() -> None:
    assert Shard.from_flags("release-perf-exporter-2", "3") == Shard(2, 3)
    assert Shard.from_flags("1", "3") == Shard(1, 3)


def test_every_job_belongs_to_exactly_one_shard_the_same_in_every_process() -> None:
    keys = [f"api/target_{i}" for i in range(300)]
    for total in (1, 2, 3, 5):
        owners = [[shard for shard in range(total) if Shard(shard, total).owns(key)] for key in keys]
        assert all(len(found) == 1 for found in owners)
        if total > 1:  # a spread, not all in one
            assert len(Counter(found[0] for found in owners)) == total
    # Python's own hash() changes with PYTHONHASHSEED from one process to the next; the shard must not
    script = "import json,sys; from exporter.sharding import shard_of; print(json.dumps([shard_of(k, 3) for k in " \
             "json.loads(sys.argv[1])]))"
    elsewhere = subprocess.run([sys.executable, "-c", script, json.dumps(keys)], capture_output=True, text=True,
                               check=True, env={**os.environ, "PYTHONHASHSEED": "12345"}, cwd=REPO)
    assert json.loads(elsewhere.stdout) == [shard_of(key, 3) for key in keys]


# ---------------------------------------------------------------------------------------------------------------
# Three shards and one daemon, each set scraped by its own Prometheus running the rendered rules

TARGETS = [f"t{i}" for i in range(9)]
ENDPOINTS = {"ok": 200, "also_ok": 200, "broken": 503}


def config_text(url: str) -> str:
    lines = ["api:"]
    for target in TARGETS:
        lines += [f"  - name: {target}", f"    base_url: {url}", "    interval: 1s", "    timeout: 500ms",
                  "    endpoints:"]
        lines += [f"      - {{name: {name}, path: '/status/{status}?t={target}&e={name}'}}"
                  for name, status in ENDPOINTS.items()]
    return "\n".join(lines) + "\n"


def prometheus_config(ports: list[int], rules: Path) -> str:
    targets = ", ".join(f"'127.0.0.1:{port}'" for port in ports)
    return (f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
            f"rule_files: ['{rules}/*.rules.yml']\n"
            f"scrape_configs:\n  - job_name: perf-exporter\n    static_configs: [{{targets: [{targets}]}}]\n")


def query(prometheus: Prometheus, expr: str) -> dict[frozenset[tuple[str, str]], float]:
    answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return {frozenset((k, v) for k, v in r["metric"].items() if k not in ("instance", "job")): float(r["value"][1])
            for r in answer["data"]["result"]}


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("sharding")
    with HttpTarget() as sharded_target, HttpTarget() as single_target:
        (root / "sharded.yaml").write_text(config_text(sharded_target.url))
        (root / "single.yaml").write_text(config_text(single_target.url))
        rules = root / "rules"
        subprocess.run([sys.executable, "-m", "exporter", "render", "rules", "--config.file", str(root / "single.yaml"),
                        "--out", str(rules)], check=True, capture_output=True, cwd=REPO)
        # each with one probe worker: the jobs run in a process of their own, as at scale
        shards = [DaemonProcess(root / "sharded.yaml", root / f"shard{i}.log",
                                ("--shard", str(i), "--total-shards", "3", "--probe-workers", "1")) for i in range(3)]
        single = DaemonProcess(root / "single.yaml", root / "single.log", ("--probe-workers", "1"))
        started: list[Any] = [*shards, single]
        try:
            for daemon in started:
                daemon.wait_ready()
            proms = {name: Prometheus(root / f"prom-{name}", prometheus_config([d.port for d in group], rules))
                     for name, group in (("sharded", shards), ("single", [single]))}
            for prom in proms.values():
                started.append(prom.start())
            yield {"shards": shards, "single": single, "proms": proms, "sharded_target": sharded_target}
        finally:
            for thing in reversed(started):
                thing.stop()


def owned_targets(daemon: DaemonProcess) -> set[str]:
    return {dict(labels)["target"] for (name, labels), _ in daemon.samples().items()
            if name == "perf_http_requests_total"}


def test_every_endpoint_is_probed_by_exactly_one_shard(deployments: dict[str, Any]) -> None:
    shards: list[DaemonProcess] = deployments["shards"]
    owned = [owned_targets(d) for d in shards]
    assert sorted(t for mine in owned for t in mine) == TARGETS  # each target in one shard, none left out
    assert all(owned), "the 9 targets spread over all three shards"
    for i, daemon in enumerate(shards):
        assert daemon.value("perf_exporter_shard_info", shard=str(i), total_shards="3") == 1
    # What the server saw: each endpoint's requests are the ones its one shard counted, not twice as many.
    wait_for(lambda: all((daemon.value("perf_http_requests_total", target=t, endpoint="ok", method="GET",
                                       outcome="success") or 0) >= 5 for daemon, mine in zip(shards, owned, strict=True)
                         for t in mine), timeout=60, what="5 runs of every target")
    def counted() -> dict[tuple[str, str], float]:
        return {(t, e): sum(v for (name, labels), v in daemon.samples().items()
                            if name == "perf_http_requests_total" and dict(labels)["target"] == t
                            and dict(labels)["endpoint"] == e)
                for daemon, mine in zip(shards, owned, strict=True) for t in mine for e in ENDPOINTS}

    # a request reaches the server before its shard counts it: counted before <= seen <= counted after (+1 in
    # flight); two shards probing one endpoint would make the server see about twice the count
    before = counted()
    seen = Counter(path for _, path, _ in deployments["sharded_target"].server.seen)
    after = counted()
    for (t, e), count in before.items():
        hits = seen[f"/status/{ENDPOINTS[e]}?t={t}&e={e}"]
        assert count <= hits <= after[(t, e)] + 1, f"{t}/{e}: the server saw {hits} requests, the shards " \
            f"counted {count} before and {after[(t, e)]} after"


def test_recording_rules_over_three_shards_equal_those_over_one_daemon(deployments: dict[str, Any]) -> None:
    proms: dict[str, Prometheus] = deployments["proms"]
    records = ("slo:sli_error:ratio_rate5m", "slo:sli_events:rate5m")

    def ready() -> bool:
        return all(len(query(p, f'{r}{{sloth_id="api-errors"}}')) == len(TARGETS) for p in proms.values()
                   for r in records)

    wait_for(ready, timeout=90, interval=1, what="the recording rules over every target in both Prometheus")
    time.sleep(3)  # a few more evaluations past the first, so both windows hold several runs
    for record in records:
        sharded, single = (query(proms[name], record) for name in ("sharded", "single"))
        assert sharded.keys() == single.keys(), f"{record}: other series over shards than over one daemon"
        for labels, value in single.items():
            if record == "slo:sli_events:rate5m" and ("sloth_id", "api-errors") not in labels:
                continue  # a latency SLO's events are the timed requests: how many a busy machine discarded varies
            tolerance = 0.05 if record.startswith("slo:sli_error") else 0.25 * value
            assert sharded[labels] == pytest.approx(value, abs=tolerance), (record, dict(labels))
    # the error SLO's ratio is the one broken endpoint in three, in both
    errors = query(proms["sharded"], 'slo:sli_error:ratio_rate5m{sloth_id="api-errors"}')
    assert all(v == pytest.approx(1 / 3, abs=0.05) for v in errors.values())
    # no double counting: as many probe requests per second over the three shards as from the one daemon
    total = {name: sum(query(p, "sum(rate(perf_http_requests_total[30s]))").values())
             for name, p in proms.items()}
    assert total["single"] > 0
    assert total["sharded"] == pytest.approx(total["single"], rel=0.25)
