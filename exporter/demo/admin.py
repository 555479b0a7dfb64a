"""The demo's own routes: ``/health``, the fault knobs (``/admin/faults``), tokens (``/admin/tokens``) and the
count of requests received (``/admin/received``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.config.units import parse_duration
from exporter.demo.cache import CacheUnavailable
from exporter.demo.faults import Faults, updated_faults
from exporter.demo.security import ROLES, mint_token
from exporter.demo.state import DemoState
from exporter.demo.storage import POOL_SIZE, PostgresStore
from exporter.logs import event

log = logging.getLogger(__name__)


class DemoAdmin:
    def __init__(self, state: DemoState) -> None:
        self.state = state

    async def health(self, request: Request) -> Response:
        state = self.state
        db_ok, cache_ok = await asyncio.gather(state.store.healthy(), state.cache.healthy())
        body = {"status": "ok" if db_ok and cache_ok else "degraded",
                "storage": {"kind": state.store.kind, "up": db_ok},
                "cache": {"kind": state.cache.kind, "up": cache_ok},
                "faults": state.faults.as_json()}
        return JSONResponse(body, status_code=200 if db_ok and cache_ok else 503)

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.state.faults.as_json())

    async def get_received(self, request: Request) -> Response:
        """How many requests this process received (each ``--workers`` process counts its own)."""
        return JSONResponse({"received": self.state.received})

    async def set_faults(self, request: Request) -> Response:
        try:
            data = json.loads(await request.body() or b"{}")
            faults = updated_faults(self.state.faults, data)
            if faults.hole("sqli") and not isinstance(self.state.store, PostgresStore):
                raise ValueError("vulnerable: 'sqli' needs the demo on PostgreSQL (--postgres): in memory there "
                                 "is no SQL to inject")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        await self._apply_faults(faults)
        return JSONResponse(faults.as_json())

    async def clear_faults(self, request: Request) -> Response:
        await self._apply_faults(Faults())
        return JSONResponse(self.state.faults.as_json())

    async def _apply_faults(self, faults: Faults) -> None:
        before = self.state.faults
        self.state.faults = faults
        await self.state.store.pool.resize(faults.db_pool_size or POOL_SIZE)
        await self.state.hold_trip_locks(faults.lock_contention)
        dropped = 0
        try:
            if faults.cache == "off" and before.cache == "on":
                dropped = await self.state.cache.drop_all_orders()  # the cache is cold from now on
            if faults.cache_ttl_seconds is not None and faults.cache_ttl_seconds != before.cache_ttl_seconds:
                await self.state.cache.expire_orders(faults.cache_ttl_seconds)  # the cached ones too
        except CacheUnavailable as exc:
            self.state.backend_failed("redis", str(exc))
        event(log, logging.INFO, "demo_faults_set", **faults.as_json(), cached_orders_dropped=dropped)

    async def mint(self, request: Request) -> Response:
        """``POST /admin/tokens {"user": "7", "role": "rider", "ttl": "1h"}``: a signed token (admin only)."""
        security = self.state.security
        if security is None:
            return JSONResponse({"error": "the demo's security is off: it takes no tokens (DEMO_SECURITY=on)"},
                                status_code=404)
        try:
            data = json.loads(await request.body() or b"{}")
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object like {\"user\": \"7\", \"role\": \"rider\"}")
            role = data.get("role", "rider")
            if role not in ROLES:
                raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
            ttl = parse_duration(data["ttl"]) if "ttl" in data else security.token_ttl
            expires = time.time() + ttl
            token = mint_token(security.key, str(data.get("user", "")), role, expires)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"token": token, "expires_at": int(expires)})
