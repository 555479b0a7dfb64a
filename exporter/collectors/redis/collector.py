"""The Redis collector: INFO, PING, queue depths and key-pattern sampling of one ``redis:`` target.

Each run:

1. ``PING``, timed (``perf_redis_ping_duration_seconds``).
2. ``INFO all`` and ``SLOWLOG LEN`` in one round trip, into gauges, and into our own counters by the increase
   since the last reading (:class:`~exporter.collectors.redis.info.CounterMirror`), so a restart or
   ``CONFIG RESETSTAT`` never makes an exported counter go backwards.
3. Queue depths (``LLEN``/``XLEN``/``XINFO GROUPS``) and key sampling (``PTTL``, ``MEMORY USAGE``) run inside
   *measured windows*: a Lua script (for sampling; a ``MULTI`` transaction for queues, or where scripting is
   denied) that reads ``run_id`` and ``INFO stats``, does our lookups, and reads ``INFO stats`` again. Scripts
   and transactions run alone on the server, so the change of ``keyspace_hits``/``keyspace_misses`` across the
   window is exactly what our lookups caused: we count the application's share up to the window's first reading
   and skip the window. (Checked against Redis 7.0: ``TTL``, ``PTTL``, ``TYPE``, ``EXISTS``, ``LLEN``,
   ``XLEN``, ``OBJECT`` count as hits or misses; ``SCAN`` and ``MEMORY USAGE`` do not, so ``SCAN`` runs
   outside.)
4. ``SCAN`` (never ``KEYS``) looks at no more than ``scan_budget`` keys per run, continuing its cursor across
   runs; a pass's per-pattern aggregates are published when the pass completes.

Failures (refused, timeout, stalled server, wrong password, TLS mismatch) give ``perf_redis_up 0`` and one log
line when the cause changes; the connection pool is dropped so the next run starts on a clean connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from exporter import metrics
from exporter.collectors.redis.info import (
    CounterMirror,
    command_stats,
    keyspace,
    latency_percentiles,
    number,
    numbers,
)
from exporter.collectors.redis.key_patterns import (
    PTTL_GONE,
    KeyClassifier,
    ScanCursor,
    ScanPass,
    pttl_seconds,
)
from exporter.collectors.redis.target import RedisTarget
from exporter.jobs import UP, JobContext, Outcome, down
from exporter.logs import event
from exporter.secrets import mask_url, safe_url

log = logging.getLogger(__name__)


HIT_FAMILIES = {"keyspace_hits": metrics.REDIS_HITS, "keyspace_misses": metrics.REDIS_MISSES}
HIT_FIELDS = tuple(HIT_FAMILIES)
COUNTER_FIELDS = {"evicted_keys": metrics.REDIS_EVICTED, "expired_keys": metrics.REDIS_EXPIRED}
GAUGE_FIELDS = {
    "used_memory": metrics.REDIS_MEMORY_USED,
    "maxmemory": metrics.REDIS_MEMORY_MAX,
    "used_memory_rss": metrics.REDIS_MEMORY_RSS,
    "connected_clients": metrics.REDIS_CLIENTS,
    "blocked_clients": metrics.REDIS_BLOCKED,
}
# Gauges that describe a live server; they disappear while it cannot be reached.
SERVER_GAUGES = (*GAUGE_FIELDS.values(), metrics.REDIS_KEYS, metrics.REDIS_KEYS_EXPIRING,
                 metrics.REDIS_COMMAND_LATENCY, metrics.REDIS_SLOWLOG_LENGTH, metrics.REDIS_ROLE,
                 metrics.REDIS_QUEUE_LENGTH, metrics.REDIS_QUEUE_LAG)

# The measured window as one Lua script: the counters before, our lookups, the counters after. ARGV[1] holds
# one character per key, "1" where MEMORY USAGE is wanted too; sizes come for those keys only, -1 if gone.
LOOKUP_SCRIPT = """
local function counter(text, name)
  return tonumber(string.match(text, name .. ':(%d+)')) or 0
