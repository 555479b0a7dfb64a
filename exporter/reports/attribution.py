"""How much of an endpoint's excess latency each part of its requests explains, by magnitude.

An endpoint's **excess** is how far its P95 is over its target. Its requests' time is split into **parts**:

- what the client measured outside the server: the network setup (``resolve``, ``connect``, ``tls``), the
  transfer of the request and the answer (``send``, ``receive``), and the time between the server's first byte
  and the gateway's span (``wait`` minus the traces' duration: queueing before the span, or the network);
- inside the server, the critical path of the traces of the endpoint's route, by component
  (:mod:`exporter.collectors.jaeger.breakdown`): each service's own work, each database statement, each cache call,
  waiting for a connection, remote calls made one after another.

Each part is a mean per request (traces are sampled: their mean, not their tail). The parts of the window are
compared with the same parts over a **baseline** (a healthy period recorded before the window): what a part
**added** is its time now minus its time then (never below zero). The excess is shared out in proportion to what
each part added, so the shares sum to one and a part that did not change explains none of it, however large. When
the endpoint was over its target in the baseline too, only what its P95 grew by is shared by what each part added;
the excess it already had is shared by the time each part already took. Without a baseline (none recorded, or too
few traces in it), the shares are of the parts' whole time, and the attribution says so.

What no part explains is **unexplained**: the time outside the traces, and everything when no trace of the route
was analysed in the window. When the time outside the traces (queueing before the gateway's span) is the largest
part, the server was saturated, and what the parts inside its traces explain is counted with it: a saturated
process slows everything it runs, so their growth is not evidence of a cause of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

# Parts that are not trace components.
NETWORK = "network"  # resolve + connect + tls
TRANSFER = "transfer"  # send + receive
OUTSIDE = "outside"  # wait - the traces' duration: outside the gateway's span
NO_TRACES = "no-traces"  # the server's time when no trace of the route was analysed
NETWORK_PHASES = ("resolve", "connect", "tls")
TRANSFER_PHASES = ("send", "receive")
UNEXPLAINED_KINDS = (OUTSIDE, NO_TRACES)
CLIENT_KINDS = (NETWORK, TRANSFER, OUTSIDE, NO_TRACES)  # measured by the client, not inside the traces
MIN_TRACES = 3.0  # fewer analysed traces of a route (in the window or the baseline) are not used
OUTSIDE_MIN_S = 0.0001  # less time outside the traces than this is rounding, not a part


@dataclass(frozen=True, order=True)
class PartKey:
    kind: str  # trace_breakdown's self, db, cache, pool, serial; or network, transfer, outside, no-traces
    service: str = ""
    operation: str = ""
    statement: str = ""  # a db part's statement fingerprint


@dataclass(frozen=True)
class PathTime:
    """One component of a route's traces over a period: seconds on the critical path and calls, per trace."""

    service: str
    kind: str
    operation: str
    seconds: float
    calls: float = 0.0
    statement: str = ""  # fingerprint
    text: str | None = None  # the normalised statement, when known

    @property
    def key(self) -> PartKey:
        return PartKey(self.kind, self.service, self.operation, self.statement)


@dataclass(frozen=True)
class CacheReads:
    """Cache reads of one operation with one result (hit, miss_filled, miss_unfilled), counted over a period."""

    service: str
    operation: str
    result: str
    count: float


