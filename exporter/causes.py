"""The last cause each job's code logged for its target, for the index page.

A job whose target is down returns "down" rather than raising (a failure is data, STYLE.md), and says why in
its one log line (``pg_unreachable``, ``redis_down``, ``probe_failed``... with ``target`` and ``cause``
fields). The scheduler then has no error text to show; this handler keeps the newest such cause per logger and
target, so the index page can show it beside the failing job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from exporter.secrets import mask_url

JOBS_LOGGER = "exporter"


@dataclass(frozen=True)
class Cause:
    at: float  # time.time() of the log record
    event: str
    text: str

    def __str__(self) -> str:
        return f"{self.event}: {self.text}"


def same_job(logger: str, module: str) -> bool:
    """A job's own module, or one of its helpers named after it (``postgres_queries`` for ``postgres``)."""
    return logger == module or logger.startswith((f"{module}_", f"{module}."))


class LastCauses(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self._causes: dict[tuple[str, str], Cause] = {}  # (logger, target) -> newest; bounded by the config
        self._mutex = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None)
        if not isinstance(fields, dict):
            return
        target = fields.get("target")
        text = fields.get("cause") or fields.get("reason")
        if not isinstance(target, str) or text is None:
            return
        cause = Cause(record.created, record.getMessage(), mask_url(str(text)))
        with self._mutex:
            self._causes[(record.name, target)] = cause

    def latest(self, module: str, target: str, until: float) -> Cause | None:
        """The newest cause logged by ``module`` (or its helpers) for ``target`` at or before ``until``."""
        with self._mutex:
            found = [cause for (logger, t), cause in self._causes.items()
                     if t == target and same_job(logger, module) and cause.at <= until]
        return max(found, key=lambda cause: cause.at, default=None)


CAUSES = LastCauses()


def install() -> LastCauses:
    """Attach the one handler to the jobs' logger tree (once, however many apps are built)."""
    logger = logging.getLogger(JOBS_LOGGER)
    if CAUSES not in logger.handlers:
        logger.addHandler(CAUSES)
    return CAUSES
