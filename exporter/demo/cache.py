"""The demo's Redis side: the cache-aside order cache, live driver locations and two list queues.

Keys, as a profiler sees them: ``order:{id}`` (JSON, TTL :data:`ORDER_TTL_SECONDS`), ``driver:location:{id}``
(JSON, TTL :data:`LOCATION_TTL_SECONDS`), and the lists ``trip:location:updates`` and ``notifications:outbox``
(producers LPUSH, a background consumer RPOPs, each kept under :data:`QUEUE_MAX` entries). Without Redis the
same operations run on dicts, with a simulated latency.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from exporter.config.units import as_redis_url
from exporter.demo.faults import STEP_LATENCY

ORDER_TTL_SECONDS = 60
LOCATION_TTL_SECONDS = 30
QUEUE_MAX = 10_000
LOCATION_QUEUE = "trip:location:updates"
NOTIFICATION_QUEUE = "notifications:outbox"
QUEUES = (LOCATION_QUEUE, NOTIFICATION_QUEUE)


def order_key(order_id: int) -> str:
    return f"order:{order_id}"


def location_key(driver_id: int) -> str:
    return f"driver:location:{driver_id}"


class CacheUnavailable(Exception):
    """Redis did not answer: order reads fall back to the database, queue writes get a 503."""


class Cache(Protocol):
    kind: str

    async def get_order(self, order_id: int) -> dict[str, Any] | None: ...

    async def set_order(self, order: dict[str, Any], ttl_seconds: int = ORDER_TTL_SECONDS) -> None: ...

    async def drop_order(self, order_id: int) -> None: ...

    async def drop_all_orders(self) -> int: ...

    async def expire_orders(self, ttl_seconds: int) -> int: ...

    async def set_location(self, driver_id: int, location: dict[str, Any]) -> None: ...

    async def enqueue(self, queue: str, payload: dict[str, Any]) -> int: ...

    async def consume(self, queue: str, count: int) -> int: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


class RedisCache:
    kind = "redis"

    def __init__(self, url: str) -> None:
        self.client = aioredis.from_url(as_redis_url(url), socket_timeout=2, socket_connect_timeout=2,
                                        decode_responses=True)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        raw = await self._call(self.client.get(order_key(order_id)))
        return json.loads(raw) if raw else None

    async def set_order(self, order: dict[str, Any], ttl_seconds: int = ORDER_TTL_SECONDS) -> None:
        await self._call(self.client.set(order_key(order["id"]), json.dumps(order), ex=ttl_seconds))

    async def drop_order(self, order_id: int) -> None:
        await self._call(self.client.delete(order_key(order_id)))

    async def drop_all_orders(self) -> int:
        dropped = 0
        async def scan() -> None:
            nonlocal dropped
            batch: list[str] = []
            async for key in self.client.scan_iter(match="order:*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    dropped += await self.client.unlink(*batch)
                    batch.clear()
            if batch:
                dropped += await self.client.unlink(*batch)
        await self._call(scan())
        return dropped

    async def expire_orders(self, ttl_seconds: int) -> int:
        """Cached orders expire within ``ttl_seconds`` from now (those due sooner keep their TTL)."""
        changed = 0

        async def scan() -> None:
            nonlocal changed
            async with self.client.pipeline(transaction=False) as pipe:
                async for key in self.client.scan_iter(match="order:*", count=500):
                    pipe.expire(key, ttl_seconds, lt=True)
                changed = sum(1 for done in await pipe.execute() if done)
        await self._call(scan())
        return changed

    async def set_location(self, driver_id: int, location: dict[str, Any]) -> None:
        await self._call(self.client.set(location_key(driver_id), json.dumps(location), ex=LOCATION_TTL_SECONDS))

    async def enqueue(self, queue: str, payload: dict[str, Any]) -> int:
        async def push() -> int:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.lpush(queue, json.dumps(payload))
                pipe.ltrim(queue, 0, QUEUE_MAX - 1)
                length, _ = await pipe.execute()
            return int(length)
        result: int = await self._call(push())
        return result

    async def consume(self, queue: str, count: int) -> int:
        popped = await self._call(self.client.rpop(queue, count))
        return len(popped) if popped else 0

    async def healthy(self) -> bool:
        try:
            await self._call(self.client.ping())
        except CacheUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self.client.aclose()


class MemoryCache:
    """The same operations on dicts and deques, with expiry checked on read."""

    kind = "memory"

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.values: dict[str, tuple[float, str]] = {}
        self.queues: dict[str, deque[str]] = {q: deque(maxlen=QUEUE_MAX) for q in QUEUES}

    async def _wait(self) -> None:
        await asyncio.sleep(STEP_LATENCY["memory_cache"].sample(self.rng))

    def _get(self, key: str) -> str | None:
        entry = self.values.get(key)
        if entry is None or entry[0] < time.monotonic():
            self.values.pop(key, None)
            return None
        return entry[1]

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        await self._wait()
        raw = self._get(order_key(order_id))
        return json.loads(raw) if raw else None

    async def set_order(self, order: dict[str, Any], ttl_seconds: int = ORDER_TTL_SECONDS) -> None:
        await self._wait()
        self.values[order_key(order["id"])] = (time.monotonic() + ttl_seconds, json.dumps(order))

    async def drop_order(self, order_id: int) -> None:
        await self._wait()
        self.values.pop(order_key(order_id), None)

    async def drop_all_orders(self) -> int:
        keys = [k for k in self.values if k.startswith("order:")]
        for key in keys:
            del self.values[key]
        return len(keys)

    async def expire_orders(self, ttl_seconds: int) -> int:
        due = time.monotonic() + ttl_seconds
        keys = [k for k, (at, _) in self.values.items() if k.startswith("order:") and at > due]
        for key in keys:
            self.values[key] = (due, self.values[key][1])
        return len(keys)

    async def set_location(self, driver_id: int, location: dict[str, Any]) -> None:
        await self._wait()
        self.values[location_key(driver_id)] = (time.monotonic() + LOCATION_TTL_SECONDS, json.dumps(location))

    async def enqueue(self, queue: str, payload: dict[str, Any]) -> int:
        await self._wait()
        self.queues[queue].appendleft(json.dumps(payload))
        return len(self.queues[queue])

    async def consume(self, queue: str, count: int) -> int:
        items = self.queues[queue]
        popped = min(count, len(items))
        for _ in range(popped):
            items.pop()
        return popped

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
