"""The comparison's figures: one set of PNGs per section (matplotlib, Agg backend)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from den.reports.plots import annotated_heatmap, color_range, pyplot
from den.reports.runs import (
    METRICS,
    OUT_FIX,
    Group,
    Section,
    average_curve,
    confidence,
    mean_matrix,
    run_values,
)
from den.utils.files import save_figure


# ------------------------------------------------------------------------------ plots
def one_two_five(low: float, high: float) -> list[float]:
    """Ticks 1, 2, 5, 10, 20, 50... covering [low, high] (for a log axis)."""
    ticks, decade = [], 10 ** math.floor(math.log10(max(low, 1e-9)))
    while decade <= high * 10:
        ticks += [t * decade for t in (1, 2, 5) if low / 1.5 <= t * decade <= high * 1.5]
        decade *= 10
    return ticks


def _styles(groups: list[Group]) -> dict[str, dict[str, Any]]:
    """One colour and marker per group, the same in every plot (tab10 then tab20)."""
    plt = pyplot()
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("tab20b").colors)
    return {
        g.label: {"color": palette[i % len(palette)], "marker": "osD^v<>ph*"[i % 10]}
        for i, g in enumerate(groups)
    }


def _legend(fig: Any, ax: Any) -> None:
    """The legend beside the axes (never over the curves)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


@dataclass
class Figures:
    """What every figure of a section shares: its groups in table order, their styles, the
    metric, the title, and where the PNGs go."""

    groups: list[Group]
    style: dict[str, dict[str, Any]]
    metric: str
    title: str
    out: Path
    prefix: str
    written: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        return METRICS[self.metric].name

    def save(self, fig: Any, filename: str) -> None:
        self.written.append(self.out / f"{self.prefix}{filename}")
        save_figure(fig, self.written[-1], OUT_FIX, dpi=110)
        pyplot().close(fig)


def plot_section(section: Section, out: Path, prefix: str, metric: str) -> list[Path]:
    """Every figure of one section, as PNGs in ``out`` (names start with ``prefix``)."""
    groups = [g for label in section.table.index for g in section.groups if g.label == label]
    figs = Figures(groups, _styles(groups), metric, section.title, out, prefix)
    plot_average_curves(figs)
    plot_per_task(figs)
    for key in ("capacity", "wall_time_s"):
        plot_against_cost(figs, key)
    plot_matrices(figs)
    return figs.written


