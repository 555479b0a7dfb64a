"""The exit codes of every command, defined once (docs/exit-codes.md has the table).

The gates (``bench``, ``report``, ``compare``, ``sla``, ``baseline``, ``history``) share four codes, so a CI job
reads any of them the same way; ``run``, ``check-config``, ``render`` and ``demo`` exit 0 or :attr:`ERROR`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every target met, nothing regressed, the files written
    MISSED = 1  # a target missed or a regression, each named on stderr and in the files
    INCONCLUSIVE = 2  # the run cannot judge: the generator was the bottleneck, a figure had no data
    NOT_RUN = 3  # could not run: a bad option or config, no k6, an unreachable target, no such run or baseline
    NO_HISTORY = 4  # the history cannot be used: not created, not reachable, corrupted, newer, refused a write
    INTERRUPTED = 130  # stopped by SIGINT or SIGTERM: what finished is stored, the run marked interrupted

    ERROR = 1  # run, check-config, render, demo: a bad config or option (named), the daemon could not start


WORST_FIRST = (ExitCode.INTERRUPTED, ExitCode.NOT_RUN, ExitCode.NO_HISTORY, ExitCode.MISSED, ExitCode.INCONCLUSIVE)


def worst(codes: Iterable[int]) -> ExitCode:
    """Several outcomes as one code (``bench all``, ``--repeat``): interrupted, could not run, no history, missed,
    inconclusive, met, in that order."""
    seen = set(codes)
    return next((code for code in WORST_FIRST if code in seen), ExitCode.OK)
