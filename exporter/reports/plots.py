"""Plots as inline SVG, drawn with matplotlib (the ``report`` extra). Without it the HTML page keeps its tables
and says how to get the plots."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from exporter.reports.model import Plot

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
TARGET_COLORS = ("#d62728", "#7f7f7f", "#8c564b")


def _short(label: str, limit: int = 44) -> str:
    """A bar's label that fits the left margin: statements are cut with an ellipsis."""
    flat = " ".join(label.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure() -> Any:
    import matplotlib

    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "perf-exporter",
                                "font.family": "sans-serif", "font.size": 9})
    from matplotlib.figure import Figure

    # fixed margins: a constrained layout draws each figure several times over
    return Figure(figsize=(7.5, 2.8), dpi=100)


def svg(plot: Plot) -> str | None:
    """The plot as an ``<svg>`` element, or None when it has nothing to draw."""
    if plot.kind == "bar" and not plot.bars:
        return None
    if plot.kind in ("line", "stages") and not any(s.points for s in plot.series):
        return None
    fig = _figure()
    bars = plot.kind == "bar"
    fig.subplots_adjust(left=0.42 if bars else 0.09, right=0.98, top=0.9, bottom=0.24 if plot.kind == "stages"
                        else 0.16)
    ax = fig.add_subplot()
    percent = plot.unit == "ratio"
    scale = 100.0 if percent else 1.0
    if plot.kind == "bar":
        labels = [label for label, _ in plot.bars][::-1]
        values = [v * scale for _, v in plot.bars][::-1]
        ax.barh(range(len(values)), values, color=COLORS[0])
        ax.set_yticks(range(len(values)), [_short(label) for label in labels], fontsize=7)
        ax.set_xlabel("%" if percent else plot.unit)
    else:
        stages = plot.kind == "stages"
        for i, s in enumerate(plot.series):
            xs = [p[0] if stages else datetime.fromtimestamp(p[0], UTC) for p in s.points]
            ax.plot(xs, [p[1] * scale for p in s.points], label=s.name, color=COLORS[i % len(COLORS)],
                    marker="o" if stages else None, linewidth=1.5)
        for i, (label, value) in enumerate(plot.targets):
            ax.axhline(value * scale, color=TARGET_COLORS[i % len(TARGET_COLORS)], linestyle="--", linewidth=1,
                       label=label)
        ax.set_ylabel("%" if percent else plot.unit)
        ax.set_ylim(bottom=0)
        if stages:
            ax.set_xticks(range(len(plot.bars)), [label for label, _ in plot.bars], rotation=20, fontsize=7)
        else:
            import matplotlib.dates as mdates

            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.legend(loc="upper left", fontsize=7, ncols=4)
    ax.set_title(plot.title)
    ax.grid(True, alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]
