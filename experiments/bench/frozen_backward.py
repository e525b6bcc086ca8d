"""What skipping the frozen block's gradients saves in DEN's expansion step (issue: DEN's cost).

    python experiments/bench/frozen_backward.py [--threads 1] [--repeats 7]

DEN's expansion (and the retrain after a split) trains only the units a task added; the old
units' weights from old inputs are frozen by gradient masks. ``MultiHeadNet.frozen_old_units``
makes the fully connected layers' backward skip those gradients instead of computing and then
masking them. This times one forward + backward of the permuted-MNIST MLP with 30 new units
per layer, plain and with the context, at the widths of task 2 and task 10 of a den_pmnist
run, alternating the two in one process and reporting medians (ms per step, batch 256).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

from den.models.network import MultiHeadNet


def step_ms(net: MultiHeadNet, fast: bool, steps: int) -> float:
    x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    start = time.perf_counter()
    for _ in range(steps):
        net.zero_grad(set_to_none=True)
        with net.frozen_old_units(1) if fast else contextlib.nullcontext():
            F.cross_entropy(net(x, 1), y).backward()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("| old widths | plain ms | frozen block skipped ms | ratio |")
    print("| --- | --- | --- | --- |")
    # task 2 of the 10-task run, and task 10 (den_pmnist seed 0 ended at 587-183 units)
    for old in ([312, 128], [557, 176]):
        net = MultiHeadNet((1, 28, 28), hidden=tuple(old))
        net.add_head(10, 0)
        net.add_head(10, 1)
        for layer in range(2):
            net.append_units(layer, task_id=1, count=30)
        step_ms(net, True, 5)  # warm-up
        plain, fast = [], []
        for _ in range(args.repeats):
            plain.append(step_ms(net, False, args.steps))
            fast.append(step_ms(net, True, args.steps))
        a, b = statistics.median(plain), statistics.median(fast)
        print(f"| {old[0]}-{old[1]} | {a:.2f} | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
