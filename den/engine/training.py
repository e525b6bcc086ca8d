"""The one training loop and the one optimiser factory.

Every strategy, and every DEN phase, trains through :func:`train_phase`: mini-batches drawn
by index from in-memory tensors, an objective supplied by the caller (data loss plus whatever
penalty the method adds), optional gradient masks (which weights may move), an optional
``after_step`` hook (DEN's proximal steps), per-epoch learning-rate decay, and early stopping
on the validation loss. The loop touches the host only every ``log_every`` steps and at
validation checks, so it runs at the speed of the bare PyTorch step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from den.config.schema import TrainerConfig
from den.data.streams.base import Split
from den.engine.metrics import float32_value
from den.errors import ConfigError, NonFiniteLossError
from den.utils.interrupt import RunInterrupted, stop_requested
from den.utils.progress import phase_progress

log = logging.getLogger(__name__)

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x [B, C, H, W], y [B]) -> scalar loss to minimise."""

StepListener = Callable[[dict], None]
_listeners: list[StepListener] = []


@contextmanager
def step_listener(listener: StepListener) -> Iterator[None]:
    """Call ``listener({"task", "phase", "step", "loss", "lr"})`` at every logging interval
    (``trainer.log_every`` steps) and ``listener({"task", "phase", "step", "val_loss"})`` at
    every validation check of every phase trained inside the ``with`` block.

    How the runner hands training losses to a logger without strategies knowing about it.
    """
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@dataclass
class PhaseCall:
    """One finished call of :func:`train_phase`, as a phase listener sees it: the phase's
    name, its parameters (trained), objective, training data, gradient masks and result."""

    name: str
    params: list[torch.Tensor]
    objective: Objective
    train: Split
    grad_masks: list[torch.Tensor | None]
    result: PhaseResult


PhaseListener = Callable[[PhaseCall], None]
_phase_listeners: list[PhaseListener] = []


@contextmanager
def phase_listener(listener: PhaseListener) -> Iterator[None]:
    """Call ``listener(PhaseCall)`` after every phase trained inside the ``with`` block:
    the seam through which den.bench records what each phase of a real run did."""
    _phase_listeners.append(listener)
    try:
        yield
    finally:
        _phase_listeners.remove(listener)


@dataclass
class PhaseResult:
    """What one call of :func:`train_phase` did."""

    name: str
    steps: int
    train_loss: float  # mean objective over the last logging window
    val_loss: float | None  # best validation loss seen (None without validation data)
    seconds: float  # the whole phase, validation checks included
    stopped_early: bool
    val_seconds: float = 0.0  # of which early-stopping validation checks

    def as_dict(self) -> dict:
        return {
            "steps": self.steps,
            "train_loss": float32_value(self.train_loss),
            "val_loss": None if self.val_loss is None else float32_value(self.val_loss),
            "seconds": round(self.seconds, 4),
            "stopped_early": self.stopped_early,
            "val_seconds": round(self.val_seconds, 4),
        }


def make_optimizer(params: Sequence[torch.Tensor], cfg: TrainerConfig) -> torch.optim.Optimizer:
    """The one place an optimiser is built. Weight decay is applied by :func:`train_phase`
    (before gradient masks), so the optimiser itself never decays a frozen weight."""
    params = list(params)
    if cfg.optimizer not in ("adam", "sgd"):
        raise ConfigError(
            "trainer.optimizer", cfg.optimizer, "unknown optimiser", "use adam or sgd"
        )
    # The fused kernels update every parameter in one call instead of a chain of small ops
    # per tensor (PyTorch's default on the CPU), with the same update rule. They need float
    # tensors on the CPU or CUDA and a recent PyTorch; elsewhere PyTorch picks its default.
    if fused_supported(params):
        try:
            return _build_optimizer(params, cfg, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass  # an older PyTorch without that fused kernel
    return _build_optimizer(params, cfg, fused=None)


def _build_optimizer(
    params: list[torch.Tensor], cfg: TrainerConfig, fused: bool | None
) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, fused=fused)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, fused=fused)


def fused_supported(params: Sequence[torch.Tensor]) -> bool:
    """Every parameter is a floating tensor on a CPU or CUDA device (where PyTorch has fused
    optimiser kernels; den.bench's bare loops ask the same question)."""
    return bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )


