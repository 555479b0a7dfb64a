"""The report as Markdown, for a CI comment or a wiki: the top three bottlenecks, the guide's targets table,
every recommendation with its evidence and diagnosis steps, and where each number came from."""

from __future__ import annotations

from exporter.analysis.recommendations import PRIORITY_RULE, Recommendation, critical_path_shares, top_statements
from exporter.reports.model import AREAS, Report
from exporter.reports.render_json import current_text, guide_summary

STATUS = {"met": "✅ met", "missed": "❌ missed", "no data": "⏳ no data"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def recommendation_md(r: Recommendation, n: int) -> list[str]:
    lines = [f"### {n}. {r.priority} · {r.issue} · {_cell(r.where)}", "", r.message, "",
             f"- **Cause:** {r.cause}", f"- **Do:** {r.solution}", f"- **Score:** {r.score_basis}"]
    if r.command:
        lines += ["", "```sql" if r.area == "database" else "```", r.command, "```"]
    if r.diagnosis:
        lines += ["", "Diagnosis (the guide's steps):", ""]
        lines += [f"{i}. {s.step}: {s.found}" for i, s in enumerate(r.diagnosis, start=1)]
    if r.evidence:
        lines += ["", "Evidence:", ""]
        lines += [f"- [{e.signal}] {e.text} — *{e.source}*" for e in r.evidence]
    return [*lines, ""]


def _infra_value(value: float, unit: str) -> str:
    return f"{value:.1%}" if unit == "ratio" else f"{value / 1e6:.2f} MB/s"


def markdown(report: Report) -> str:
    o = report.observed
    lines = [f"# Performance report · {o.window.as_json()['start']} → {o.window.as_json()['end']}", "",
             f"Generated {report.generated} from {o.source_kind} ({o.source_where}), a window of "
             f"{o.window.seconds:.0f} s.", ""]
    top = report.findings.top(3)
    lines += ["## Top 3 bottlenecks", ""]
    if top:
        lines += [f"{i}. **{r.priority}** {r.issue} — {_cell(r.where)}: {r.cause}" for i, r in enumerate(top, 1)]
    else:
        lines.append("None: no target is missed.")
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
        lines += ["", "## Top statements by time", "", "| Statement | Calls | Total ms | Mean ms |",
                  "|---|---|---|---|"]
        lines += [f"| `{_cell((s.text or s.queryid)[:90])}` | {s.calls:.0f} | {s.seconds * 1000:.1f} | "
                  f"{(s.mean_s or 0) * 1000:.2f} |" for s in statements]
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
    lines += ["", "## Recommendations", "", f"Priority: {PRIORITY_RULE}.", ""]
    if not report.findings.recommendations:
        lines.append("None.")
    for i, r in enumerate(report.findings.recommendations, start=1):
        lines += recommendation_md(r, i)
    if o.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in o.notes]
    return "\n".join(lines).rstrip() + "\n"
