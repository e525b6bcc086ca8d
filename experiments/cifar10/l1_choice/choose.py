"""Choose one DEN setting for both CIFAR-10 streams, on validation data only.

    python experiments/cifar10/l1_choice/choose.py \
        --setting 0.1 experiments/cifar10/sparse_choice/runs/lam-1 \
                      experiments/cifar10/sparse_choice/cifar10_binary/lam-1 \
        --setting 0.05 RUNS/split_cifar10-l1-0.05 RUNS/cifar10_binary-l1-0.05 \
        --reference 0.1 --out experiments/cifar10/l1_choice/choice.md

Each ``--setting NAME SPLIT_RUN BINARY_RUN`` names a setting and its runs on split CIFAR-10
(scored by validation average accuracy after the last task) and on cifar10_binary (scored by
validation average AUROC, the one-vs-rest streams' metric). The rule: a setting qualifies when
on both streams its non-zero capacity, projected linearly to ``--tasks`` tasks, stays within
``--budget`` base networks and its stored capacity within ``--stored-budget`` (the capacity
targets den_pmnist was chosen under); among those, the one with the largest sum of validation
gains over ``--reference`` on the two streams. ``--prefer steps`` is the rule for a cost
setting: a setting within the budgets also needs, on each stream, a validation metric at most
``--tolerance`` below the reference's; among those, the one whose runs took the fewest
training steps (both streams summed, sparse head fits excluded). One setting for both
streams, so that nothing is tuned per dataset. Only the keys in ``READ`` are read from each
results.json: test metrics never reach the choice.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pmnist"))
from select_on_validation import load, projected  # noqa: E402

READ = (
    "status",
    "config",
    "val_acc_matrix",
    "val_auroc_matrix",
    "nonzero_capacity_per_task",
    "capacity_per_task",
    "tasks",
)
STREAMS = (("split_cifar10", "val_acc_matrix"), ("cifar10_binary", "val_auroc_matrix"))


def score(run_dir: Path, matrix: str, tasks: int) -> dict[str, float]:
    """Validation metric after the last task, and the capacities (last, projected)."""
    if not (run_dir / "results.json").is_file():
        raise SystemExit(f"{run_dir}: no results.json (give the run's folder, as the run wrote it)")
    run = load(run_dir / "results.json", READ)
    if run.get("status") != "complete":
        raise SystemExit(f"{run_dir}: the run is not complete (status {run.get('status')!r})")
    last = run[matrix][-1]
    nonzero, stored = run["nonzero_capacity_per_task"], run["capacity_per_task"]
    return {
        "val": sum(last) / len(last),
        "non-zero": nonzero[-1],
        "non-zero, projected": projected(nonzero, tasks),
        "stored": stored[-1],
        "stored, projected": projected(stored, tasks),
        # NaN for a record without per-task reports (--prefer steps refuses it)
        "steps": float(training_steps(run["tasks"])) if "tasks" in run else float("nan"),
    }


def training_steps(tasks: list[dict]) -> int:
    """Steps the run's training phases took, every task, without the sparse head fit (it
    trains a linear head on cached features: about 1 % of a step)."""
    return sum(
        phase["steps"]
        for task in tasks
        for name, phase in task["report"].get("phases", {}).items()
        if name != "head_fit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", nargs=3, action="append", required=True,
                        metavar=("NAME", "SPLIT_RUN", "BINARY_RUN"))  # fmt: skip
    parser.add_argument("--reference", required=True, help="NAME of the current setting")
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--stored-budget", type=float, default=2.0)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument(
        "--prefer",
        choices=("gain", "steps"),
        default="gain",
        help="gain: the largest sum of validation gains; steps: the fewest training steps "
        "within --tolerance of the reference on each stream",
    )
    parser.add_argument("--tolerance", type=float, default=0.001)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    scores = {
        name: {
            stream: score(Path(folder), matrix, args.tasks)
            for (stream, matrix), folder in zip(STREAMS, folders, strict=True)
        }
        for name, *folders in args.setting
    }
    if args.reference not in scores:
        raise SystemExit(f"--reference {args.reference!r} is not one of the --setting names")
    ref = scores[args.reference]
    gain = {
        name: sum(s[stream]["val"] - ref[stream]["val"] for stream, _ in STREAMS)
        for name, s in scores.items()
    }
    within = {
        name: all(
            v["non-zero, projected"] <= args.budget and v["stored, projected"] <= args.stored_budget
            for v in s.values()
        )
        for name, s in scores.items()
    }
    steps = {name: sum(v["steps"] for v in s.values()) for name, s in scores.items()}
    if args.prefer == "steps":
        for name, s in scores.items():
            if math.isnan(steps[name]):
                raise SystemExit(f"--prefer steps: a run of {name!r} has no per-task reports")
            within[name] = within[name] and all(
                s[stream]["val"] >= ref[stream]["val"] - args.tolerance for stream, _ in STREAMS
            )
        rule = (
            f"validation metric at most {args.tolerance} below {args.reference}'s on each "
            "stream (split CIFAR-10 average accuracy, cifar10_binary average AUROC); then the "
            "fewest training steps over both streams"
        )
        rank = {name: (steps[name], -gain[name]) for name in scores}
    else:
        rule = (
            f"the largest sum of validation gains over {args.reference} (split CIFAR-10 "
            "average accuracy + cifar10_binary average AUROC)"
        )
        rank = {name: (-gain[name],) for name in scores}
    qualified = [name for name in scores if within[name]]
    chosen = min(qualified, key=rank.__getitem__) if qualified else None

    lines = [
        f"Rule: within {args.budget} non-zero and {args.stored_budget} stored base networks "
        f"(projected to {args.tasks} tasks) on both streams; then {rule}.",
        "",
        "| setting | stream | val | non-zero | non-zero, projected | stored | stored, projected "
        "| training steps | qualifies | gain sum | chosen |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in scores.items():
        for stream, v in s.items():
            nums = " | ".join(f"{v[k]:.4f}" for k in v if k != "steps") + f" | {v['steps']:.0f}"
            lines.append(
                f"| {name} | {stream} | {nums} | {'yes' if within[name] else 'no'} "
                f"| {gain[name]:+.4f} | {'**yes**' if name == chosen else ''} |"
            )
    if chosen is None:
        lines += ["", "No setting qualifies on both streams: none is chosen."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
