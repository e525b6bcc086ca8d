"""Compare runs: per stream, a table over seeds grouped by method, plots, one HTML page.

    python -m den.compare outputs/multirun/pmnist/<timestamp>          # a multirun directory
    python -m den.compare RUN_DIR RUN_DIR ... --out reports/mine        # or run directories
    python -m den.compare --wandb ENTITY/PROJECT --group G --out reports/g  # or W&B runs

Every ``results.json`` under the given paths is read. A file that is not a den results file
(not JSON, not an object, no config, missing matrices) is named on stderr and in the report
and skipped; runs still in progress or that died are listed and left out of the tables.

Runs are split into one section per stream (the stream's config: dataset, tasks, samples...):
methods are only ranked against runs of the same stream. Inside a section, runs of the same
method (the strategy config chosen, e.g. ``den_pmnist``; ``strategy.name`` for runs older
than the key) and the same config up to the seed form a group; groups of one method with
different settings get the keys they differ in appended (``--label KEY`` groups by a dotted
config key instead). Each group's final metrics are given as mean ± standard deviation over
its runs (seeds); plots shade a 95% confidence interval over seeds (Student t).

Writes into ``--out`` (default: the first path): ``report.md``, ``report.html`` (the same,
with every plot embedded: one file to open or send), ``summary.csv`` (one row per run, every
column of both metrics) and per section: ``avg_<metric>_curve.png``, ``<metric>_per_task.png``
(each task's value after every later task), ``<metric>_vs_capacity.png``,
``<metric>_vs_wall_time.png`` and ``<metric>_matrices.png`` (annotated mean matrices). With
several sections the plot names start with the section's name. ``--metric auroc`` ranks and
plots by AUROC instead, for the one-vs-rest protocols the DEN paper reports in AUROC.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import math
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("den.reports.compare")


class CompareError(Exception):
    """Nothing to compare, or bad arguments: printed as one paragraph, exit status 2."""


class Metric(NamedTuple):
    """What ``--metric`` ranks and plots by: keys into results.json and a table column key."""

    matrix: str  # results key of the [T, T] matrix, row i = after task i
    final: str  # key in results["final"]: the average after the last task
    learned: str  # table column key: mean of the matrix's diagonal
    name: str  # in plot titles and the report


METRICS = {
    "acc": Metric("acc_matrix", "avg_acc", "learned_acc", "accuracy"),
    "auroc": Metric("auroc_matrix", "avg_auroc", "learned_auroc", "AUROC"),
}

# (column key, title, format): the report table, in order; see run_values for each key
HEAD_COLUMNS = (
    ("avg_acc", "avg acc", "{:.4f}"),
    ("learned_acc", "acc when learned", "{:.4f}"),  # mean of R[j][j]: plasticity
    ("avg_auroc", "avg AUROC", "{:.4f}"),
    ("learned_auroc", "AUROC when learned", "{:.4f}"),
)
TRANSFER_COLUMNS = {  # backward transfer and forgetting of the metric the report ranks by
    "acc": (("bwt", "BWT", "{:+.4f}"), ("forgetting", "forgetting", "{:.4f}")),
    "auroc": (
        ("auroc_bwt", "BWT (AUROC)", "{:+.4f}"),
        ("auroc_forgetting", "forgetting (AUROC)", "{:.4f}"),
    ),
}
TAIL_COLUMNS = (
    ("capacity", "capacity", "{:.2f}"),  # stored parameters / one base network
    ("nonzero_capacity", "non-zero capacity", "{:.2f}"),  # shown when runs record it
    ("wall_time_s", "wall s", "{:.0f}"),
    ("peak_rss_mib", "peak MiB", "{:.0f}"),  # largest resident memory of the run's processes
)
OPTIONAL_COLUMNS = ("nonzero_capacity",)  # left out of a table where no run has them


def table_columns(metric: str) -> tuple[tuple[str, str, str], ...]:
    """The report table's columns when ranking by ``metric``."""
    return (*HEAD_COLUMNS, *TRANSFER_COLUMNS[metric], *TAIL_COLUMNS)


