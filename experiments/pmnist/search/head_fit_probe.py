"""How many units DEN's selection keeps on permuted MNIST, per L1 strength of the head fit.

Loads a finished 1-task DEN run (its checkpoint: the task-1 network), builds task 2 of the
same stream, runs step 1.1 (the sparse head fit on the frozen trunk) with each ``head_l1``,
and prints the fit's validation loss and the breadth-first selection it leads to:

    python experiments/pmnist/search/head_fit_probe.py <1-task run dir> 0.1 1 3 10

The run dir comes from stage 1 of experiments/pmnist/search/README.md (full_task1, l1=0.1).
Reads validation data only.
"""

from __future__ import annotations

import sys

import torch
from omegaconf import OmegaConf

from den.checkpoint import load_checkpoint
from den.data.streams import build_stream
from den.strategies import den_ops as ops
from den.strategies.den import fit_sparse_head
from den.strategies.registry import build_strategy


def main(run: str, head_l1s: list[float]) -> None:
    torch.set_num_threads(1)
    cfg = OmegaConf.load(f"{run}/.hydra/config.yaml")
    cfg.stream.num_tasks = 2  # the same permutations: task 2 follows the run's task 1
    stream = build_stream(cfg.stream, cfg.seed)
    task = stream.tasks[1]
    for head_l1 in head_l1s:
        cfg.strategy.head_l1 = head_l1
        s = build_strategy(
            cfg.strategy, cfg.model, cfg.trainer, task.input_shape, torch.device("cpu"), cfg.seed
        )
        load_checkpoint(run, s)
        s.net.add_head(task.num_classes, 1)
        train, val = s.task_data(task)
        result = fit_sparse_head(s, 1, train, val, {"phases": {}})
        selected = [int(m.sum()) for m in ops.select_subnetwork(s.net, 1)]
        print(
            f"head_l1 {head_l1:g}: head-fit val loss {result.val_loss:.4f} after {result.steps} "
            f"steps; selected {selected} of {s.net.widths()} units; "
            f"non-zero fraction per layer {ops.nonzero_fraction(s.net)}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], [float(v) for v in sys.argv[2:]])
