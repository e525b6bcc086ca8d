"""Choose a cost setting of DEN from a sweep of short runs, on validation data only.

    python experiments/pmnist/choose_cheapest.py experiments/pmnist/budgets/runs \
        --keys selective_iters expansion_iters split_iters --prefer steps \
        --out experiments/pmnist/budgets/choice.md

The rule: average each setting (the values of ``--keys`` under ``strategy``) over its seeds:
validation average accuracy (``--metric auroc``: AUROC) after the last task, non-zero and
stored capacity projected to ``--tasks`` tasks, the selected fraction of each layer over
tasks 2.., and DEN's training seconds. The reference is the setting with every key null
(the trainer's budget, ``l1`` for ``head_l1``). Keep the settings whose mean validation
metric is at most ``--tolerance`` below the reference's and whose projected capacities stay
within ``--budget`` (non-zero) and ``--stored-budget`` base networks (the capacity targets
den_pmnist was chosen under). Choose the cheapest: fewest budgeted steps (``--prefer
steps``), fewest steps taken by the phases after task 1, mean over seeds (``--prefer
steps_taken``, for settings such as the patience that change no budget), or narrowest
selection, the largest per-layer selected fraction (``--prefer selection``), or least
projected stored capacity (``--prefer stored``, for growth settings such as k_layers); ties go
to the most accurate. Only the keys in ``READ`` are read from each results.json: test metrics never
reach the choice.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

# the same reading and linear projection of capacity as den_pmnist's choice (this script's
# folder is on sys.path when it runs)
from select_on_validation import load, projected

READ = (
    "status",
    "config",
    "val_acc_matrix",
    "val_auroc_matrix",
    "learn_time_s",
    "tasks",
    "nonzero_capacity_per_task",
    "capacity_per_task",
)


def hashable(value: object) -> object:
    """A setting's value as a dict key: a list (k_layers) becomes a tuple."""
    return tuple(value) if isinstance(value, list) else value


def plain(value: object) -> object:
    """The inverse of :func:`hashable`, for the table and chosen.json."""
    return list(value) if isinstance(value, tuple) else value


def phase_steps(tasks: list[dict], phase: str) -> int:
    """Steps ``phase`` took over all tasks (early stopping makes it less than the budget)."""
    return sum(t["report"]["phases"].get(phase, {}).get("steps", 0) for t in tasks)


def selected_fraction(tasks: list[dict]) -> list[float]:
    """Mean selected fraction of each layer over tasks 2.. (0 where nothing was selected)."""
    rows = [t["report"]["selected_fraction"] for t in tasks[1:]]
    return [statistics.mean(col) for col in zip(*rows, strict=True)]


