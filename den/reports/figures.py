"""The comparison's figures: one set of PNGs per section (matplotlib, Agg backend)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from den.reports.plots import COLOUR_SCALE, annotated_heatmap, place_labels, pyplot
from den.reports.runs import (
    METRICS,
    OUT_FIX,
    Group,
    Section,
    average_curve,
    mean_matrix,
    mean_std,
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


# Every metric a comparison plots is a fraction: bands and bars stay inside it.
METRIC_RANGE = (0.0, 1.0)


def band(values: list[float]) -> tuple[float, float, float]:
    """(mean, mean - std, mean + std) of ``values``, the band clipped to the metric's range."""
    mean, std = mean_std(values)
    low, high = METRIC_RANGE
    return mean, max(low, mean - std), min(high, mean + std)


def zoomed(finals: list[float]) -> list[int] | None:
    """The groups the zoom panel covers: the better half, at least two; None when that is
    every group (the zoom would repeat the full panel)."""
    keep = max(2, math.ceil(len(finals) / 2))
    if keep >= len(finals):
        return None
    return sorted(range(len(finals)), key=lambda i: -finals[i])[:keep]


def plot_average_curves(figs: Figures) -> None:
    """The average over the tasks seen, after each task; beside it, with more than three
    methods, a zoom on the better half (the two best at least)."""
    from matplotlib.ticker import MaxNLocator

    curves_of, finals = [], []
    for g in figs.groups:
        curves = [average_curve(r, figs.metric) for r in g.runs]
        n = min(len(c) for c in curves)
        curves_of.append([band([c[i] for c in curves]) for i in range(n)])
        finals.append(curves_of[-1][-1][0])
    zoom = zoomed(finals)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2 if zoom else 1, figsize=(11 if zoom else 7.5, 4.2),
                             layout="constrained", squeeze=False)  # fmt: skip
    axes = list(axes[0])
    for g, stats in zip(figs.groups, curves_of, strict=True):
        tasks = list(range(1, len(stats) + 1))
        for ax in axes:
            ax.plot(tasks, [m for m, _, _ in stats], label=g.label, markersize=4,
                    **figs.style[g.label])  # fmt: skip
            ax.fill_between(tasks, [lo for _, lo, _ in stats], [hi for _, _, hi in stats],
                            alpha=0.2, color=figs.style[g.label]["color"])  # fmt: skip
    if zoom:
        top = [v for i in zoom for m, lo, hi in curves_of[i] for v in (lo, hi)]
        margin = max(0.002, 0.05 * (max(top) - min(top)))
        axes[1].set_ylim(max(0.0, min(top) - margin), min(1.0, max(top) + margin))
    titles = ("all methods", f"zoom on the best {len(zoom)}") if zoom else ("",)
    for ax, sub in zip(axes, titles, strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=sub, xlabel="tasks learned", ylabel=f"average test {figs.name}")
        ax.grid(alpha=0.3)
    _legend(fig, axes[-1])
    fig.suptitle(f"{figs.title}: average {figs.name} over the tasks seen (band: ± 1 std)")
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
            stats = [band([float(r[matrix_key][i][j]) for r in g.runs]) for i in after]
            xs = [i + 1 for i in after]
            ax.plot(xs, [m for m, _, _ in stats], label=g.label, markersize=3,
                    **figs.style[g.label])  # fmt: skip
            ax.fill_between(xs, [lo for _, lo, _ in stats], [hi for _, _, hi in stats],
                            alpha=0.15, color=figs.style[g.label]["color"])  # fmt: skip
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
    fig.suptitle(
        f"{figs.title}: each task's {figs.name} as later tasks are learned (band: ± 1 std)"
    )
    figs.save(fig, f"{figs.metric}_per_task.png")


COST_AXES = {
    "capacity": ("capacity", "capacity (stored parameters / one base network)"),
    "wall_time_s": ("wall_time", "wall time (s)"),
}


def dodge(xs: list[float], log: bool, step: float = 0.02) -> list[float]:
    """``xs`` with points that (nearly) coincide spread apart side by side: a run of equal
    capacities (most baselines store one network) would otherwise draw on one spot."""
    out = list(xs)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    clusters: list[list[int]] = []
    for i in order:
        near = clusters and abs(xs[i] - xs[clusters[-1][0]]) <= 0.01 * max(abs(xs[i]), 1e-9)
        clusters[-1].append(i) if near else clusters.append([i])
    span = max(xs) - min(xs) or 1.0
    for cluster in clusters:
        for k, i in enumerate(cluster):
            shift = step * (k - (len(cluster) - 1) / 2)
            out[i] = xs[i] * (1 + shift) if log else xs[i] + shift * span
    return out


def plot_against_cost(figs: Figures, key: str) -> None:
    """The final average against what it cost (``key``: capacity or wall time), each method
    named beside its point; with capacity, a hollow marker at the non-zero capacity where
    runs record it. Methods at the same cost are set side by side."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    stem, xlabel = COST_AXES[key]
    final_key = METRICS[figs.metric].final
    points = []  # (group, x, x std, y, y low, y high, non-zero x or None)
    for g in figs.groups:
        values = [run_values(r) for r in g.runs]
        y, y_low, y_high = band([v[final_key] for v in values])
        x, dx = mean_std([v[key] for v in values])
        nonzero = [v["nonzero_capacity"] for v in values if not math.isnan(v["nonzero_capacity"])]
        xz = statistics.fmean(nonzero) if key == "capacity" and nonzero else None
        points.append((g, x, dx, y, y_low, y_high, xz))
    every_x = [p[1] for p in points] + [p[6] for p in points if p[6] is not None]
    log = max(every_x) / max(min(every_x), 1e-9) > 5  # STL / PNN sit at 10x and more
    placed = dodge([p[1] for p in points], log)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.0, 4.8), layout="constrained")
    for (g, x_true, dx, y, y_low, y_high, xz), x in zip(points, placed, strict=True):
        style = figs.style[g.label]
        ax.errorbar(x, y, xerr=dx, yerr=[[y - y_low], [y_high - y]], capsize=3, label=g.label,
                    linestyle="none", **style)  # fmt: skip
        if xz is not None and abs(xz - x_true) > 0.01 * x_true:  # only where sparsity shows
            ax.plot([xz, x], [y, y], color=style["color"], linewidth=0.8)
            ax.plot(xz, y, marker=style["marker"], markerfacecolor="none",
                    color=style["color"], linestyle="none")  # fmt: skip
    if log:
        ax.set_xscale("log")
        ax.set_xticks(one_two_five(min(every_x), max(every_x)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    place_labels(ax, [(p[0].label, x, p[3]) for p, x in zip(points, placed, strict=True)], 7)
    has_nonzero = any(p[6] is not None for p in points)
    note = " (hollow: non-zero parameters)" if has_nonzero else ""
    ax.set(
        title=f"{figs.title}: final average {figs.name} versus {xlabel.split(' (')[0]}{note}",
        xlabel=xlabel + (", log scale" if log else ""),
        ylabel=f"final average {figs.name} (± 1 std)",
    )
    ax.grid(alpha=0.3)
    _legend(fig, ax)
    figs.save(fig, f"{figs.metric}_vs_{stem}.png")


def plot_matrices(figs: Figures) -> None:
    """The mean matrices, annotated, on the metric's fixed colour scale."""
    plt = pyplot()
    groups = figs.groups
    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols + 1, 3.5 * rows + 0.4), squeeze=False, layout="constrained"
    )
    matrices = {g.label: mean_matrix(g, figs.metric) for g in groups}
    vmin, vmax = COLOUR_SCALE[figs.name]
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
