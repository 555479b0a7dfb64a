"""The report as Markdown, for a CI comment or a wiki: the top three bottlenecks, the guide's targets table,
each cause of a missed target (its share of each excess, the fix, the command, then its evidence and the guide's
diagnosis steps, folded), housekeeping apart, and where each number came from."""

from __future__ import annotations

from exporter.reports.diagnosis import pct, statement_name
from exporter.reports.model import AREAS, Report
from exporter.reports.recommendations import PRIORITY_RULE, Recommendation, critical_path_shares, top_statements
from exporter.reports.render_json import current_text, guide_summary

STATUS = {"met": "✅ met", "missed": "❌ missed", "no data": "⏳ no data"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def recommendation_md(r: Recommendation, n: int) -> list[str]:
    """A cause: what it is, what it explains, what to do and the exact command, once each; the evidence and the
    guide's steps folded below."""
    lines = [f"### {n}. {r.priority} · {r.cause}", ""]
    lines += [f"- **Explains:** {s.what}: {pct(s.share)} ({s.explained})" for s in r.symptoms]
    lines += [f"- **Do:** {r.solution}", f"- **Where:** {r.where}"]
    if r.command:
        lines += ["", "```sql" if r.area == "database" or r.command.rstrip().endswith(";") else "```", r.command,
                  "```"]
    lines += ["", "<details><summary>Evidence, the guide's diagnosis steps and the score</summary>", ""]
    lines += [f"- [{e.signal}] {e.text} — *{e.source}*" for e in r.evidence]
    if r.diagnosis:
        lines += ["", f"{r.issue}, the guide's steps:", ""]
        lines += [f"{i}. {s.step}: {s.found}" for i, s in enumerate(r.diagnosis, start=1)]
    shares_of = sorted({s.attributed for s in r.symptoms if s.attributed})
    if shares_of:
        lines += ["", "Shares are of " + "; ".join(shares_of) + "."]
    lines += ["", f"Score: {r.score_basis}.", "", "</details>", ""]
    return lines


def housekeeping_md(r: Recommendation) -> str:
    command = f" `{_cell(r.command)}`" if r.command else ""
    return f"- **{r.issue}** · {_cell(r.where)}: {r.message} Do: {r.solution}.{command}"


def _infra_value(value: float, unit: str) -> str:
    return f"{value:.1%}" if unit == "ratio" else f"{value / 1e6:.2f} MB/s"


def markdown(report: Report) -> str:
    o = report.observed
    lines = [f"# Performance report · {o.window.as_json()['start']} → {o.window.as_json()['end']}", "",
             f"Generated {report.generated} from {o.source_kind} ({o.source_where}), a window of "
             f"{o.window.seconds:.0f} s.", ""]
    if o.facts.baseline:
        lines += [f"Causes are weighed by what changed since the baseline, {o.facts.baseline}.", ""]
    top = report.findings.top(3)
    lines += ["## Top 3 bottlenecks", ""]
    if top:
        lines += [f"{i}. **{r.priority}** {r.cause}: {pct(r.share)} of {_cell(r.symptoms[0].what)}"
                  + (f" (and {len(r.symptoms) - 1} more)" if len(r.symptoms) > 1 else "")
                  for i, r in enumerate(top, 1)]
    else:
        lines.append("None: every target is met.")
    lines += ["", "## Performance targets", "", "| Metric | Target | Current | Status |", "|---|---|---|---|"]
    for row in report.rows:
        status = STATUS[row.status] + (f" ({_cell(row.reason)})" if row.status != "met" and row.reason else "")
        lines.append(f"| {row.metric} | {row.target} | {current_text(row)} | {status} |")
    lines += ["", "Sources:", ""]
    lines += [f"- {row.metric}: {row.current.source} ({row.current.precision}"
              + (f"; {row.current.note}" if row.current.note else "") + ")" for row in report.rows]
    lines += ["", "## Summaries", "", "| Area | Requests | Avg ms | P95 ms | P99 ms | Error rate |",
              "|---|---|---|---|---|---|"]
    for area in AREAS:
        if area in o.areas:
            s = guide_summary(o.areas[area])
            lines.append(f"| {area} | {s['totalRequests']} | {s['avgResponseTime']} | {s['p95ResponseTime']} | "
                         f"{s['p99ResponseTime']} | {s['errorRate']} |")
    infrastructure = o.extra.get("infrastructure")
    if infrastructure:
        lines += ["", "## Infrastructure", ""]
        if infrastructure.get("readings") and infrastructure["status"] != "no data":
            lines += ["| Reading | Value | Status |", "|---|---|---|"]
            for figure in infrastructure["readings"].values():
                values = ", ".join(f"{i}: {_infra_value(v, figure['unit'])}"
                                   for i, v in figure.get("byInstance", {}).items()) or "-"
                status = figure["status"] + (f" ({_cell(figure['reason'])})" if figure.get("reason") else "")
                lines.append(f"| {figure['title']} | {_cell(values)} | {status} |")
        else:
            lines.append(f"No data: {infrastructure.get('reason', '')}")
    statements = top_statements(o.facts.databases, 5)
    if statements:
        lines += ["", "## Top statements by time", "", "| Statement | Database/role queryid | Calls | Total ms | "
                  "Mean ms |", "|---|---|---|---|---|"]
        lines += [f"| `{_cell((s.text or s.queryid)[:90])}` | {_cell(statement_name(s))} | {s.calls:.0f} | "
                  f"{s.seconds * 1000:.1f} | {(s.mean_s or 0) * 1000:.2f} |" for s in statements]
    shares = critical_path_shares(o.facts.tracing)
    if shares:
        lines += ["", "## Critical path by service", "", "| Service | Share |", "|---|---|"]
        lines += [f"| {s} | {v * 100:.1f} % |" for s, v in shares]
    if o.stages:
        lines += ["", "## Load run stages", "", "| Scenario | Stage | Requests | req/s | P50 ms | P95 ms | P99 ms | "
                  "Errors |", "|---|---|---|---|---|---|---|---|"]
        def f(st: dict[str, object], key: str) -> str:
            v = st.get(key)
            return f"{v:.1f}" if isinstance(v, int | float) else "-"

        for st in o.stages:
            err = st.get("error_rate")
            lines.append(f"| {st.get('scenario')} | {st.get('name')} | {st.get('requests')} | "
                         f"{f(st, 'requests_per_second')} | {f(st, 'p50_ms')} | {f(st, 'p95_ms')} | "
                         f"{f(st, 'p99_ms')} | "
                         f"{'-' if not isinstance(err, int | float) else f'{err * 100:.2f} %'} |")
    causes = [r for r in report.findings.recommendations if not r.housekeeping]
    lines += ["", "## Causes of missed targets", "", f"Priority: {PRIORITY_RULE}.", ""]
    if not causes:
        lines += ["None: every target is met.", ""]
    for i, r in enumerate(causes, start=1):
        lines += recommendation_md(r, i)
    chores = report.findings.housekeeping
    if chores:
        lines += ["## Housekeeping", "", "Advice that no missed target calls for:", ""]
        lines += [housekeeping_md(r) for r in chores]
        lines.append("")
    if o.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in o.notes]
    return "\n".join(lines).rstrip() + "\n"