end
local server = redis.call('INFO', 'server')
local before = redis.call('INFO', 'stats')
local pttls, sizes = {}, {}
for i, key in ipairs(KEYS) do
  pttls[i] = redis.call('PTTL', key)
  if string.byte(ARGV[1], i) == 49 then
    sizes[#sizes + 1] = redis.call('MEMORY', 'USAGE', key) or -1
  end
end
local after = redis.call('INFO', 'stats')
return {string.match(server, 'run_id:(%x+)') or '',
        counter(before, 'keyspace_hits'), counter(before, 'keyspace_misses'),
        counter(after, 'keyspace_hits'), counter(after, 'keyspace_misses'), pttls, sizes}
"""
Lookups = tuple[list[int | None], list[int | None]]  # PTTL replies, MEMORY USAGE replies, per key

WINDOW_KEYS = 250  # keys per measured window: bounds how long one script holds the server (~0.3 ms)
RUN_TIMEOUT_SHARE = 0.9  # a run ends before the scheduler's deadline: a stall is our failure, not its timeout
SOCKET_TIMEOUT_SHARE = 0.8  # a command ends before the run's bound, so it fails with redis-py's own message
SCAN_COUNT = 250  # keys asked of one SCAN call: bounds how long it holds the server (~0.6 us a key)


def redis_client(cfg: RedisTarget) -> aioredis.Redis:
    """A client whose every command (and connect) is bounded by the target's timeout, with no retries: a
    failed command fails the run, and the next run reconnects."""
    url = cfg.url.get_secret_value()
    kwargs: dict[str, Any] = {
        "socket_timeout": cfg.timeout * SOCKET_TIMEOUT_SHARE,
        "socket_connect_timeout": cfg.timeout * SOCKET_TIMEOUT_SHARE,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "client_name": "perf-exporter",
        "max_connections": 4,
    }
    try:  # redis-py >= 7 sends CLIENT MAINT_NOTIFICATIONS on connect, an error on self-hosted Redis
        from redis.maint_notifications import MaintNotificationsConfig
        kwargs["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    except ImportError:
        pass
    if cfg.username is not None:
        kwargs["username"] = cfg.username
    if cfg.password is not None:
        kwargs["password"] = cfg.password.get_secret_value()
    if url.startswith("rediss://"):
        tls = cfg.tls
        kwargs["ssl_ca_certs"] = str(tls.ca_file) if tls.ca_file else None
        kwargs["ssl_certfile"] = str(tls.cert_file) if tls.cert_file else None
        kwargs["ssl_keyfile"] = str(tls.key_file) if tls.key_file else None
        if tls.insecure_skip_verify:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
    return aioredis.Redis.from_url(url, **kwargs)


def failure_cause(exc: BaseException, cfg: RedisTarget) -> tuple[str, str]:
    """(reason, human cause) for a failed run; ``reason`` is a short stable word for log filters."""
    text = mask_url(f"{type(exc).__name__}: {exc}")
    message = str(exc)
    if isinstance(exc, AuthenticationError) or (
            isinstance(exc, ResponseError) and message.startswith(("WRONGPASS", "NOAUTH", "NOPERM"))):
        return "auth", f"authentication failed: check the password and username ({text})"
    tls = cfg.url.get_secret_value().startswith("rediss://")
    if tls and isinstance(exc, RedisTimeoutError) and "connecting" in message:
        return "tls", (f"TLS handshake got no answer within {cfg.timeout * SOCKET_TIMEOUT_SHARE:g}s: does the "
                       f"port speak TLS? rediss:// needs a TLS port, redis:// a plain one ({text})")
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timeout", (f"no answer within {cfg.timeout:g}s: the server is down, stalled or overloaded "
                           f"({text})")
    tls_failure = isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError) or "SSL" in message
    if tls_failure:
        return "tls", (f"TLS handshake failed: does the port speak TLS (rediss://) or plain Redis "
                       f"(redis://)? ({text})")
    if isinstance(exc, RedisConnectionError | OSError):
        return "connect", f"cannot connect ({text})"
    return "error", text


class RedisCollector:
    def __init__(self, cfg: RedisTarget, context: JobContext) -> None:
        self.cfg = cfg
        self.store = context.store
        self.target = cfg.name
        self.client = redis_client(cfg)
        self.classifier = KeyClassifier(cfg.key_patterns)
        self.hits = CounterMirror()  # keyspace hits/misses: advanced by readings, rebased past our windows
        self.server_counters = CounterMirror()  # evictions, expirations
        self.calls = CounterMirror()  # per-command calls
        self.call_seconds = CounterMirror()  # per-command time
        self.window_unconfirmed = False  # a window was sent but its reply never came: its share is unknown
        self.cursor = ScanCursor()
        self.current_pass = ScanPass()
        self.last_pass: ScanPass | None = None
        self.last_failure: str | None = None
        self.lookup_script = self.client.register_script(LOOKUP_SCRIPT)
        self.script_allowed = True
        self._declare_series()

    def _declare_series(self) -> None:
        t = self.target
        for family in (*HIT_FAMILIES.values(), *COUNTER_FIELDS.values()):
            self.store.ensure_counter(family, target=t)
        self.store.ensure_histogram(metrics.REDIS_PING, target=t)
        self.store.set(metrics.REDIS_UP, 0.0, target=t)
        if self.cfg.scan_budget > 0:
            self.store.ensure_counter(metrics.REDIS_SCANNED_KEYS, target=t)
            self.store.ensure_counter(metrics.REDIS_SCAN_PASSES, target=t)
            for pattern in self.classifier.labels:
                self.store.ensure_histogram(metrics.REDIS_PATTERN_TTL, target=t, pattern=pattern)

    # -------------------------------------------------------------------------------------------------------
    # The job interface

    async def run(self) -> Outcome:
        try:
            async with asyncio.timeout(self.cfg.timeout * RUN_TIMEOUT_SHARE):
                await self._collect()
        except (RedisError, OSError, TimeoutError) as exc:
            return await self._failed(exc)
        if self.last_failure is not None:
            event(log, logging.INFO, "redis_recovered", target=self.target, url=safe_url(self._url()))
            self.last_failure = None
        self.store.set(metrics.REDIS_UP, 1.0, target=self.target)
        return UP

    async def close(self) -> None:
        await self.client.aclose()

    def _url(self) -> str:
        return self.cfg.url.get_secret_value()

    async def _failed(self, exc: BaseException) -> Outcome:
        reason, cause = failure_cause(exc, self.cfg)
        self.store.set(metrics.REDIS_UP, 0.0, target=self.target)
        for family in SERVER_GAUGES:
            self.store.replace(family, {})
        # Whatever state the connections are in (a reply may still be on its way), start clean next run.
        await self._drop_connections()
        # The keys of an interrupted batch are lost to the pass: start the walk again, so that a completed
        # pass always counts every key once.
        self._restart_walk()
        level = logging.WARNING if reason != self.last_failure else logging.DEBUG
        event(log, level, "redis_down", target=self.target, url=safe_url(self._url()), reason=reason,
              cause=cause)
        self.last_failure = reason
        return down("redis_down", cause)

    # -------------------------------------------------------------------------------------------------------
    # One collection

    async def _collect(self) -> None:
        started = time.perf_counter()
        try:
            await self.client.ping()
        except AuthenticationError:
            raise
        except RedisConnectionError:
            # A pooled connection the server closed since the last run (a restart, an idle timeout): one fresh
            # try. Only here: a retried window could run our lookups twice and blur the hit counts.
            await self._drop_connections()
            started = time.perf_counter()
            await self.client.ping()
        self.store.observe(metrics.REDIS_PING, time.perf_counter() - started, target=self.target)

        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("INFO", "all")
        pipe.execute_command("SLOWLOG", "LEN")
        info, slowlog_length = await pipe.execute()
        self._export_info(info)
        self.store.set(metrics.REDIS_SLOWLOG_LENGTH, float(slowlog_length), target=self.target)

        if self.cfg.queues:
            await self._collect_queues()
        if self.cfg.scan_budget > 0:
            await self._sample_keys()

    def _export_info(self, info: Mapping[str, Any]) -> None:
        t = self.target
        run_id = str(info.get("run_id", ""))
        if self.hits.run_id is not None and run_id != self.hits.run_id:
            self._restart_walk()  # a restarted server: its keyspace is not the one the pass was walking
        self._count_hits(run_id, info)

        counters = numbers(info, tuple(COUNTER_FIELDS))
        for name, delta in self.server_counters.advance(run_id, counters).items():
            self.store.inc(COUNTER_FIELDS[name], delta, target=t)

        for name, family in GAUGE_FIELDS.items():
            value = number(info, name)
            if value is None:
                self.store.remove(family, target=t)
            else:
                self.store.set(family, value, target=t)

        dbs = keyspace(info)
        self.store.replace(metrics.REDIS_KEYS, {(self.target, db): keys for db, (keys, _) in dbs.items()})
        self.store.replace(metrics.REDIS_KEYS_EXPIRING,
                           {(self.target, db): expiring for db, (_, expiring) in dbs.items()})

        stats = command_stats(info)
        calls = self.calls.advance(run_id, {cmd: s.calls for cmd, s in stats.items()})
        seconds = self.call_seconds.advance(run_id, {cmd: s.seconds for cmd, s in stats.items()})
        for cmd, delta in calls.items():
            self.store.inc(metrics.REDIS_COMMANDS, delta, target=t, cmd=cmd)
        for cmd, delta in seconds.items():
            self.store.inc(metrics.REDIS_COMMAND_DURATION, delta, target=t, cmd=cmd)

        latencies = latency_percentiles(info)
        self.store.replace(metrics.REDIS_COMMAND_LATENCY,
                           {(self.target, cmd, q): value for (cmd, q), value in latencies.items()})
        role = info.get("role")
        self.store.replace(metrics.REDIS_ROLE, {(self.target, str(role)): 1.0} if role else {})

    def _count_hits(self, run_id: str, reading: Mapping[str, Any]) -> None:
        """Add the application's hits and misses since the last reading."""
        values = numbers(reading, HIT_FIELDS)
        if self.window_unconfirmed:
            # A window ran (or may have) without us seeing its readings: we cannot tell its lookups from the
            # application's, so this interval is skipped rather than counting ours as the application's.
            self.hits.rebase(run_id, values)
            self.window_unconfirmed = False
            return
        for name, delta in self.hits.advance(run_id, values).items():
            self.store.inc(HIT_FAMILIES[name], delta, target=self.target)

    def _window_seen(self, unconfirmed: bool, run_id: str, before: Mapping[str, Any],
                     after: Mapping[str, Any]) -> None:
        """A window's readings arrived: the application's hits up to ``before`` count, ours up to ``after`` do
        not. ``unconfirmed`` is the flag as it was before the window was sent."""
        self.window_unconfirmed = unconfirmed
        self._count_hits(run_id, before)
        self.hits.rebase(run_id, numbers(after, HIT_FIELDS))

    async def _window(self, add_commands: Callable[[Pipeline], None]) -> list[Any]:
        """Run our own lookups in a measured window; returns their replies (errors as exception objects)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.execute_command("INFO", "server")
        pipe.execute_command("INFO", "stats")
        add_commands(pipe)
        pipe.execute_command("INFO", "stats")
        unconfirmed, self.window_unconfirmed = self.window_unconfirmed, True
        replies = await pipe.execute(raise_on_error=False)
        server, before, *own, after = replies
        for reading in (server, before, after):
            if isinstance(reading, Exception):
                raise reading
        self._window_seen(unconfirmed, str(server.get("run_id", "")), before, after)
        return own

    # -------------------------------------------------------------------------------------------------------
    # Queues

    async def _collect_queues(self) -> None:
        queues = self.cfg.queues

        def commands(pipe: Pipeline) -> None:
            # A missing key answers 0 to LLEN and XLEN; a list answers WRONGTYPE to XLEN, a stream to LLEN.
            for queue in queues:
                pipe.llen(queue)
                pipe.xlen(queue)
                pipe.xinfo_groups(queue)

        replies = await self._window(commands)
        lengths: dict[tuple[str, ...], float] = {}
        lags: dict[tuple[str, ...], float] = {}
        for i, queue in enumerate(queues):
            llen, xlen, groups = replies[3 * i:3 * i + 3]
            if isinstance(llen, int) and not isinstance(xlen, int):
                lengths[(self.target, queue)] = float(llen)
            elif isinstance(xlen, int):
                lengths[(self.target, queue)] = float(xlen)
            if isinstance(groups, list):
                for group in groups:
                    lag = group.get("lag")
                    if isinstance(lag, int):
                        lags[(self.target, queue, _text(group.get("name")))] = float(lag)
        self.store.replace(metrics.REDIS_QUEUE_LENGTH, lengths)
        self.store.replace(metrics.REDIS_QUEUE_LAG, lags)

    # -------------------------------------------------------------------------------------------------------
    # Key-pattern sampling

    async def _sample_keys(self) -> None:
        budget = self.cfg.scan_budget
        batch = self.cursor.take(budget)
        calls, max_calls = 0, 2 * (budget // SCAN_COUNT) + 8  # in case SCAN keeps returning few keys (sparse)
        while len(batch) < budget and not self.cursor.walk_done and calls < max_calls:
            count = min(budget - len(batch), SCAN_COUNT)
            cursor, keys = await self.client.scan(self.cursor.cursor, count=count)
            self.cursor.receive(int(cursor), [_raw(key) for key in keys], batch, budget)
            calls += 1
        for start in range(0, len(batch), WINDOW_KEYS):
            await self._look_at(batch[start:start + WINDOW_KEYS])
        self.store.inc(metrics.REDIS_SCANNED_KEYS, len(batch), target=self.target)
        if self.cursor.pass_complete:
            self.last_pass, self.current_pass = self.current_pass, ScanPass()
            self.cursor.start_next_pass()
            self.store.inc(metrics.REDIS_SCAN_PASSES, target=self.target)
        self._publish_patterns()

    async def _look_at(self, keys: Sequence[bytes]) -> None:
        patterns = [self.classifier.classify(key) for key in keys]
        planned: dict[str, int] = {}  # MEMORY USAGE samples per pattern in this pass, this window's included
        measure: list[bool] = []
        for pattern in patterns:
            taken = planned.get(pattern, self.current_pass.stats(pattern).memory_samples)
            measure.append(taken < self.cfg.memory_samples)
            planned[pattern] = taken + measure[-1]
        if self.script_allowed:
            try:
                pttls, sizes = await self._lookups_by_script(keys, measure)
            except ResponseError as exc:  # scripting denied (ACL, a managed or compatible server)
                if str(exc).startswith(("NOSCRIPT", "BUSY")):
                    raise
                self.script_allowed = False
                event(log, logging.INFO, "redis_sampling_without_lua", target=self.target,
                      cause=mask_url(str(exc)), effect="sampling uses MULTI transactions (more client CPU)")
        if not self.script_allowed:
            pttls, sizes = await self._lookups_in_transaction(keys, measure)
        for key_pattern, pttl, size in zip(patterns, pttls, sizes, strict=True):
            if pttl is None or pttl == PTTL_GONE:
                continue  # deleted or expired since SCAN returned it
            ttl = pttl_seconds(pttl)
            self.current_pass.add_key(key_pattern, ttl)
            if ttl is not None:
                self.store.observe(metrics.REDIS_PATTERN_TTL, ttl, target=self.target, pattern=key_pattern)
            if size is not None and size >= 0:
                self.current_pass.add_memory(key_pattern, float(size))

    async def _lookups_by_script(self, keys: Sequence[bytes], measure: Sequence[bool]) -> Lookups:
        """PTTL of every key, MEMORY USAGE where ``measure``: one script, which like a transaction runs alone
        and reads the hit counters around our lookups; one reply of numbers instead of one per command."""
        flags = "".join("1" if wanted else "0" for wanted in measure)
        unconfirmed, self.window_unconfirmed = self.window_unconfirmed, True
        reply = await self.lookup_script(keys=list(keys), args=[flags])
        run_id, hits_before, misses_before, hits_after, misses_after, pttls, sizes = reply
        self._window_seen(unconfirmed, _text(run_id),
                          {"keyspace_hits": hits_before, "keyspace_misses": misses_before},
                          {"keyspace_hits": hits_after, "keyspace_misses": misses_after})
        found = iter(int(size) for size in sizes)
        return ([int(p) for p in pttls], [next(found) if wanted else None for wanted in measure])

    async def _lookups_in_transaction(self, keys: Sequence[bytes], measure: Sequence[bool]) -> Lookups:
        def commands(pipe: Pipeline) -> None:
            for key in keys:
                pipe.pttl(key)
            for key, wanted in zip(keys, measure, strict=True):
                if wanted:
                    pipe.memory_usage(key)

        replies = await self._window(commands)
        pttls = [p if isinstance(p, int) else None for p in replies[:len(keys)]]
        found = iter(replies[len(keys):])
        sizes = [next(found) if wanted else None for wanted in measure]
        return pttls, [size if isinstance(size, int) else None for size in sizes]

    async def _drop_connections(self) -> None:
        # closing a socket that is already broken may fail; it is gone either way
        with contextlib.suppress(RedisError, OSError):
            await self.client.connection_pool.disconnect()

    def _restart_walk(self) -> None:
        self.cursor = ScanCursor()
        self.current_pass = ScanPass()

    def _publish_patterns(self) -> None:
        """The last complete pass; until the first pass completes, the pass in progress."""
        shown = self.last_pass if self.last_pass is not None else self.current_pass
        sampled: dict[tuple[str, ...], float] = {}
        no_ttl: dict[tuple[str, ...], float] = {}
        memory: dict[tuple[str, ...], float] = {}
        for pattern in self.classifier.labels:
            labels = (self.target, pattern)
            stats = shown.stats(pattern)
            sampled[labels] = float(stats.keys)
            if stats.without_ttl_ratio is not None:
                no_ttl[labels] = stats.without_ttl_ratio
            if stats.mean_memory_bytes is not None:
                memory[labels] = stats.mean_memory_bytes
        self.store.replace(metrics.REDIS_PATTERN_SAMPLED, sampled)
        self.store.replace(metrics.REDIS_PATTERN_NO_TTL, no_ttl)
        self.store.replace(metrics.REDIS_PATTERN_MEMORY, memory)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _raw(key: bytes | str) -> bytes:
    return key if isinstance(key, bytes) else key.encode()
