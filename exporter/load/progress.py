"""The live view of a run: one line redrawn in place on a terminal, plain lines (one every few seconds) when
the output is a file or a pipe, so a CI log stays readable."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from exporter.load.runner import LiveSample

PLAIN_EVERY_SECONDS = 5.0


def progress_line(scenario: str, sample: LiveSample, total_seconds: float) -> str:
    p95 = f"{sample.p95_ms:.0f}ms" if sample.p95_ms is not None else "-"
    errors = f"{sample.error_rate * 100:.2f}%" if sample.error_rate is not None else "-"
    dropped = f" dropped={sample.dropped_iterations}" if sample.dropped_iterations else ""
    return (f"{scenario} {sample.elapsed:5.0f}/{total_seconds:.0f}s stage={sample.stage} vus={sample.vus} "
            f"req/s={sample.requests_per_second:.0f} p95={p95} errors={errors}{dropped}")


class Progress:
    def __init__(self, scenario: str, total_seconds: float, stream: TextIO | None = None,
                 tty: bool | None = None) -> None:
        self.scenario = scenario
        self.total = total_seconds
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.last_plain = -PLAIN_EVERY_SECONDS
        self.drawn = False

    def update(self, sample: LiveSample) -> None:
        line = progress_line(self.scenario, sample, self.total)
        if self.tty:
            done = min(1.0, sample.elapsed / self.total) if self.total > 0 else 1.0
            bar = "#" * int(done * 20)
            self.stream.write(f"\r\x1b[2K[{bar:<20}] {line}")
            self.drawn = True
        else:
            now = time.monotonic()
            if now - self.last_plain < PLAIN_EVERY_SECONDS:
                return
            self.last_plain = now
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self, headline: str) -> None:
        if self.tty and self.drawn:
            self.stream.write("\r\x1b[2K")
        self.stream.write(f"{self.scenario}: {headline}\n")
        self.stream.flush()
