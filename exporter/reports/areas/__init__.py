"""A report's areas: what each registered SLO area contributes to a report over a period of the exporter's series
(Prometheus's window or a bench run's readings): its guide summary, the figures its target rows judge, notes, and
its part of the recommendation rules' facts.

An area names its module in the registry (``SloArea.report``): ``observe(ctx)`` builds its part and ``details``
(optional) adds its own section to its JSON file. An area that names none is reported from its SLOs' indicators
alone (:mod:`exporter.reports.areas.generic`), so a new collector with an SLO area has a report area with no code
here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from exporter.config.targets import Targets
from exporter.reports.attribution import Route
from exporter.reports.collected import Sampler, Sources
from exporter.reports.facts import Facts, Queue
from exporter.reports.model import AreaSummary, Figure, Window
from exporter.reports.query import Query

if TYPE_CHECKING:
    from exporter.jobs import SloArea
    from exporter.reports.model import Report
    from exporter.slo.slos import Slo

GENERIC = "exporter.reports.areas.generic"


@dataclass(frozen=True)
class AreaContext:
    """What every area's observer may read: the period's series (and the baseline's), the targets, the sources
    written so far, the routes the traces took, and what only some sources have (a Jaeger sampler, queue
    lengths over time)."""

    q: Query
    window: Window
    targets: Targets
    sources: Sources
    base: Query | None = None
    routes: tuple[Route, ...] = ()
    endpoint_requests: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    sampler: Sampler | None = None
    queues: Callable[[], dict[str, tuple[Queue, ...]]] | None = None


@dataclass
class AreaFigures:
    """One area's figures in a report: its guide summary, the figures its target rows judge and notes (what a
    bench run's file keeps of an area reported from its SLOs alone)."""

    summary: AreaSummary
    rows: dict[str, Figure] = field(default_factory=dict)  # target key -> the figure its row judges
    shares: dict[str, float | None] = field(default_factory=dict)  # target key -> share of events within it
    notes: list[str] = field(default_factory=list)


@dataclass
class AreaPart(AreaFigures):
    """One area's part of a report: its figures and the Facts fields it fills (endpoints, databases, ...)."""

    facts: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> AreaFigures:
        return AreaFigures(self.summary, self.rows, self.shares, self.notes)


def module(area: SloArea) -> ModuleType:
    return importlib.import_module(area.report or GENERIC)


def observe(area: SloArea, slos: list[Slo], ctx: AreaContext) -> AreaPart:
    found: AreaPart = module(area).observe(area, slos, ctx)
    return found


def observe_all(ctx: AreaContext) -> dict[str, AreaPart]:
    """Every registered area's part, in registry order."""
    from exporter.registry import areas

    return {area.name: observe(area, area.slos(ctx.targets), ctx) for area in areas()}


def generic_figures(watched: list[SloArea], ctx: AreaContext) -> dict[str, AreaFigures]:
    """The figures of the areas reported from their SLOs alone (no report module), for a bench run's file: the
    API, database, cache and tracing areas are built from the run's own figures and facts instead."""
    return {area.name: observe(area, area.slos(ctx.targets), ctx).figures() for area in watched
            if area.report is None}


def facts_of(ctx: AreaContext, parts: Mapping[str, AreaPart], baseline: str) -> Facts:
    fields: dict[str, Any] = {}
    for part in parts.values():
        fields.update(part.facts)
    return Facts(ctx.window.seconds, ctx.targets, sources=ctx.sources, routes=ctx.routes, baseline=baseline,
                 **fields)


def details(report: Report, area: str) -> dict[str, Any]:
    """An area's own section of its JSON file (its endpoints, statements, caches...), if its module has one."""
    from exporter.registry import areas

    found = next((a for a in areas() if a.name == area), None)
    render = getattr(module(found), "details", None) if found is not None else None
    return render(report) if render is not None else {}
