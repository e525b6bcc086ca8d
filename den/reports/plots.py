"""Matplotlib drawing shared by ``den.compare`` and the W&B logger (no torch import).

Tasks are numbered from 1 in every figure (results.json and metrics.jsonl keep 0-based
indices, the positions in their lists).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Matrix = Sequence[Sequence[float | None]]


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color_range(matrices: Sequence[Matrix], floor: float = 0.0) -> tuple[float, float]:
    """(vmin, vmax) over every defined cell, widened to steps of 0.05, so one colour scale
    shows the differences between methods instead of a 0-1 scale where 0.95 and 0.98 look
    alike."""
    values = [
        float(v)
        for m in matrices
        for row in m
        for v in row
        if v is not None and math.isfinite(float(v))
    ]
    if not values:
        return 0.0, 1.0
    low = max(floor, math.floor(min(values) * 20) / 20)
    high = min(1.0, math.ceil(max(values) * 20) / 20)
    return (low, high) if high > low else (low - 0.05, high)


def annotated_heatmap(
    ax: Any,
    matrix: Matrix,
    vmin: float,
    vmax: float,
    title: str = "",
    cmap: str = "viridis",
    digits: int = 2,
) -> Any:
    """Draw ``matrix`` [T, T] (row i = after learning task i, column j = task evaluated;
    None above the diagonal) with each defined cell's value written in it. Returns the image
    (for a colour bar)."""
    size = len(matrix)
    data = [[math.nan if v is None else float(v) for v in row[:size]] for row in matrix]
    image = ax.imshow(data, vmin=vmin, vmax=vmax, cmap=cmap)
    fontsize = max(4.5, min(9.0, 60.0 / max(size, 1)))
    colormap = image.get_cmap()
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            if math.isnan(value):
                continue
            shade = colormap(image.norm(value))
            light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.5
            text = f"{value:.{digits}f}".lstrip("0") if value < 1 else f"{value:.{digits}f}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=fontsize,
                color="black" if light else "white",
            )
    ticks = range(size)
    labels = [str(t + 1) for t in ticks]
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set(xlabel="task evaluated", ylabel="after learning task")
    if title:
        ax.set_title(title, fontsize=9)
    return image


def matrix_figure(matrix: Matrix, title: str, label: str) -> Any:
    """One annotated heatmap with a colour bar, as a figure (what the W&B logger uploads)."""
    plt = pyplot()
    vmin, vmax = color_range([matrix])
    fig, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    image = annotated_heatmap(ax, matrix, vmin, vmax, title)
    fig.colorbar(image, ax=ax, shrink=0.85, label=label)
    return fig