def summarise(runs: list[dict], tasks: int, metric: str = "acc") -> dict:
    """One setting's runs (seeds) averaged: validation ``metric`` after the last task,
    projected capacities, selection, DEN's learning seconds and steps per phase."""
    val = [statistics.mean(r[f"val_{metric}_matrix"][-1]) for r in runs]
    per_run_selection = [selected_fraction(r["tasks"]) for r in runs]
    return {
        "seeds": len(runs),
        "val": statistics.mean(val),
        "val_sd": statistics.stdev(val) if len(val) > 1 else 0.0,
        "nonzero": statistics.mean(projected(r["nonzero_capacity_per_task"], tasks) for r in runs),
        "stored": statistics.mean(projected(r["capacity_per_task"], tasks) for r in runs),
        "selected": [statistics.mean(col) for col in zip(*per_run_selection, strict=True)],
        "learn_s": statistics.mean(sum(r["learn_time_s"]) for r in runs),
        "steps": {
            phase: statistics.mean(phase_steps(r["tasks"], phase) for r in runs)
            for phase in ("selective", "expansion", "split_train")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="folder with one run per subfolder")
    parser.add_argument("--keys", nargs="+", required=True, help="strategy keys that were swept")
    parser.add_argument(
        "--prefer", choices=("steps", "steps_taken", "selection", "stored"), default="steps"
    )
    parser.add_argument(
        "--metric",
        choices=("acc", "auroc"),
        default="acc",
        help="validation average accuracy, or AUROC (the one-vs-rest streams' metric)",
    )
    parser.add_argument("--tolerance", type=float, default=0.001)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--stored-budget", type=float, default=2.0)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    groups: dict[tuple, list[dict]] = defaultdict(list)
    max_iters = None
    for path in sorted(args.runs.glob("*/results.json")):
        run = load(path, READ)
        if run.get("status") != "complete":
            continue
        max_iters = run["config"]["trainer"]["max_iters"]
        groups[tuple(hashable(run["config"]["strategy"].get(k)) for k in args.keys)].append(run)
    if not groups:
        raise SystemExit(f"no complete run under {args.runs}")
    if (None,) * len(args.keys) not in groups:
        raise SystemExit(f"no reference run (every one of {args.keys} null) under {args.runs}")

    def steps(setting: tuple) -> int:  # budgeted steps; null = the trainer's budget
        return sum(max_iters if v is None else v for v in setting)

    rows = {setting: summarise(runs, args.tasks, args.metric) for setting, runs in groups.items()}
    reference = rows[(None,) * len(args.keys)]
    eligible = [
        s
        for s, r in rows.items()
        if r["val"] >= reference["val"] - args.tolerance
        and r["nonzero"] <= args.budget
        and r["stored"] <= args.stored_budget
    ]
    if not eligible:
        raise SystemExit("no setting meets the rule; widen the grid or the tolerance")
    # each preference: how the rule names it, and the cost it minimises (ties: most accurate)
    preferences = {
        "steps": ("fewest budgeted steps", steps),
        "steps_taken": (
            "fewest steps taken (selective + expansion + split training)",
            lambda s: sum(rows[s]["steps"].values()),
        ),
        "selection": ("narrowest selection", lambda s: max(rows[s]["selected"])),
        "stored": ("least projected stored capacity", lambda s: rows[s]["stored"]),
    }
    cost, cost_of = preferences[args.prefer]
    chosen = min(eligible, key=lambda s: (cost_of(s), -rows[s]["val"]))

    def show(value: object) -> str:
        return "null" if value is None else str(plain(value))

    lines = [
        f"# Chosen on validation: {', '.join(args.keys)}",
        "",
        f"Rule ({Path(__file__).name} --prefer {args.prefer} --metric {args.metric}): the"
        f" {cost} whose mean validation average {args.metric} is within {args.tolerance} of"
        f" the reference's (every key null: {reference['val']:.4f}) and whose capacity,"
        f" projected to {args.tasks} tasks, stays within {args.budget} (non-zero) and"
        f" {args.stored_budget} (stored) base networks."
        " Chosen: **"
        + ", ".join(f"{k} {show(v)}" for k, v in zip(args.keys, chosen, strict=True))
        + "**.",
        "",
        "| "
        + " | ".join(args.keys)
        + f" | seeds | val avg {args.metric} | sd | projected non-zero |"
        " projected stored | selected fraction per layer | selective steps | expansion steps |"
        " split_train steps | DEN learn s | eligible |",
        "| " + " | ".join(["---"] * (len(args.keys) + 11)) + " |",
    ]
    for setting in sorted(rows, key=lambda s: [(v is None, v) for v in s]):
        r = rows[setting]
        mark = "chosen" if setting == chosen else ("yes" if setting in eligible else "no")
        lines.append(
            "| "
            + " | ".join(show(v) for v in setting)
            + f" | {r['seeds']} | {r['val']:.4f} | {r['val_sd']:.4f} | {r['nonzero']:.2f} |"
            f" {r['stored']:.2f} | {', '.join(f'{x:.2f}' for x in r['selected'])} |"
            f" {r['steps']['selective']:.0f} | {r['steps']['expansion']:.0f} |"
            f" {r['steps']['split_train']:.0f} | {r['learn_s']:.0f} | {mark} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
        chosen_json = {k: plain(v) for k, v in zip(args.keys, chosen, strict=True)}
        # choice.md -> chosen.json, choice_NAME.md -> chosen_NAME.json
        chosen_path = args.out.with_name(args.out.stem.replace("choice", "chosen", 1) + ".json")
        chosen_path.write_text(json.dumps(chosen_json, indent=2) + "\n")


if __name__ == "__main__":
    main()
