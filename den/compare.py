"""Compare runs: a Markdown report with a table over seeds and plots.

    python -m den.compare outputs/multirun/pmnist/<timestamp>          # a multirun directory
    python -m den.compare RUN_DIR RUN_DIR ... --out reports/mine        # or run directories
    python -m den.compare --wandb ENTITY/PROJECT --group G --out reports/g  # or W&B runs

Every ``results.json`` under the given directories is read (runs still in progress or that
died are listed and left out of the table). Runs with the same resolved config up to the seed form a group,
named by its strategy (``--label KEY`` groups by a dotted config key instead); each group's final metrics are reported as
mean ± standard deviation over its runs (seeds). Writes into ``--out`` (default: the first
directory given): ``report.md``, ``summary.csv``, ``avg_acc_curve.png`` (average accuracy
after each task), ``acc_vs_capacity.png`` and ``acc_matrices.png`` (mean accuracy matrix
per group). ``--metric auroc`` ranks, plots and names the plots by AUROC instead
(``avg_auroc_curve.png``, ``auroc_vs_capacity.png``, ``auroc_matrices.png``), and gives
backward transfer and forgetting on AUROC, for the one-vs-rest protocols the DEN paper
reports in AUROC. ``summary.csv`` has every column of both (one row per run).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from den.metrics import backward_transfer, forgetting

log = logging.getLogger("den.compare")

# (results key in "final" or top level, or a DERIVED key; column title; format)
HEAD_COLUMNS = (
    ("avg_acc", "avg acc", "{:.4f}"),
    ("learned_acc", "acc when learned", "{:.4f}"),  # mean of R[j][j]: plasticity
    ("avg_auroc", "avg AUROC", "{:.4f}"),
    ("learned_auroc", "AUROC when learned", "{:.4f}"),
)
# backward transfer and forgetting of the metric the report ranks by (--metric)
TRANSFER_COLUMNS = {
    "acc": (("bwt", "BWT", "{:+.4f}"), ("forgetting", "forgetting", "{:.4f}")),
    "auroc": (
        ("auroc_bwt", "BWT (AUROC)", "{:+.4f}"),
        ("auroc_forgetting", "forgetting (AUROC)", "{:.4f}"),
    ),
}
TAIL_COLUMNS = (
    ("capacity", "capacity", "{:.2f}"),
    ("wall_time_s", "wall s", "{:.0f}"),
    ("peak_rss_mib", "peak MiB", "{:.0f}"),  # largest resident memory of the run's processes
)


def table_columns(metric: str) -> tuple[tuple[str, str, str], ...]:
    """The report table's columns when ranking by ``metric``."""
    return (*HEAD_COLUMNS, *TRANSFER_COLUMNS[metric], *TAIL_COLUMNS)


# summary.csv keeps every column whatever the metric, so its header never changes
CSV_KEYS = tuple(dict.fromkeys(k for m in TRANSFER_COLUMNS for k, _, _ in table_columns(m)))


@dataclass
class Group:
    """The runs that share a label (typically one strategy over several seeds)."""

    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [run_value(r, key) for r in self.runs]

    def mean_std(self, key: str) -> tuple[float, float]:
        vals = self.values(key)
        return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


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
LEARNED_MATRIX = {m.learned: m.matrix for m in METRICS.values()}


# figures computed from the AUROC matrix (older results.json files lack the final key)
DERIVED = {
    "auroc_bwt": lambda results: backward_transfer(results["auroc_matrix"]),
    "auroc_forgetting": lambda results: forgetting(results["auroc_matrix"]),
}
OPTIONAL_KEYS = ("peak_rss_mib",)  # not recorded by runs older than the key: NaN


def run_value(results: dict[str, Any], key: str) -> float:
    if key in LEARNED_MATRIX:  # each task's value right after it was learned
        matrix = results[LEARNED_MATRIX[key]]
        return statistics.fmean(float(matrix[j][j]) for j in range(len(matrix)))
    if key in DERIVED:
        return float(DERIVED[key](results))
    if key in results.get("final", {}):
        return float(results["final"][key])
    if key in OPTIONAL_KEYS and key not in results:
        return math.nan
    return float(results[key])


