"""The diagnosis benchmark: does the report name the true cause of each fault, and only that?

The demo runs on real PostgreSQL and Redis under a steady background load (k6, 16 closed-loop users), with the
daemon probing and profiling it and a real Prometheus scraping the daemon (bench/diagnosis_stack.py). After a
healthy period that every report compares with (the baseline), each case sets its faults on the demo
(``POST /admin/faults``), waits ``SETTLE_S``, and reports over the next ``WINDOW_S``: healthy, every knob alone,
and a set of combinations. The report's top recommendation is judged against the fault's documented true cause
(docs/demo.md).

Prints a table (case, true cause, the top recommendation's cause, fix, share and priority, right or wrong) and
the totals: top-1 right for single faults and for combinations, every true cause of a combination in the top
three, HIGH recommendations when healthy, and wrong HIGH fixes (a HIGH recommendation whose cause is none of
the case's true causes). Goals: top-1 >= 90 % of single faults and >= 80 % of combinations, 0 HIGH when
healthy, 0 wrong HIGH fixes.

    .venv/bin/python bench/bench_diagnosis.py            # the whole matrix, about 13 minutes on 2 cores
    .venv/bin/python bench/bench_diagnosis.py --cases latency_ms,cache_off
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.diagnosis_stack import (
    BASELINE_S,
    COMBINED,
    HEALTHY,
    SETTLE_S,
    SINGLES,
    WINDOW_S,
    Case,
    Verdict,
    describe,
    diagnosis_stack,
)

GOALS = {"single": 0.9, "combined": 0.8}


def _cases(names: str | None) -> list[Case]:
    every = {c.name: c for c in (HEALTHY, *SINGLES, *COMBINED)}
    if not names:
        return [HEALTHY, *SINGLES, *COMBINED, HEALTHY]
    unknown = [n for n in names.split(",") if n not in every]
    if unknown:
        raise SystemExit(f"unknown case {unknown[0]!r}; cases: {', '.join(every)}")
    return [every[n] for n in names.split(",")]


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--verbose", action="store_true", help="print every report's recommendations")
    args = parser.parse_args()
    cases = _cases(args.cases)
    started = time.monotonic()
    verdicts: list[Verdict] = []
    report_seconds: list[float] = []
    with diagnosis_stack() as stack:
        print(f"stack up in {time.monotonic() - started:.0f} s ({'; '.join(stack.log)}); baseline {BASELINE_S:.0f} s, "
              f"then per case {SETTLE_S:.0f} s settle + {WINDOW_S:.0f} s window", flush=True)
        time.sleep(15)  # the load and the collectors' first rounds
        stack.record_baseline()
        for case in cases:
            t0 = time.monotonic()
            verdict = stack.run_case(case)
            report_seconds.append(verdict.report_seconds)
            verdicts.append(verdict)
            line = verdict.line()
            mark = "right" if line["right"] else "WRONG"
            print(f"{mark:5s} {case.name:40s} top: {_cell(line['top cause'], 70)} ({line['priority']} "
                  f"{line['share']}) [{time.monotonic() - t0:.0f} s]", flush=True)
            if args.verbose or not line["right"] or verdict.wrong_high or not verdict.all_in_top3:
                print(describe(verdict), flush=True)
    print()
    print(f"{'case':38s} | {'true cause':44s} | {'top recommendation: cause':52s} | {'fix':46s} | share | prio "
          "| right")
    print("-" * 230)
    for v in verdicts:
        line = v.line()
        print(f"{_cell(line['case'], 38):38s} | {_cell(line['truth'], 44):44s} | {_cell(line['top cause'], 52):52s} | "
              f"{_cell(line['fix'], 46):46s} | {line['share']:>5s} | {line['priority']:6s} | "
              f"{'yes' if line['right'] else 'NO'}")
    singles = [v for v in verdicts if len(v.case.knobs) == 1]
    combined = [v for v in verdicts if len(v.case.knobs) > 1]
    healthy = [v for v in verdicts if not v.case.knobs]
    single_right = sum(v.top1_right for v in singles)
    combined_right = sum(v.top1_right for v in combined)
    combined_all = sum(v.all_in_top3 for v in combined)
    healthy_high = sum(len(v.high) for v in healthy)
    wrong_high = sum(len(v.wrong_high) for v in verdicts if v.case.knobs)
    print()

    def ratio(n: int, of: int) -> str:
        return f"{n}/{of} ({n / of:.0%})" if of else "none run"

    print(f"top-1 right, single faults:                {ratio(single_right, len(singles))}   (goal >= "
          f"{GOALS['single']:.0%})")
    print(f"top-1 right, combinations:                 {ratio(combined_right, len(combined))}   (goal >= "
          f"{GOALS['combined']:.0%})")
    print(f"every true cause in the top 3, combos:     {ratio(combined_all, len(combined))}")
    print(f"HIGH recommendations when healthy:         {healthy_high} in {len(healthy)} healthy report(s)   "
          "(goal 0)")
    print(f"wrong HIGH fixes (cause not a true one):   {wrong_high}   (goal 0)")
    if report_seconds:
        ordered = sorted(report_seconds)
        print(f"report build time:                         median {ordered[len(ordered) // 2]:.2f} s, max "
              f"{ordered[-1]:.2f} s (Prometheus queries, Jaeger samples, hypopg checks)")
    print(f"benchmark wall time:                       {time.monotonic() - started:.0f} s")
    met = ((not singles or single_right / len(singles) >= GOALS["single"])
           and (not combined or combined_right / len(combined) >= GOALS["combined"])
           and healthy_high == 0 and wrong_high == 0)
    print(f"goals {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
