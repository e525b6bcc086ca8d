"""Pick DEN's sparsity settings from a sweep of short runs, on validation data only.

    python experiments/pmnist/select_on_validation.py outputs/sparse_grid1 \
        --keys strategy.l1 strategy.gl --budget 1.0 --tasks 10 --out experiments/pmnist/search

Objective: the highest validation average accuracy after the last task among the runs whose
non-zero capacity, extrapolated linearly from the short stream to ``--tasks`` tasks, stays
within ``--budget`` base networks and whose stored capacity, extrapolated the same way, stays
within ``--stored-budget`` (the paper's claim: STL's accuracy at a fraction of STL's
capacity). From each results.json only the keys in ``READ`` are kept; test metrics never
reach the choice. When no run meets both budgets, the choice is the run within the non-zero
budget whose projected stored capacity exceeds its budget least.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

READ = (
    "status",
    "config",
    "val_acc_matrix",
    "nonzero_capacity_per_task",
    "capacity_per_task",
    "tasks",
    "wall_time_s",
)


def load(run: Path, keys: tuple[str, ...] = READ) -> dict:
    """``run``'s results.json reduced to ``keys`` (no test metric among them)."""
    data = json.loads(run.read_text())
    return {k: data[k] for k in keys if k in data}


def setting(config: dict, key: str) -> object:
    """``config``'s value at the dotted ``key`` ("-" for a key older runs do not have)."""
    node = config
    for part in key.split("."):
        if part not in node:
            return "-"
        node = node[part]
    return node


def projected(capacity: list[float], tasks: int) -> float:
    """Non-zero capacity after ``tasks`` tasks if each later task adds what the short
    stream's later tasks added on average."""
    if len(capacity) < 2:
        return capacity[-1]
    per_task = (capacity[-1] - capacity[0]) / (len(capacity) - 1)
    return capacity[0] + per_task * (tasks - 1)


def selected_fraction(tasks: list[dict]) -> list[float]:
    """Mean selected fraction per layer over tasks 2.. (DEN's selective retraining)."""
    rows = [
        t["report"]["selected_fraction"] for t in tasks[1:] if "selected_fraction" in t["report"]
    ]
    return [round(sum(col) / len(col), 3) for col in zip(*rows, strict=True)] if rows else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--keys", nargs="+", required=True, help="config keys that were swept")
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--stored-budget", type=float, default=2.0)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    rows = []
    for path in sorted(args.sweep.glob("*/results.json")):  # one run per subfolder
        run = load(path)
        if run.get("status") != "complete":
            continue
        val = run["val_acc_matrix"][-1]
        cap = run["nonzero_capacity_per_task"]
        stored = run["capacity_per_task"]
        rows.append(
            {
                **{k: setting(run["config"], k) for k in args.keys},
                "val avg acc": sum(val) / len(val),
                "non-zero capacity": cap[-1],
                f"projected to {args.tasks} tasks": projected(cap, args.tasks),
                "stored capacity": stored[-1],
                "stored, projected": projected(stored, args.tasks),
                "selected fraction": selected_fraction(run["tasks"]),
                "wall s": round(run["wall_time_s"]),
            }
        )
    if not rows:
        raise SystemExit(f"{args.sweep}: no complete run (results.json with status complete)")
    proj = f"projected to {args.tasks} tasks"
    feasible = [
        r for r in rows if r[proj] <= args.budget and r["stored, projected"] <= args.stored_budget
    ]
    if feasible:
        best = max(feasible, key=lambda r: r["val avg acc"])
    else:
        # None meets both: among the runs within the non-zero budget (else all), the one whose
        # projected stored capacity exceeds its budget least, the most accurate on a tie.
        pool = [r for r in rows if r[proj] <= args.budget] or rows
        best = min(pool, key=lambda r: (round(r["stored, projected"], 2), -r["val avg acc"]))
    rows.sort(key=lambda r: -r["val avg acc"])
    cols = list(rows[0])
    lines = [
        f"# Search on validation: {args.sweep}",
        "",
        f"Objective: highest validation average accuracy with non-zero capacity projected to "
        f"{args.tasks} tasks <= {args.budget} and stored capacity projected <= "
        f"{args.stored_budget} ({len(rows)} runs, {len(feasible)} within budget).",
        "",
        "| " + " | ".join(cols) + " | chosen |",
        "| " + " | ".join("---" for _ in cols) + " | --- |",
    ]
    for r in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()]
        lines.append("| " + " | ".join(cells) + f" | {'**yes**' if r is best else ''} |")
    if not feasible:
        lines += [
            "",
            "No run is within both budgets; the chosen one is, among the runs within the "
            "non-zero budget, the one whose projected stored capacity exceeds its budget least.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "search.md").write_text(text)
        (args.out / "chosen.json").write_text(
            json.dumps({k: best[k] for k in args.keys}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