# summary.csv keeps every column whatever the metric, so its header never changes
CSV_KEYS = tuple(dict.fromkeys(k for m in TRANSFER_COLUMNS for k, _, _ in table_columns(m)))

# keys a complete results.json must have for a report
REQUIRED_KEYS = ("config", "final", "acc_matrix", "auroc_matrix", "tasks_done")


# ------------------------------------------------------------------------------ reading runs
@dataclass
class Found:
    """What the given paths hold."""

    complete: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)  # running, failed, interrupted
    bad: list[tuple[Path, str]] = field(default_factory=list)  # (file, what is wrong)


def read_results(file: Path) -> dict[str, Any]:
    """The content of one results.json; ValueError naming what is wrong with it."""
    try:
        results = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot be read ({err.strerror or err})") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"is not valid JSON ({err})") from err
    if not isinstance(results, dict):
        raise ValueError(f"holds a JSON {type(results).__name__}, not a den results object")
    if not isinstance(results.get("config"), dict):
        raise ValueError("has no 'config' (not written by den.train)")
    if results.get("status") == "complete":
        missing = [k for k in REQUIRED_KEYS if k not in results]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        for key in ("acc_matrix", "auroc_matrix"):
            if not lower_triangle(results[key], results["tasks_done"]):
                raise ValueError(f"has no [tasks_done x tasks_done] {key} of numbers")
    return results


def lower_triangle(matrix: Any, size: Any) -> bool:
    """Whether ``matrix`` has ``size`` rows with numbers at and below the diagonal."""
    if not isinstance(size, int) or size < 1 or not isinstance(matrix, list):
        return False
    if len(matrix) != size:
        return False
    return all(
        isinstance(row, list)
        and len(row) > i
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row[: i + 1])
        for i, row in enumerate(matrix)
    )


def find_runs(paths: Sequence[str | Path]) -> Found:
    """Every results.json under ``paths`` (directories are searched recursively), sorted."""
    found = Found()
    files: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise CompareError(
                f"{path} does not exist. Fix: pass a multirun directory, run directories "
                "or results.json files."
            )
        files |= set(path.rglob("results.json")) if path.is_dir() else {path}
    for file in sorted(files):
        try:
            results = read_results(file)
        except ValueError as err:
            print(f"Warning: skipped {file}: it {err}", file=sys.stderr)
            found.bad.append((file, str(err)))
            continue
        if results.get("status") == "complete":
            found.complete.append((file.parent, results))
        else:
            found.incomplete.append(file.parent)
    return found


def find_wandb_runs(path: str, group: str | None) -> Found:
    """The same as :func:`find_runs`, from the W&B API: runs of ``ENTITY/PROJECT`` (in
    ``group``) whose summary holds the ``results`` that :class:`den.loggers.wandb.WandbLogger`
    stores at the end of a run."""
    from den.loggers.wandb import has_wandb_key

    if not has_wandb_key():
        raise CompareError(
            "--wandb reads runs from the W&B servers, which needs an API key. Fix: set "
            "WANDB_API_KEY or run `wandb login`; for offline runs, pass their run directories "
            "instead (python -m den.compare outputs/multirun/...)."
        )
    import wandb

    filters = {"group": group} if group else None
    found = Found()
    try:
        api_runs = list(wandb.Api().runs(path, filters=filters))
    except (ValueError, wandb.errors.Error) as err:
        raise CompareError(
            f"W&B could not list the runs of {path!r} ({err}). Fix: pass --wandb ENTITY/PROJECT "
            "of a project you can read, and check the network."
        ) from err
    for run in api_runs:
        where = Path(f"wandb:{path}/{run.id}")
        results = dict(run.summary.get("results") or {})
        if run.state != "finished" or not results:
            found.incomplete.append(where)
            continue
        config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        found.complete.append((where, {**results, "status": "complete", "config": config}))
    return found


