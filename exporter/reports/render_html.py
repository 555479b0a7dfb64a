"""The report as one self-contained HTML page: no script, no network, the plots inline as SVG. The top three
causes come first, each with its evidence one click away (``<details>``); then the targets, the plots (each
saying the window its lines use), every cause of a missed target, and housekeeping apart."""

from __future__ import annotations

import html

from exporter.reports import plots
from exporter.reports.diagnosis import pct, statement_name
from exporter.reports.model import AREAS, Plot, Report
from exporter.reports.recommendations import PRIORITY_RULE, Recommendation, critical_path_shares, top_statements
from exporter.reports.render_json import current_text, guide_summary

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.met{color:#137333}.missed{color:#b3261e;font-weight:bold}.nodata{color:#8a6d00}
.HIGH{background:#fde7e9}.MEDIUM{background:#fff4d6}.LOW{background:#eef5ff}
.rec{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}.src{color:#666;font-size:.85em}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}code{background:#f5f5f5;padding:0 .2em}
summary{cursor:pointer;color:#1f4e99}.share{font-weight:bold}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _plot(plot: Plot) -> str:
    drawn = plots.svg(plot) if plots.available() else None
    sources = sorted({s.source for s in plot.series})
    caption = _e(plot.title) + (f"<br><span class=src>{_e(plot.note)}</span>" if plot.note and drawn else "") \
        + "".join(f"<br><span class=src>{_e(s)}</span>" for s in sources)
    if drawn is None:
        why = plot.note or "nothing to draw" if plots.available() else \
            "plots need matplotlib: pip install 'perf-exporter[report]'"
        return f"<figure class=plot-empty><p>{_e(plot.title)}: {_e(why)}</p></figure>"
    return f"<figure class=plot data-plot={_e(plot.key)}>{drawn}<figcaption>{caption}</figcaption></figure>"


def _evidence(r: Recommendation) -> str:
    """The evidence, the guide's steps and the score: folded, one click away."""
    parts = ["<details><summary>Evidence and the guide's diagnosis steps</summary><ul>"]
    parts += [f"<li>[{_e(e.signal)}] {_e(e.text)} <span class=src>{_e(e.source)}</span>" for e in r.evidence]
    parts.append("</ul>")
    if r.diagnosis:
        parts.append(f"<p>{_e(r.issue)}, the guide's steps:</p><ol>"
                     + "".join(f"<li>{_e(s.step)}: {_e(s.found)}" for s in r.diagnosis) + "</ol>")
    shares_of = sorted({s.attributed for s in r.symptoms if s.attributed})
    if shares_of:
        parts.append(f"<p class=src>Shares are of {_e('; '.join(shares_of))}.</p>")
    parts.append(f"<p class=src>score: {_e(r.score_basis)}</p></details>")
    return "".join(parts)


def _cause(r: Recommendation, heading: str) -> str:
    """One cause: what it is, what it explains, the fix and the command, once each; the evidence folded."""
    explains = "".join(f"<li>{_e(s.what)}: <span class=share>{_e(pct(s.share))}</span> ({_e(s.explained)})"
                       for s in r.symptoms)
    return (f"<div class='rec {r.priority}' data-kind='{_e(r.kind)}'><{heading}>{r.priority} · {_e(r.cause)}"
            f"</{heading}><p>Explains:</p><ul>{explains}</ul><p><b>Do:</b> {_e(r.solution)}</p>"
            f"<p class=src>Where: {_e(r.where)}</p>"
            + (f"<pre>{_e(r.command)}</pre>" if r.command else "") + _evidence(r) + "</div>")


def _housekeeping(r: Recommendation) -> str:
    return (f"<li><b>{_e(r.issue)}</b> · {_e(r.where)}: {_e(r.message)} <b>Do:</b> {_e(r.solution)}"
            + (f" <code>{_e(r.command)}</code>" if r.command else ""))


def html_page(report: Report) -> str:
    o = report.observed
    w = o.window.as_json()
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Performance report {_e(w['start'])}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>Performance report</h1><p>{_e(w['start'])} → {_e(w['end'])} ({o.window.seconds:.0f} s), from "
             f"{_e(o.source_kind)} <code>{_e(o.source_where)}</code>; generated {_e(report.generated)}.</p>"]
    if o.facts.baseline:
        parts.append(f"<p class=src>Causes are weighed by what changed since the baseline, "
                     f"{_e(o.facts.baseline)}.</p>")
    parts.append("<h2>Top 3 bottlenecks</h2>")
    top = report.findings.top(3)
    parts += [_cause(r, "h3") for r in top] or ["<p>None: every target is met.</p>"]
    parts.append("<h2>Performance targets</h2><table><tr><th>Metric<th>Target<th>Current<th>Status<th>Source")
    for row in report.rows:
        cls = row.status.replace(" ", "")
        reason = f"<br><span class=src>{_e(row.reason)}</span>" if row.reason else ""
        parts.append(f"<tr><td>{_e(row.metric)}<td>{_e(row.target)}<td>{_e(current_text(row))}"
                     f"<td class={cls}>{_e(row.status)}{reason}<td class=src>{_e(row.current.source)} "
                     f"({_e(row.current.precision)})")
    parts.append(f"</table><h2>Summaries</h2><p class=src>Over the whole window ({o.window.seconds:.0f} s).</p>"
                 "<table><tr><th>Area<th>Requests<th>Avg ms<th>P95 ms<th>P99 ms<th>Error rate")
    for area in AREAS:
        if area in o.areas:
            s = guide_summary(o.areas[area])
            parts.append("<tr>" + "".join(f"<td>{_e('-' if v is None else v)}" for v in (area, *s.values())))
    parts.append("</table><h2>Plots</h2>")
    parts += [_plot(p) for p in o.plots]
    statements = top_statements(o.facts.databases, 8)
    if statements:
        parts.append(_plot(Plot("statements", "Top statements by time over the whole window (ms)", "ms", [],
                                kind="bar", bars=[(f"{statement_name(s)}: {(s.text or '')[:40]}", s.seconds * 1000)
                                                  for s in statements])))
    shares = critical_path_shares(o.facts.tracing)
    if shares:
        parts.append(_plot(Plot("critical_path", "Critical-path share by service over the whole window", "ratio", [],
                                kind="bar", bars=shares)))
    if o.stages:
        parts.append("<h2>Load run stages</h2><table><tr><th>Scenario<th>Stage<th>Requests<th>req/s<th>P50 ms"
                     "<th>P95 ms<th>P99 ms<th>Errors")
        for st in o.stages:
            cells = [st.get("scenario"), st.get("name"), st.get("requests")]
            cells += [f"{v:.1f}" if isinstance(v, int | float) else "-" for v in
                      (st.get("requests_per_second"), st.get("p50_ms"), st.get("p95_ms"), st.get("p99_ms"))]
            err = st.get("error_rate")
            cells.append("-" if err is None else f"{err * 100:.2f} %")
            parts.append("<tr>" + "".join(f"<td>{_e(c)}" for c in cells))
        parts.append("</table>")
    causes = [r for r in report.findings.recommendations if not r.housekeeping]
    parts.append(f"<h2>Causes of missed targets</h2><p class=src>{_e(PRIORITY_RULE)}</p>")
    parts += [_cause(r, "h3") for r in causes] or ["<p>None: every target is met.</p>"]
    chores = report.findings.housekeeping
    if chores:
        parts.append("<h2>Housekeeping</h2><p class=src>Advice that no missed target calls for.</p><ul>"
                     + "".join(_housekeeping(r) for r in chores) + "</ul>")
    if o.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}" for n in o.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
