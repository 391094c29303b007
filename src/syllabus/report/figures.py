"""Matplotlib figures rendered to PNG and embedded in the page as data URIs (no files beside it)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

MAX_POINTS = 2000  # per plotted series
COLORS = ["#3465a4", "#e07b39", "#4e9a06", "#a33ea1", "#c4a000", "#75507b", "#cc0000"]

plt.rcParams.update({
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 110,
})


def embed(fig: plt.Figure, alt: str) -> str:
    """The figure as an <img> with its PNG inline; closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def bars(labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str = "", ylabel: str = "") -> str:
    fig, ax = plt.subplots(figsize=(4.4, 2.8))
    ax.bar([str(label) for label in labels], values, color=COLORS[0])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(labels) > 6:
        ax.tick_params(axis="x", labelrotation=45)
    return embed(fig, title)


def grouped_bars(groups: Sequence[str], series: dict[str, Sequence[float | None]], *, title: str,
                 ylabel: str) -> str:
    """Bars for each group (e.g. benchmark), one bar per series (e.g. checkpoint) side by side, each bar
    labelled with its value (a missing value: no bar); the legend sits below the axes, never over the bars."""
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        present = [j for j, v in enumerate(values) if v is not None]
        bars = ax.bar(x[present] + i * width - 0.4 + width / 2, [values[j] for j in present], width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(x, groups)
    ax.set(title=title, ylabel=ylabel)
    ax.margins(y=0.15)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(series), 4),
                  frameon=False)
    return embed(fig, title)


def histogram(edges: Sequence[float], counts: Sequence[float], *, title: str, xlabel: str,
              threshold: float | None = None) -> str:
    fig, ax = plt.subplots(figsize=(4.4, 2.8))
    edges = np.asarray(edges, dtype=float)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=COLORS[0], edgecolor="white")
    if threshold is not None:  # labelled where it is drawn: no legend box over the bars
        ax.axvline(threshold, color=COLORS[6], linestyle="--")
        ax.annotate(f"threshold {threshold:.3g}", (threshold, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -2), textcoords="offset points", va="top", fontsize=8, color=COLORS[6])
    ax.set(title=title, xlabel=xlabel, ylabel="records")
    return embed(fig, title)


def curves(panels: dict[str, dict[str, tuple[Sequence[float], Sequence[float]]]], *, xlabel: str) -> str:
    """One panel per run (e.g. pretrain, finetune), each with named (x, y) series such as loss and val_loss;
    the legend sits under each panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items()):
        for label, (x, y) in series.items():
            stride = max(1, len(x) // MAX_POINTS)  # more points than pixels only slows drawing
            ax.plot(x[::stride], y[::stride], label=label, marker="o" if len(x) < 20 else None, markersize=3)
        ax.set(title=name, xlabel=xlabel, ylabel="loss (nats/token)")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(series), frameon=False)
    fig.tight_layout()
    return embed(fig, "training and validation loss")


def confusion(matrix: Sequence[Sequence[float]], labels: Sequence[str], *, title: str) -> str:
    values = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(3.2, 3))
    ax.imshow(values, cmap="Blues")
    ax.grid(False)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(title=title, xlabel="predicted", ylabel="true")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:g}", ha="center", va="center",
                color="white" if v > values.max() / 2 else "black")
    return embed(fig, title)


Band = tuple[Sequence[float], Sequence[float], Sequence[Sequence[float]]]  # x, y, [low, high] per point


def banded(panels: dict[str, dict[str, Band]], *, xlabel: str, ylabel: str, loglog: bool = True,
           reference: float | None = None) -> str:
    """One panel per name, each with named series drawn as a line through the points and a shaded
    confidence band (a scaling curve: log-log), and an optional horizontal reference line."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.3), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items()):
        for (label, (x, y, ci)), color in zip(series.items(), COLORS * 3):
            if not len(x):
                continue
            low, high = zip(*ci) if ci else (y, y)
            ax.plot(x, y, marker="o", markersize=3, label=label, color=color)
            ax.fill_between(x, low, high, alpha=0.2, color=color, linewidth=0)
        if reference is not None:
            ax.axhline(reference, color="#555", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        if loglog:
            ax.set_yscale("log")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return embed(fig, f"{ylabel} against {xlabel}")
