"""Summarise permuted-MNIST runs into a Markdown table, with the bare PyTorch step time.

    python experiments/pmnist/summarize.py den=outputs/runs/pmnist/den/<ts> \
        finetune=outputs/runs/pmnist/finetune/<ts> stl=outputs/runs/pmnist/stl/<ts> \
        --out experiments/pmnist/README.md

For each run: final average test accuracy and AUROC, backward transfer, capacity, wall time,
the number of training steps the run took (all phases), and the ratio of the wall time to the
same number of bare PyTorch steps. The bare step (MLP 784-312-128-10, batch 256, Adam, batches
drawn by index from in-memory tensors) is timed in this process: 5 repeats of 300 steps after
a warm-up, median reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def bare_step_ms(steps: int = 300, repeats: int = 5, threads: int | None = None) -> list[float]:
    """ms per step of a plain PyTorch loop doing what one training step of the MLP does."""
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(55000, 784, generator=g)
    y = torch.randint(0, 10, (55000,), generator=g)
    model = nn.Sequential(
        nn.Linear(784, 312), nn.ReLU(), nn.Linear(312, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(n: int) -> float:
        order = torch.randperm(55000, generator=g)
        start = time.perf_counter()
        for i in range(n):
            idx = order[(i % 214) * 256 : (i % 214 + 1) * 256]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return 1000 * (time.perf_counter() - start) / n

    run(50)
    return [run(steps) for _ in range(repeats)]


def total_steps(results: dict) -> tuple[int, int]:
    """(steps through the whole network, steps of DEN's head-only fit on cached features)."""
    full = head = 0
    for task in results["tasks"]:
        for name, phase in task["report"].get("phases", {}).items():
            if name == "head_fit":
                head += phase["steps"]
            else:
                full += phase["steps"]
    return full, head


def plot(runs: dict[str, dict], path: Path) -> None:
    """Average test accuracy over the tasks seen so far, and capacity, after each task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_cap) = plt.subplots(1, 2, figsize=(11, 4))
    for label, results in runs.items():
        tasks = range(1, len(results["avg_acc_curve"]) + 1)
        ax_acc.plot(tasks, results["avg_acc_curve"], marker="o", label=label)
        ax_cap.plot(tasks, results["capacity_per_task"], marker="o", label=label)
    ax_acc.set(
        title="Average test accuracy over tasks seen", xlabel="tasks learned", ylabel="accuracy"
    )
    ax_cap.set(
        title="Capacity (stored parameters / one network)",
        xlabel="tasks learned",
        ylabel="capacity",
    )
    ax_cap.set_yscale("log")
    for ax in (ax_acc, ax_cap):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Permuted MNIST, 10 tasks, MLP 784-312-128")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="label=run_dir")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    bare = bare_step_ms(threads=args.threads)
    bare_ms = statistics.median(bare)
    rows = []
    runs = {}
    for spec in args.runs:
        label, run_dir = spec.split("=", 1)
        results = json.loads((Path(run_dir) / "results.json").read_text())
        runs[label] = results
        f = results["final"]
        full, head = total_steps(results)
        eval_s = sum(results["eval_time_s"])
        bare_s = full * bare_ms / 1000
        rows.append(
            f"| {label} | {f['avg_acc']:.4f} | {f['avg_auroc']:.4f} | {f['bwt']:+.4f} | {f['capacity']:.2f} "
            f"| {results['wall_time_s']:.0f} | {full:,} (+{head:,} head-only) | {bare_s:.0f} | {eval_s:.0f} "
            f"| {results['wall_time_s'] / bare_s:.2f} |"
        )
    table = "\n".join(
        [
            "| strategy | avg acc | avg AUROC | BWT | capacity | wall s | training steps | bare s | eval s | wall / bare |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    note = (
        f"Bare PyTorch step (MLP 784-312-128-10, batch 256, Adam, {torch.get_num_threads()} threads): "
        f"median {bare_ms:.2f} ms over {len(bare)} repeats ({', '.join(f'{b:.2f}' for b in bare)}). "
        "`bare s` = training steps through the network x that step time; `wall / bare` = run wall "
        "time (evaluation and DEN's head-only steps included) / bare s."
    )
    print(table)
    print(note)
    if args.out:
        plot(runs, args.out.with_name("pmnist.png"))
        note += "\n\n![average accuracy and capacity after each task](pmnist.png)"
        text = args.out.read_text() if args.out.exists() else ""
        marker = "<!-- table -->"
        block = f"{marker}\n{table}\n\n{note}\n{marker}"
        if text.count(marker) == 2:
            head_text, _, rest = text.partition(marker)
            _, _, tail = rest.partition(marker)
            text = head_text + block + tail
        else:
            text = text + "\n" + block + "\n"
        args.out.write_text(text)


if __name__ == "__main__":
    main()
