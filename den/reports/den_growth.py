"""What DEN decided, task by task: the fraction of old units each selection took, the units
each expansion kept and the validation loss its growth bought (torch-free).

Read from ``results.json`` (``tasks[*].report``: ``selected_fraction``, ``expansion_kept``,
``expansion_val_loss``, ``expansion_rounds``), averaged over a group's seeds. A section's DEN
groups get one table each and one figure for all of them in the comparison's report.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

from den.reports.plots import pyplot
from den.reports.runs import OUT_FIX, Group, Section
from den.utils.files import save_figure

FIGURE = "den_growth.png"


def task_reports(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-task reports of a run, in task order (empty dicts where none was kept)."""
    return [t.get("report") or {} for t in run.get("tasks", [])]


def is_den(group: Group) -> bool:
    """A group whose every run reports DEN's selections (tasks after the first)."""
    return all(
        len(task_reports(r)) > 1
        and all(isinstance(rep.get("selected_fraction"), list) for rep in task_reports(r)[1:])
        for r in group.runs
    )


def _mean(values: list[float]) -> float:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.fmean(values) if values else math.nan


def per_task(group: Group, key: str, index: int | None = None) -> list[list[float]]:
    """``report[key]`` (a per-layer list; element ``index`` of it when given, else every
    layer) of tasks 2..T, averaged over the group's runs: [task][layer], NaN where absent."""
    runs = [task_reports(r)[1:] for r in group.runs]
    tasks = min(len(r) for r in runs)
    out = []
    for j in range(tasks):
        values = [r[j].get(key) for r in runs]
        lists = [v if isinstance(v, list) else None for v in values]
        if index is not None:
            out.append([_mean([v[index] for v in lists if v is not None and len(v) > index])])
            continue
        width = max((len(v) for v in lists if v is not None), default=0)
        out.append(
            [_mean([v[k] for v in lists if v is not None and len(v) > k]) for k in range(width)]
        )
    return out


def rounds_kept(group: Group) -> list[list[float]]:
    """Per task 2..T, the expansion rounds kept (not undone), averaged over the group's runs:
    [task][0]; NaN where the runs grew in one round (no ``expansion_rounds`` report)."""
    runs = [task_reports(r)[1:] for r in group.runs]
    out = []
    for j in range(min(len(r) for r in runs)):
        counts = [
            sum(1 for one in rounds if isinstance(one, dict) and not one.get("undone"))
            for rounds in (r[j].get("expansion_rounds") for r in runs)
            if isinstance(rounds, list)
        ]
        out.append([_mean(counts)])
    return out


def growth_of(group: Group) -> dict[str, list[list[float]]]:
    """The group's per-task means the table and the figure show, read once: ``selected``,
    ``kept`` ([task][layer]), ``rounds``, ``before`` and ``after`` ([task][0])."""
    return {
        "selected": per_task(group, "selected_fraction"),
        "kept": per_task(group, "expansion_kept"),
        "rounds": rounds_kept(group),
        "before": per_task(group, "expansion_val_loss", 0),
        "after": per_task(group, "expansion_val_loss", 1),
    }


