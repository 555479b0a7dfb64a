"""The Redis collector against real Redis 7 servers, and its pure parts (INFO counters, key patterns) on data."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from exporter import metrics
from exporter.collectors.redis.collector import RedisCollector, RedisTarget
from exporter.collectors.redis.info import CounterMirror, command_stats, keyspace, latency_percentiles, numbers
from exporter.collectors.redis.key_patterns import KeyClassifier, ScanCursor, ScanPass, glob_regex, pttl_seconds
from exporter.config.loading import ConfigError, parse_config
from exporter.jobs import JobContext, Outcome, TraceLink
from exporter.store import MetricStore
from tests.servers import Redis, free_port, wait_for

T = ("cache",)


class Harness:
    """One collector and the event loop it lives in, as the daemon would run it."""

    def __init__(self, url: str, **cfg: Any) -> None:
        cfg.setdefault("interval", "10s")
        cfg.setdefault("timeout", "2s")
        self.cfg = RedisTarget.model_validate({"name": "cache", "url": url, **cfg})
        self.store = MetricStore()
        self.runner = asyncio.Runner()
        self.collector = self.runner.run(self._build())

    async def _build(self) -> RedisCollector:
        return RedisCollector(self.cfg, JobContext(self.store, TraceLink()))

    def run(self) -> Outcome:
        return self.runner.run(self.collector.run())

    def close(self) -> None:
        self.runner.run(self.collector.close())
        self.runner.close()

    def value(self, family: metrics.Family, labels: tuple[str, ...] = T) -> float | None:
        return self.store.get(family, **dict(zip(family.labels, labels, strict=True)))

    def bucket(self, family: metrics.Family, labels: tuple[str, ...], le: float) -> float:
        """Cumulative count of observations <= ``le``."""
        state = self.store.histograms[family][labels]
        return sum(n for bound, n in zip(family.buckets, state.counts, strict=True) if bound <= le)


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.close()


def client(server: Redis) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def pttl_calls(app: redis.Redis) -> int:
    stats = app.info("commandstats").get("cmdstat_pttl")
    return int(stats["calls"]) if stats else 0


# ---------------------------------------------------------------------------------------------------------------
# Hits and misses are the application's own


def test_80_hits_and_20_misses_from_a_client_are_counted_exactly_while_sampling_runs(
        fresh_redis: Redis, harnesses: list[Harness]) -> None:
    app = client(fresh_redis)
    app.mset({f"order:{i}": "x" for i in range(300)})
    app.rpush("trip:location:updates", "a", "b")
    # a small budget over 300 keys: several runs, each with lookups (PTTL, LLEN...) that Redis counts as hits
    harness = Harness(fresh_redis.url, key_patterns=["order:*"], scan_budget=120, queues=["trip:location:updates"])
    harnesses.append(harness)
    assert harness.run()

    done = threading.Event()

    def application() -> None:
        own = client(fresh_redis)
        for i in range(80):
            assert own.get(f"order:{i}") == b"x"
        for i in range(20):
            assert own.get(f"missing:{i}") is None
        done.set()

    worker = threading.Thread(target=application)
    worker.start()
    runs = 0
    while not done.is_set() or runs < 3:  # collect while the application runs, and after
        assert harness.run()
        runs += 1
    worker.join()
    assert harness.run()
    assert pttl_calls(app) > 300  # the sampling really looked keys up meanwhile
    assert harness.value(metrics.REDIS_HITS) == 80
    assert harness.value(metrics.REDIS_MISSES) == 20
    assert harness.value(metrics.REDIS_COMMANDS, ("cache", "get")) == 100
    get_p99 = harness.value(metrics.REDIS_COMMAND_LATENCY, ("cache", "get", "p99"))
    assert get_p99 is not None and 0 < get_p99 < 1
    assert harness.value(metrics.REDIS_ROLE, ("cache", "master")) == 1
    assert harness.value(metrics.REDIS_QUEUE_LENGTH, ("cache", "trip:location:updates")) == 2
    assert harness.value(metrics.REDIS_KEYS, ("cache", "0")) == 301
    assert harness.store.histograms[metrics.REDIS_PING][T].count == runs + 2


MINIMAL_ACL = ("on", ">perf-pw", "~*", "resetchannels", "-@all", "+@connection", "+info", "+slowlog|len",
               "+scan", "+pttl", "+memory|usage", "+llen", "+xlen", "+xinfo|groups", "+multi", "+exec")


@pytest.mark.parametrize("scripting", [True, False], ids=["readme-acl", "readme-acl-without-scripting"])
def test_the_readme_acl_is_enough_and_without_scripting_hits_stay_exact_through_transactions(
        fresh_redis: Redis, harnesses: list[Harness], caplog: pytest.LogCaptureFixture, scripting: bool) -> None:
    app = client(fresh_redis)
    acl = (*MINIMAL_ACL, "+evalsha", "+eval", "+script|load") if scripting else MINIMAL_ACL
    app.execute_command("ACL", "SETUSER", "perf", *acl)
    app.mset({f"session:{i}": "s" for i in range(400)})
    app.expire("session:1", 600)
    harness = Harness(fresh_redis.url, username="perf", password="perf-pw", key_patterns=["session:*"],
                      scan_budget=300, queues=["q"])
    harnesses.append(harness)
    with caplog.at_level(logging.INFO, logger="exporter.collectors.redis.collector"):
        assert harness.run()
        for i in range(30):
            app.get(f"session:{i}")
        app.get("nope")
        assert harness.run()
        assert harness.run()
    fallback = [r for r in caplog.records if r.getMessage() == "redis_sampling_without_lua"]
    assert len(fallback) == (0 if scripting else 1)
    assert pttl_calls(app) >= 400
    assert harness.value(metrics.REDIS_HITS) == 30
    assert harness.value(metrics.REDIS_MISSES) == 1
    assert harness.value(metrics.REDIS_PATTERN_SAMPLED, ("cache", "session:*")) == 400
    assert harness.value(metrics.REDIS_PATTERN_NO_TTL, ("cache", "session:*")) == 399 / 400


# ---------------------------------------------------------------------------------------------------------------
# Memory and evictions


def test_filling_beyond_maxmemory_with_allkeys_lru_shows_evictions(tmp_path: Path,
                                                                    harnesses: list[Harness]) -> None:
    server = Redis(tmp_path / "r", extra=["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]).start()
    try:
        harness = Harness(server.url, scan_budget=0)
        harnesses.append(harness)
        assert harness.run()
        assert harness.value(metrics.REDIS_EVICTED) == 0
        app = client(server)
        pipe = app.pipeline(transaction=False)
        for i in range(3000):  # 3000 x 4 KiB = 12 MiB into 4 MiB
            pipe.set(f"blob:{i}", b"v" * 4096)
        pipe.execute()
        assert harness.run()
        evicted = harness.value(metrics.REDIS_EVICTED)
        assert evicted is not None and evicted > 1000
        assert harness.value(metrics.REDIS_MEMORY_MAX) == 4 * 1024 * 1024
        used = harness.value(metrics.REDIS_MEMORY_USED)
        assert used is not None and 0 < used <= 4 * 1024 * 1024 * 1.1
        keys = harness.value(metrics.REDIS_KEYS, ("cache", "0"))
        assert keys is not None and keys == 3000 - evicted
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------------------
# Key patterns and TTLs


def test_keys_with_and_without_ttl_under_two_patterns_give_their_ratios_and_ttl_buckets(
        fresh_redis: Redis, harnesses: list[Harness]) -> None:
    app = client(fresh_redis)
    for i in range(4):  # order:*: 1 of 4 without TTL, 3 with about 30 s left
        app.set(f"order:{i}", "o", ex=30 if i else None)
    for i in range(5):  # session:*: all with 2 h left
        app.set(f"session:{i}", "s" * 100, ex=7200)
    app.set("config:flags", "f")  # no pattern: other
    app.set("feature:x", "f")
    harness = Harness(fresh_redis.url, key_patterns=["order:*", "session:*"], scan_budget=100)
    harnesses.append(harness)
    assert harness.run()

    def labels(pattern: str) -> tuple[str, str]:
        return ("cache", pattern)

    assert harness.value(metrics.REDIS_PATTERN_SAMPLED, labels("order:*")) == 4
    assert harness.value(metrics.REDIS_PATTERN_SAMPLED, labels("session:*")) == 5
    assert harness.value(metrics.REDIS_PATTERN_SAMPLED, labels("other")) == 2
    assert harness.value(metrics.REDIS_PATTERN_NO_TTL, labels("order:*")) == 0.25
    assert harness.value(metrics.REDIS_PATTERN_NO_TTL, labels("session:*")) == 0
    assert harness.value(metrics.REDIS_PATTERN_NO_TTL, labels("other")) == 1
    ttl = metrics.REDIS_PATTERN_TTL
    assert harness.bucket(ttl, labels("order:*"), 10) == 0
    assert harness.bucket(ttl, labels("order:*"), 60) == 3  # 30 s left: in (10, 60]
    assert harness.bucket(ttl, labels("session:*"), 3600) == 0
    assert harness.bucket(ttl, labels("session:*"), 4 * 3600) == 5  # 2 h left: in (1 h, 4 h]
    assert harness.store.histograms[ttl][labels("other")].count == 0  # keys without TTL are not observed
    order_size = harness.value(metrics.REDIS_PATTERN_MEMORY, labels("order:*"))
    session_size = harness.value(metrics.REDIS_PATTERN_MEMORY, labels("session:*"))
    assert order_size is not None and session_size is not None and session_size > order_size > 0
    assert harness.value(metrics.REDIS_SCAN_PASSES) == 1


def test_scan_budget_bounds_each_run_on_100000_keys_and_the_cursor_carries_on(
        fresh_redis: Redis, harnesses: list[Harness]) -> None:
    app = client(fresh_redis)
    app.execute_command("DEBUG", "POPULATE", 100_000, "item")
    budget = 8000
    harness = Harness(fresh_redis.url, key_patterns=["item:1*"], scan_budget=budget, timeout="5s")
    harnesses.append(harness)
    runs = 0
    while harness.value(metrics.REDIS_SCAN_PASSES) == 0:
        before = pttl_calls(app)
        assert harness.run()
        runs += 1
        assert pttl_calls(app) - before <= budget
        assert runs <= 2 * 100_000 // budget, "the pass never completed"
    assert runs >= 100_000 // budget  # no run looked at more than its budget, so one pass takes >= 13 runs
    sampled = sum(harness.value(metrics.REDIS_PATTERN_SAMPLED, ("cache", p)) or 0 for p in ("item:1*", "other"))
    # SCAN returns every key present for the whole pass; a rehash during the pass may return some twice
    assert 100_000 <= sampled <= 100_000 * 1.02
    ones = harness.value(metrics.REDIS_PATTERN_SAMPLED, ("cache", "item:1*"))
    assert ones is not None and 11_111 <= ones <= 11_111 * 1.02  # item:1, item:10..19, ... item:10000..19999
    assert harness.value(metrics.REDIS_SCANNED_KEYS) == sampled


# ---------------------------------------------------------------------------------------------------------------
# Queues


def test_queue_lengths_of_a_list_and_a_stream_with_its_consumer_group_lag(fresh_redis: Redis,
                                                                          harnesses: list[Harness]) -> None:
    app = client(fresh_redis)
    app.rpush("notifications:outbox", *[f"n{i}" for i in range(7)])
    for i in range(10):
        app.xadd("trip:location:updates", {"lat": str(i)})
    app.xgroup_create("trip:location:updates", "dispatch", id="0")
    app.xreadgroup("dispatch", "worker-1", {"trip:location:updates": ">"}, count=4)
    app.set("not:a:queue", "x")
    harness = Harness(fresh_redis.url, scan_budget=0,
                      queues=["notifications:outbox", "trip:location:updates", "empty:queue", "not:a:queue"])
    harnesses.append(harness)
    assert harness.run()
    assert harness.value(metrics.REDIS_QUEUE_LENGTH, ("cache", "notifications:outbox")) == 7
    assert harness.value(metrics.REDIS_QUEUE_LENGTH, ("cache", "trip:location:updates")) == 10
    assert harness.value(metrics.REDIS_QUEUE_LENGTH, ("cache", "empty:queue")) == 0
    assert harness.value(metrics.REDIS_QUEUE_LENGTH, ("cache", "not:a:queue")) is None
    assert harness.value(metrics.REDIS_QUEUE_LAG, ("cache", "trip:location:updates", "dispatch")) == 6


# ---------------------------------------------------------------------------------------------------------------
# Restarts and failures


def test_server_gauges_and_counters_show_what_clients_did(fresh_redis: Redis, harnesses: list[Harness]) -> None:
    app = client(fresh_redis)
    app.config_set("slowlog-log-slower-than", 50_000)  # microseconds: 50 ms
    app.slowlog_reset()
    harness = Harness(fresh_redis.url)
    harnesses.append(harness)
    assert harness.run()
    rss_before = harness.value(metrics.REDIS_MEMORY_RSS)
    assert rss_before is not None and rss_before > 0
    # three more clients, one of them blocked on an empty list
    others = [client(fresh_redis) for _ in range(3)]
    for other in others:
        other.ping()
    blocked = threading.Thread(target=lambda: others[0].blpop(["perf:empty"], timeout=20))
    blocked.start()
    try:
        wait_for(lambda: app.info("clients")["blocked_clients"] == 1, timeout=5, what="a client blocked in BLPOP")
        app.mset({f"ttl:{i}": "x" for i in range(40)})
        for i in range(40):
            app.expire(f"ttl:{i}", 300)
        for i in range(25):
            app.set(f"gone:{i}", "x", px=1)
        wait_for(lambda: app.exists(*[f"gone:{i}" for i in range(25)]) == 0, timeout=5, what="25 keys expired")
        app.execute_command("DEBUG", "SLEEP", "0.1")  # two commands over the 50 ms slow log threshold
        app.execute_command("DEBUG", "SLEEP", "0.1")
        app.set("big", "x" * 20_000_000)
        # Redis samples its RSS in its cron: wait until it has seen the value resident
        wait_for(lambda: app.info("memory")["used_memory_rss"] >= rss_before + 15_000_000, timeout=10,
                 what="Redis's RSS to include the 20 MB value")
        assert harness.run()
        assert harness.value(metrics.REDIS_BLOCKED) == 1
        clients = harness.value(metrics.REDIS_CLIENTS)
        assert clients is not None and clients >= 5  # app, the three others and the collector's own
        assert harness.value(metrics.REDIS_KEYS_EXPIRING, ("cache", "0")) == 40
        assert harness.value(metrics.REDIS_EXPIRED) == 25
        assert harness.value(metrics.REDIS_SLOWLOG_LENGTH) == 2
        debug_seconds = harness.value(metrics.REDIS_COMMAND_DURATION, ("cache", "debug"))
        assert debug_seconds is not None and 0.2 <= debug_seconds < 2  # two 100 ms sleeps, timed by Redis
        rss = harness.value(metrics.REDIS_MEMORY_RSS)
        assert rss is not None and rss >= rss_before + 15_000_000  # the 20 MB value is resident
    finally:
        app.rpush("perf:empty", "wake")
        blocked.join(10)
    assert harness.run()
    assert harness.value(metrics.REDIS_BLOCKED) == 0


def test_counters_never_go_backwards_across_a_redis_restart(fresh_redis: Redis, harnesses: list[Harness]) -> None:
    app = client(fresh_redis)
    app.set("k", "v")
    harness = Harness(fresh_redis.url, scan_budget=0)
    harnesses.append(harness)
    assert harness.run()
    for _ in range(10):
        app.get("k")
    assert harness.run()
    assert harness.value(metrics.REDIS_HITS) == 10
    gets = harness.value(metrics.REDIS_COMMANDS, ("cache", "get"))
    assert gets == 10

    fresh_redis.restart()  # an empty server: its INFO counters start again from zero
    app = client(fresh_redis)
    app.set("k", "v")
    for _ in range(3):
        app.get("k")
    app.get("gone")
    assert harness.run()  # the dropped connection is replaced within the same run
    assert harness.value(metrics.REDIS_HITS) == 13
    assert harness.value(metrics.REDIS_MISSES) == 1
    assert harness.value(metrics.REDIS_COMMANDS, ("cache", "get")) == 14
    assert harness.value(metrics.REDIS_UP) == 1


def _down_line(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "redis_down" and r.levelno == logging.WARNING]


def test_wrong_password_gives_up_0_and_one_auth_log_line_without_the_password(
        tmp_path: Path, harnesses: list[Harness], caplog: pytest.LogCaptureFixture) -> None:
    server = Redis(tmp_path / "r", password="right-secret").start()
    try:
        harness = Harness(f"redis://127.0.0.1:{server.port}/0", password="wrong-secret-pw")
        harnesses.append(harness)
        with caplog.at_level(logging.DEBUG, logger="exporter.collectors.redis.collector"):
            assert not harness.run().up
            assert not harness.run().up
        assert harness.value(metrics.REDIS_UP) == 0
        lines = _down_line(caplog)
        assert len(lines) == 1, "one log line per cause, not one per run"
        fields = lines[0].__dict__["fields"]
        assert fields["reason"] == "auth"
        assert "wrong-secret-pw" not in repr(caplog.records) and "right-secret" not in repr(caplog.records)

        good = Harness(f"redis://127.0.0.1:{server.port}/0", password="right-secret")
        harnesses.append(good)
        assert good.run()
    finally:
        server.stop()


def test_a_stalled_server_gives_up_0_within_the_timeout_and_the_next_run_works(
        fresh_redis: Redis, harnesses: list[Harness], caplog: pytest.LogCaptureFixture) -> None:
    app = client(fresh_redis)
    app.set("k", "v")
    harness = Harness(fresh_redis.url, timeout="500ms", interval="5s", key_patterns=["k*"])
    harnesses.append(harness)
    assert harness.run()
    # DEBUG SLEEP blocks the whole server; send it without waiting for its answer. 5 s, ten times the run's
    # timeout: noticing the stall and the 500 ms run fit inside it on a loaded machine too
    stall = socket.create_connection(("127.0.0.1", fresh_redis.port))
    try:
        stall.sendall(b"DEBUG SLEEP 5\r\n")
        wait_for(lambda: not _answers(fresh_redis.port), timeout=5, what="the server stalls")
        with caplog.at_level(logging.DEBUG, logger="exporter.collectors.redis.collector"):
            assert not harness.run().up
        assert harness.value(metrics.REDIS_UP) == 0
        assert harness.value(metrics.REDIS_MEMORY_USED) is None  # a stalled server's gauges are not shown
        lines = _down_line(caplog)
        assert len(lines) == 1 and lines[0].__dict__["fields"]["reason"] == "timeout"
        assert stall.recv(64).startswith(b"+OK")  # the stall is over
    finally:
        stall.close()
    for _ in range(5):
        app.get("k")
    assert harness.run()  # no reply of the stalled command is left on the connection to confuse this run
    assert harness.run()
    assert harness.value(metrics.REDIS_HITS) == 5
    assert harness.value(metrics.REDIS_UP) == 1


def _answers(port: int) -> bool:
    """Whether the server answers a PING within 0.2 s (on a raw socket: redis-py would retry)."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as probe:
        probe.sendall(b"PING\r\n")
        try:
            return probe.recv(16).startswith(b"+PONG")
        except TimeoutError:
            return False


