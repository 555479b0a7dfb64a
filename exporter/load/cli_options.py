"""The ``bench`` subcommand's arguments as :class:`~exporter.load.bench.BenchOptions`."""

from __future__ import annotations

import argparse

from exporter.config.units import parse_duration
from exporter.load.bench import BenchOptions
from exporter.load.plan import Overrides, parse_stage


def _seconds(option: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"{option}: expected a duration like '60s', got {value!r}") from None


def options_problem(options: BenchOptions) -> str | None:
    """Why these options make no distributed run (None: they do)."""
    if options.segments is not None and options.k6_operator is not None:
        return "--segments and --k6-operator: give one (local processes, or runner pods)"
    if options.segments is not None and options.segments < 1:
        return "--segments: expected 1 or more"
    if options.k6_operator is not None and options.k6_operator < 1:
        return "--k6-operator: expected a parallelism of at least 1"
    if options.k6_operator is not None and options.kubeconfig is not None and not options.prometheus_rw:
        return ("--k6-operator with --kubeconfig needs --prometheus-rw URL: the runner pods send their samples "
                "there, and the run is judged from there")
    distributed = options.segments is not None or options.kubeconfig is not None
    if options.kubeconfig is not None and options.k6_operator is None:
        return "--kubeconfig: only with --k6-operator N"
    if options.keep and options.kubeconfig is None:
        return "--keep: only with --k6-operator N --kubeconfig FILE (it keeps the TestRun on the cluster)"
    if options.prometheus_query and not distributed:
        return "--prometheus-query: only with --segments or --k6-operator --kubeconfig"
    return None


def bench_options(args: argparse.Namespace) -> BenchOptions:
    overrides = Overrides(vus=args.vus, duration=_seconds("--duration", args.duration),
                          stages=tuple(parse_stage(v) for v in args.stage or []), rate=args.rate,
                          warmup=_seconds("--warmup", args.warmup), iterations=args.iterations,
                          steps=args.steps)
    options = BenchOptions(scenario=args.scenario, base_url=args.base_url, overrides=overrides, config=args.config,
                        out=args.out, demo=args.demo, prometheus_rw=args.prometheus_rw,
                        k6_operator=args.k6_operator, baseline=args.baseline,
                        force=args.force, segments=args.segments, kubeconfig=args.kubeconfig, keep=args.keep,
                        prometheus_query=args.prometheus_query)
    problem = options_problem(options)
    if problem:
        raise ValueError(problem)
    return options
