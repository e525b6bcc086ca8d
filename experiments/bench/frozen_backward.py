"""What skipping the frozen block's gradients saves in DEN's expansion step (issue: DEN's cost).

    python experiments/bench/frozen_backward.py [--threads 1] [--repeats 7] [--arch mlp|conv]

DEN's expansion (and the retrain after a split) trains only the units a task added; the old
units' weights from old inputs are frozen by gradient masks. ``MultiHeadNet.frozen_old_units``
makes every layer's backward skip those gradients instead of computing and then masking them.
This times one forward + backward, plain and with the context, alternating the two in one
process and reporting medians (ms per step):
- ``--arch mlp``: the permuted-MNIST MLP with 30 new units per layer at the widths of task 2
  and task 10 of a den_pmnist run (batch 256);
- ``--arch conv``: split CIFAR-10's LeNet (conv 20-50, fc 256-128) with den_cifar's 10 new
  units per layer at the widths of its task 2 and task 5 (batch 128).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F

from den.models.network import MultiHeadNet

# (input shape, batch, conv channels per old-widths row, new units per layer, old widths)
SETTINGS = {
    # task 2 of the 10-task run, and task 10 (den_pmnist seed 0 ended at 587-183 units)
    "mlp": ((1, 28, 28), 256, 0, 30, ([312, 128], [557, 176])),
    # den_cifar on split CIFAR-10 (experiments/cifar10/split_cifar10): widths before task 2
    # and before task 5
    "conv": ((3, 32, 32), 128, 2, 10, ([20, 50, 256, 128], [64, 82, 270, 140])),
}


def step_ms(net: MultiHeadNet, fast: bool, steps: int, batch: int, cached: bool = False) -> float:
    """ms per forward + backward: plain, with the frozen block skipped (``fast``), and with
    layer 0's old units' outputs read from a cache (``cached``, as DEN's OldFirstLayerData:
    the cache is built once per phase, outside the steps)."""
    x, y = torch.rand(batch, *net.input_shape), torch.randint(0, 10, (batch,))
    with torch.no_grad():
        first_old = net.first_layer_units(x, 0, net.widths_at(0)[0])
    start = time.perf_counter()
    for _ in range(steps):
        net.zero_grad(set_to_none=True)
        with net.frozen_old_units(1) if fast else contextlib.nullcontext():
            logits = net.logits_from_old_first_layer(x, first_old, 1) if cached else net(x, 1)
            F.cross_entropy(logits, y).backward()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--arch", choices=sorted(SETTINGS), default="mlp")
    args = parser.parse_args()
    shape, batch, n_conv, new, all_old = SETTINGS[args.arch]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        "| old widths | plain ms | frozen block skipped ms | ratio |"
        " + cached first layer ms | ratio to plain |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for old in all_old:
        net = MultiHeadNet(shape, hidden=tuple(old[n_conv:]), conv_channels=tuple(old[:n_conv]))
        net.add_head(10, 0)
        net.add_head(10, 1)
        for layer in range(net.num_layers):
            net.append_units(layer, task_id=1, count=new)
        step_ms(net, True, 5, batch)  # warm-up
        plain, fast, cached = [], [], []
        for _ in range(args.repeats):
            plain.append(step_ms(net, False, args.steps, batch))
            fast.append(step_ms(net, True, args.steps, batch))
            cached.append(step_ms(net, True, args.steps, batch, cached=True))
        a, b, c = (statistics.median(v) for v in (plain, fast, cached))
        print(
            f"| {'-'.join(map(str, old))} | {a:.2f} | {b:.2f} | {b / a:.2f} | {c:.2f} |"
            f" {c / a:.2f} |"
        )


if __name__ == "__main__":
    main()
