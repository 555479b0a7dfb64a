"""Which of bench's options make a run spread over several k6 instances, and which combinations make none."""

from __future__ import annotations

from pathlib import Path


def distribution_problem(segments: int | None, k6_operator: int | None, kubeconfig: Path | None, keep: bool,
                         prometheus_rw: str | None, prometheus_query: str | None) -> str | None:
    """Why these options make no distributed run (None: they do)."""
    if segments is not None and k6_operator is not None:
        return "--segments and --k6-operator: give one (local processes, or runner pods)"
    if segments is not None and segments < 1:
        return "--segments: expected 1 or more"
    if k6_operator is not None and k6_operator < 1:
        return "--k6-operator: expected a parallelism of at least 1"
    if k6_operator is not None and kubeconfig is not None and not prometheus_rw:
        return ("--k6-operator with --kubeconfig needs --prometheus-rw URL: the runner pods send their samples "
                "there, and the run is judged from there")
    distributed = segments is not None or kubeconfig is not None
    if kubeconfig is not None and k6_operator is None:
        return "--kubeconfig: only with --k6-operator N"
    if keep and kubeconfig is None:
        return "--keep: only with --k6-operator N --kubeconfig FILE (it keeps the TestRun on the cluster)"
    if prometheus_query and not distributed:
        return "--prometheus-query: only with --segments or --k6-operator --kubeconfig"
    return None