# ------------------------------------------------------------------------------ figures of a run
def learned(matrix: list[list[float | None]]) -> float:
    """Mean of the diagonal: each task's value right after it was learned."""
    return statistics.fmean(float(matrix[j][j]) for j in range(len(matrix)))


def backward_transfer(matrix: list[list[float | None]]) -> float:
    """Mean over j < T of R[T-1][j] - R[j][j] (0 for one task); as den.engine.metrics."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return statistics.fmean(float(matrix[last][j]) - float(matrix[j][j]) for j in range(last))


def forgetting(matrix: list[list[float | None]]) -> float:
    """Mean over j < T of the best earlier value minus the last one; as den.engine.metrics."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return statistics.fmean(
        max(float(matrix[i][j]) for i in range(j, last)) - float(matrix[last][j])
        for j in range(last)
    )


def run_values(results: dict[str, Any]) -> dict[str, float]:
    """Every table/CSV column of one run (NaN where the run does not record it)."""
    final = results.get("final", {})
    out = {key: float(final.get(key, math.nan)) for key in ("avg_acc", "avg_auroc")}
    out["learned_acc"] = learned(results["acc_matrix"])
    out["learned_auroc"] = learned(results["auroc_matrix"])
    out["bwt"] = float(final.get("bwt", backward_transfer(results["acc_matrix"])))
    out["forgetting"] = float(final.get("forgetting", forgetting(results["acc_matrix"])))
    out["auroc_bwt"] = backward_transfer(results["auroc_matrix"])  # older runs lack the key
    out["auroc_forgetting"] = forgetting(results["auroc_matrix"])
    out["capacity"] = float(final.get("capacity", math.nan))
    out["nonzero_capacity"] = float(final.get("nonzero_capacity", math.nan))
    out["wall_time_s"] = float(results.get("wall_time_s", math.nan))
    peak = results.get("peak_rss_mib")  # not recorded by runs older than the key
    out["peak_rss_mib"] = float(peak) if peak else math.nan
    return out


def average_curve(results: dict[str, Any], metric: str) -> list[float]:
    """Average over the tasks seen after each task: [T] (row i of the matrix, tasks <= i)."""
    matrix = results[METRICS[metric].matrix]
    return [statistics.fmean(float(v) for v in row[: i + 1]) for i, row in enumerate(matrix)]


def config_value(results: dict[str, Any], dotted: str) -> Any:
    node: Any = results.get("config", {})
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CompareError(
                f"--label {dotted}: a run has no config key {dotted!r}. Fix: pass a dotted key "
                "of the runs' config (e.g. strategy.lam), or --label auto."
            )
        node = node[part]
    return node


def method_of(results: dict[str, Any]) -> str:
    """The strategy config chosen (results.json's ``method``); ``strategy.name`` for runs
    recorded before the key."""
    return str(results.get("method") or results.get("config", {}).get("strategy", {}).get("name"))


# ------------------------------------------------------------------------------ sections, groups
# Config keys that never make two runs different experiments.
RUN_ONLY_KEYS = (
    "seed",
    "paths",
    "resume",
    "threads",
    "device",
    "logger",
    "trainer.progress",
    "stream.root",  # where the data lives, not which data
    "stream.download",
    "stream.source",  # torchvision files or the same images as a folder
)


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """{dotted key: JSON text of the value} of a nested config."""
    if not isinstance(node, dict):
        return {prefix: json.dumps(node)}
    out: dict[str, str] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _kept(key: str) -> bool:
    return not any(key == r or key.startswith(r + ".") for r in RUN_ONLY_KEYS)


def experiment_key(results: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The resolved config without what only distinguishes runs of one experiment."""
    flat = flatten(results.get("config", {}))
    return tuple(sorted((k, v) for k, v in flat.items() if _kept(k)))


def stream_key(results: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The stream's config: runs are only ranked against runs with the same one."""
    return tuple((k, v) for k, v in experiment_key(results) if k.startswith("stream."))


@dataclass
class Group:
    """The runs of one method and setting in one section (typically several seeds)."""

    label: str
    method: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)