def test_tls_to_a_plain_port_gives_up_0_and_a_tls_log_line(
        fresh_redis: Redis, harnesses: list[Harness], caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(f"rediss://127.0.0.1:{fresh_redis.port}/0", timeout="500ms", interval="5s",
                      tls={"insecure_skip_verify": True})
    harnesses.append(harness)
    with caplog.at_level(logging.DEBUG, logger="exporter.collectors.redis.collector"):
        assert not harness.run().up
    assert harness.value(metrics.REDIS_UP) == 0
    lines = _down_line(caplog)
    assert len(lines) == 1 and lines[0].__dict__["fields"]["reason"] == "tls"
    assert "TLS" in lines[0].__dict__["fields"]["cause"]


def test_a_down_server_gives_up_0_and_a_connect_log_line_then_recovers(
        tmp_path: Path, harnesses: list[Harness], caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    harness = Harness(f"redis://127.0.0.1:{port}/0")
    harnesses.append(harness)
    with caplog.at_level(logging.DEBUG, logger="exporter.collectors.redis.collector"):
        assert not harness.run().up
        lines = _down_line(caplog)
        assert len(lines) == 1 and lines[0].__dict__["fields"]["reason"] == "connect"
        server = Redis(tmp_path / "r", port=port).start()
        try:
            assert harness.run()
        finally:
            server.stop()
    assert harness.value(metrics.REDIS_UP) == 1
    assert [r for r in caplog.records if r.getMessage() == "redis_recovered"]


def test_http_scheme_from_the_guide_is_read_as_redis() -> None:
    cfg = RedisTarget.model_validate({"name": "cache", "url": "http://localhost:6379"})
    assert cfg.url.get_secret_value() == "redis://localhost:6379"


@pytest.mark.parametrize(("patterns", "error"), [
    (["order:*", "other"], "redis[0]: key pattern 'other' is reserved"),
    (["order:*", "order:*"], "redis[0]: key_patterns lists a pattern twice"),
])
def test_key_patterns_that_would_make_ambiguous_series_are_rejected(patterns: list[str], error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"redis": [{"name": "cache", "key_patterns": patterns}]}, "redis.yml", env={})
    assert f"redis.yml: {error}" in str(caught.value)


# ---------------------------------------------------------------------------------------------------------------
# Pure parts, on data


def test_counter_mirror_counts_increases_and_restarts_from_zero_after_a_restart_or_reset() -> None:
    mirror = CounterMirror()
    assert mirror.advance("a", {"hits": 100}) == {"hits": 0}  # before we watched: not counted
    assert mirror.advance("a", {"hits": 130}) == {"hits": 30}
    assert mirror.advance("b", {"hits": 7}) == {"hits": 7}  # restart: new run_id
    assert mirror.advance("b", {"hits": 5}) == {"hits": 5}  # CONFIG RESETSTAT: below the last value
    assert mirror.advance("b", {"hits": 5, "new": 2}) == {"hits": 0, "new": 2}
    mirror.rebase("b", {"hits": 50})  # our own lookups moved it: not counted
    assert mirror.advance("b", {"hits": 51}) == {"hits": 1}


def test_info_fields_become_keyspace_command_and_latency_data() -> None:
    info = {
        "db0": {"keys": 10, "expires": 4, "avg_ttl": 1},
        "db3": {"keys": 1, "expires": 0},
        "cmdstat_get": {"calls": 5, "usec": 2500, "usec_per_call": 500.0},
        "cmdstat_client|list": {"calls": 1, "usec": 10},
        "latency_percentiles_usec_get": {"p50": 1.003, "p99": 20.0, "p99.9": 30.0},
        "dbfilename": "dump.rdb",
    }
    assert keyspace(info) == {"0": (10.0, 4.0), "3": (1.0, 0.0)}
    # a field this server does not report (Redis 6, a compatible server) is skipped, not zero
    assert numbers({"evicted_keys": 3, "role": "master"}, ("evicted_keys", "expired_keys", "role")) == {
        "evicted_keys": 3.0}
    stats = command_stats(info)
    assert stats["get"].calls == 5 and stats["get"].seconds == pytest.approx(0.0025)
    assert stats["client|list"].calls == 1
    assert latency_percentiles(info) == {("get", "p50"): pytest.approx(1.003e-6),
                                         ("get", "p99"): pytest.approx(20e-6),
                                         ("get", "p99.9"): pytest.approx(30e-6)}


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("order:*", b"order:42", True),
    ("order:*", b"orders:42", False),
    ("driver:location:*", b"driver:location:7", True),
    ("session:?", b"session:a", True),
    ("session:?", b"session:ab", False),
    ("h[ae]llo", b"hallo", True),
    ("h[^e]llo", b"hello", False),
    ("h[a-b]llo", b"hbllo", True),
    ("h[b-a]llo", b"hallo", True),  # Redis accepts reversed ranges
    ("a\\*b", b"a*b", True),
    ("a\\*b", b"axb", False),
    ("x.y", b"xzy", False),  # regex characters are literal
    ("*", b"line\nbreak", True),
])
def test_patterns_match_keys_as_redis_glob_does(pattern: str, key: bytes, matches: bool) -> None:
    assert (glob_regex(pattern).fullmatch(key) is not None) is matches


