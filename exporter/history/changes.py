"""A run against a baseline run of the same scenario (k6 has no comparison with a baseline: k6#1843): how the
measured phase, each stage and each endpoint moved. Pure: both runs are report bodies as ``bench`` writes them.
A change is information, not a verdict: the targets decide the exit code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FIGURES = (("p50_ms", "P50"), ("p95_ms", "P95"), ("p99_ms", "P99"), ("requests_per_second", "req/s"),
           ("error_rate", "errors"))


def change(current: float | None, baseline: float | None) -> float | None:
    """Percent change from baseline to current; None when either is missing or the baseline is 0."""
    if current is None or baseline is None or baseline == 0:
        return None
    return (current - baseline) / baseline * 100


def compare_cut(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": current.get("name")}
    for key, _ in FIGURES:
        now, before = current.get(key), baseline.get(key)
        out[key] = {"baseline": before, "current": now, "changePercent": change(now, before)}
    return out


def _by_name(cuts: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("name")): c for c in cuts}


def compare_runs(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison section of a report; ``headline`` is one line for the terminal."""
    if current.get("scenario") != baseline.get("scenario"):
        raise ValueError(f"the baseline is a {baseline.get('scenario')!r} run, this is {current.get('scenario')!r}")
    measured = compare_cut(current.get("measured", {}), baseline.get("measured", {}))
    sections: dict[str, list[dict[str, Any]]] = {}
    for section in ("stages", "endpoints", "parts"):
        before = _by_name(baseline.get(section, []))
        sections[section] = [compare_cut(cut, before[str(cut.get("name"))]) for cut in current.get(section, [])
                             if str(cut.get("name")) in before]
    parts = []
    for key, label in FIGURES:
        moved = measured[key]["changePercent"]
        if moved is not None:
            parts.append(f"{label} {moved:+.1f} %")
    return {"baseline": {"timestamp": baseline.get("timestamp"), "k6": baseline.get("k6")},
            "measured": measured, **sections,
            "headline": "vs baseline: " + (", ".join(parts) if parts else "nothing comparable")}
