"""The HTML report in a real headless browser (Debian's chromium, with every host name unresolvable): it loads
with no console message, fetches nothing, and a screenshot shows the plots drawn in their colours."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.reports import plots
from exporter.reports.attribution import PathTime, Route, RoutePeriod
from exporter.reports.facts import Database, Endpoint, Facts, Statement, Targets, Tracing
from exporter.reports.judge import build_report
from exporter.reports.model import AreaSummary, Figure, Observed, Plot, Series, Window
from exporter.reports.render_html import html_page

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None or not plots.available(),
                                reason="needs chromium (scripts/test.sh installs it) and the report extra")

LINE_BLUE = (0x1F, 0x77, 0xB4)  # plots.COLORS[0]: the first series and the bars
TARGET_RED = (0xD6, 0x27, 0x28)  # plots.TARGET_COLORS[0]: the target lines


def _report_page() -> str:
    start = 1_764_576_000.0
    times = [start + 10 * i for i in range(60)]
    p95 = Series("P95", [(t, 300 + 250 * (i > 30)) for i, t in enumerate(times)], "prometheus: rule")
    p99 = Series("P99", [(t, 450 + 400 * (i > 30)) for i, t in enumerate(times)], "prometheus: rule")
    hit = Series("cache hit rate", [(t, 0.95 - 0.5 * (i > 30)) for i, t in enumerate(times)], "prometheus: rule")
    stages = Series("P95", [(0.0, 120.0), (1.0, 180.0), (2.0, 640.0)], "k6")
    figures = [
        Plot("api_latency", "API latency percentiles", "ms", [p95, p99],
             [("P95 target", 500.0), ("P99 target", 1000.0)]),
        Plot("cache_hit_rate", "Cache hit rate", "ratio", [hit], [("hit rate target", 0.8)]),
        Plot("stages", "Per-stage latency of the load run", "ms", [stages], [("P95 target", 500.0)], "stages",
             [("ramp-up #1", 40.0), ("ramp-up #2", 80.0), ("ramp-up #3", 120.0)]),
    ]
    db = Database("main", (Statement("main", "app", "1", "SELECT * FROM orders WHERE rider_id = $1", 40, 9.0),
                           Statement("main", "app", "2", "UPDATE trips SET status = $1", 400, 1.0)))
    tracing = Tracing("jaeger", 100, 0.4, 0.0, {"order-service": 30.0, "api-gateway": 5.0})
    # one endpoint 300 ms over its target, all of it added by the gateway's own work since the baseline
    route = Route("jaeger", "api-gateway", "GET /api/v1/orders/{id}",
                  RoutePeriod(50, (PathTime("api-gateway", "self", "GET /api/v1/orders/{id}", 0.75),)),
                  RoutePeriod(50, (PathTime("api-gateway", "self", "GET /api/v1/orders/{id}", 0.01),)))
    slow = Endpoint("gateway", "get_order", 100, p95_s=0.8, phases_s={"wait": 0.76},
                    route=("api-gateway", "GET /api/v1/orders/{id}"), baseline_p95_s=0.02,
                    baseline_phases_s={"wait": 0.011})
    facts = Facts(600, Targets(), endpoints=(slow,), databases=(db,), tracing=(tracing,), routes=(route,))
    src = "test"
    area = AreaSummary("api", Figure(10, "count", src), Figure(1.0, "ms", src), Figure(2.0, "ms", src),
                       Figure(3.0, "ms", src), Figure(0.0, "ratio", src), "requests", "failed")
    observed = Observed(facts, Window(start, start + 600), "prometheus", "http://127.0.0.1:9090", {"api": area},
                        {}, {}, figures, [{"scenario": "ramp-up", "name": "1", "requests": 400}])
    return html_page(build_report(observed))


def _chromium(page: Path, tmp: Path, screenshot: Path | None = None) -> str:
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1100,2600"]
    argv.append(f"--screenshot={screenshot}" if screenshot else "--dump-dom")
    out = subprocess.run([*argv, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_check_sees_a_console_error(tmp_path: Path) -> None:
    # the check below can fail: a page that logs is caught
    page = tmp_path / "noisy.html"
    page.write_text("<!doctype html><title>x</title><script>console.error('broken plot')</script>")
    assert any("broken plot" in line for line in _console(_chromium(page, tmp_path)))


def test_the_report_page_loads_with_no_console_message_and_fetches_nothing(tmp_path: Path) -> None:
    html = _report_page()
    assert "<script" not in html
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", html), "the page must not load anything"
    assert html.count("<svg") == 5  # latency, hit rate, stages, top statements, critical path
    page = tmp_path / "report.html"
    page.write_text(html)
    assert _console(_chromium(page, tmp_path)) == []


def test_a_screenshot_shows_the_plots_drawn(tmp_path: Path) -> None:
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(_report_page())
    shot = tmp_path / "report.png"
    _chromium(page, tmp_path, shot)
    image = Image.open(shot).convert("RGB")

    def pixels(color: tuple[int, int, int]) -> int:
        return sum(n for n, c in image.getcolors(maxcolors=1 << 20) or []
                   if all(abs(a - b) <= 12 for a, b in zip(c, color, strict=True)))

    # lines and bars in the first series' blue, target lines in red: drawn, not an empty frame
    assert pixels(LINE_BLUE) > 3000, pixels(LINE_BLUE)
    assert pixels(TARGET_RED) > 500, pixels(TARGET_RED)


def test_the_top_three_come_first_with_their_evidence_one_click_away(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(_report_page())
    dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                          "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    headings = re.findall(r"<h2>([^<]+)</h2>", dom)
    assert headings[:2] == ["Top 3 bottlenecks", "Performance targets"]
    top = dom[dom.index("Top 3 bottlenecks"):dom.index("Performance targets")]
    assert "api-gateway's own work" in top and "100.0 %" in top  # the cause and its share
    assert "<details>" in top and "<summary>Evidence" in top  # folded, one click away
    assert top.count("optimize the algorithms of api-gateway") == 1  # the fix, once
    assert headings[-1] == "Causes of missed targets" and "Housekeeping" not in headings  # no advice to give
