"""Benchmark: the change point detector (E-divisive means + Welch t-test, exporter/history/change_points.py)
beside a plain "10 % over the baseline" rule (the mean of the first 5 runs), on the same synthetic histories:
60 runs at 5 % coefficient of variation, half with a 20 % step after run 30. Recall counts a step found within
+-2 runs (the rule: its first flag); the false-positive rate counts noise histories with anything flagged.
Also the detector's time per 60-run history.

    .venv/bin/python bench/bench_change_points.py [HISTORIES]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from exporter.history.change_points import change_points
from tests.test_change_points import noise_history, score


def main() -> int:
    histories = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    detector, rule = score(histories)
    rng = random.Random(1)
    sample = [noise_history(rng) for _ in range(50)]
    start = time.perf_counter()
    for h in sample:
        change_points(h)
    per_history = (time.perf_counter() - start) / len(sample)
    print(f"{histories} step histories and {histories} noise histories, 60 runs each, 5 % CV, 20 % step at run 30")
    print(f"{'method':<32} {'recall (+-2 runs)':>18} {'false positives':>16}")
    for name, scores in (("E-divisive + t-test (ours)", detector), ("10 % over the baseline", rule)):
        print(f"{name:<32} {scores.recall * 100:>17.1f}% {scores.false_positive_rate * 100:>15.1f}%")
    print(f"detector: {per_history * 1000:.1f} ms per 60-run history (pure Python)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
