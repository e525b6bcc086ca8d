"""The mechanism in isolation: ms per training step of the permuted-MNIST MLP
(784-312-128-10, batch 256, fused Adam, synthetic data) at 1 and 2 torch threads, switched
inside one process, under OpenMP wait environments (one process each: libgomp reads them
when torch loads it), alone or beside busy single-thread processes it starts itself.

    python experiments/threads/wait_policies.py                      # alone, beside 1, beside 2
    python experiments/threads/wait_policies.py --neighbours 1 --rounds 9

Every round runs every environment once per neighbour count; the table gives medians and the
CPUs the rest of the machine kept busy meanwhile (other people's work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# name -> environment; "spin 300000" is libgomp's own default (OMP_WAIT_POLICY unset)
WAITS = {
    "libgomp default (spin 300000)": {"GOMP_SPINCOUNT": "300000"},
    "spin 100000": {"GOMP_SPINCOUNT": "100000"},
    "spin 10000 (den)": {"GOMP_SPINCOUNT": "10000"},
    "spin 1000": {"GOMP_SPINCOUNT": "1000"},
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}


def worker(steps: int, exclude: list[int]) -> None:
    """Time ``steps`` training steps at 2 and 1 threads (alternating, twice); print JSON."""
    import torch
    import torch.nn.functional as F

    from den.bench_threads import CpuWatch

    torch.manual_seed(0)
    x, y = torch.rand(20000, 784), torch.randint(0, 10, (20000,))
    shapes = [(312, 784), (128, 312), (10, 128)]
    ws = [(torch.randn(s) / s[1] ** 0.5).requires_grad_() for s in shapes]
    bs = [torch.zeros(s[0], requires_grad=True) for s in shapes]
    opt = torch.optim.Adam([*ws, *bs], lr=1e-3, fused=True)

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(0, 20000, (256,))
            h = x.index_select(0, idx)
            for w, b in zip(ws[:-1], bs[:-1], strict=True):
                h = F.relu(F.linear(h, w, b))
            loss = F.cross_entropy(F.linear(h, ws[-1], bs[-1]), y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        float(loss.detach())
        return 1000 * (time.perf_counter() - start) / n

    run(20)
    out: dict[int, list[float]] = {1: [], 2: []}
    watch = CpuWatch([os.getpid(), *exclude]).start()
    for threads in (2, 1, 1, 2):
        torch.set_num_threads(threads)
        out[threads].append(run(steps))
    background = watch.stop()[1]
    print(json.dumps({"t1": statistics.median(out[1]), "t2": statistics.median(out[2]),
                      "background_cpus": background}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neighbours", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--exclude", type=int, nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps, args.exclude)
    from den.bench_threads import CLEARED_ENV, neighbours

    base = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    cells: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.rounds):
        for count in args.neighbours:
            with neighbours(count) as pids:
                for name, env in WAITS.items():
                    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps)]
                    cmd += ["--exclude", *map(str, pids)]
                    out = subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True)
                    cells.setdefault((name, count), []).append(json.loads(out.stdout))
    print("| OpenMP wait | beside | 1 thread ms/step | 2 threads ms/step | background CPUs |")
    print("| --- | --- | --- | --- | --- |")
    for (name, count), rows in cells.items():
        med = {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in rows[0]}
        print(f"| {name} | {count} busy | {med['t1']:.2f} | {med['t2']:.2f} | "
              f"{med['background_cpus']:.2f} |")  # fmt: skip
    print(f"\nmedians of {args.rounds} rounds, {args.steps} steps per timing")


if __name__ == "__main__":
    main()
