"""A comparison's outputs: a terminal table, Markdown for a CI comment, JUnit XML for CI systems, and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from exporter.history.compare import INCONCLUSIVE, REGRESSION, Comparison


@dataclass
class ScenarioComparison:
    scenario: str
    baseline: str  # labels of the runs compared
    current: str
    comparisons: list[Comparison] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)  # the current run's missed targets
    notes: list[str] = field(default_factory=list)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}"


def _change(c: Comparison) -> str:
    return f"{c.change * 100:+.1f}%" if c.change is not None else "-"


def headline(results: Sequence[ScenarioComparison], code: int) -> str:
    regressions = [(r.scenario, c) for r in results for c in r.comparisons if c.verdict == REGRESSION]
    missed = [(r.scenario, m) for r in results for m in r.missed]
    if regressions or missed:
        parts = [f"{c.endpoint} {c.metric} {_change(c)} in {s}" for s, c in regressions]
        parts += [f"missed target {m} in {s}" for s, m in missed]
        return f"regression: {'; '.join(parts)}"
    inconclusive = [(r.scenario, c) for r in results for c in r.comparisons if c.verdict == INCONCLUSIVE]
    if inconclusive:
        return "inconclusive: " + "; ".join(f"{c.endpoint} {c.metric} in {s} ({c.reason})" for s, c in inconclusive)
    return f"no regression: {sum(len(r.comparisons) for r in results)} figures compared, exit {code}"


def table(results: Sequence[ScenarioComparison]) -> str:
    header = ("scenario", "endpoint", "metric", "baseline", "current", "change", "verdict", "why")
    rows = [header]
    for r in results:
        rows += [(r.scenario, c.endpoint, c.metric, _number(c.baseline_value), _number(c.current_value), _change(c),
                  c.verdict, c.reason) for c in r.comparisons]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    for r in results:
        lines += [f"{r.scenario}: {note}" for note in r.notes]
        lines += [f"{r.scenario}: missed target: {m}" for m in r.missed]
    return "\n".join(lines) + "\n"


def markdown(results: Sequence[ScenarioComparison], code: int) -> str:
    out = ["## Performance comparison", "", f"**{headline(results, code)}**", ""]
    for r in results:
        out += [f"### {r.scenario}", "", f"Baseline: {r.baseline}; current: {r.current}.", ""]
        out += [f"- Missed target: {m}" for m in r.missed]
        out += [f"- {n}" for n in r.notes]
        if r.missed or r.notes:
            out.append("")
        out += ["| Endpoint | Metric | Baseline | Current | Change | Verdict |", "|---|---|---|---|---|---|"]
        for c in r.comparisons:
            verdict = f"**{c.verdict}**" if c.verdict in (REGRESSION, INCONCLUSIVE) else c.verdict
            out.append(f"| {c.endpoint} | {c.metric} | {_number(c.baseline_value)} | {_number(c.current_value)} "
                       f"| {_change(c)} | {verdict}: {c.reason} |")
        out.append("")
    return "\n".join(out)


def junit(results: Sequence[ScenarioComparison]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<testsuites name="perf-exporter compare">']
    for r in results:
        failures = sum(c.verdict == REGRESSION for c in r.comparisons) + len(r.missed)
        skipped = sum(c.verdict == INCONCLUSIVE for c in r.comparisons)
        out.append(f"  <testsuite name={quoteattr(r.scenario)} tests=\"{len(r.comparisons) + len(r.missed)}\" "
                   f"failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\">")
        for c in r.comparisons:
            name = quoteattr(f"{c.endpoint} {c.metric}")
            message = quoteattr(f"{c.verdict}: {c.reason} (baseline {_number(c.baseline_value)}, current "
                                f"{_number(c.current_value)}, {_change(c)})")
            if c.verdict == REGRESSION:
                out.append(f"    <testcase classname={quoteattr(r.scenario)} name={name}>"
                           f"<failure message={message} type=\"regression\"/></testcase>")
            elif c.verdict == INCONCLUSIVE:
                out.append(f"    <testcase classname={quoteattr(r.scenario)} name={name}>"
                           f"<skipped message={message}/></testcase>")
            else:
                out.append(f"    <testcase classname={quoteattr(r.scenario)} name={name}/>")
        for m in r.missed:
            out.append(f"    <testcase classname={quoteattr(r.scenario)} name={quoteattr('target ' + m)}>"
                       f"<failure message={quoteattr(m)} type=\"missed target\"/></testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def as_json(results: Sequence[ScenarioComparison], code: int) -> str:
    return json.dumps({
        "exitCode": code, "headline": headline(results, code),
        "scenarios": [{"scenario": r.scenario, "baseline": r.baseline, "current": r.current, "missedTargets": r.missed,
                       "notes": r.notes, "comparisons": [c.as_json() for c in r.comparisons]} for r in results],
    }, indent=2) + "\n"