def config_value(results: dict[str, Any], dotted: str) -> Any:
    node: Any = results.get("config", {})
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def find_runs(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, dict]], list[Path]]:
    """(complete runs, incomplete run directories) under ``paths``, sorted by directory."""
    complete, incomplete = [], []
    files: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        files |= set(path.rglob("results.json")) if path.is_dir() else {path}
    for file in sorted(files):
        results = json.loads(file.read_text())
        if results.get("status") == "complete":
            complete.append((file.parent, results))
        else:
            incomplete.append(file.parent)
    return complete, incomplete


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
)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: json.dumps(node)}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def experiment_key(results: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The resolved config without what only distinguishes runs of one experiment."""
    flat = flatten(results.get("config", {}))
    return tuple(
        sorted(
            (k, v)
            for k, v in flat.items()
            if not any(k == r or k.startswith(r + ".") for r in RUN_ONLY_KEYS)
        )
    )


def find_wandb_runs(path: str, group: str | None) -> tuple[list[tuple[Path, dict]], list[Path]]:
    """The same as :func:`find_runs`, from the W&B API: runs of ``ENTITY/PROJECT`` (in
    ``group``) whose summary holds the ``results`` that :class:`den.loggers.WandbLogger`
    stores at the end of a run."""
    import wandb

    filters = {"group": group} if group else None
    complete, incomplete = [], []
    for run in wandb.Api().runs(path, filters=filters):
        where = Path(f"wandb:{path}/{run.id}")
        results = dict(run.summary.get("results") or {})
        if run.state != "finished" or not results:
            incomplete.append(where)
            continue
        config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
        complete.append((where, {**results, "status": "complete", "config": config}))
    return complete, incomplete


def group_runs(runs: list[tuple[Path, dict]], label_key: str = "auto") -> list[Group]:
    """Groups in the order their first run appears.

    ``auto``: runs with the same config up to the seed form a group named by its strategy;
    groups that share a strategy name get the config keys they differ in appended. Any other
    value is a dotted config key whose value names the group.
    """
    if label_key != "auto":
        groups: dict[Any, Group] = {}
        for run_dir, results in runs:
            label = str(config_value(results, label_key))
            groups.setdefault(label, Group(label)).runs.append(results)
            groups[label].dirs.append(run_dir)
        return list(groups.values())
    by_key: dict[Any, Group] = {}
    for run_dir, results in runs:
        key = experiment_key(results)
        group = by_key.setdefault(key, Group(str(config_value(results, "strategy.name"))))
        group.runs.append(results)
        group.dirs.append(run_dir)
    keys = list(by_key)
    names = {key: by_key[key].label for key in keys}
    for key in keys:
        group = by_key[key]
        twins = [k for k in keys if k != key and names[k] == names[key]]
        if twins:
            mine = dict(key)
            differs = sorted(
                {k for t in twins for k, v in t if mine.get(k) != v}
                | {k for k in mine if any(k not in dict(t) for t in twins)}
            )
            shown = [f"{k.split('.', 1)[-1]}={json.loads(mine[k])}" for k in differs if k in mine]
            group.label = f"{group.label} ({', '.join(shown)})" if shown else group.label
    return list(by_key.values())


def markdown_table(groups: list[Group], metric: str = "acc") -> str:
    columns = table_columns(metric)
    head = ["label", "runs", *(title for _, title, _ in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for g in groups:
        cells = [g.label, str(len(g.runs))]
        for key, _, fmt in columns:
            mean, std = g.mean_std(key)
            cells.append(f"{fmt.format(mean)} ± {fmt.format(std).lstrip('+')}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(groups: list[Group], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "run_dir", "seed", *CSV_KEYS])
        for g in groups:
            for run_dir, results in zip(g.dirs, g.runs, strict=True):
                row = [run_value(results, key) for key in CSV_KEYS]
                writer.writerow([g.label, str(run_dir), results.get("seed"), *row])


def average_curve(results: dict[str, Any], metric: str) -> list[float]:
    """Average over the tasks seen after each task: [T] (row i of the matrix, tasks <= i)."""
    if metric == "acc":
        return results["avg_acc_curve"]
    matrix = results[METRICS[metric].matrix]
    return [statistics.fmean(float(v) for v in row[: i + 1]) for i, row in enumerate(matrix)]


def mean_curve(group: Group, metric: str) -> tuple[list[float], list[float]]:
    curves = [average_curve(r, metric) for r in group.runs]
    n = min(len(c) for c in curves)
    cols = [[c[i] for c in curves] for i in range(n)]
    means = [statistics.fmean(col) for col in cols]
    stds = [statistics.stdev(col) if len(col) > 1 else 0.0 for col in cols]
    return means, stds


def mean_matrix(group: Group, metric: str = "acc") -> list[list[float]]:
    """Element-wise mean of the group's accuracy (or AUROC) matrices [T, T], NaN above the
    diagonal."""
    mats = [r[METRICS[metric].matrix] for r in group.runs]
    size = len(mats[0])
    out = []
    for i in range(size):
        row = []
        for j in range(size):
            vals = [m[i][j] for m in mats if m[i][j] is not None]
            row.append(statistics.fmean(vals) if vals else math.nan)
        out.append(row)
    return out


def plot_all(groups: list[Group], out: Path, title: str, metric: str = "acc") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    final_key, name = METRICS[metric].final, METRICS[metric].name
    written = []
    # one colour and marker per group, the same in every plot (tab20: up to 20 groups apart)
    palette = plt.get_cmap("tab20").colors
    style = {
        g.label: {
            "color": palette[(2 * i) % 20 + (2 * i) // 20 % 2],
            "marker": "osD^v<>ph*"[i % 10],
        }
        for i, g in enumerate(groups)
    }
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for g in groups:
        means, stds = mean_curve(g, metric)
        tasks = list(range(1, len(means) + 1))
        ax.plot(tasks, means, label=g.label, **style[g.label])
        ax.fill_between(
            tasks,
            [m - s for m, s in zip(means, stds, strict=True)],
            [m + s for m, s in zip(means, stds, strict=True)],
            alpha=0.2,
            color=style[g.label]["color"],
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(
        title=f"{title}: average test {name} over the tasks seen",
        xlabel="tasks learned",
        ylabel=f"average {name} (mean ± std over runs)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    written.append(out / f"avg_{metric}_curve.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for g in groups:
        (acc, acc_sd), (cap, cap_sd) = g.mean_std(final_key), g.mean_std("capacity")
        ax.errorbar(
            cap, acc, xerr=cap_sd, yerr=acc_sd, capsize=3, label=g.label, linestyle="none",
            **style[g.label],
        )  # fmt: skip
        ax.annotate(g.label, (cap, acc), textcoords="offset points", xytext=(5, 4), fontsize=8)
    capacities = [g.mean_std("capacity")[0] for g in groups]
    if max(capacities) / max(min(capacities), 1e-9) > 5:
        ax.set_xscale("log")  # STL / PNN sit at 10x and more; keep the ~1x methods apart
        ax.set_xticks([t for t in (1, 2, 5, 10, 20, 50, 100) if t <= 1.5 * max(capacities)])
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set(
        title=f"{title}: final {name} versus capacity",
        xlabel="capacity (stored parameters / one base network; log scale when wide)",
        ylabel=f"final average {name}",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    written.append(out / f"{metric}_vs_capacity.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols + 1, 3.4 * rows), squeeze=False, layout="constrained"
    )
    image = None
    for ax, g in zip(axes.flat, groups, strict=False):
        matrix = mean_matrix(g, metric)
        image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_title(textwrap.fill(g.label, 32), fontsize=8)
        ax.set(xlabel="task evaluated", ylabel="after learning task")
        ticks = range(len(matrix))
        ax.set_xticks(ticks, [str(t + 1) for t in ticks], fontsize=7)
        ax.set_yticks(ticks, [str(t + 1) for t in ticks], fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label=f"test {name} (mean over runs)")
    fig.suptitle(f"{title}: {name} matrices")
    written.append(out / f"{metric}_matrices.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


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
    the report's path."""
    if metric not in METRICS:
        raise SystemExit(f"Error: unknown metric {metric!r}. Fix: use one of {sorted(METRICS)}.")
    if wandb_path:
        runs, incomplete = find_wandb_runs(wandb_path, wandb_group)
        where = f"W&B {wandb_path}" + (f", group {wandb_group}" if wandb_group else "")
    else:
        runs, incomplete = find_runs(paths)
        where = ", ".join(map(str, paths))
    if not runs:
        raise SystemExit(
            f"Error: no complete run in {where}. "
            "Fix: pass a multirun directory, run directories of finished runs, or a W&B "
            "project and group that hold finished runs logged with logger=wandb."
        )
    if out is None and not paths:
        raise SystemExit("Error: --out is needed with --wandb. Fix: add --out <report dir>.")
    # best final average first: the order a reader scans a comparison in
    final_key = METRICS[metric].final
    groups = sorted(group_runs(runs, label), key=lambda g: -g.mean_std(final_key)[0])
    out_dir = Path(out) if out is not None else Path(paths[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    first = runs[0][1]
    title = f"{first.get('stream', '')}, {first['tasks_done']} tasks"
    plots = plot_all(groups, out_dir, title, metric)
    write_csv(groups, out_dir / "summary.csv")
    lines = [
        f"# Comparison: {title}",
        "",
        f"{len(runs)} complete runs in {len(groups)} groups"
        f" ({'same config up to the seed' if label == 'auto' else f'by `{label}`'});"
        " mean ± standard deviation over the runs of each group, best final"
        f" {METRICS[metric].name} first. BWT and forgetting are on {METRICS[metric].name}."
        " Capacity = stored parameters / one base network with one head; peak MiB = the"
        " largest resident memory of the run's processes.",
        "",
        markdown_table(groups, metric),
        "",
        *(f"![{p.stem}]({p.name})" for p in plots),
        "",
        "Runs:",
        "",
        *(f"- {g.label}: " + ", ".join(f"`{d}`" for d in g.dirs) for g in groups),
    ]
    if incomplete:
        lines += ["", "Not complete (left out):", "", *(f"- `{d}`" for d in incomplete)]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m den.compare", description=__doc__.split("\n\n")[0]
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
        help="auto (same config up to the seed = one group) or a dotted config key",
    )
    parser.add_argument(
        "--metric",
        choices=sorted(METRICS),
        default="acc",
        help="rank and plot by average accuracy (acc) or AUROC (auroc)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if not args.paths and not args.wandb:
            parser.error("give run directories, or --wandb ENTITY/PROJECT")
        report = compare(
            args.paths, args.out, args.label, args.wandb, args.group, metric=args.metric
        )
    except (FileNotFoundError, KeyError) as err:
        print(f"Error: {err}. Fix: check the paths and --label.", file=sys.stderr)
        return 2
    print(report.read_text())
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
