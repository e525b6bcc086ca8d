"""Choose DEN's phase budgets from the budget sweep, on validation data only.

    python experiments/pmnist/budgets/choose_budgets.py experiments/pmnist/budgets/runs \
        --out experiments/pmnist/budgets/choice.md

The rule: average each budget setting's validation average accuracy (after the last task),
non-zero and stored capacity projected to ``--tasks`` tasks, and DEN training seconds over its
seeds; the reference is the setting with every budget at the trainer's max_iters. Among the
settings whose mean validation accuracy is at most ``--tolerance`` below the reference's and
whose projected capacities stay within ``--budget`` (non-zero) and ``--stored-budget`` base
networks (the capacity targets den_pmnist was chosen under), choose the one with the fewest
budgeted steps, then the most accurate. Only the keys in ``READ`` are read from each
results.json: test metrics never reach the choice.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

READ = (
    "status",
    "config",
    "val_acc_matrix",
    "learn_time_s",
    "tasks",
    "nonzero_capacity_per_task",
    "capacity_per_task",
)
KEYS = ("selective_iters", "expansion_iters", "split_iters")


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: data[k] for k in READ if k in data}


def phase_steps(tasks: list[dict], phase: str) -> int:
    """Steps ``phase`` took over all tasks (early stopping makes it less than the budget)."""
    return sum(t["report"]["phases"].get(phase, {}).get("steps", 0) for t in tasks)


def projected(capacity: list[float], tasks: int) -> float:
    """Capacity after ``tasks`` tasks if every later task adds what the short stream's later
    tasks added on average (as experiments/pmnist/select_on_validation.py projects)."""
    if len(capacity) < 2:
        return capacity[-1]
    return capacity[0] + (capacity[-1] - capacity[0]) / (len(capacity) - 1) * (tasks - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="folder with one run per subfolder")
    parser.add_argument("--tolerance", type=float, default=0.001)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--stored-budget", type=float, default=2.0)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for path in sorted(args.runs.glob("*/results.json")):
        run = load(path)
        if run.get("status") != "complete":
            continue
        strategy = run["config"]["strategy"]
        max_iters = run["config"]["trainer"]["max_iters"]
        budget = tuple(strategy.get(k) if strategy.get(k) is not None else max_iters for k in KEYS)
        groups[budget].append(run)
    if not groups:
        raise SystemExit(f"no complete run under {args.runs}")

    rows = []
    for budget, runs in sorted(groups.items()):
        val = [statistics.mean(r["val_acc_matrix"][-1]) for r in runs]
        rows.append(
            {
                "budget": budget,
                "seeds": len(runs),
                "val": statistics.mean(val),
                "val_sd": statistics.stdev(val) if len(val) > 1 else 0.0,
                "learn_s": statistics.mean(sum(r["learn_time_s"]) for r in runs),
                "nonzero": statistics.mean(
                    projected(r["nonzero_capacity_per_task"], args.tasks) for r in runs
                ),
                "stored": statistics.mean(
                    projected(r["capacity_per_task"], args.tasks) for r in runs
                ),
                "selective_steps": statistics.mean(
                    phase_steps(r["tasks"], "selective") for r in runs
                ),
                "expansion_steps": statistics.mean(
                    phase_steps(r["tasks"], "expansion") for r in runs
                ),
                "split_steps": statistics.mean(
                    phase_steps(r["tasks"], "split_train") for r in runs
                ),
            }
        )
    reference = max(rows, key=lambda r: sum(r["budget"]))
    eligible = [
        r
        for r in rows
        if r["val"] >= reference["val"] - args.tolerance
        and r["nonzero"] <= args.budget
        and r["stored"] <= args.stored_budget
    ]
    if not eligible:
        raise SystemExit("no budget setting meets the rule; widen the grid or the tolerance")
    chosen = min(eligible, key=lambda r: (sum(r["budget"]), -r["val"]))

    lines = [
        "# DEN phase budgets chosen on validation (permuted MNIST, first 3 tasks)",
        "",
        f"Rule: fewest budgeted steps whose mean validation accuracy is within {args.tolerance}"
        f" of the full budgets' ({reference['val']:.4f}) and whose capacity, projected to"
        f" {args.tasks} tasks, stays within {args.budget} (non-zero) and {args.stored_budget}"
        " (stored) base networks. Chosen: **"
        + ", ".join(f"{k} {v}" for k, v in zip(KEYS, chosen["budget"], strict=True))
        + "**.",
        "",
        "| " + " | ".join(KEYS) + " | seeds | val avg acc | sd | projected non-zero |"
        " projected stored | selective steps | expansion steps | split_train steps |"
        " DEN learn s | eligible |",
        "| " + " | ".join(["---"] * (len(KEYS) + 10)) + " |",
    ]
    for r in rows:
        mark = "chosen" if r is chosen else ("yes" if r in eligible else "no")
        lines.append(
            "| "
            + " | ".join(str(b) for b in r["budget"])
            + f" | {r['seeds']} | {r['val']:.4f} | {r['val_sd']:.4f} | {r['nonzero']:.2f} |"
            f" {r['stored']:.2f} | {r['selective_steps']:.0f} | {r['expansion_steps']:.0f} |"
            f" {r['split_steps']:.0f} | {r['learn_s']:.0f} | {mark} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
        (args.out.parent / "chosen.json").write_text(
            json.dumps(dict(zip(KEYS, chosen["budget"], strict=True)), indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