@dataclass(frozen=True)
class RoutePeriod:
    """A route's analysed traces over one period: their count, and per trace the components of their path; the
    cache reads and where errors started (service -> error spans), as counts."""

    traces: float
    path: tuple[PathTime, ...] = ()
    cache_reads: tuple[CacheReads, ...] = ()
    error_origins: Mapping[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return sum(p.seconds for p in self.path)


@dataclass(frozen=True)
class Route:
    """The traces of one root operation (the gateway's route), over the window and the baseline."""

    target: str  # the Jaeger target that analysed them
    service: str
    operation: str
    window: RoutePeriod
    baseline: RoutePeriod | None = None
    p95_s: float | None = None  # of every trace of the route counted in the window (not only those analysed)
    baseline_p95_s: float | None = None

    @property
    def name(self) -> str:
        return f"{self.service} {self.operation}"


@dataclass(frozen=True)
class Part:
    """What one part of the requests explains of an endpoint's excess."""

    key: PartKey
    now_s: float  # per request in the window
    then_s: float | None  # per request in the baseline (None: no baseline used)
    share: float  # of the excess, 0..1
    explained_s: float  # share x excess
    calls_now: float = 0.0  # per request
    calls_then: float | None = None
    text: str | None = None  # a db part's normalised statement

    @property
    def added_s(self) -> float:
        return max(0.0, self.now_s - (self.then_s or 0.0))


@dataclass(frozen=True)
class Attribution:
    endpoint: str
    target: str  # the API target
    excess_s: float
    target_s: float
    route: str | None  # "service operation" of the traces used, or None
    basis: str  # what the shares are of
    parts: tuple[Part, ...]  # largest share first; explained and unexplained alike

    @property
    def explained(self) -> tuple[Part, ...]:
        return tuple(p for p in self.parts if p.key.kind not in UNEXPLAINED_KINDS)

    @property
    def unexplained(self) -> tuple[Part, ...]:
        return tuple(p for p in self.parts if p.key.kind in UNEXPLAINED_KINDS)

    @property
    def unexplained_share(self) -> float:
        return sum(p.share for p in self.unexplained)


# ---------------------------------------------------------------------------------------------------------------
# Which route an endpoint's requests take


_PARAM = re.compile(r"^(\{[^/{}]+\}|:[A-Za-z_]\w*|<[^/<>]+>)$")


def _route_matches(template: str, path: str) -> int | None:
    """How many literal segments ``template`` (``/api/v1/orders/{id}``) matches ``path`` with, or None."""
    want = [s for s in template.split("?")[0].split("/") if s]
    got = [s for s in path.split("?")[0].split("/") if s]
    if len(want) != len(got):
        return None
    literal = 0
    for w, g in zip(want, got, strict=True):
        if _PARAM.match(w):
            continue
        if w != g:
            return None
        literal += 1
    return literal


def route_of(method: str, path: str, operations: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The (service, operation) whose root operation names this request's route, as HTTP server spans are named
    (``GET /api/v1/orders/{id}``): the method must match, and the template the path; the most specific wins."""
    best: tuple[int, tuple[str, str]] | None = None
    for service, operation in operations:
        verb, _, template = operation.partition(" ")
        if verb.upper() != method.upper() or not template.startswith("/"):
            continue
        literal = _route_matches(template, path)
        if literal is not None and (best is None or literal > best[0]):
            best = (literal, (service, operation))
    return best[1] if best else None


# ---------------------------------------------------------------------------------------------------------------
# The attribution


def _phase_parts(phases: Mapping[str, float]) -> dict[PartKey, float]:
    out = {PartKey(NETWORK): sum(phases.get(p, 0.0) for p in NETWORK_PHASES),
           PartKey(TRANSFER): sum(phases.get(p, 0.0) for p in TRANSFER_PHASES)}
    return {k: v for k, v in out.items() if v > 0}


def request_parts(phases: Mapping[str, float], route: RoutePeriod | None) -> tuple[dict[PartKey, float],
                                                                                   dict[PartKey, float]]:
    """(seconds per request, calls per request) by part, for one period."""
    seconds = _phase_parts(phases)
    calls: dict[PartKey, float] = {}
    wait = phases.get("wait", 0.0)
    if route is not None and route.traces >= MIN_TRACES and route.path:
        for p in route.path:
            seconds[p.key] = seconds.get(p.key, 0.0) + p.seconds
            calls[p.key] = calls.get(p.key, 0.0) + p.calls
        outside = wait - route.duration_s
        if outside > OUTSIDE_MIN_S:
            seconds[PartKey(OUTSIDE)] = outside
    elif wait > 0:
        seconds[PartKey(NO_TRACES)] = wait
    return seconds, calls


def _normalised(weights: Mapping[PartKey, float]) -> dict[PartKey, float]:
    total = sum(w for w in weights.values() if w > 0)
    return {k: w / total for k, w in weights.items() if w > 0} if total > 0 else {}


def attribute(endpoint: str, api_target: str, p95_s: float, target_s: float, phases: Mapping[str, float],
              route: Route | None, baseline_phases: Mapping[str, float] | None = None,
              baseline_p95_s: float | None = None) -> Attribution:
    """Share out an endpoint's excess (``p95_s - target_s``) over the parts of its requests (module docstring).
    ``phases`` are the client's mean phase times in the window; ``baseline_*`` the same over the baseline."""
    excess = max(0.0, p95_s - target_s)
    now, calls_now = request_parts(phases, route.window if route else None)
    texts = {p.key: p.text for p in (route.window.path if route else ()) if p.text}
    usable = (route is not None and route.baseline is not None and route.baseline.traces >= MIN_TRACES
              and baseline_p95_s is not None and baseline_phases is not None and PartKey(NO_TRACES) not in now)
    then: dict[PartKey, float] = {}
    calls_then: dict[PartKey, float] = {}
    shares: dict[PartKey, float] = {}
    why = "no baseline"
    if usable:
        assert route is not None and route.baseline is not None and baseline_phases is not None
        assert baseline_p95_s is not None
        then, calls_then = request_parts(baseline_phases, route.baseline)
        texts.update({p.key: p.text for p in route.baseline.path if p.text})
        # now = kept + grown, per part; the excess the baseline already had is shared over what was kept, the
        # rest (what the P95 grew by) over what grew
        grown = _normalised({k: v - then.get(k, 0.0) for k, v in now.items()})
        kept = _normalised({k: min(v, then.get(k, 0.0)) for k, v in now.items()})
        old = min(excess, max(0.0, baseline_p95_s - target_s))
        new = excess - old
        if grown and (new > 0 or not kept):
            old_weight = old / excess if kept and excess > 0 else 0.0
            shares = {k: (1 - old_weight) * grown.get(k, 0.0) + old_weight * kept.get(k, 0.0)
                      for k in grown.keys() | kept.keys()}
            met = ", when the endpoint met its target" if baseline_p95_s <= target_s else ""
            basis = f"the time each part added since the baseline{met} (P95 {baseline_p95_s * 1000:.0f} ms)"
            if old_weight > 0:
                basis = (f"the time each part added since the baseline for the {new * 1000:.0f} ms the P95 grew by, "
                         f"and the time each part already took for the {old * 1000:.0f} ms it was over its target "
                         f"in the baseline too (P95 {baseline_p95_s * 1000:.0f} ms)")
        else:
            why = ("no part grew since the baseline" if not grown
                   else "the endpoint was as far over its target in the baseline")
    if not shares:
        if route is None:
            why = "no trace of its route was analysed"
        usable = False
        then, calls_then = {}, {}
        shares = _normalised(now)
        basis = f"each part's whole time per request ({why})"
    parts = [Part(key, now.get(key, 0.0), then.get(key, 0.0) if usable else None, share, share * excess,
                  calls_now.get(key, 0.0), calls_then.get(key, 0.0) if usable else None, texts.get(key))
             for key, share in shares.items() if share > 0]
    if not parts:  # nothing measured: all of it is unexplained
        parts.append(Part(PartKey(NO_TRACES), 0.0, None, 1.0, excess))
    parts.sort(key=lambda p: (-p.share, p.key))
    if parts[0].key.kind == OUTSIDE:
        parts, basis = _saturated(parts, basis)
    return Attribution(endpoint, api_target, excess, target_s, route.name if route else None, basis, tuple(parts))


def _saturated(parts: list[Part], basis: str) -> tuple[list[Part], str]:
    """Queueing before the traces is the largest part: the server was saturated, and a saturated process slows
    everything it runs (late wake-ups, waits for a CPU). The shares of the parts inside its traces are counted
    with the queueing, not as causes of their own; the client's network and transfer keep theirs."""
    inside = [p for p in parts[1:] if p.key.kind not in CLIENT_KINDS]
    if not inside:
        return parts, basis
    queueing = parts[0]
    share = queueing.share + sum(p.share for p in inside)
    folded = replace(queueing, share=share, explained_s=queueing.explained_s + sum(p.explained_s for p in inside))
    rest = [p for p in parts[1:] if p.key.kind in CLIENT_KINDS]
    basis += (f"; queueing before the traces is the largest part, so the server was saturated: the "
              f"{sum(p.explained_s for p in inside) * 1000:.0f} ms its traces' parts explain are counted with it")
    return sorted([folded, *rest], key=lambda p: (-p.share, p.key)), basis
