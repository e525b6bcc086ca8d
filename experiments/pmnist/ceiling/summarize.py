"""Tables and a figure for experiments/pmnist/ceiling: how accurate a new permutation gets for
the stored parameters an expansion adds (README.md here).

    python experiments/pmnist/ceiling/summarize.py experiments/pmnist/ceiling/runs \
        --out experiments/pmnist/ceiling [--den experiments/pmnist/baselines/runs]

Reads every run's results.json; writes results.md (one row per setting, seeds pooled) and
ceiling.png (accuracy when learned of each task after the first against the stored parameters
its task added, with ``den_pmnist``'s tasks from the baselines table beside them).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from den.compare import cell, markdown_table, read_results  # noqa: E402

TARGET_AVG = 0.975  # issue 16's permuted-MNIST average accuracy
TARGET_STORED = 2.0  # issue 16's stored capacity, base networks after 10 tasks
TASKS = 10


def when_learned(matrix: list[list[float | None]]) -> list[float]:
    """Accuracy of task t right after learning it: the diagonal of the accuracy matrix."""
    return [row[t] for t, row in enumerate(matrix)]


def added_per_task(r: dict) -> list[int]:
    """Stored parameters each task after the first added (its expansion, splits and head)."""
    p = r["params_per_task"]
    return [b - a for a, b in zip(p, p[1:], strict=False)]


def setting_of(run: Path) -> str:
    return run.name.rsplit("-s", 1)[0]


def learned_after_first(matrix: list[list[float | None]]) -> float:
    """Mean accuracy of tasks 2.. right after each was learned."""
    return statistics.mean(when_learned(matrix)[1:])


def mean_sd(values: list[float], digits: int = 4) -> str:
    """den.compare's table cell: mean ± sample standard deviation, the mean alone for one run."""
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return cell(statistics.mean(values), sd, len(values), f"{{:.{digits}f}}")


HEAD = [
    "setting", "runs", "tasks", "k_layers", "stored added per task", "stored after the run",
    "non-zero after the run", "acc when learned, tasks 2+ (val)", "same (test)",
    "avg acc (test)", "BWT (test)",
]  # fmt: skip


def table(groups: dict[str, list[dict]]) -> str:
    """One row per setting, seeds pooled: the 10-task runs first, then by first-layer k."""
    rows = []
    for name, runs in sorted(
        groups.items(),
        key=lambda kv: (
            -len(kv[1][0]["params_per_task"]),
            kv[1][0]["config"]["strategy"]["k_layers"][0],
        ),
    ):
        first = runs[0]
        rows.append(
            [
                name,
                str(len(runs)),
                str(first["tasks_done"]),
                str(first["config"]["strategy"]["k_layers"]),
                mean_sd([statistics.mean(added_per_task(r)) for r in runs], 0),
                mean_sd([r["final"]["capacity"] for r in runs], 2),
                mean_sd([r["final"]["nonzero_capacity"] for r in runs], 2),
                mean_sd([learned_after_first(r["val_acc_matrix"]) for r in runs]),
                mean_sd([learned_after_first(r["acc_matrix"]) for r in runs]),
                mean_sd([r["final"]["avg_acc"] for r in runs]),
                mean_sd([r["final"]["bwt"] for r in runs]),
            ]
        )
    return markdown_table(HEAD, rows)


def figure(groups: dict[str, list[dict]], den: list[dict], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    # test accuracy, the target's metric (a measurement, not a choice); the drift runs change
    # lam and sigma, not what a task stores, so they stay in the table only
    for label, marker, names in (
        ("dense expansion, 10 tasks at the budget", "o", ["budget"]),
        ("dense expansion, task 2 (curve)", "s", ["curve"]),
    ):
        xs, ys = [], []
        for name, runs in groups.items():
            if name.split("-")[0] in names:
                for r in runs:
                    xs += [a / 1000 for a in added_per_task(r)]
                    ys += when_learned(r["acc_matrix"])[1:]
        ax.scatter(xs, ys, marker=marker, s=20, alpha=0.7, label=label)
    if den:
        xs = [a / 1000 for r in den for a in added_per_task(r)]
        ys = [y for r in den for y in when_learned(r["acc_matrix"])[1:]]
        ax.scatter(xs, ys, marker="x", s=18, color="k", label="den_pmnist (test, baselines table)")
    task1 = statistics.mean(r["acc_matrix"][0][0] for runs in groups.values() for r in runs)
    need = (TASKS * TARGET_AVG - task1) / (TASKS - 1)
    base = next(iter(groups.values()))[0]["base_params"]
    budget = (TARGET_STORED - 1) * base / (TASKS - 1) / 1000
    ax.axhline(need, color="tab:red", ls="--", lw=1)
    ax.text(
        ax.get_xlim()[1],
        need,
        f" tasks 2-10 need {need:.4f}",
        color="tab:red",
        va="bottom",
        ha="right",
        fontsize=8,
    )
    ax.axvline(budget, color="tab:green", ls="--", lw=1)
    ax.text(
        budget,
        ax.get_ylim()[0],
        f" stored 2.0 after 10 tasks:\n {budget:.1f}k per task",
        color="tab:green",
        va="bottom",
        fontsize=8,
    )
    ax.set_xlabel("stored parameters the task added (thousands)")
    ax.set_ylabel("test accuracy of the task when learned")
    ax.set_title("Permuted MNIST: a new permutation's accuracy against what its task stored")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--den", type=Path, default=Path("experiments/pmnist/baselines/runs"))
    args = parser.parse_args()
    groups: dict[str, list[dict]] = defaultdict(list)
    for run in sorted(p for p in args.runs.iterdir() if (p / "results.json").exists()):
        groups[setting_of(run)].append(read_results(run / "results.json"))
    if not groups:
        raise SystemExit(
            f"no results.json under {args.runs}: run experiments/pmnist/ceiling/run.sh"
        )
    den = (
        [read_results(p / "results.json") for p in sorted(args.den.glob("*strategy=den_pmnist*"))]
        if args.den.exists()
        else []
    )
    lines = [table(groups)]
    if den:
        lines += [
            "",
            "den_pmnist (baselines table, 3 seeds, for comparison): stored added per task "
            + mean_sd([statistics.mean(added_per_task(r)) for r in den], 0)
            + ", accuracy when learned of tasks 2-10 (test) "
            + mean_sd([learned_after_first(r["acc_matrix"]) for r in den])
            + ", (val) "
            + mean_sd([learned_after_first(r["val_acc_matrix"]) for r in den])
            + ".",
        ]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    figure(groups, den, args.out / "ceiling.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
