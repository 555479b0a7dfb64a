"""A loopback HTTP server with a known delay per request, for benchmarks.

GET /delay/<ms> sleeps that long and answers 200. GET /stats returns how long the server itself spent on each
delayed request (mean, in seconds), the "true" server time a probe should report.
"""

from __future__ import annotations

import asyncio
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

spent: list[float] = []


async def delay(request: Request) -> PlainTextResponse:
    started = time.perf_counter()
    await asyncio.sleep(int(request.path_params["ms"]) / 1000)
    spent.append(time.perf_counter() - started)
    return PlainTextResponse("ok\n")


async def stats(request: Request) -> JSONResponse:
    mean = sum(spent) / len(spent) if spent else None
    return JSONResponse({"requests": len(spent), "mean_seconds": mean})


app = Starlette(routes=[Route("/delay/{ms:int}", delay), Route("/stats", stats)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
