"""Sharing an endpoint's excess over the parts of its requests, by magnitude, on data alone."""

from __future__ import annotations

import pytest

from exporter.collectors.jaeger.breakdown import DB, SELF, SERIAL
from exporter.reports.attribution import (
    NETWORK,
    NO_TRACES,
    OUTSIDE,
    TRANSFER,
    PartKey,
    PathTime,
    Route,
    RoutePeriod,
    attribute,
    route_of,
)

OPERATIONS = [("api-gateway", "GET /api/v1/orders/{id}"), ("api-gateway", "POST /api/v1/orders"),
              ("api-gateway", "POST /api/v1/orders/{id}/cancel"), ("api-gateway", "GET /api/v1/orders/recent"),
              ("api-gateway", "authenticate")]


def test_an_endpoint_takes_the_route_its_method_and_path_match_most_specifically() -> None:
    assert route_of("GET", "/api/v1/orders/1", OPERATIONS) == ("api-gateway", "GET /api/v1/orders/{id}")
    assert route_of("get", "/api/v1/orders/1?x=1", OPERATIONS) == ("api-gateway", "GET /api/v1/orders/{id}")
    assert route_of("GET", "/api/v1/orders/recent", OPERATIONS) == ("api-gateway", "GET /api/v1/orders/recent")
    assert route_of("POST", "/api/v1/orders/9/cancel", OPERATIONS) == ("api-gateway",
                                                                       "POST /api/v1/orders/{id}/cancel")
    assert route_of("DELETE", "/api/v1/orders/1", OPERATIONS) is None
    assert route_of("GET", "/health", OPERATIONS) is None
    assert route_of("GET", "/api/v1/trips/7", [("gw", "GET /api/v1/trips/:id")]) == ("gw", "GET /api/v1/trips/:id")


def period(traces: float, **parts: float) -> RoutePeriod:
    """Per-trace seconds by part name: ``gateway`` (its own work), ``stmt`` (a statement), ``serial``."""
    kinds = {"gateway": (SELF, "api-gateway", "GET /x"), "service": (SELF, "order-service", "get_order"),
             "stmt": (DB, "order-service", "SELECT orders"), "serial": (SERIAL, "order-service", "create_order")}
    return RoutePeriod(traces, tuple(PathTime(kinds[k][1], kinds[k][0], kinds[k][2], v, 1.0) for k, v in parts.items()))


def route(window: RoutePeriod, baseline: RoutePeriod | None = None) -> Route:
    return Route("jaeger", "api-gateway", "GET /x", window, baseline)


def shares(a: object) -> dict[str, float]:
    return {p.key.kind + ":" + p.key.service: round(p.share, 3) for p in a.parts}  # type: ignore[attr-defined]


def test_what_grew_since_the_baseline_explains_the_excess_however_large_the_parts_that_did_not() -> None:
    # the service's own 400 ms did not change; the statement went from 5 to 305 ms and the gateway from 1 to 101
    before = period(50, service=0.4, stmt=0.005, gateway=0.001)
    now = period(50, service=0.4, stmt=0.305, gateway=0.101)
    a = attribute("get_order", "gw", 0.9, 0.5, {"wait": 0.806}, route(now, before), {"wait": 0.406}, 0.45)
    assert shares(a) == {"db:order-service": 0.75, "self:api-gateway": 0.25}
    assert a.excess_s == pytest.approx(0.4)
    stmt = a.parts[0]
    assert stmt.explained_s == pytest.approx(0.3) and stmt.now_s == pytest.approx(0.305)
    assert stmt.then_s == pytest.approx(0.005) and stmt.added_s == pytest.approx(0.3)
    assert "since the baseline" in a.basis


def test_without_a_baseline_each_part_is_weighed_by_its_whole_time_and_the_basis_says_so() -> None:
    now = period(50, service=0.4, stmt=0.305, gateway=0.101)
    a = attribute("get_order", "gw", 0.9, 0.5, {"wait": 0.806}, route(now))
    assert shares(a) == {"self:order-service": 0.496, "db:order-service": 0.378, "self:api-gateway": 0.125}
    assert "no baseline" in a.basis


