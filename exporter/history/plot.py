"""The trend of one figure across runs, with its change points, as PNG or SVG (matplotlib, the report extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def plot_history(path: Path, run_ids: Sequence[int], values: Sequence[float], change_indices: Sequence[int],
                 title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    try:
        positions = list(range(len(values)))
        ax.plot(positions, values, marker="o", markersize=3, linewidth=1, color="#1f77b4")
        for i in change_indices:
            ax.axvline(i - 0.5, color="#d62728", linestyle="--", linewidth=1)
            ax.annotate(f"run {run_ids[i]}", (i - 0.5, max(values)), color="#d62728", fontsize=8,
                        rotation=90, va="top", ha="right")
        step = max(1, len(values) // 15)
        ax.set_xticks(positions[::step], [str(r) for r in run_ids][::step])
        ax.set_xlabel("run")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=path.suffix.lower().lstrip("."))
    finally:
        plt.close(fig)
    return path