def plot_average_curves(figs: Figures) -> None:
    """The average over the tasks seen, after each task; zoomed on the best half beside it."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    finals, curves_of = [], []
    for g in figs.groups:
        curves = [average_curve(r, figs.metric) for r in g.runs]
        n = min(len(c) for c in curves)
        stats = [confidence([c[i] for c in curves]) for i in range(n)]
        means = [m for m, _ in stats]
        finals.append(means[-1])
        curves_of.append(means)
        tasks = list(range(1, n + 1))
        for ax in axes:
            ax.plot(tasks, means, label=g.label, markersize=4, **figs.style[g.label])
            ax.fill_between(
                tasks,
                [m - h for m, h in stats],
                [m + h for m, h in stats],
                alpha=0.2,
                color=figs.style[g.label]["color"],
            )
    # the zoom: the y range of the curves of the better half of the groups
    order = sorted(range(len(figs.groups)), key=lambda i: -finals[i])[
        : max(1, math.ceil(len(figs.groups) / 2))
    ]
    top = [v for i in order for v in curves_of[i]]
    margin = max(0.002, 0.05 * (max(top) - min(top)))
    axes[1].set_ylim(min(top) - margin, max(top) + margin)
    for ax, sub in zip(axes, ("all methods", "zoom on the best half"), strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=sub, xlabel="tasks learned", ylabel=f"average test {figs.name}")
        ax.grid(alpha=0.3)
    _legend(fig, axes[1])
    fig.suptitle(
        f"{figs.title}: average {figs.name} over the tasks seen (shaded: 95% CI over seeds)"
    )
    figs.save(fig, f"avg_{figs.metric}_curve.png")


def plot_per_task(figs: Figures) -> None:
    """Each task's value after every later task: forgetting, task by task."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    matrix_key = METRICS[figs.metric].matrix
    size = min(len(g.runs[0][matrix_key]) for g in figs.groups)
    cols = min(5, size)
    rows = math.ceil(size / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(2.6 * cols + 2.2, 2.2 * rows + 0.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for j, ax in enumerate(axes.flat):
        if j >= size:
            ax.axis("off")
            continue
        for g in figs.groups:
            after = list(range(j, size))
            stats = [confidence([float(r[matrix_key][i][j]) for r in g.runs]) for i in after]
            xs = [i + 1 for i in after]
            ax.plot(xs, [m for m, _ in stats], label=g.label, markersize=3, **figs.style[g.label])
            ax.fill_between(
                xs,
                [m - h for m, h in stats],
                [m + h for m, h in stats],
                alpha=0.15,
                color=figs.style[g.label]["color"],
            )
        ax.set_title(f"task {j + 1}", fontsize=9)
        ax.set_xlim(0.5, size + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("after learning task", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"test {figs.name}", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)
    fig.suptitle(f"{figs.title}: each task's {figs.name} as later tasks are learned")
    figs.save(fig, f"{figs.metric}_per_task.png")


COST_AXES = {
    "capacity": ("capacity", "capacity (stored parameters / one base network)"),
    "wall_time_s": ("wall_time", "wall time (s)"),
}


def plot_against_cost(figs: Figures, key: str) -> None:
    """The final average against what it cost (``key``: capacity or wall time); with
    capacity, a hollow marker at the non-zero capacity where runs record it."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    plt = pyplot()
    stem, xlabel = COST_AXES[key]
    final_key = METRICS[figs.metric].final
    has_nonzero = key == "capacity" and any(
        "nonzero_capacity" in r.get("final", {}) for g in figs.groups for r in g.runs
    )
    fig, ax = plt.subplots(figsize=(8.5, 4.4), layout="constrained")
    xs = []
    for g in figs.groups:
        values = [run_values(r) for r in g.runs]
        y, dy = confidence([v[final_key] for v in values])
        x, dx = confidence([v[key] for v in values])
        xs.append(x)
        style = figs.style[g.label]
        ax.errorbar(x, y, xerr=dx, yerr=dy, capsize=3, label=g.label, linestyle="none", **style)
        nonzero = [v["nonzero_capacity"] for v in values if not math.isnan(v["nonzero_capacity"])]
        if has_nonzero and nonzero:
            xz = statistics.fmean(nonzero)
            xs.append(xz)
            ax.plot([xz, x], [y, y], color=style["color"], linewidth=0.8)
            ax.plot(xz, y, marker=style["marker"], markerfacecolor="none",
                    color=style["color"], linestyle="none")  # fmt: skip
    if max(xs) / max(min(xs), 1e-9) > 5:
        ax.set_xscale("log")  # STL / PNN sit at 10x and more; keep the ~1x methods apart
        ax.set_xticks(one_two_five(min(xs), max(xs)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    note = " (hollow: non-zero parameters)" if has_nonzero else ""
    ax.set(
        title=f"{figs.title}: final average {figs.name} versus {xlabel.split(' (')[0]}{note}",
        xlabel=xlabel + (", log scale" if ax.get_xscale() == "log" else ""),
        ylabel=f"final average {figs.name} (95% CI)",
    )
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    figs.save(fig, f"{figs.metric}_vs_{stem}.png")


def plot_matrices(figs: Figures) -> None:
    """The mean matrices, annotated, on one colour scale fitted to the values."""
    plt = pyplot()
    groups = figs.groups
    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols + 1, 3.5 * rows + 0.4), squeeze=False, layout="constrained"
    )
    matrices = {g.label: mean_matrix(g, figs.metric) for g in groups}
    vmin, vmax = color_range(list(matrices.values()))
    image = None
    for ax, g in zip(axes.flat, groups, strict=False):
        runs = f"{len(g.runs)} runs" if len(g.runs) > 1 else "1 run"
        image = annotated_heatmap(ax, matrices[g.label], vmin, vmax, f"{g.label} ({runs})")
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label=f"test {figs.name} (mean over runs)")
    fig.suptitle(f"{figs.title}: {figs.name} matrices (colour scale {vmin:.2f}-{vmax:.2f})")
    figs.save(fig, f"{figs.metric}_matrices.png")
