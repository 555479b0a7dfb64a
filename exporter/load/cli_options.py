"""The ``bench`` subcommand's arguments as :class:`~exporter.load.bench.BenchOptions`."""

from __future__ import annotations

import argparse

from exporter.command_options import options
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
    built = options(BenchOptions, args, overrides=overrides)
    problem = distribution_problem(built.segments, built.k6_operator, built.kubeconfig, built.keep,
                                   built.prometheus_rw, built.prometheus_query)
    if problem:
        raise ValueError(problem)
    return built