@dataclass
class Section:
    """The runs of one stream: one table, one set of plots."""

    title: str
    slug: str
    groups: list[Group] = field(default_factory=list)
    table: Any = None  # pandas DataFrame: one row per group


def split_sections(runs: list[tuple[Path, dict]], label_key: str = "auto") -> list[Section]:
    """One section per stream config, in the order its first run appears."""
    by_stream: dict[Any, list[tuple[Path, dict]]] = {}
    for run_dir, results in runs:
        by_stream.setdefault(stream_key(results), []).append((run_dir, results))
    sections = []
    for members in by_stream.values():
        first = members[0][1]
        stream = first.get("stream") or first["config"].get("stream", {}).get("name", "stream")
        experiments = sorted({str(r.get("experiment", "")) for _, r in members} - {""})
        title = f"{stream}, {first['tasks_done']} tasks"
        if experiments and experiments != [stream]:
            title += f" (experiment {', '.join(experiments)})"
        sections.append(Section(title, str(stream), group_runs(members, label_key)))
    slugs = [s.slug for s in sections]
    for section in sections:  # two configs of one stream (e.g. sample counts) stay apart
        if slugs.count(section.slug) > 1:
            section.slug += f"_{slugs[: sections.index(section)].count(section.slug) + 1}"
            slugs = [s.slug for s in sections]
    return sections


def group_runs(runs: list[tuple[Path, dict]], label_key: str = "auto") -> list[Group]:
    """Groups in the order their first run appears.

    ``auto``: runs of one method with the same config up to the seed form a group named by
    the method; groups of one method with different settings get the (at most three) keys
    they differ in appended. Any other value is a dotted config key whose value names the
    group.
    """
    if label_key != "auto":
        groups: dict[str, Group] = {}
        for run_dir, results in runs:
            label = json.dumps(config_value(results, label_key)).strip('"')
            group = groups.setdefault(label, Group(label, method_of(results)))
            group.runs.append(results)
            group.dirs.append(run_dir)
        return list(groups.values())
    by_key: dict[Any, Group] = {}
    for run_dir, results in runs:
        key = (method_of(results), experiment_key(results))
        group = by_key.setdefault(key, Group(key[0], key[0]))
        group.runs.append(results)
        group.dirs.append(run_dir)
    for (method, config), group in by_key.items():
        twins = [dict(c) for m, c in by_key if m == method and c != config]
        if not twins:
            continue
        mine = dict(config)
        differs = sorted(
            {k for t in twins for k in set(t) | set(mine) if t.get(k) != mine.get(k)}
            - {"strategy.name"}
        )
        shown = [f"{k.rsplit('.', 1)[-1]}={mine[k]}" for k in differs if k in mine]
        extra = f", +{len(shown) - 3} more" if len(shown) > 3 else ""
        if shown:
            group.label = f"{method} ({', '.join(shown[:3])}{extra})".replace('"', "")
    return list(by_key.values())


def build_table(section: Section, metric: str) -> Any:
    """One row per group: runs, and mean / std of every column over the group's runs. Uses
    pandas: its NaN-aware group statistics treat a value some runs lack (peak memory of old
    runs) as missing instead of poisoning the mean."""
    import pandas as pd

    rows = [{"label": g.label, **run_values(r)} for g in section.groups for r in g.runs]
    frame = pd.DataFrame(rows)
    keys = [k for k, _, _ in table_columns(metric)]
    stats = frame.groupby("label", sort=False)[keys].agg(["mean", "std"])
    stats.insert(0, ("runs", ""), frame.groupby("label", sort=False).size())
    final = METRICS[metric].final
    return stats.sort_values((final, "mean"), ascending=False, kind="stable")


