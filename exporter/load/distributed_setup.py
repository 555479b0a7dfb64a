"""What ``bench --segments N`` and ``bench --k6-operator N --kubeconfig FILE`` need before the first scenario:
the options checked, the Prometheus the instances send to (started here, or ``--prometheus-rw`` checked), and the
runner of the instances."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from exporter.load.distributed import DistributedLauncher, InstanceRunner, LocalSegments, describe
from exporter.load.distribution_options import distribution_problem
from exporter.load.plan import PlanError
from exporter.load.prometheus_receiver import Receiver, check_receiver, local_prometheus, query_url_of, write_url_of

if TYPE_CHECKING:
    from exporter.load.bench import BenchOptions


def _runner(options: BenchOptions, receiver: Receiver, stream: TextIO) -> InstanceRunner:
    if options.kubeconfig is None:
        return LocalSegments()
    from exporter.load.kubernetes import TestRunRunner, connect

    return TestRunRunner(connect(options.kubeconfig), receiver.query_url, options.keep, stream)


@contextlib.contextmanager
def distributed_launcher(options: BenchOptions, stream: TextIO) -> Iterator[DistributedLauncher]:
    problem = distribution_problem(options.segments, options.k6_operator, options.kubeconfig, options.keep,
                                   options.prometheus_rw, options.prometheus_query)
    if problem:  # the command line checks them first (cli_options.py)
        raise PlanError(problem)
    instances = options.segments if options.segments is not None else options.k6_operator or 1
    with contextlib.ExitStack() as stack:
        if options.prometheus_rw:
            write = write_url_of(options.prometheus_rw)
            query = options.prometheus_query or query_url_of(options.prometheus_rw)
        else:
            started = stack.enter_context(local_prometheus())
            write, query = write_url_of(started), options.prometheus_query or started
        receiver = check_receiver(write, query)
        launcher = DistributedLauncher(_runner(options, receiver, stream), instances, receiver, options.out)
        stream.write(f"bench: {describe(launcher)}\n")
        yield launcher
