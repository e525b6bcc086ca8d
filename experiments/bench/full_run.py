"""Account for a full run's wall time against bare PyTorch steps (issue: speed).

    python experiments/bench/full_run.py outputs/.../<run dir> [more run dirs] \
        [--threads N] [--out experiments/bench/full_run.md] [--no-twins]

A run's ``results.json`` records, for every task and phase, the steps taken, the phase's
seconds, the seconds of its early-stopping validation checks and (DEN) the hidden widths it
trained at. For every distinct (phase kind, widths) this script times, in this one process
and repeated (median), the bare twin of that phase from :mod:`den.bench` -- a plain PyTorch
loop over plain tensors doing the same tensor work (forward, backward, fused Adam, and for
DEN the same masks, L2 pull, L1 and group-lasso proximal steps) -- and sums
steps x bare ms. It then reports:

- ``bare s``: the run's training steps, each at its bare twin's time;
- ``train s``: the framework's time in those steps (phase seconds minus validation checks);
- ``eval s``: evaluation of every seen task after every task, plus the validation checks;
- ``other s``: everything else (start-up, imports, data preparation, DEN's selection, drift
  and pruning between phases, checkpoints);
- the target: wall <= 1.3 x bare s + eval s;
- ``base-net bare s``: the same step count at the bare step of the *initial* network (what a
  plain MLP loop would pay without DEN's growth or extra tensor work), for reference.

Bare twins exist for MLPs only. ``--no-twins`` accounts any run (conv included) from its
``results.json`` alone: steps, seconds and ms per step of every phase kind, and the same
wall = training steps + evaluation + other split. With several runs, a last table compares
them, each against the run whose strategy is ``stl`` when there is one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from den.bench import BarePhase, bare_loop
from den.data.streams import Split
from den.strategies.den import DENConfig, expansion_sizes

DEN_KINDS = ("sparse", "head_fit", "selective", "expansion", "split_train", "split_retrain")


def input_features(results: dict) -> int:
    """The MLP's input size, from the run's base parameter count: base = in*h1 + h1 +
    sum(h_i*h_{i+1} + h_{i+1}) + h_L*C + C, with C the first task's classes."""
    model = results["config"]["model"]
    if model["arch"] != "mlp":
        raise SystemExit(
            f"full_run.py times MLP twins only; this run's model.arch is {model['arch']}"
        )
    hidden = model["hidden"]
    classes = len(results["tasks"][0]["classes"])
    rest = sum(a * b + b for a, b in zip(hidden[:-1], hidden[1:], strict=True))
    rest += hidden[0] + hidden[-1] * classes + classes
    return (results["base_params"] - rest) // hidden[0]


def phase_rows(results: dict, twins: bool = True) -> list[dict]:
    """One row per (task, phase): kind, steps, seconds, validation seconds, the shapes and
    switches its bare twin needs (widths, DEN's l1 / l2 / lam / gl, batch size; the input
    size only with ``twins``, since it is read off an MLP's parameter count)."""
    hidden = list(results["config"]["model"]["hidden"])
    strategy = results["config"]["strategy"]
    den = DENConfig()
    hyper = tuple(strategy.get(key, getattr(den, key)) for key in ("l1", "l2", "lam", "gl"))
    # units each layer's expansion added, by DEN's own rule (an MLP's layers are all linear)
    k = tuple(
        expansion_sizes(
            strategy.get("k", 0),
            strategy.get("k_conv"),
            strategy.get("k_layers"),
            ["linear"] * len(hidden),
        )
    )
    batch = results["config"]["trainer"]["batch_size"]
    n_in = input_features(results) if twins else None
    rows, prev_widths = [], hidden
    for task in results["tasks"]:
        report = task["report"]
        classes = len(task["classes"])
        for name, phase in report.get("phases", {}).items():
            rows.append(
                {
                    "task": task["task_id"],
                    "kind": name if name in DEN_KINDS else "plain",
                    "steps": phase["steps"],
                    "seconds": phase["seconds"],
                    "val_seconds": phase.get("val_seconds", 0.0),
                    "widths": tuple(phase.get("widths", hidden)),
                    "prev_widths": tuple(prev_widths),
                    "features": phase.get("features"),
                    "classes": classes,
                    "k": k,
                    "hyper": hyper,
                    "batch": batch,
                    "in_features": n_in,
                }
            )
        prev_widths = report.get("widths", hidden)
    return rows


def shape_key(row: dict) -> tuple:
    """What a phase's bare twin depends on: rows with the same key share one timing."""
    return tuple(
        row[k]
        for k in ("kind", "widths", "prev_widths", "features", "classes", "k", "hyper", "batch",
                  "in_features")
    )  # fmt: skip


