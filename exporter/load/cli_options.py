"""The ``bench`` subcommand's arguments as :class:`~exporter.load.bench.BenchOptions`."""

from __future__ import annotations

import argparse

from exporter.config.units import parse_duration
from exporter.load.bench import BenchOptions
from exporter.load.distribution_options import distribution_problem
from exporter.load.plan import Overrides, parse_stage


def _seconds(option: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"{option}: expected a duration like '60s', got {value!r}") from None


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
    problem = distribution_problem(options.segments, options.k6_operator, options.kubeconfig, options.keep,
                                   options.prometheus_rw, options.prometheus_query)
    if problem:
        raise ValueError(problem)
    return options
