"""Command line: parses arguments and calls one function per subcommand."""

from __future__ import annotations

import argparse
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from exporter import __version__
from exporter.command_options import options
from exporter.exit_codes import ExitCode
from exporter.logs import setup_logging
from exporter.secrets import mask_url

# The config layer, probes and collectors are imported by the commands that use them: `--version` and a parse
# error cost no more than argparse (tests/test_startup.py).
DEFAULT_LISTEN = "0.0.0.0:9469"


LOG_LEVELS = ["debug", "info", "warning", "error"]

# The Prometheus ecosystem's flag names; the names this had before, accepted until the next release.
RENAMED = {"--listen": "--web.listen-address", "--config": "--config.file", "--log-level": "--log.level",
           "--log-format": "--log.format"}


class _Renamed(argparse.Action):
    """An option given by its old name still works, with one line on stderr saying the new one."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        if option_string in RENAMED:
            print(f"{parser.prog}: {option_string} is deprecated and goes in the next release: use "
                  f"{RENAMED[option_string]}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _flag(parser: argparse.ArgumentParser, new: str, **kwargs: object) -> None:
    """``new`` (``--config.file``), and its old name as a deprecated alias when it had one."""
    old = [name for name, renamed in RENAMED.items() if renamed == new]
    parser.add_argument(new, *old, action=_Renamed, **kwargs)  # type: ignore[arg-type]


class _Parser(argparse.ArgumentParser):
    """A usage error exits with the command's own code for a bad option (docs/exit-codes.md), not argparse's 2,
    which the gates use for "inconclusive"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        code = ExitCode.ERROR if self.prog.split()[-1] in NOT_GATES else ExitCode.NOT_RUN
        self.exit(code, f"{self.prog}: error: {message}\n")