def train_phase(
    name: str,
    params: Sequence[torch.Tensor],
    objective: Objective,
    train: Split,
    cfg: TrainerConfig,
    generator: torch.Generator,
    *,
    val: Split | None = None,
    val_loss: Objective | None = None,
    grad_masks: Sequence[torch.Tensor | None] | None = None,
    after_step: Callable[[float], None] | None = None,
    grad_hook: Callable[[], None] | None = None,
    max_iters: int | None = None,
    patience: int | None = None,
    task_id: int = 0,
) -> PhaseResult:
    """Minimise ``objective`` over ``params`` on ``train`` for up to ``max_iters`` steps.

    Args:
        params: tensors to optimise (requires_grad). The optimiser is built fresh here, so
            its state never outlives a change of parameter shapes.
        objective: data loss plus penalties for one batch.
        train, val: data already on the parameters' device.
        val_loss: the loss checked on ``val`` for early stopping (default: ``objective``);
            a data-only loss keeps penalties from deciding when to stop.
        grad_masks: one mask per parameter (same shape, 1 = may move) or None for free
            parameters; applied after weight decay, so masked weights stay bit-identical.
        after_step: called with the current learning rate after every optimiser step, under
            ``no_grad`` (DEN's proximal steps).
        grad_hook: called under ``no_grad`` after the backward pass, before weight decay and
            masks: adds gradients known in closed form (DEN's L2 pull towards W^{t-1}) without
            building their autograd graph. Such a term is then not part of the logged loss.
        max_iters: this phase's own budget (DEN's ``selective_iters``...); the phase runs
            ``min(max_iters, cfg.max_iters)`` steps, ``cfg.max_iters`` without one.
        patience: validation checks without improvement before stopping (default
            ``cfg.patience``; 0 = no early stopping).
    """
    params = list(params)
    # trainer.max_iters caps every phase; a strategy's own budget can only shorten it
    max_iters = cfg.max_iters if max_iters is None else min(max_iters, cfg.max_iters)
    masks = list(grad_masks) if grad_masks is not None else [None] * len(params)
    if len(masks) != len(params):
        raise ValueError("grad_masks needs one entry per parameter")
    optimizer = make_optimizer(params, cfg)
    val_loss = val_loss or objective
    patience = cfg.patience if patience is None else patience
    has_val = val is not None and len(val) > 0 and patience > 0
    n = len(train)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = max(n // batch, 1)
    device = train.x.device

    start = time.perf_counter()
    running = torch.zeros((), device=device)
    window = 0
    last_train = math.nan
    best_val, bad_checks, stopped_early = math.inf, 0, False
    order = torch.empty(0, dtype=torch.long, device=device)
    step = 0
    val_seconds = 0.0
    with phase_progress(f"task {task_id + 1} {name}", max_iters, enabled=cfg.progress) as bar:
        while step < max_iters:
            epoch_step = step % steps_per_epoch
            if epoch_step == 0:
                order = torch.randperm(n, generator=generator, device="cpu").to(
                    device, non_blocking=True
                )
                if step > 0 and cfg.lr_decay != 1.0:
                    for group in optimizer.param_groups:
                        group["lr"] *= cfg.lr_decay
            idx = order[epoch_step * batch : (epoch_step + 1) * batch]
            # index_select, not x[idx]: the same rows, 4-7x faster on the CPU (a plain gather
            # instead of advanced indexing), which is 5% of an MLP step.
            x = train.x.index_select(0, idx)
            if train.augment is not None:
                x = train.augment(x, generator)
            loss = objective(x, train.y.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_hook is not None:
                with torch.no_grad():
                    grad_hook()
            _decay_and_mask(params, masks, cfg.weight_decay)
            optimizer.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(optimizer.param_groups[0]["lr"])
            running += loss.detach()
            window += 1
            step += 1
            if stop_requested():
                raise RunInterrupted()

            if step % cfg.log_every == 0 or step == max_iters:
                last_train = float(running) / window  # the only per-window host sync
                running.zero_()
                window = 0
                if not math.isfinite(last_train):
                    raise NonFiniteLossError(task_id, name, step, last_train)
                bar.update(step, loss=last_train, val=best_val if has_val else None)
                if _listeners:
                    lr = optimizer.param_groups[0]["lr"]
                    _tell(task_id, name, step, loss=last_train, lr=lr)
            if has_val and (step % cfg.eval_every == 0 or step == max_iters):
                val_start = time.perf_counter()
                current = evaluate_loss(val_loss, val, cfg.eval_batch_size)  # syncs: timed
                val_seconds += time.perf_counter() - val_start
                if not math.isfinite(current):
                    raise NonFiniteLossError(task_id, name, step, current)
                if _listeners:
                    _tell(task_id, name, step, val_loss=current)
                if current < best_val - cfg.min_delta:
                    best_val, bad_checks = current, 0
                else:
                    bad_checks += 1
                    if bad_checks >= patience:
                        stopped_early = True
                        break
        if window:
            last_train = float(running) / window
            if not math.isfinite(last_train):
                raise NonFiniteLossError(task_id, name, step, last_train)
        bar.update(step, loss=last_train, val=best_val if has_val else None)
    seconds = time.perf_counter() - start
    result = PhaseResult(
        name, step, last_train, best_val if has_val else None, seconds, stopped_early, val_seconds
    )
    for listener in _phase_listeners:
        listener(PhaseCall(name, params, objective, train, masks, result))
    log.info(
        "task %d %-18s steps %5d  loss %.4f  val %s  %.1fs (%.2f ms/step)%s",
        task_id + 1,
        name,
        step,
        last_train,
        f"{best_val:.4f}" if has_val else "-",
        seconds,
        1000 * seconds / max(step, 1),
        "  early stop" if stopped_early else "",
    )
    return result


def _tell(task_id: int, phase: str, step: int, **values: float) -> None:
    event = {"task": task_id, "phase": phase, "step": step, **values}
    for listener in _listeners:
        listener(event)


def _decay_and_mask(
    params: list[torch.Tensor], masks: list[torch.Tensor | None], weight_decay: float
) -> None:
    """Coupled L2 (grad += wd * w, as Adam's weight_decay) then zero the frozen entries."""
    with torch.no_grad():
        for p, m in zip(params, masks, strict=True):
            if p.grad is None:
                continue
            if weight_decay:
                p.grad.add_(p, alpha=weight_decay)
            if m is not None:
                p.grad.mul_(m)


@torch.no_grad()
def evaluate_loss(loss_fn: Objective, data: Split, batch_size: int) -> float:
    """Mean of ``loss_fn`` over ``data`` in large batches (weighted by batch size)."""
    total = torch.zeros((), device=data.x.device)
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        total += loss_fn(x, y) * y.shape[0]
    return float(total) / max(len(data), 1)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, the data loss of every strategy (the DEN code uses sigmoid)."""
    return F.cross_entropy(logits, y)