def twin(row: dict, device: torch.device) -> BarePhase:
    """The plain-loop twin of one phase at its widths (random weights, all-ones masks)."""
    l1, l2, lam, gl = row["hyper"]
    in_features = row["in_features"]
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=g) * 0.1 - 0.05).to(device)

    if row["kind"] == "head_fit":
        w, b = rand(row["classes"], row["features"]), rand(row["classes"])
        return BarePhase([w], [b], [None, None], l1=l1, weight_decay=l2, features_input=True)
    sizes = [in_features, *row["widths"], row["classes"]]
    weights = [rand(o, i) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
    biases = [rand(o) for o in sizes[1:]]
    kind = row["kind"]
    if kind == "plain":
        return BarePhase(weights, biases, [None] * (2 * len(weights)))
    masked = kind in ("selective", "expansion", "split_retrain")
    masks = [torch.ones_like(p) if masked else None for p in [*weights, *biases]]
    masks[-1] = None  # the head's bias is never masked
    if kind != "selective":
        masks[len(weights) - 1] = None  # only selective retraining masks the new head
    phase = BarePhase(weights, biases, masks, l1=l1, weight_decay=l2)
    if kind in ("selective", "split_train"):
        # Selective retraining trains the compacted selection, all of it old units: its pull
        # covers the whole subnetwork. Split training pulls the block of the previous widths.
        old = row["widths"] if kind == "selective" else row["prev_widths"]
        prev_sizes = [in_features, *old]
        phase.prev = [
            (rand(o, i), rand(o)) for i, o in zip(prev_sizes[:-1], prev_sizes[1:], strict=True)
        ]
        phase.lam = lam
    if kind == "expansion":
        phase.group_rows = [
            torch.arange(w.shape[0], device=device) >= w.shape[0] - k
            for w, k in zip(weights[:-1], row["k"], strict=True)
        ]
        phase.gl = gl
    return phase


def base_row(results: dict) -> dict:
    """A plain step of the run's initial network (the issue's "bare step"), as a row."""
    hidden = tuple(results["config"]["model"]["hidden"])
    first = phase_rows(results)[0]
    return {**first, "kind": "plain", "widths": hidden, "prev_widths": hidden, "features": None}


def time_twins(rows: list[dict], steps: int, repeats: int) -> dict:
    """Median bare ms/step per distinct :func:`shape_key`, the shapes interleaved in every
    round. Inputs are random (a step's cost does not depend on the values); the learning
    rate is fixed for the same reason."""
    device = torch.device("cpu")
    g = torch.Generator().manual_seed(1)
    n = 20000
    labels = torch.randint(0, 10, (n,), generator=g)
    inputs: dict[int, Split] = {}  # one random input set per input width (pixels or features)

    def data_for(width: int) -> Split:
        if width not in inputs:
            inputs[width] = Split(torch.rand(n, width, generator=g), labels)
        return inputs[width]

    keys = {}
    for row in rows:
        keys.setdefault(shape_key(row), row)
    times: dict[tuple, list[float]] = {key: [] for key in keys}
    for rep in range(repeats + 1):
        for key, row in keys.items():
            head_only = row["kind"] == "head_fit"
            split = data_for(row["features"] if head_only else row["in_features"])
            ms = bare_loop(twin(row, device), split, steps, row["batch"], lr=1e-3)
            if rep:  # the first round warms up
                times[key].append(ms)
    return {key: statistics.median(v) for key, v in times.items()}


def account(results: dict, bare_ms: dict | None) -> dict:
    """Steps and seconds per phase kind and the wall's split; with ``bare_ms`` (the twins'
    timings) also the bare seconds and the target."""
    per_kind: dict[str, dict] = {}
    for row in phase_rows(results, twins=bare_ms is not None):
        kind = per_kind.setdefault(row["kind"], {"steps": 0, "train_s": 0.0, "val_s": 0.0})
        kind["steps"] += row["steps"]
        kind["train_s"] += row["seconds"] - row["val_seconds"]
        kind["val_s"] += row["val_seconds"]
        if bare_ms is not None:
            kind["bare_s"] = kind.get("bare_s", 0.0) + row["steps"] * bare_ms[shape_key(row)] / 1000
    train_s = sum(k["train_s"] for k in per_kind.values())
    val_s = sum(k["val_s"] for k in per_kind.values())
    full_steps = sum(k["steps"] for name, k in per_kind.items() if name != "head_fit")
    eval_s = sum(results["eval_time_s"]) + val_s
    wall = results["wall_time_s"]
    split = {
        "wall_s": wall,
        "steps": full_steps,
        "train_s": train_s,
        "eval_s": eval_s,
        "other_s": wall - train_s - eval_s,
        "per_kind": per_kind,
    }
    if bare_ms is None:
        return split
    base_ms = bare_ms[shape_key(base_row(results))]
    bare_s = sum(k["bare_s"] for k in per_kind.values())
    return {
        **split,
        "bare_s": bare_s,
        "target_s": 1.3 * bare_s + eval_s,
        "wall_over_target": wall / (1.3 * bare_s + eval_s),
        "wall_minus_eval_over_bare": (wall - eval_s) / bare_s,
        "train_over_bare": train_s / bare_s,
        "base_ms": base_ms,
        "base_net_bare_s": full_steps * base_ms / 1000,
    }


def run_lines(label: str, acc: dict) -> list[str]:
    """One run's Markdown: a row per phase kind and the wall's split; against the bare twins
    when ``acc`` has them, with ms per step otherwise."""
    twins = "bare_s" in acc
    middle = "bare twin s | ratio" if twins else "ms / step"

    def cells(k: dict) -> str:
        if twins:
            return f"{k['bare_s']:.1f} | {k['train_s'] / k['bare_s']:.3f}"
        return f"{1000 * k['train_s'] / max(k['steps'], 1):.1f}"

    text = (
        f"wall {acc['wall_s']:.0f} s = training steps {acc['train_s']:.0f} s + evaluation "
        f"{acc['eval_s']:.0f} s (after-task evaluation and validation checks) + other "
        f"{acc['other_s']:.0f} s."
    )
    if twins:
        text += (
            f" Bare twins of the same steps: {acc['bare_s']:.0f} s "
            f"(training steps / bare = {acc['train_over_bare']:.3f}). Target 1.3 x bare + "
            f"evaluation = {acc['target_s']:.0f} s: wall / target = "
            f"{acc['wall_over_target']:.3f} "
            f"({'met' if acc['wall_over_target'] <= 1 else 'missed'})"
            f". (wall - evaluation) / bare = {acc['wall_minus_eval_over_bare']:.3f}. The same "
            f"number of steps at the initial network's bare step ({acc['base_ms']:.2f} ms): "
            f"{acc['base_net_bare_s']:.0f} s."
        )
    return [
        f"### {label}",
        "",
        f"| phase | steps | framework s | {middle} | validation s |",
        "| --- | --- | --- | --- | --- |" + (" --- |" if twins else ""),
        *(
            f"| {name} | {k['steps']:,} | {k['train_s']:.1f} | {cells(k)} | {k['val_s']:.1f} |"
            for name, k in acc["per_kind"].items()
        ),
        "",
        text,
        "",
    ]


def comparison_lines(accounts: dict[str, dict]) -> list[str]:
    """Every run against the STL run (the first whose label starts with ``stl``), if any."""
    reference = next((a for label, a in accounts.items() if label.startswith("stl")), None)
    lines = [
        "| run | wall s | steps (no head fit) | training s | evaluation s | other s"
        + (" | wall / STL | steps / STL |" if reference else " |"),
        "| --- | --- | --- | --- | --- | ---" + (" | --- | --- |" if reference else " |"),
    ]
    for label, a in accounts.items():
        row = (
            f"| {label} | {a['wall_s']:.0f} | {a['steps']:,} | {a['train_s']:.0f} "
            f"| {a['eval_s']:.0f} | {a['other_s']:.0f} |"
        )
        if reference:
            row += (
                f" {a['wall_s'] / reference['wall_s']:.2f} "
                f"| {a['steps'] / max(reference['steps'], 1):.2f} |"
            )
        lines.append(row)
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (results.json)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=100, help="bare steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-twins", action="store_true", help="no bare twins: any model, results.json only"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    runs = {path: json.loads((path / "results.json").read_text()) for path in args.runs}
    bare_ms = None
    if not args.no_twins:
        all_rows = [row for r in runs.values() for row in (*phase_rows(r), base_row(r))]
        start = time.perf_counter()
        bare_ms = time_twins(all_rows, args.steps, args.repeats)
        timing = time.perf_counter() - start
    lines, accounts = [], {}
    for path, results in runs.items():
        acc = account(results, bare_ms)
        label = f"{results['strategy']} ({path})"
        lines += run_lines(label, acc)
        results["accounting"] = accounts[label] = acc
    if len(runs) > 1:
        lines += comparison_lines(accounts)
    if bare_ms is not None:
        lines.append(
            f"Bare twins timed in this process ({torch.get_num_threads()} threads, {args.steps} "
            f"steps x {args.repeats} repeats after a warm-up, medians; "
            f"{len(bare_ms)} distinct phase shapes, {timing:.0f} s)."
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        summary = [
            {"run": str(p), "strategy": r["strategy"], **r["accounting"]} for p, r in runs.items()
        ]
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