def growth_table(growth: dict[str, list[list[float]]]) -> tuple[list[str], list[list[str]]]:
    """Head and rows: per task, the selected fraction and the units kept per layer, and, when
    the runs grew in rounds, the rounds kept and the task's validation loss before and after
    its growth."""
    selected, kept = growth["selected"], growth["kept"]
    rounds, before, after = growth["rounds"], growth["before"], growth["after"]
    head = ["task", "selected fraction (per layer)", "units kept (per layer)"]
    show_rounds = any(math.isfinite(r[0]) for r in rounds)
    show_loss = any(math.isfinite(b[0]) for b in before)
    if show_rounds:
        head += ["rounds kept"]
    if show_loss:
        head += ["val loss before growth", "after"]
    rows = []
    for j, sel in enumerate(selected):
        row = [
            str(j + 2),
            " / ".join(f"{v:.2f}" for v in sel),
            " / ".join("-" if math.isnan(v) else f"{v:.1f}" for v in kept[j]) or "-",
        ]
        if show_rounds:
            row += ["-" if math.isnan(rounds[j][0]) else f"{rounds[j][0]:.1f}"]
        if show_loss:
            row += [_num(before[j][0]), _num(after[j][0])]
        rows.append(row)
    return head, rows


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def plot_growth(
    groups: list[Group], growths: list[dict[str, list[list[float]]]], path: Path, title: str
) -> Path:
    """One column per DEN group: the selected fraction per layer (top) and the units each
    expansion kept per layer with, when measured, the validation loss before and after
    growing (bottom), against the task."""
    plt = pyplot()
    fig, axes = plt.subplots(
        2,
        len(groups),
        figsize=(4.2 * len(groups) + 1.0, 5.6),
        squeeze=False,
        layout="constrained",
    )
    for col, (group, growth) in enumerate(zip(groups, growths, strict=True)):
        selected, kept = growth["selected"], growth["kept"]
        tasks = list(range(2, len(selected) + 2))
        top, bottom = axes[0, col], axes[1, col]
        layers = max((len(s) for s in selected), default=0)
        for layer in range(layers):
            ys = [s[layer] if layer < len(s) else math.nan for s in selected]
            top.plot(tasks, ys, marker="o", markersize=3, label=f"layer {layer + 1}")
        top.set_ylim(0, 1.05)
        top.set_title(textwrap.fill(group.label, 50), fontsize=9)  # long labels wrap
        top.set_ylabel("selected fraction of old units", fontsize=8)
        width = 0.8 / max(layers, 1)
        for layer in range(layers):
            xs = [t - 0.4 + width * (layer + 0.5) for t in tasks]
            ys = [k[layer] if layer < len(k) and math.isfinite(k[layer]) else 0 for k in kept]
            bottom.bar(xs, ys, width=width, label=f"layer {layer + 1}")
        bottom.set_ylabel("units kept by the expansion", fontsize=8)
        bottom.set_xlabel("task", fontsize=8)
        before = [v[0] for v in growth["before"]]
        after = [v[0] for v in growth["after"]]
        if any(math.isfinite(v) for v in before):
            loss = bottom.twinx()
            loss.plot(tasks, before, "v--", color="grey", markersize=4, label="val loss before")
            loss.plot(tasks, after, "^-", color="black", markersize=4, label="val loss after")
            loss.set_ylabel("task's validation loss", fontsize=8)
            loss.legend(fontsize=7, loc="upper right", frameon=False)
        for ax in (top, bottom):
            ax.set_xticks(tasks)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        top.legend(fontsize=7, loc="lower left", frameon=False)
    fig.suptitle(f"{title}\nDEN's selection and growth per task (mean over seeds)", fontsize=10)
    save_figure(fig, path, OUT_FIX, dpi=110)
    plt.close(fig)
    return path


def den_growth_part(
    section: Section, out: Path, prefix: str
) -> list[tuple[str, list[str], list[list[str]], list[Path]]]:
    """The DEN part of a section: (title, head, rows, figures) per DEN group, the figure
    with the first; empty when the section has no DEN group."""
    groups = [g for label in section.table.index for g in section.groups if g.label == label]
    groups = [g for g in groups if is_den(g)]
    if not groups:
        return []
    growths = [growth_of(g) for g in groups]
    figure = plot_growth(groups, growths, out / f"{prefix}{FIGURE}", section.title)
    parts = []
    for i, (group, growth) in enumerate(zip(groups, growths, strict=True)):
        head, rows = growth_table(growth)
        parts.append((f"{group.label}: selection and growth per task", head, rows,
                      [figure] if i == 0 else []))  # fmt: skip
    return parts