def cell(mean: float, std: float, runs: int, fmt: str) -> str:
    """``mean ± std``; the mean alone for one run; an en dash when not recorded."""
    if math.isnan(mean):
        return "–"
    text = fmt.format(mean)
    if runs > 1 and not math.isnan(std):
        text += f" ± {fmt.format(std).lstrip('+')}"
    return text


def table_cells(table: Any, metric: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the report table; optional columns only when some run has them."""
    columns = [
        (key, title, fmt)
        for key, title, fmt in table_columns(metric)
        if key not in OPTIONAL_COLUMNS or table[(key, "mean")].notna().any()
    ]
    head = ["method", "runs", *(title for _, title, _ in columns)]
    rows = []
    for label, row in table.iterrows():
        runs = int(row[("runs", "")])
        cells = [str(label), str(runs)]
        cells += [cell(row[(k, "mean")], row[(k, "std")], runs, fmt) for k, _, fmt in columns]
        rows.append(cells)
    return head, rows


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def write_csv(sections: list[Section], path: Path) -> None:
    import pandas as pd

    rows = []
    for section in sections:
        for g in section.groups:
            for run_dir, results in zip(g.dirs, g.runs, strict=True):
                values = run_values(results)
                rows.append(
                    {
                        "section": section.slug,
                        "label": g.label,
                        "method": g.method,
                        "run_dir": str(run_dir),
                        "seed": results.get("seed"),
                        **{k: values[k] for k in CSV_KEYS},
                    }
                )
    pd.DataFrame(rows).to_csv(path, index=False)


# ------------------------------------------------------------------------------ plots
T_95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23)  # t(0.975, df = 1..10)


def confidence(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% confidence interval of the mean; 0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    t = T_95[len(values) - 2] if len(values) - 1 <= len(T_95) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def one_two_five(low: float, high: float) -> list[float]:
    """Ticks 1, 2, 5, 10, 20, 50... covering [low, high] (for a log axis)."""
    ticks, decade = [], 10 ** math.floor(math.log10(max(low, 1e-9)))
    while decade <= high * 10:
        ticks += [t * decade for t in (1, 2, 5) if low / 1.5 <= t * decade <= high * 1.5]
        decade *= 10
    return ticks


def mean_matrix(group: Group, metric: str) -> list[list[float | None]]:
    """Element-wise mean of the group's matrices [T, T]; None above the diagonal."""
    mats = [r[METRICS[metric].matrix] for r in group.runs]
    size = min(len(m) for m in mats)
    return [
        [statistics.fmean(float(m[i][j]) for m in mats) if j <= i else None for j in range(size)]
        for i in range(size)
    ]


def _styles(groups: list[Group]) -> dict[str, dict[str, Any]]:
    """One colour and marker per group, the same in every plot (tab10 then tab20)."""
    from den.reports.plots import pyplot

    plt = pyplot()
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("tab20b").colors)
    return {
        g.label: {"color": palette[i % len(palette)], "marker": "osD^v<>ph*"[i % 10]}
        for i, g in enumerate(groups)
    }


