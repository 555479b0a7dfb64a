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
    NOT_RUN = 3  # could not run: a bad option or config, no k6, an unreachable target, an unwritable history

    ERROR = 1  # run, check-config, render, demo: a bad config or option (named), the daemon could not start


WORST_FIRST = (ExitCode.NOT_RUN, ExitCode.MISSED, ExitCode.INCONCLUSIVE)


def worst(codes: Iterable[int]) -> ExitCode:
    """Several runs as one code (``bench all``, ``--repeat``): could not run over missed over inconclusive over
    met."""
    seen = set(codes)
    return next((code for code in WORST_FIRST if code in seen), ExitCode.OK)
