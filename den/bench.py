"""``python -m den.bench``: the framework's training steps against bare PyTorch loops
(``mode=threads``: the thread policy alone and beside busy processes, den/bench_threads.py).

In one process, interleaved and repeated (median reported), on the same pre-loaded tensors,
model (MLP 784-312-128, a 10-way head), batch size and optimiser (Adam):

- ``finetune`` and ``ewc``: :func:`den.engine.training.train_phase` driven by the strategies' own
  objectives, against a plain loop over ``nn.Linear`` layers (plus the same quadratic penalty
  for EWC);
- every DEN phase (sparse task-1 training, the sparse head fit, selective retraining,
  expansion, split training, the retrain after a split), recorded from a real 2-task DEN run,
  against a plain loop doing the same tensor work on the same shapes: the same gradient
  masks, weight decay, L2 pull towards W^{t-1}, L1 and group-lasso proximal steps;
- evaluation (``den.run.evaluation.evaluate``) against a plain ``inference_mode`` forward pass and
  the same metrics (accuracy, mean AUROC);
- peak resident memory of the process.

Prints a table and writes ``bench.json`` (a list of ``name``, ``ms_per_step``,
``bare_ms_per_step``, ``ratio``) and ``bench_extra.json`` (memory, settings) into the output
directory. ``scaling=true`` adds the growth check: DEN on 10 and 50 tiny permuted tasks, ms per
training step against the network's size and the number of tasks seen (``scaling.json``,
``scaling.png``). The bare loops here are references written out on purpose; nothing else in
the package trains this way.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from den.bench_threads import run_threads_bench
from den.config.schema import ModelConfig, StreamConfig, TrainerConfig
from den.data.sources import RawDataset
from den.data.streams.base import Split, build_stream
from den.engine.metrics import mean_auroc
from den.engine.training import PhaseCall, fused_supported, phase_listener
from den.run.build import resolve_device
from den.run.evaluation import evaluate
from den.run.record import peak_rss_mib
from den.strategies.den.cache import OldFirstLayerData
from den.strategies.den.config import DENConfig
from den.strategies.den.strategy import DENStrategy
from den.strategies.ewc import EWCConfig, EWCStrategy
from den.strategies.finetune import FinetuneConfig, FinetuneStrategy
from den.utils.files import save_figure, write_atomic, write_json_atomic

log = logging.getLogger("den.bench")
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
DEN_PHASES = ("sparse", "head_fit", "selective", "expansion", "split_train", "split_retrain")


# --------------------------------------------------------------------------- data and models
def synthetic_raw(n_train: int, n_test: int, seed: int = 0) -> RawDataset:
    """MNIST-shaped uint8 images whose class sets a bright 4x4 patch (learnable, not trivial)."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=g)
        x = (torch.rand(n, 1, 28, 28, generator=g) * 120).to(torch.uint8)
        for c in range(10):
            r, col = 2 + 6 * (c // 4), 2 + 6 * (c % 4)
            x[y == c, :, r : r + 4, col : col + 4] = 250
        return x, y

    (train_x, train_y), (test_x, test_y) = make(n_train), make(n_test)
    return RawDataset(train_x, train_y, test_x, test_y, [str(c) for c in range(10)])


def permuted_stream(num_tasks: int, n_train: int, raw: RawDataset) -> Any:
    cfg = StreamConfig(
        name="bench",
        kind="permuted",
        dataset="synthetic",
        num_tasks=num_tasks,
        val_size=500,
        samples_per_task=n_train,
    )
    return build_stream(cfg, seed=0, raw=raw)


def bench_trainer(cfg: DictConfig, steps: int) -> TrainerConfig:
    """A fixed number of steps: no early stop, no validation, no progress bar, one loss
    readout at the end (as a run with log_every=steps)."""
    return TrainerConfig(
        lr=1e-3,
        batch_size=cfg.batch_size,
        max_iters=steps,
        patience=0,
        progress=False,
        log_every=max(steps, 1),
        eval_batch_size=cfg.eval_batch_size,
    )


# --------------------------------------------------------------------------- the bare loop
@dataclasses.dataclass
class BarePhase:
    """Plain tensors and switches for a reference loop doing one phase's tensor work."""

    weights: list[torch.Tensor]  # hidden layers' weights, then the head's
    biases: list[torch.Tensor]
    masks: list[torch.Tensor | None]  # one per parameter (weights..., biases...)
    prev: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # L2 pull towards these
    lam: float = 0.0
    l1: float = 0.0
    group_rows: list[torch.Tensor] | None = None  # bool rows per hidden layer (group lasso)
    gl: float = 0.0
    weight_decay: float = 0.0
    importance: list[torch.Tensor] | None = None  # EWC: lam * sum Omega (theta - anchor)^2
    anchor: list[torch.Tensor] | None = None
    features_input: bool = False  # head-only phase on cached features


def bare_loop(phase: BarePhase, data: Split, steps: int, batch_size: int, lr: float) -> float:
    """ms per step of ``phase`` written as a plain PyTorch loop."""
    weights = [w.detach().clone().requires_grad_(True) for w in phase.weights]
    biases = [b.detach().clone().requires_grad_(True) for b in phase.biases]
    params = [*weights, *biases]
    masks = phase.masks
    # fused like den.engine.training's factory, where PyTorch has the kernel (not on e.g. MPS)
    optimizer = torch.optim.Adam(params, lr=lr, fused=fused_supported(params) or None)
    n = len(data)
    batch = min(batch_size, n)
    per_epoch = max(n // batch, 1)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(n, generator=generator).to(data.x.device)
    running = torch.zeros((), device=data.x.device)
    start = time.perf_counter()
    for step in range(steps):
        if step % per_epoch == 0 and step:
            order = torch.randperm(n, generator=generator).to(data.x.device)
        idx = order[(step % per_epoch) * batch : (step % per_epoch + 1) * batch]
        h, y = data.x.index_select(0, idx), data.y.index_select(0, idx)  # the fast gather
        h = h.flatten(1)
        if not phase.features_input:
            for w, b in zip(weights[:-1], biases[:-1], strict=True):
                h = F.relu(F.linear(h, w, b))
        loss = F.cross_entropy(F.linear(h, weights[-1], biases[-1]), y)
        if phase.importance is not None:
            trunk = [*weights[:-1], *biases[:-1]]
            penalty = sum(
                (o * (p - a).square()).sum()
                for p, o, a in zip(trunk, phase.importance, phase.anchor, strict=True)
            )
            loss = loss + phase.lam * penalty
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            if phase.prev is not None and phase.lam > 0:
                # lam * ||W - W^{t-1}||^2 on the old block, its gradient in closed form
                for w, b, (pw, pb) in zip(weights, biases, phase.prev, strict=False):
                    rows, cols = pw.shape[0], pw.shape[1]
                    w.grad[:rows, :cols].add_((w[:rows, :cols] - pw).mul_(2 * phase.lam))
                    b.grad[: pb.shape[0]].add_((b[: pb.shape[0]] - pb).mul_(2 * phase.lam))
            for p, m in zip(params, masks, strict=True):
                if phase.weight_decay:
                    p.grad.add_(p, alpha=phase.weight_decay)
                if m is not None:
                    p.grad.mul_(m)
        optimizer.step()
        _bare_prox(phase, weights, biases, masks)
        running += loss.detach()
    float(running)  # the one host sync of a loop that logs once, like the framework's
    return 1000 * (time.perf_counter() - start) / steps


@torch.no_grad()
def _bare_prox(
    phase: BarePhase,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    masks: list[torch.Tensor | None],
) -> None:
    """The L1 and group-lasso proximal steps of a bare DEN phase, written out."""
    if phase.l1 > 0:
        for w, m in zip(weights, masks, strict=False):
            shrink = w.clamp(-phase.l1, phase.l1)
            if m is not None:
                shrink.mul_(m)
            w.sub_(shrink)
    if phase.group_rows is not None and phase.gl > 0:
        for w, b, rows in zip(weights, biases, phase.group_rows, strict=False):
            norms = torch.sqrt(w.pow(2).sum(1) + b.pow(2))
            scale = (1 - phase.gl / norms.clamp_min(1e-12)).clamp_(min=0)
            scale = torch.where(rows, scale, torch.ones_like(scale))
            w.mul_(scale[:, None])
            b.mul_(scale)


# --------------------------------------------------------------------------- framework cases
class PhaseRecorder:
    """Listens to the training loop (:func:`den.engine.training.phase_listener`) as DEN
    trains: records each phase's tensors and timing."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, call: PhaseCall) -> None:
        result, train = call.result, call.train
        cache = getattr(call.objective, "__self__", None)
        if isinstance(cache, OldFirstLayerData):
            # the phase read layer 0's old units from a cache, its batches are row indices:
            # the bare twin trains on the inputs themselves (and computes every layer)
            train = Split(cache.inputs[0].index_select(0, train.x), train.y)
        self.calls.append(
            {
                "name": call.name,
                "params": [p.detach().clone() for p in call.params],
                "masks": [None if m is None else m.clone() for m in call.grad_masks],
                "data": train,
                "ms": 1000 * result.seconds / max(result.steps, 1),
            }
        )


def den_run(cfg: DictConfig, stream: Any, device: torch.device, steps: int) -> PhaseRecorder:
    """A 2-task DEN run with every step forced (tau=0, a small sigma) and a fixed budget."""
    den_cfg = DENConfig(tau=0.0, sigma=1e-4, max_split_per_layer=12, head_fit_iters=steps)
    model = ModelConfig(name="mlp", arch="mlp", hidden=list(cfg.hidden))
    torch.manual_seed(0)
    strategy = DENStrategy(
        den_cfg, model, bench_trainer(cfg, steps), stream[0].input_shape, device, seed=0
    )
    recorder = PhaseRecorder()
    with phase_listener(recorder):
        strategy.learn(stream[0])
        recorder.prev = [
            (w.detach().clone(), b.detach().clone())
            for w, b in zip(strategy.net.weights, strategy.net.biases, strict=True)
        ]
        strategy.learn(stream[1])
    recorder.cfg = den_cfg
    return recorder


def bare_den_phase(call: dict[str, Any], prev: list, den_cfg: DENConfig) -> BarePhase:
    """The plain-loop twin of one recorded DEN phase."""
    params, masks = call["params"], call["masks"]
    name = call["name"]
    if name == "head_fit":
        return BarePhase(
            [params[0]], [params[1]], masks, l1=den_cfg.l1, weight_decay=den_cfg.l2,
            features_input=True,
        )  # fmt: skip
    n = len(params) // 2
    weights, biases = params[: n - 1] + [params[-2]], params[n - 1 : 2 * n - 2] + [params[-1]]
    ordered_masks = masks[: n - 1] + [masks[-2]] + masks[n - 1 : 2 * n - 2] + [masks[-1]]
    phase = BarePhase(weights, biases, ordered_masks, l1=den_cfg.l1, weight_decay=den_cfg.l2)
    if name == "split_train":
        phase.prev, phase.lam = prev, den_cfg.lam
    if name == "selective":
        # the gathered subnetwork (den_subnet): its anchors are its own values at the start
        phase.prev = [
            (w.clone(), b.clone()) for w, b in zip(weights[:-1], biases[:-1], strict=True)
        ]
        phase.lam = den_cfg.lam
    if name == "expansion":
        phase.group_rows = [
            torch.arange(w.shape[0], device=w.device) >= w.shape[0] - den_cfg.k
            for w in weights[:-1]
        ]
        phase.gl = den_cfg.gl
    return phase


def finetune_case(cfg, stream, device, steps) -> tuple[Callable[[], float], Callable[[], float]]:
    model = ModelConfig(name="mlp", arch="mlp", hidden=list(cfg.hidden))
    trainer = bench_trainer(cfg, steps)
    torch.manual_seed(0)
    s = FinetuneStrategy(FinetuneConfig(), model, trainer, stream[0].input_shape, device, 0)
    s.net.add_head(10, 0)
    train = stream[0].split("train").to(device)
    params = [*s.net.trunk_parameters(), *s.net.head_parameters(0)]

    def framework() -> float:
        r = s.fit("train", params, s.data_loss(s.net, 0), train, None, 0)
        return 1000 * r.seconds / r.steps

    phase = BarePhase(list(s.net.weights) + [s.net.head_weights[0]],
                      list(s.net.biases) + [s.net.head_biases[0]], [None] * 6)  # fmt: skip
    return framework, lambda: bare_loop(phase, train, steps, cfg.batch_size, 1e-3)


def ewc_case(cfg, stream, device, steps) -> tuple[Callable[[], float], Callable[[], float]]:
    model = ModelConfig(name="mlp", arch="mlp", hidden=list(cfg.hidden))
    torch.manual_seed(0)
    s = EWCStrategy(EWCConfig(), model, bench_trainer(cfg, steps), stream[0].input_shape, device, 0)
    s.net.add_head(10, 0)
    s.net.add_head(10, 1)
    s.anchor = s.current_trunk()
    s.importance = [torch.rand_like(a) * 1e-3 for a in s.anchor]
    train = stream[1].split("train").to(device)
    params = [*s.net.trunk_parameters(), *s.net.head_parameters(1)]
    data_loss = s.data_loss(s.net, 1)

    def framework() -> float:
        r = s.fit("train", params, lambda x, y: data_loss(x, y) + s.penalty(), train, None, 1)
        return 1000 * r.seconds / r.steps

    phase = BarePhase(
        list(s.net.weights) + [s.net.head_weights[1]],
        list(s.net.biases) + [s.net.head_biases[1]],
        [None] * 6,
        lam=s.cfg.lam,
        importance=s.importance,
        anchor=s.anchor,
    )
    return framework, lambda: bare_loop(phase, train, steps, cfg.batch_size, 1e-3)


def evaluation_case(cfg, stream, device) -> tuple[Callable[[], float], Callable[[], float]]:
    """ms per 1000 examples: den.run.evaluation.evaluate against a bare inference_mode forward."""
    model = ModelConfig(name="mlp", arch="mlp", hidden=list(cfg.hidden))
    torch.manual_seed(0)
    s = FinetuneStrategy(FinetuneConfig(), model, TrainerConfig(), stream[0].input_shape, device, 0)
    s.net.add_head(10, 0)
    test = stream[0].split("test")
    n = len(test)

    def framework() -> float:
        start = time.perf_counter()
        evaluate(s, test, 0, cfg.eval_batch_size)
        return 1000 * (time.perf_counter() - start) / n * 1000

    def bare() -> float:
        # The same outputs as evaluate(): accuracy and the mean one-vs-rest AUROC (the metric
        # itself is shared; what is timed is the framework's path around the forward pass).
        start = time.perf_counter()
        with torch.inference_mode():
            logits = []
            for i in range(0, n, cfg.eval_batch_size):
                x = test.x[i : i + cfg.eval_batch_size].to(device).flatten(1)
                h = x
                for w, b in zip(s.net.weights, s.net.biases, strict=True):
                    h = F.relu(F.linear(h, w, b))
                logits.append(F.linear(h, s.net.head_weights[0], s.net.head_biases[0]).cpu())
            all_logits = torch.cat(logits)
            (all_logits.argmax(1) == test.y).float().mean().item()
            mean_auroc(all_logits, test.y)
        return 1000 * (time.perf_counter() - start) / n * 1000

    return framework, bare


# --------------------------------------------------------------------------- scaling
def scaling_check(cfg: DictConfig, device: torch.device, out: Path) -> dict[str, Any]:
    """DEN over ``cfg.scaling.tasks`` tiny permuted tasks: per task, ms per training step
    (all phases) against the network's parameters. If a step's cost followed the number of
    tasks rather than the network's size, ms/step per million parameters would climb."""
    rows = []
    for num_tasks in cfg.scaling.tasks:
        raw = synthetic_raw(cfg.scaling.samples_per_task + 500, 500)
        stream = permuted_stream(num_tasks, cfg.scaling.samples_per_task, raw)
        model = ModelConfig(name="mlp", arch="mlp", hidden=list(cfg.hidden))
        trainer = bench_trainer(cfg, cfg.scaling.max_iters)
        torch.manual_seed(0)
        den_cfg = DENConfig(
            sigma=0.01, max_split_per_layer=12, head_fit_iters=cfg.scaling.max_iters
        )
        strategy = DENStrategy(den_cfg, model, trainer, stream[0].input_shape, device, seed=0)
        for task in stream:
            report = strategy.learn(task)
            phases = {k: v for k, v in report["phases"].items() if k != "head_fit"}
            steps = sum(p["steps"] for p in phases.values())
            seconds = sum(p["seconds"] for p in phases.values())
            ms = 1000 * seconds / max(steps, 1)
            params = strategy.net.num_parameters()
            rows.append(
                {
                    "stream_tasks": num_tasks,
                    "task": task.task_id + 1,
                    "params": params,
                    "ms_per_step": ms,
                    "ms_per_step_per_mparam": ms / (params / 1e6),
                }
            )
        log.info("scaling: %d tasks done, params %s", num_tasks, f"{params:,}")
    _plot_scaling(rows, out / "scaling.png")
    return {"rows": rows}


def _plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for n in sorted({r["stream_tasks"] for r in rows}):
        sub = [r for r in rows if r["stream_tasks"] == n]
        left.plot(
            [r["task"] for r in sub],
            [r["ms_per_step"] for r in sub],
            marker=".",
            label=f"{n}-task stream",
        )
        right.plot(
            [r["params"] / 1e6 for r in sub],
            [r["ms_per_step"] for r in sub],
            marker=".",
            label=f"{n}-task stream",
        )
    left.set(title="DEN: ms per training step, by task", xlabel="task", ylabel="ms / step")
    right.set(
        title="DEN: ms per training step, by network size",
        xlabel="parameters (millions)",
        ylabel="ms / step",
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def run_bench(cfg: DictConfig, out: Path) -> list[dict[str, Any]]:
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    steps = cfg.steps
    raw = synthetic_raw(cfg.examples + 500, cfg.test_examples)
    stream = permuted_stream(2, cfg.examples, raw)

    cases: dict[str, tuple[Callable[[], float], Callable[[], float]]] = {
        "finetune": finetune_case(cfg, stream, device, steps),
        "ewc": ewc_case(cfg, stream, device, steps),
        "evaluate (ms / 1000 examples)": evaluation_case(cfg, stream, device),
    }
    timings: dict[str, tuple[list[float], list[float]]] = {}
    for repeat in range(cfg.repeats + 1):  # the first round warms up and is dropped
        for name, (framework, bare) in cases.items():
            pair = (framework(), bare()) if repeat % 2 else (bare(), framework())[::-1]
            if repeat:
                timings.setdefault(name, ([], []))
                timings[name][0].append(pair[0])
                timings[name][1].append(pair[1])
        recorder = den_run(cfg, stream, device, steps)
        for call in recorder.calls:
            phase = bare_den_phase(call, recorder.prev, recorder.cfg)
            bare_ms = bare_loop(phase, call["data"], steps, cfg.batch_size, 1e-3)
            if repeat:
                key = f"den: {call['name']}"
                timings.setdefault(key, ([], []))
                timings[key][0].append(call["ms"])
                timings[key][1].append(bare_ms)
        log.info("round %d/%d done", repeat, cfg.repeats)
    rows = []
    for name, (fw, bare) in timings.items():
        f_med, b_med = statistics.median(fw), statistics.median(bare)
        rows.append(
            {
                "name": name,
                "ms_per_step": round(f_med, 4),
                "bare_ms_per_step": round(b_med, 4),
                # The median of the paired ratios (framework and bare timed back to back in
                # each round): robust to the machine's speed drifting between rounds.
                "ratio": round(statistics.median(f / b for f, b in zip(fw, bare, strict=True)), 4),
                "ratio_per_repeat": [round(f / b, 4) for f, b in zip(fw, bare, strict=True)],
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], extra: dict[str, Any]) -> str:
    lines = [
        "| case | framework ms/step | bare ms/step | ratio |",
        "| --- | --- | --- | --- |",
        *(
            f"| {r['name']} | {r['ms_per_step']:.3f} | {r['bare_ms_per_step']:.3f} | {r['ratio']:.3f} |"
            for r in rows
        ),
    ]
    lines.append("")
    lines.append(
        f"peak resident memory {extra['peak_rss_mib']:.0f} MiB; threads {extra['threads']}, "
        f"device {extra['device']}, {extra['steps']} steps x {extra['repeats']} repeats; ms/step "
        "are medians, ratio is the median of the repeats' framework/bare ratios"
    )
    text = "\n".join(lines)
    print(text)
    return text


@hydra.main(config_path=CONFIG_DIR, config_name="bench", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.mode == "threads":
        run_threads_bench(cfg, out)
        log.info("written: %s", out)
        return
    if cfg.mode != "framework":
        raise SystemExit(f"\nError: mode={cfg.mode}: use mode=framework or mode=threads\n")
    rows = run_bench(cfg, out)
    extra = {
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "threads": torch.get_num_threads(),
        "device": str(resolve_device(cfg.device)),
        "steps": cfg.steps,
        "repeats": cfg.repeats,
        "torch": torch.__version__,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if cfg.scaling.enabled:
        extra["scaling"] = scaling_check(cfg, resolve_device(cfg.device), out)
    write_json_atomic(rows, out / "bench.json")
    write_json_atomic(extra, out / "bench_extra.json")
    table = print_table(rows, extra)
    write_atomic(out / "bench.md", table + "\n")
    if cfg.scaling.enabled:
        _log_scaling(extra["scaling"]["rows"])
    log.info("written: %s", out)


def _log_scaling(rows: list[dict[str, Any]]) -> None:
    for n in sorted({r["stream_tasks"] for r in rows}):
        sub = [r for r in rows if r["stream_tasks"] == n]
        first, last = sub[0], sub[-1]
        log.info(
            "scaling %d tasks: ms/step %.2f -> %.2f, params %s -> %s, ms/step per Mparam %.2f -> %.2f",
            n,
            first["ms_per_step"],
            last["ms_per_step"],
            f"{first['params']:,}",
            f"{last['params']:,}",
            first["ms_per_step_per_mparam"],
            last["ms_per_step_per_mparam"],
        )
    if any(math.isnan(r["ms_per_step"]) for r in rows):
        log.warning("scaling: a task took no training step")


if __name__ == "__main__":
    from den.bench import main as bench_main

    bench_main()