def _legend(fig: Any, ax: Any) -> None:
    """The legend beside the axes (never over the curves)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def plot_section(section: Section, out: Path, prefix: str, metric: str) -> list[Path]:
    from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

    from den.reports.plots import annotated_heatmap, color_range, pyplot

    plt = pyplot()
    groups = [g for label in section.table.index for g in section.groups if g.label == label]
    style = _styles(groups)
    name, final_key = METRICS[metric].name, METRICS[metric].final
    title = section.title
    written = []

    def save(fig: Any, filename: str) -> None:
        written.append(out / f"{prefix}{filename}")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    # 1. the average over the tasks seen, after each task; zoomed on the best half beside it
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    finals, curves_of = [], []
    for g in groups:
        curves = [average_curve(r, metric) for r in g.runs]
        n = min(len(c) for c in curves)
        stats = [confidence([c[i] for c in curves]) for i in range(n)]
        means = [m for m, _ in stats]
        finals.append(means[-1])
        curves_of.append(means)
        tasks = list(range(1, n + 1))
        for ax in axes:
            ax.plot(tasks, means, label=g.label, markersize=4, **style[g.label])
            ax.fill_between(
                tasks,
                [m - h for m, h in stats],
                [m + h for m, h in stats],
                alpha=0.2,
                color=style[g.label]["color"],
            )
    # the zoom: the y range of the curves of the better half of the groups
    order = sorted(range(len(groups)), key=lambda i: -finals[i])[
        : max(1, math.ceil(len(groups) / 2))
    ]
    top = [v for i in order for v in curves_of[i]]
    margin = max(0.002, 0.05 * (max(top) - min(top)))
    axes[1].set_ylim(min(top) - margin, max(top) + margin)
    for ax, sub in zip(axes, ("all methods", "zoom on the best half"), strict=True):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=sub, xlabel="tasks learned", ylabel=f"average test {name}")
        ax.grid(alpha=0.3)
    _legend(fig, axes[1])
    fig.suptitle(f"{title}: average {name} over the tasks seen (shaded: 95% CI over seeds)")
    save(fig, f"avg_{metric}_curve.png")

    # 2. each task's value after every later task: forgetting, task by task
    size = min(len(g.runs[0][METRICS[metric].matrix]) for g in groups)
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
    lows = []
    for j, ax in enumerate(axes.flat):
        if j >= size:
            ax.axis("off")
            continue
        for g in groups:
            after = list(range(j, size))
            stats = [
                confidence([float(r[METRICS[metric].matrix][i][j]) for r in g.runs]) for i in after
            ]
            lows += [m - h for m, h in stats]
            xs = [i + 1 for i in after]
            ax.plot(xs, [m for m, _ in stats], label=g.label, markersize=3, **style[g.label])
            ax.fill_between(
                xs,
                [m - h for m, h in stats],
                [m + h for m, h in stats],
                alpha=0.15,
                color=style[g.label]["color"],
            )
        ax.set_title(f"task {j + 1}", fontsize=9)
        ax.set_xlim(0.5, size + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("after learning task", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"test {name}", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)
    fig.suptitle(f"{title}: each task's {name} as later tasks are learned")
    save(fig, f"{metric}_per_task.png")

    # 3./4. the final average against what it cost: capacity, wall time
    has_nonzero = any("nonzero_capacity" in r.get("final", {}) for g in groups for r in g.runs)
    for key, filename, xlabel in (
        (
            "capacity",
            f"{metric}_vs_capacity.png",
            "capacity (stored parameters / one base network)",
        ),
        ("wall_time_s", f"{metric}_vs_wall_time.png", "wall time (s)"),
    ):
        fig, ax = plt.subplots(figsize=(8.5, 4.4), layout="constrained")
        xs = []
        for g in groups:
            values = [run_values(r) for r in g.runs]
            y, dy = confidence([v[final_key] for v in values])
            x, dx = confidence([v[key] for v in values])
            xs.append(x)
            ax.errorbar(
                x, y, xerr=dx, yerr=dy, capsize=3, label=g.label, linestyle="none",
                **style[g.label],
            )  # fmt: skip
            if key == "capacity" and has_nonzero:
                nz = [
                    v["nonzero_capacity"] for v in values if not math.isnan(v["nonzero_capacity"])
                ]
                if nz:
                    xz = statistics.fmean(nz)
                    xs.append(xz)
                    ax.plot([xz, x], [y, y], color=style[g.label]["color"], linewidth=0.8)
                    ax.plot(xz, y, marker=style[g.label]["marker"], markerfacecolor="none",
                            color=style[g.label]["color"], linestyle="none")  # fmt: skip
        if max(xs) / max(min(xs), 1e-9) > 5:
            ax.set_xscale("log")  # STL / PNN sit at 10x and more; keep the ~1x methods apart
            ax.set_xticks(one_two_five(min(xs), max(xs)))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        note = " (hollow: non-zero parameters)" if key == "capacity" and has_nonzero else ""
        ax.set(
            title=f"{title}: final average {name} versus {xlabel.split(' (')[0]}{note}",
            xlabel=xlabel + (", log scale" if ax.get_xscale() == "log" else ""),
            ylabel=f"final average {name} (95% CI)",
        )
        ax.grid(alpha=0.3)
        _legend(fig, ax)
        save(fig, filename)

    # 5. the mean matrices, annotated, on one colour scale fitted to the values
    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols + 1, 3.5 * rows + 0.4), squeeze=False, layout="constrained"
    )
    matrices = {g.label: mean_matrix(g, metric) for g in groups}
    vmin, vmax = color_range(list(matrices.values()))
    image = None
    for ax, g in zip(axes.flat, groups, strict=False):
        runs = f"{len(g.runs)} runs" if len(g.runs) > 1 else "1 run"
        image = annotated_heatmap(ax, matrices[g.label], vmin, vmax, f"{g.label} ({runs})")
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label=f"test {name} (mean over runs)")
    fig.suptitle(f"{title}: {name} matrices (colour scale {vmin:.2f}-{vmax:.2f})")
    save(fig, f"{metric}_matrices.png")
    return written


# ------------------------------------------------------------------------------ the report
def _relative(path: Path, start: Path) -> str:
    """``path`` relative to the report directory when it lies inside it (committed reports
    keep their runs under ``runs/``), else as given."""
    if str(path).startswith("wandb:") or not path.resolve().is_relative_to(start.resolve()):
        return str(path)
    return os.path.relpath(path, start)


def compare(
    paths: Sequence[str | Path],
    out: str | Path | None = None,
    label: str = "auto",
    wandb_path: str | None = None,
    wandb_group: str | None = None,
    metric: str = "acc",
) -> Path:
    """Write the report for the runs under ``paths`` (or of W&B project ``wandb_path``,
    optionally only ``wandb_group``), ranked and plotted by ``metric`` (acc | auroc); return
    the path of report.md (report.html is beside it). Raises :class:`CompareError`."""
    if metric not in METRICS:
        raise CompareError(f"unknown metric {metric!r}. Fix: use one of {sorted(METRICS)}.")
    if wandb_path and out is None:
        raise CompareError("--out is needed with --wandb. Fix: add --out <report dir>.")
    if wandb_path:
        found = find_wandb_runs(wandb_path, wandb_group)
        where = f"W&B {wandb_path}" + (f", group {wandb_group}" if wandb_group else "")
    else:
        found = find_runs(paths)
        where = ", ".join(map(str, paths))
    if not found.complete:
        seen = (
            f" ({len(found.incomplete)} unfinished, {len(found.bad)} unreadable)"
            if found.incomplete or found.bad
            else " (no results.json at all)"
        )
        raise CompareError(
            f"no complete run in {where}{seen}. Fix: pass a multirun directory, run "
            "directories of finished runs, or a W&B project and group that hold finished "
            "runs logged with logger=wandb."
        )
    out_dir = Path(out) if out is not None else Path(paths[0])
    if out_dir.is_file():
        out_dir = out_dir.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = split_sections(found.complete, label)
    md = [
        "# Comparison: " + ("; ".join(s.title for s in sections)),
        "",
        f"{len(found.complete)} complete runs, {len(sections)} "
        f"{'stream' if len(sections) == 1 else 'streams (one table each: methods are only ranked on the same stream)'}."
        f" Rows: runs of one method"
        f" ({'the strategy config chosen' if label == 'auto' else f'by `{label}`'}) with the"
        f" same config up to the seed, best final {METRICS[metric].name} first; mean ± standard"
        " deviation over the runs (seeds), the mean alone for one run. BWT and forgetting are"
        f" on {METRICS[metric].name}. Capacity = stored parameters / one base network with one"
        " head; non-zero capacity (when recorded) counts only non-zero parameters; peak MiB ="
        " the largest resident memory of the run's processes. Tasks are numbered from 1.",
    ]
    html_parts = [f"<p>{html.escape(md[-1])}</p>"]
    for section in sections:
        section.table = build_table(section, metric)
        prefix = f"{section.slug}_" if len(sections) > 1 else ""
        plots = plot_section(section, out_dir, prefix, metric)
        head, rows = table_cells(section.table, metric)
        md += ["", f"## {section.title}", "", markdown_table(head, rows), ""]
        md += [f"![{p.stem}]({p.name})" for p in plots]
        md += ["", "Runs:", ""]
        by_label = {g.label: g for g in section.groups}
        run_lines = [
            (label_, [_relative(d, out_dir) for d in by_label[label_].dirs])
            for label_ in section.table.index
        ]
        md += [f"- {lb}: " + ", ".join(f"`{d}`" for d in dirs) for lb, dirs in run_lines]
        html_parts.append(_html_section(section.title, head, rows, plots, run_lines))
    notes = []
    if found.incomplete:
        notes.append(("Not complete (left out)", [_relative(d, out_dir) for d in found.incomplete]))
    if found.bad:
        notes.append(
            (
                "Skipped: not a den results file",
                [f"{_relative(f, out_dir)}: it {why}" for f, why in found.bad],
            )
        )
    for heading, items in notes:
        md += ["", f"{heading}:", "", *(f"- `{item}`" for item in items)]
        html_parts.append(
            f"<h3>{html.escape(heading)}</h3><ul>"
            + "".join(f"<li><code>{html.escape(i)}</code></li>" for i in items)
            + "</ul>"
        )
    write_csv(sections, out_dir / "summary.csv")
    report = out_dir / "report.md"
    report.write_text("\n".join(md) + "\n")
    (out_dir / "report.html").write_text(_html_page(md[0][2:], html_parts))
    return report


def _html_section(
    title: str,
    head: list[str],
    rows: list[list[str]],
    plots: list[Path],
    run_lines: list[tuple[str, list[str]]],
) -> str:
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        + "</tbody></table>"
    )
    images = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></figure>'
        for p in plots
    )
    runs = "".join(
        f"<li><b>{html.escape(lb)}</b>: "
        + ", ".join(f"<code>{html.escape(d)}</code>" for d in dirs)
        + "</li>"
        for lb, dirs in run_lines
    )
    return f"<h2>{html.escape(title)}</h2>{table}{images}<details><summary>Runs</summary><ul>{runs}</ul></details>"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tbody tr:nth-child(odd) { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; } figure { margin: 1em 0; }
code { font-size: 0.85em; }
"""


def _html_page(title: str, parts: list[str]) -> str:
    """A self-contained page: the style inline and every image as base64 (no other file)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m den.compare",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 report written, 2 nothing to compare or a bad argument.",
    )
    parser.add_argument(
        "paths", nargs="*", help="multirun directories, run directories or results.json files"
    )
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read runs from the W&B API")
    parser.add_argument("--group", help="with --wandb: only this W&B group (a sweep)")
    parser.add_argument("--out", help="report directory (default: the first path)")
    parser.add_argument(
        "--label",
        default="auto",
        help="auto (one method with the same config up to the seed = one group) or a dotted "
        "config key whose value names the group",
    )
    parser.add_argument(
        "--metric",
        choices=sorted(METRICS),
        default="acc",
        help="rank and plot by average accuracy (acc) or AUROC (auroc)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.paths and not args.wandb:
        parser.error("give run directories, or --wandb ENTITY/PROJECT")
    try:
        report = compare(
            args.paths, args.out, args.label, args.wandb, args.group, metric=args.metric
        )
    except CompareError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    print(report.read_text())
    print(f"report: {report}\nHTML (one file, plots embedded): {report.with_suffix('.html')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
