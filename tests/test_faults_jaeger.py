"""Jaeger's query service going away between polls, between two requests of one poll, or in the middle of an
answer, then coming back on its port. For that poll: a failure (``up`` 0), one log line with the real cause, and
what was counted kept; back again, the traces not yet counted are counted, each once."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.jaeger_replay import JaegerReplay, fixture_trace
from tests.servers import wait_for
from tests.test_jaeger_collector import FIXTURES, harnesses, make, now_us, replays  # noqa: F401 - fixtures

TRACES = "perf_trace_duration_seconds_count"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("exporter")]


@pytest.mark.parametrize("api", ["v3", "v1"])
@pytest.mark.parametrize("when", ["between polls", "after the service list", "mid-answer"])
def test_jaeger_gone_at_any_point_of_a_poll_then_back(make: Any, api: str, when: str,  # noqa: F811
                                                      caplog: pytest.LogCaptureFixture) -> None:
    replay, h = make(api=api, summaries=False)
    first, *later = FIXTURES
    start = now_us() - 120_000_000
    replay.add(fixture_trace(first), start)
    assert h.run() == "success", h.error
    counted = h.total(TRACES)
    assert counted == 1
    for name in later:
        replay.add(fixture_trace(name), start)
    port = int(urlsplit(replay.url).port or 0)

    search = "/api/v3/traces" if api == "v3" else "/api/traces"
    if when == "between polls":
        replay.kill()
    elif when == "after the service list":
        replay.cut = lambda request: -1 if request.path == search else None  # the search finds it gone
    else:
        replay.cut = lambda request: 20 if request.path == search else None  # headers and 20 bytes, then gone

    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert h.run() == "failure"
    lines = warnings_of(caplog)
    assert [r.getMessage() for r in lines] == ["jaeger_unreachable"], [(r.getMessage(), r.__dict__.get("fields"))
                                                                      for r in lines]
    cause = lines[0].__dict__["fields"]["cause"]
    assert "Error" in cause and str(port) in cause, cause
    assert h.value("perf_target_up", collector="jaeger") == 0
    assert h.total(TRACES) == counted  # kept, and nothing half-read counted

    back = JaegerReplay(api=api, summaries=False)
    back.traces = replay.traces
    wait_for(lambda: bool(back.start(port)), timeout=10, what=f"port {port} free again")
    try:
        assert h.run() == "success", h.error
        assert h.value("perf_target_up", collector="jaeger") == 1
        assert h.total(TRACES) == len(FIXTURES)  # the others once each, the first not again
        assert h.run() == "success", h.error
        assert h.total(TRACES) == len(FIXTURES)
    finally:
        back.stop()