def test_a_key_belongs_to_the_first_matching_pattern_else_other() -> None:
    classifier = KeyClassifier(["driver:location:*", "driver:*"])
    assert classifier.classify(b"driver:location:1") == "driver:location:*"
    assert classifier.classify(b"driver:9") == "driver:*"
    assert classifier.classify(b"trip:1") == "other"


def test_scan_replies_beyond_the_budget_wait_for_the_next_run() -> None:
    cursor = ScanCursor()
    batch = cursor.take(3)
    cursor.receive(17, [b"a", b"b", b"c", b"d", b"e"], batch, 3)
    assert batch == [b"a", b"b", b"c"] and cursor.cursor == 17 and not cursor.pass_complete
    batch = cursor.take(3)
    assert batch == [b"d", b"e"]
    cursor.receive(0, [b"f", b"g"], batch, 3)
    assert batch == [b"d", b"e", b"f"] and not cursor.pass_complete  # g still waits
    assert cursor.take(3) == [b"g"] and cursor.pass_complete


def test_scan_pass_ratios_and_ttls() -> None:
    scan = ScanPass()
    for ttl in (None, pttl_seconds(30_000), pttl_seconds(-1), pttl_seconds(1)):
        scan.add_key("order:*", ttl)
    assert pttl_seconds(30_000) == 30.0 and pttl_seconds(-1) is None
    assert scan.stats("order:*").without_ttl_ratio == 0.5
    assert scan.stats("other").without_ttl_ratio is None
