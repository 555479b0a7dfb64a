"""Command line: parses arguments and calls one function per subcommand."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from exporter import __version__
from exporter.config.loading import ConfigError, default_config, load_config
from exporter.config.masking import dump_masked
from exporter.config.units import DEFAULT_LISTEN
from exporter.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perf-exporter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"perf-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, help="YAML config file (default: the built-in config)")
    run.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])
    run.add_argument("--web.config.file", dest="web_config_file", type=Path, metavar="FILE",
                     help="TLS and basic auth for every endpoint, in the Prometheus exporter-toolkit format")
    run.add_argument("--web.enable-reload", dest="web_enable_reload", action=argparse.BooleanOptionalAction,
                     default=True, help="allow POST /-/reload (default on; SIGHUP reloads either way)")
    run.add_argument("--demo", action="store_true",
                     help="also start the bundled demo target and probe it with examples/tripo04os.yaml")

    check = sub.add_parser("check-config", help="validate a config and print it with secrets masked")
    check.add_argument("file", type=Path, nargs="?", help="YAML config file (default: the built-in config)")

    demo = sub.add_parser("demo", help="run the bundled Tripo04OS demo target")
    demo.add_argument("--listen", default="127.0.0.1:8020")
    demo.add_argument("--postgres", metavar="DSN", help="keep orders and trips in PostgreSQL")
    demo.add_argument("--redis", metavar="URL", help="cache orders and driver locations in Redis")
    demo.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    demo.add_argument("--workers", type=int, default=1, help="processes serving the one port (default 1)")

    render = sub.add_parser("render", help="generate alert rules or Grafana dashboards from the targets")
    render.add_argument("what", choices=["rules", "dashboards"])
    render.add_argument("--config", type=Path, help="YAML config file (default: the built-in config)")
    render.add_argument("--out", type=Path, help="output directory (default: rules/ or grafana/)")

    bench = sub.add_parser("bench", help="run a k6 load test or benchmark and judge it against the targets")
    bench.add_argument("scenario", help="a scenario (api, db-profiling, caching, tracing, ramp-up, steady, spike, "
                       "order-creation, trip-execution, mixed, arrival-rate, breakpoint) or 'all' (the benchmarks)")
    bench.add_argument("--base-url", help="the API gateway (default: TEST_BASE_URL, then the config's api target)")
    bench.add_argument("--vus", type=int, help="virtual users (open models: the VUs k6 may use)")
    bench.add_argument("--duration", help="measured duration, e.g. 60s (breakpoint: each step's)")
    bench.add_argument("--stage", action="append", metavar="D:N", help="a stage, as k6's --stage 30s:100 (repeat)")
    bench.add_argument("--iterations", type=int, help="closed models: stop after this many iterations in all")
    bench.add_argument("--rate", type=int, help="open models: iterations per second (breakpoint: the step)")
    bench.add_argument("--steps", type=int, help="breakpoint: how many steps of --rate each (default 20)")
    bench.add_argument("--warmup", help="warm-up left out of every statistic (default: the scenario's)")
    bench.add_argument("--config", type=Path, help="YAML config: targets and the collectors run meanwhile")
    bench.add_argument("--out", type=Path, default=Path("reports"), help="report directory (default ./reports/)")
    bench.add_argument("--demo", action="store_true", help="start the bundled demo and load it")
    bench.add_argument("--prometheus-rw", metavar="URL",
                       help="also send k6's results to this Prometheus (remote write, native histograms)")
    bench.add_argument("--baseline", type=Path, metavar="REPORT",
                       help="compare with an earlier run's report (its <scenario>.json, or its --out directory)")
    bench.add_argument("--k6-operator", type=int, metavar="PARALLELISM",
                       help="write a k6-operator TestRun manifest into --out instead of running")
    report = sub.add_parser("report", help="write the guide's reports (json, md, html) from Prometheus or a bench run")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--prometheus", metavar="URL", help="Prometheus to read (default http://localhost:9090)")
    source.add_argument("--run", type=Path, metavar="DIR", help="a perf-exporter bench run's --out directory")
    report.add_argument("--window", help="the window up to now (or --to), e.g. 1h (default 1h)")
    report.add_argument("--from", dest="start", metavar="T", help="window start: ISO 8601 or unix seconds")
    report.add_argument("--to", dest="end", metavar="T", help="window end (default now)")
    report.add_argument("--config", type=Path, help="YAML config: the targets (default: the built-in config)")
    report.add_argument("--format", default="json,md,html", help="comma-separated: json, md, html (default all)")
    report.add_argument("--out", type=Path, default=Path("reports"), help="output directory (default ./reports/)")
    return parser


def cmd_report(args: argparse.Namespace) -> int:
    setup_logging("warning", "logfmt")
    from exporter.reports.command import ReportOptions, run_report
    return run_report(ReportOptions(args.prometheus, args.run, args.window, args.start, args.end, args.config,
                                    [f.strip() for f in args.format.split(",") if f.strip()], args.out))


def cmd_bench(args: argparse.Namespace) -> int:
    setup_logging("error", "logfmt")  # the collectors' warnings would break up the live progress lines
    from exporter.load.bench import run_bench
    from exporter.load.cli_options import bench_options
    try:
        options = bench_options(args)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 3
    return run_bench(options)


def cmd_run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    if args.demo:
        from exporter.demo.launcher import run_with_demo
        return run_with_demo(args)
    from exporter.daemon import Daemon
    try:
        from exporter.web_config import load_web_config
        web = load_web_config(args.web_config_file) if args.web_config_file else None
        daemon = Daemon(args.config, args.listen, web_config=web, reload_enabled=args.web_enable_reload)
        asyncio.run(daemon.serve())
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    setup_logging("warning", "logfmt")  # config warnings (e.g. REDIS_URL=http://) go to stderr
    try:
        config = load_config(args.file) if args.file else default_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(dump_masked(config), end="")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "logfmt")
    from exporter.demo.server import serve_demo
    return serve_demo(args.listen, args.postgres, args.redis, args.workers)


def cmd_render(args: argparse.Namespace) -> int:
    from exporter.slo.render import render
    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return render(args.what, config, args.out)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": cmd_run, "check-config": cmd_check_config, "demo": cmd_demo, "render": cmd_render,
                "bench": cmd_bench, "report": cmd_report}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
