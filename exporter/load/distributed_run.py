"""A run spread over several k6 instances, as its file records it: the run id its samples carry in Prometheus
(``testid``), where they are, and each instance's share; and why such a run may not be trusted, instance by
instance. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import msgspec

SAMPLES_LOST_TOLERANCE = 0.001  # requests an instance made that may be missing from Prometheus, as a share


class Instance(msgspec.Struct, frozen=True, rename="camel"):
    """One k6 instance: its ``instance_id`` tag, its execution segment, the requests Prometheus has from it (every
    phase), the requests its own summary counted (local instances only), the iterations it could not start, and
    how it ended (``k6 exited 0``, ``job failed``...)."""

    instance: str
    segment: str
    requests_sent: int
    requests_made: int | None = None
    dropped_iterations: int = 0
    exit_code: int | None = None
    ended: str = ""
    log: str = ""

    @property
    def failed(self) -> bool:
        return (self.exit_code is not None and self.exit_code != 0) or self.ended.endswith("failed")


class Distributed(msgspec.Struct, frozen=True, rename="camel"):
    """How the run was spread: ``segments`` (local k6 processes) or ``k6-operator`` (runner pods)."""

    mode: str
    run_id: str
    prometheus: str  # the query URL, without credentials
    prometheus_version: str
    instances: list[Instance]
    judging_seconds: float = 0.0  # reading the series back and judging them


def segment_fragments(index: int, total: int) -> list[str]:
    """k6's options for instance ``index`` (1..total) of ``total`` equal segments, as k6-operator gives its
    runners (none for a single instance)."""
    if total <= 1:
        return []
    bounds = [Fraction(i, total) for i in range(total + 1)]
    sequence = ",".join(str(b) for b in bounds)
    return [f"--execution-segment={bounds[index - 1]}:{bounds[index]}", f"--execution-segment-sequence={sequence}"]


def segment_of(index: int, total: int) -> str:
    return f"{Fraction(index - 1, total)}:{Fraction(index, total)}" if total > 1 else "0:1"


def _killed(code: int) -> str:
    return f" (killed by signal {-code})" if code < 0 else ""


def instance_problems(instances: Sequence[Instance]) -> list[str]:
    """Why the combined figures cannot be trusted, naming each instance: one failed, was saturated, sent nothing
    to Prometheus, or lost samples on the way."""
    total = len(instances)
    problems: list[str] = []
    for i in instances:
        name = f"instance {i.instance} of {total} (segment {i.segment})"
        tail = f": {i.log}" if i.log else ""
        if i.failed:
            how = f"k6 exited with {i.exit_code}{_killed(i.exit_code)}" if i.exit_code else i.ended
            problems.append(f"{name} failed: {how}{tail}")
        elif i.requests_sent == 0:
            problems.append(f"{name} sent nothing to Prometheus{tail}")
        elif i.requests_made is not None and i.requests_sent < i.requests_made * (1 - SAMPLES_LOST_TOLERANCE):
            problems.append(f"{name}: Prometheus has {i.requests_sent} of the {i.requests_made} requests it made "
                            f"(remote write lost samples){tail}")
        if i.dropped_iterations > 0:
            problems.append(f"{name} was saturated: {i.dropped_iterations} dropped iterations (raise --vus, or "
                            f"spread the load over more instances)")
    return problems
