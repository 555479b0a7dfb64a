"""Bench runs built as ``bench`` builds them (a :class:`BenchRun`), for the tests of what reads them: the
history, compare, sla and the report's run source."""

from __future__ import annotations

from exporter.exit_codes import ExitCode
from exporter.load.platform_figures import CacheFigures, DatabaseFigures, TraceFigures
from exporter.load.run import BenchRun, Platform, Shape, ShapeStage
from exporter.load.stats import CutStats, StageStats, guide_summary
from exporter.load.verdict import Finding, Verdict


def cut(name: str, p95: float, requests: int = 60, rps: float = 20.0, seconds: float = 3.0,
        error_rate: float = 0.0, avg: float | None = None) -> CutStats:
    return CutStats(name, requests, seconds, rps, avg if avg is not None else p95 * 0.6, p95 * 0.55, p95,
                    p95 * 1.3, error_rate)


def platform(hits: int, misses: int, db_p95_ms: float = 12.0, trace_p95_ms: float = 60.0) -> Platform:
    return Platform(DatabaseFigures(1.5, 300, 5.0, db_p95_ms, None, "test", None),
                    CacheFigures(hits, misses, hits / (hits + misses) if hits + misses else None), {},
                    TraceFigures(50, 30.0, trace_p95_ms))


def bench_run(scenario: str = "caching", p95: float = 10.0, rps: float = 20.0, requests: int = 60,
              target_ms: float = 500.0, timestamp: str = "2026-12-01T08:00:00.000Z", warmup: float = 2.0,
              seconds: float = 3.0, status: str = "", reasons: tuple[str, ...] = (),
              platform: Platform | None = None, metrics: dict[str, dict[str, float | None]] | None = None,
              ) -> BenchRun:
    """One run with one endpoint (``get_order``) and one stage, its P95 judged against ``target_ms``."""
    measured = cut("measured", p95, requests, rps, seconds)
    finding = Finding.of("api_latency_p95", p95, target_ms, "ms", p95 < target_ms, requests)
    status = status or ("met" if finding.met else "missed")
    code = {"met": ExitCode.OK, "missed": ExitCode.MISSED, "inconclusive": ExitCode.INCONCLUSIVE}[status]
    stage = cut("1", p95, requests, rps, seconds)
    return BenchRun(timestamp, scenario, guide_summary(measured), measured, Verdict.of(status, code, [finding],
                                                                                       reasons),
                    k6="k6 v1.1.0",
                    shape=Shape("constant-vus", warmup, [ShapeStage(seconds, 10)], warmup + seconds),
                    stages=[StageStats(**{f: getattr(stage, f) for f in stage.__struct_fields__}, held=finding.met)],
                    endpoints=[cut("get_order", p95, requests, rps, seconds)], platform=platform,
                    metrics=metrics if metrics is not None else {"cache_hits": {"rate": 0.8}})
