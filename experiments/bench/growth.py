"""Where a DEN run's stored capacity went: the parameters each hidden layer's new units cost.

    python experiments/bench/growth.py experiments/cifar10/l1_choice/runs/cifar10_binary-l1-0.05 \
        --input-shape 3 32 32

A unit of layer l that DEN adds (expansion or split) costs its fan-in (a row of layer l's
weights, a filter for conv) and its fan-out (a column block of layer l+1's weights: for the
last conv layer, H x W columns per filter in the first fully connected layer). From the
network the run's model config builds and the layer widths after task 1 and after the last
task (results.json), this prints per hidden layer the units added, the weights they cost
(fan-in + fan-out; the heads and biases are left out) and their share of the stored growth.
The weights between two layers' new units count for both layers, so the shares can add up
past 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omegaconf import OmegaConf

from den.models.network import build_network


def weight_count(inputs: int, block: list[int], kernel: list[int], widths: list[int]) -> int:
    """Hidden weights of a network with ``widths`` [n_0, ..., n_{L-1}] units: layer l has
    n_l x n_{l-1} x block[l] x kernel[l] (``inputs`` in place of n_{-1}); ``block[l]``:
    columns per input unit, ``kernel[l]``: k*k for conv, 1 for linear."""
    fan_in = [inputs, *widths[:-1]]
    return sum(n * m * b * k for n, m, b, k in zip(widths, fan_in, block, kernel, strict=True))


def unit_costs(
    inputs: int, block: list[int], kernel: list[int], before: list[int], after: list[int]
) -> list[int]:
    """Per hidden layer, the weights its new units own in the final network: their fan-in rows
    and their fan-out columns (what the network would lose with that layer at ``before``)."""
    total = weight_count(inputs, block, kernel, after)
    return [
        total
        - weight_count(inputs, block, kernel, [*after[:layer], before[layer], *after[layer + 1 :]])
        for layer in range(len(after))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with a results.json")
    parser.add_argument("--input-shape", nargs=3, type=int, default=[3, 32, 32],
                        metavar=("C", "H", "W"), help="one example's shape (CIFAR: 3 32 32)")  # fmt: skip
    args = parser.parse_args()
    for run in args.runs:
        path = run / "results.json"
        if not path.is_file():
            raise SystemExit(f"{run}: no results.json")
        result = json.loads(path.read_text())
        net = build_network(OmegaConf.create(result["config"]["model"]), args.input_shape)
        kernel = [net.kernel_size**2 if k == "conv" else 1 for k in net.kinds]
        widths = [t["report"]["widths"] for t in result["tasks"] if "widths" in t["report"]]
        before, after = widths[0], widths[-1]
        costs = unit_costs(net.input_units(0), net.in_blocks, kernel, before, after)
        growth = result["tasks"][-1]["report"]["params"] - result["base_params"]
        names = [f"{k}-{i + 1}" for i, k in enumerate(net.kinds)]
        print(f"### {run}\n")
        print(f"stored growth {growth:,} parameters ({growth / result['base_params']:.2f} "
              f"base networks) over {len(result['tasks'])} tasks\n")  # fmt: skip
        print("| layer | units after task 1 | after the last task | weights of the new units "
              "| share of the growth |")  # fmt: skip
        print("| --- | --- | --- | --- | --- |")
        for name, n0, n1, cost in zip(names, before, after, costs, strict=True):
            print(f"| {name} | {n0} | {n1} | {cost:,} | {cost / growth:.2f} |")
        print()


if __name__ == "__main__":
    main()