def test_a_baseline_already_over_target_shares_the_growth_by_what_grew_and_the_old_excess_by_what_was_there() -> None:
    # P95 620 ms then, 750 ms now, target 500 ms: 120 ms of the 250 ms excess was already there, 130 ms is new;
    # the statement grew by 100 ms and is all of the growth, the service's own 400 ms did not change
    before = period(50, service=0.4, stmt=0.2)
    now = period(50, service=0.4, stmt=0.3)
    a = attribute("get_order", "gw", 0.75, 0.5, {"wait": 0.7}, route(now, before), {"wait": 0.6}, 0.62)
    assert "130 ms the P95 grew by" in a.basis and "120 ms it was over its target in the baseline too" in a.basis
    # statement: 130 + 120 x 0.2/0.6 = 170 ms; service: 120 x 0.4/0.6 = 80 ms
    assert shares(a) == {"db:order-service": 0.68, "self:order-service": 0.32}
    assert a.parts[0].then_s == pytest.approx(0.2)
    # a serial stretch that appeared, on an endpoint 20 ms over its target before it: all 160 ms of the growth,
    # none of the 20 ms that were there before it
    before = period(40, gateway=0.002, service=0.3)
    now = period(40, gateway=0.002, service=0.3, serial=0.16)
    a = attribute("create_order", "gw", 0.48, 0.3, {"wait": 0.462}, route(now, before), {"wait": 0.302}, 0.32)
    assert shares(a)["serial:order-service"] == pytest.approx(0.16 / 0.18, abs=1e-3)
    # no growth beyond the baseline's P95: the whole time of each part, and the basis says why
    a = attribute("get_order", "gw", 0.6, 0.5, {"wait": 0.7}, route(now, before), {"wait": 0.6}, 0.62)
    assert "as far over its target in the baseline" in a.basis and a.parts[0].then_s is None


def test_a_serial_stretch_that_appeared_explains_the_excess_and_the_calls_that_did_not_change_do_not() -> None:
    before = period(40, gateway=0.002, service=0.18)  # pricing and matching side by side: 180 ms on the path
    now = period(40, gateway=0.002, service=0.18, serial=0.16)  # one after the other: 160 ms more
    a = attribute("create_order", "gw", 0.36, 0.3, {"wait": 0.342}, route(now, before), {"wait": 0.182}, 0.2)
    assert shares(a) == {"serial:order-service": 1.0}


def test_time_outside_the_traces_and_the_client_phases_are_parts_too() -> None:
    now = period(20, service=0.01)
    a = attribute("get_order", "gw", 1.0, 0.5, {"connect": 0.001, "wait": 0.05, "receive": 0.8},
                  route(now, period(20, service=0.01)), {"connect": 0.001, "wait": 0.011, "receive": 0.001}, 0.02)
    # added: receive 0.799, outside (wait - traces) 0.04 - 0.001 = 0.039
    assert [p.key.kind for p in a.parts] == [TRANSFER, OUTSIDE]
    assert a.parts[0].share == pytest.approx(0.799 / 0.838, abs=1e-3)
    assert a.unexplained_share == pytest.approx(0.039 / 0.838, abs=1e-3)
    assert NETWORK not in {p.key.kind for p in a.parts}  # connect did not change


def test_no_trace_of_the_route_leaves_the_servers_time_unexplained() -> None:
    a = attribute("get_order", "gw", 1.0, 0.5, {"connect": 0.1, "wait": 0.9}, None)
    assert {p.key.kind: round(p.share, 2) for p in a.parts} == {NO_TRACES: 0.9, NETWORK: 0.1}
    assert a.route is None and "no trace of its route" in a.basis
    sparse = route(RoutePeriod(2, (PathTime("order-service", SELF, "get_order", 0.9, 1.0),)))
    a = attribute("get_order", "gw", 1.0, 0.5, {"wait": 0.9}, sparse)  # fewer than MIN_TRACES analysed
    assert [p.key for p in a.parts] == [PartKey(NO_TRACES)]
    a = attribute("get_order", "gw", 1.0, 0.5, {}, None)  # nothing measured at all
    assert [(p.key.kind, p.share) for p in a.parts] == [(NO_TRACES, 1.0)]


def test_queueing_before_the_traces_as_the_largest_part_takes_in_what_the_traces_parts_grew_by() -> None:
    # a busy machine: 105 ms of queueing before the gateway's span, and the service's own work 39 ms slower (its
    # sleeps wake late); the client's receive grew 20 ms and keeps its share
    before = period(40, service=0.18, gateway=0.002)
    now = period(40, service=0.219, gateway=0.005)
    a = attribute("create_order", "gw", 0.47, 0.3, {"wait": 0.329, "receive": 0.021}, route(now, before),
                  {"wait": 0.182, "receive": 0.001}, 0.25)
    # added: outside 0.105, service 0.039, gateway 0.003, transfer 0.020 (of 0.167)
    assert [p.key.kind for p in a.parts] == [OUTSIDE, TRANSFER]
    assert a.unexplained_share == pytest.approx(0.147 / 0.167, abs=1e-3)
    assert a.parts[1].share == pytest.approx(0.020 / 0.167, abs=1e-3)
    assert sum(p.share for p in a.parts) == pytest.approx(1.0)
    assert "the server was saturated" in a.basis
    # the same growth inside the traces without the queueing is the service's own
    a = attribute("create_order", "gw", 0.47, 0.3, {"wait": 0.224, "receive": 0.021}, route(now, before),
                  {"wait": 0.182, "receive": 0.001}, 0.25)
    assert a.parts[0].key.kind == SELF and "saturated" not in a.basis