NOT_GATES = ("perf-exporter", "run", "healthcheck", "check-config", "demo", "render")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="perf-exporter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"perf-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    _flag(run, "--config.file", dest="config", type=Path, metavar="FILE",
          help="YAML config file (default: the built-in config)")
    _flag(run, "--web.listen-address", dest="listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
          help=f"HOST:PORT to serve on (default {DEFAULT_LISTEN})")
    _flag(run, "--log.level", dest="log_level", default="info", choices=LOG_LEVELS)
    _flag(run, "--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
    run.add_argument("--web.config.file", dest="web_config_file", type=Path, metavar="FILE",
                     help="TLS and basic auth for every endpoint, in the Prometheus exporter-toolkit format")
    run.add_argument("--web.enable-reload", dest="web_enable_reload", action=argparse.BooleanOptionalAction,
                     default=True, help="allow POST /-/reload (default on; SIGHUP reloads either way)")
    run.add_argument("--demo", action="store_true",
                     help="also start the bundled demo target and probe it with examples/tripo04os.yaml")
    run.add_argument("--shard", metavar="N", help="run only the jobs of shard N (0 to --total-shards - 1), as "
                     "kube-state-metrics does; a StatefulSet's pod ordinal")
    run.add_argument("--total-shards", metavar="M", help="the number of replicas sharing the config's jobs")
    run.add_argument("--probe-workers", default="auto", metavar="N|auto",
                     help="processes that run the jobs while this one serves /metrics: 0 runs them here; auto "
                     "(default) is one per usable CPU from 10 probe requests per second on, else 0")

    health = sub.add_parser("healthcheck", help="the container's health check: ask the daemon on loopback, with or "
                            "without TLS and basic auth (PERF_EXPORTER_HEALTHCHECK_AUTH=user:password)")
    _flag(health, "--web.listen-address", dest="listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
          help=f"where the daemon serves (default {DEFAULT_LISTEN})")
    health.add_argument("--path", default="/-/healthy", choices=["/-/healthy", "/-/ready"])

    check = sub.add_parser("check-config", help="validate a config and print it with secrets masked")
    check.add_argument("file", type=Path, nargs="?", help="YAML config file (default: the built-in config)")

    demo = sub.add_parser("demo", help="run the bundled Tripo04OS demo target")
    _flag(demo, "--web.listen-address", dest="listen", default="127.0.0.1:8020", metavar="HOST:PORT",
          help="HOST:PORT to serve on")
    demo.add_argument("--postgres", metavar="DSN", help="keep orders and trips in PostgreSQL")
    demo.add_argument("--redis", metavar="URL", help="cache orders and driver locations in Redis")
    _flag(demo, "--log.level", dest="log_level", default="info", choices=LOG_LEVELS)
    demo.add_argument("--workers", type=int, default=1, help="processes serving the one port (default 1)")

    render = sub.add_parser("render", help="generate alert rules or Grafana dashboards from the targets")
    render.add_argument("what", choices=["rules", "dashboards"])
    _flag(render, "--config.file", dest="config", type=Path, metavar="FILE",
          help="YAML config file (default: the built-in config)")
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
    _flag(bench, "--config.file", dest="config", type=Path, metavar="FILE",
          help="YAML config: targets and the collectors run meanwhile")
    bench.add_argument("--out", type=Path, default=Path("reports"), help="report directory (default ./reports/)")
    bench.add_argument("--demo", action="store_true", help="start the bundled demo and load it")
    bench.add_argument("--prometheus-rw", metavar="URL",
                       help="also send k6's results to this Prometheus (remote write, native histograms)")
    bench.add_argument("--baseline", type=Path, metavar="REPORT",
                       help="compare with an earlier run's report (its <scenario>.json, or its --out directory)")
    bench.add_argument("--k6-operator", type=int, metavar="PARALLELISM",
                       help="write a k6-operator TestRun manifest into --out instead of running (with --kubeconfig: "
                       "run it on that cluster and judge the whole run)")
    bench.add_argument("--kubeconfig", type=Path, metavar="FILE",
                       help="with --k6-operator: create the TestRun there, follow it to the end, judge it")
    bench.add_argument("--keep", action="store_true",
                       help="with --kubeconfig: leave the TestRun and its ConfigMap on the cluster")
    bench.add_argument("--segments", type=int, metavar="N",
                       help="run as N local k6 processes, one execution segment each, judged as one run from "
                       "Prometheus (--prometheus-rw, else one started for the run)")
    bench.add_argument("--prometheus-query", metavar="URL",
                       help="where to read a distributed run back (default: the --prometheus-rw URL)")
    bench.add_argument("--force", action="store_true",
                       help="run even while another bench loads the same --base-url (refused by default)")
    bench.add_argument("--repeat", type=_at_least_one, default=1, metavar="N",
                       help="run each scenario N times (the guide: 3 to 5); every repeat goes into the history")
    bench.add_argument("--window-threshold", dest="window_thresholds", type=_window_threshold, action="append",
                       default=[], metavar="EXPR",
                       help="e.g. 'p95<500ms over 1m': must hold in every window of the run (repeat)")
    _history_arguments(bench, "default <--out>/history.sqlite")
    report = sub.add_parser("report", help="write the guide's reports (json, md, html) from Prometheus or a bench run")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--prometheus", metavar="URL", help="Prometheus to read (default http://localhost:9090)")
    source.add_argument("--run", type=Path, metavar="DIR", help="a perf-exporter bench run's --out directory")
    report.add_argument("--window", help="the window up to now (or --to), e.g. 1h (default 1h)")
    report.add_argument("--from", dest="start", metavar="T", help="window start: ISO 8601 or unix seconds")
    report.add_argument("--to", dest="end", metavar="T", help="window end (default now)")
    report.add_argument("--baseline", metavar="DURATION", default="1h",
                        help="the period before the window that recommendations compare with, to tell what "
                             "changed (default 1h; 0 for none)")
    report.add_argument("--baseline-from", dest="baseline_start", metavar="T",
                        help="or an explicit baseline period, e.g. the last known-good hour: its start")
    report.add_argument("--baseline-to", dest="baseline_end", metavar="T", help="the explicit baseline's end")
    _flag(report, "--config.file", dest="config", type=Path, metavar="FILE",
          help="YAML config: the targets (default: the built-in config)")
    report.add_argument("--format", dest="formats", type=_list, default=["json", "md", "html"],
                        help="comma-separated: json, md, html (default all)")
    report.add_argument("--out", type=Path, default=Path("reports"), help="output directory (default ./reports/)")
    _history_arguments(report, "default <--out>/history.sqlite")
    _history_parsers(sub)
    return parser


def _history_arguments(parser: argparse.ArgumentParser, default: str, store: bool = True) -> None:
    parser.add_argument("--history", metavar="FILE|URL", help=f"run history: a SQLite file or a PostgreSQL URL "
                        f"({default})")
    if store:
        parser.add_argument("--no-history", dest="keep_history", action="store_false",
                            help="do not store this run in the history")


def _history_parsers(sub: argparse._SubParsersAction) -> None:
    default = "default ./reports/history.sqlite"
    baseline = sub.add_parser("baseline", help="set a baseline from a run in the history or report files")
    baseline_sub = baseline.add_subparsers(dest="action", required=True)
    set_ = baseline_sub.add_parser("set", help="name a run (an id, 'latest') or report files as a baseline")
    set_.add_argument("run", metavar="RUN|FILE", nargs="?", default="latest")
    set_.add_argument("--name", default="main", help="the baseline's name (default main)")
    _history_arguments(set_, default, store=False)

    compare = sub.add_parser("compare", help="compare a run with a baseline: regression, improvement, unchanged")
    compare.add_argument("baseline", nargs="?", metavar="BASELINE",
                         help="a baseline's name, a run id or report files (default: baseline main)")
    compare.add_argument("current", nargs="?", metavar="CURRENT",
                         help="a run id, 'latest' or report files (default: the newest run of the baseline's "
                         "scenarios)")
    compare.add_argument("--tolerance", default="10%", help="relative tolerance (default 10%%)")
    compare.add_argument("--min-delta", default="5ms", help="absolute tolerance of latencies (default 5ms)")
    compare.add_argument("--alpha", type=float, default=0.05, help="the test's level on repeats (default 0.05)")
    compare.add_argument("--format", dest="formats", type=_list, default=["table"],
                         help="comma-separated: table, md, junit, json")
    compare.add_argument("--out", type=Path, default=Path("reports"),
                         help="where compare.md, compare.junit.xml and compare.json go (default ./reports/)")
    compare.add_argument("--metric", help="only this metric (p95_ms, p99_ms, avg_ms, error_rate...)")
    compare.add_argument("--endpoint", help="only this endpoint ('measured': the whole run)")
    _history_arguments(compare, default, store=False)

    history = sub.add_parser("history", help="a figure across runs, with its change points (table and plot)")
    history.add_argument("--metric", default="p95_ms", help="default p95_ms")
    history.add_argument("--endpoint", default="measured", help="default measured (the whole run)")
    history.add_argument("--scenario", help="default: the latest run's")
    history.add_argument("--plot", type=Path, metavar="FILE", help="also draw it: a .png or .svg file")
    history.add_argument("--last", type=int, metavar="N", help="only the last N runs")
    history.add_argument("--max-pvalue", type=float, default=0.001, help="change point significance (0.001)")
    _history_arguments(history, default, store=False)

    sla = sub.add_parser("sla", help="write the baseline as a Markdown SLA: targets, measured values, spread")
    sla.add_argument("--name", default="main", help="the baseline (default main)")
    sla.add_argument("--out", type=Path, default=Path("reports") / "sla.md", help="default ./reports/sla.md")
    _history_arguments(sla, default, store=False)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {text!r}")
    return int(text)


def _window_threshold(text: str) -> object:
    from exporter.load.window_thresholds import parse_window_threshold

    try:
        return parse_window_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _list(text: str) -> list[str]:
    """``--format json,md``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_baseline(args: argparse.Namespace) -> int:
    from exporter.history.commands import BaselineOptions, run_baseline_set
    return run_baseline_set(options(BaselineOptions, args))


def cmd_compare(args: argparse.Namespace) -> int:
    from exporter.history.commands import CompareOptions, run_compare
    return run_compare(options(CompareOptions, args))


def cmd_history(args: argparse.Namespace) -> int:
    from exporter.history.commands import HistoryOptions, run_history
    return run_history(options(HistoryOptions, args))


def cmd_sla(args: argparse.Namespace) -> int:
    from exporter.history.sla import SlaOptions, run_sla
    return run_sla(options(SlaOptions, args))


def cmd_report(args: argparse.Namespace) -> int:
    setup_logging("warning", "logfmt")
    from exporter.reports.command import ReportOptions, run_report
    return run_report(options(ReportOptions, args))


def cmd_bench(args: argparse.Namespace) -> int:
    setup_logging("error", "logfmt")  # the collectors' warnings would break up the live progress lines
    from exporter.load.bench import run_bench
    from exporter.load.cli_options import bench_options
    try:
        built = bench_options(args)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return ExitCode.NOT_RUN
    return run_bench(built)


def cmd_run(args: argparse.Namespace) -> int:
    from exporter.sharding import Shard
    try:  # refused before anything starts
        shard = Shard.from_flags(args.shard, args.total_shards)
        workers = probe_workers(args.probe_workers)
        if args.demo and shard.total > 1:
            raise ValueError("--demo runs one daemon over the whole example config: leave out --shard and "
                             "--total-shards")
    except ValueError as exc:
        print(f"perf-exporter run: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    setup_logging(args.log_level, args.log_format)
    from exporter import timing
    timing.install()  # every loop of the daemon notes when it waits, for the bound of each probe's timing
    if args.demo:
        from exporter.demo.launcher import run_with_demo
        return run_with_demo(args)
    import asyncio

    from exporter.config.loading import ConfigError
    from exporter.daemon import Daemon
    try:
        daemon = Daemon(args.config, args.listen, web_config_file=args.web_config_file,
                        reload_enabled=args.web_enable_reload, shard=shard, probe_workers=workers,
                        log_level=args.log_level, log_format=args.log_format)
        asyncio.run(daemon.serve())
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


def probe_workers(text: str) -> int | None:
    if text == "auto":
        return None
    if not text.isdigit():
        raise ValueError(f"--probe-workers: expected a number of processes (0 or more) or 'auto', got {text!r}")
    return int(text)


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from exporter.healthcheck import check
    healthy, said = check(args.listen, args.path)
    print(f"perf-exporter healthcheck: {said}", file=sys.stderr)
    return ExitCode.OK if healthy else ExitCode.ERROR


def cmd_check_config(args: argparse.Namespace) -> int:
    from exporter.config.loading import ConfigError, default_config, load_config
    from exporter.config.masking import dump_masked
    setup_logging("warning", "logfmt")  # config warnings (e.g. REDIS_URL=http://) go to stderr
    try:
        config = load_config(args.file) if args.file else default_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return ExitCode.ERROR
    print(dump_masked(config), end="")
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "logfmt")
    from exporter.demo.server import serve_demo
    return serve_demo(args.listen, args.postgres, args.redis, args.workers)


def cmd_render(args: argparse.Namespace) -> int:
    from exporter.config.loading import ConfigError, default_config, load_config
    from exporter.slo.render import render
    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return ExitCode.ERROR
    return render(args.what, config, args.out)


def _masked_traceback(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """The last resort for an exception nothing caught: its traceback, through the masking rule."""
    sys.stderr.write(mask_url("".join(traceback.format_exception(kind, exc, tb))))


def main(argv: list[str] | None = None) -> int:
    sys.excepthook = _masked_traceback
    threading.excepthook = lambda hook: _masked_traceback(hook.exc_type, hook.exc_value or hook.exc_type(),
                                                          hook.exc_traceback)
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its exit code
        chosen = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        chosen.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    commands = {"run": cmd_run, "healthcheck": cmd_healthcheck, "check-config": cmd_check_config,
                "demo": cmd_demo, "render": cmd_render, "bench": cmd_bench, "report": cmd_report,
                "baseline": cmd_baseline, "compare": cmd_compare, "history": cmd_history, "sla": cmd_sla}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
