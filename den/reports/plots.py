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


# One colour scale per metric for every matrix, whatever the values: chance is the bottom of
# AUROC's scale (0.5), and 0.76 looks as good as it is next to 0.90 (a scale fitted to the
# data would paint it as a failure).
COLOUR_SCALE = {"accuracy": (0.0, 1.0), "AUROC": (0.5, 1.0)}


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


def matrix_figure(matrix: Matrix, title: str, label: str, metric: str = "accuracy") -> Any:
    """One annotated heatmap with a colour bar, as a figure (what the W&B logger uploads)."""
    plt = pyplot()
    vmin, vmax = COLOUR_SCALE[metric]
    fig, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    image = annotated_heatmap(ax, matrix, vmin, vmax, title)
    fig.colorbar(image, ax=ax, shrink=0.85, label=label)
    return fig


def place_labels(
    ax: Any, points: Sequence[tuple[str, float, float]], fontsize: float = 8
) -> list[Any]:
    """Write each text beside its (x, y) point, moved up until it clears the labels already
    placed (in display coordinates), so close points never share a label spot. Returns the
    text artists."""
    placed: list[tuple[float, float, float]] = []  # (x, y, width) in pixels
    texts = []
    for text, x, y in sorted(points, key=lambda p: (p[1], p[2])):
        px, py = ax.transData.transform((x, y))
        width = 0.62 * fontsize * len(text) + 4
        offset = 3.0
        while any(
            abs(py + offset - qy) < fontsize + 1 and px < qx + qw and qx < px + width
            for qx, qy, qw in placed
        ):
            offset += fontsize + 1
        placed.append((px, py + offset, width))
        texts.append(ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, offset),
                                 fontsize=fontsize))  # fmt: skip
    return texts
