"""What ``bench --segments N`` and ``bench --k6-operator N --kubeconfig FILE`` need before the first scenario:
the options checked, the Prometheus the instances send to (started here, or ``--prometheus-rw`` checked), and the
runner of the instances."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from exporter.load.distributed import DistributedLauncher, InstanceRunner, LocalSegments, describe
from exporter.load.plan import PlanError
from exporter.load.prometheus_receiver import check_receiver, local_prometheus, query_url_of, write_url_of

if TYPE_CHECKING:
    from exporter.load.bench import BenchOptions


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


def _runner(options: BenchOptions, stream: TextIO) -> InstanceRunner:
    if options.kubeconfig is None:
        return LocalSegments()
    from exporter.load.kubernetes import TestRunRunner, connect

    return TestRunRunner(connect(options.kubeconfig), options.prometheus_rw or "", options.keep, stream)


@contextlib.contextmanager
def distributed_launcher(options: BenchOptions, stream: TextIO) -> Iterator[DistributedLauncher]:
    problem = options_problem(options)
    if problem:
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
        launcher = DistributedLauncher(_runner(options, stream), instances, receiver, options.out)
        stream.write(f"bench: {describe(launcher)}\n")
        yield launcher
