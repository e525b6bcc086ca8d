"""Synaptic intelligence (Zenke, Poole and Ganguli, ICML 2017).

During a task every trunk weight accumulates its contribution to the decrease of the loss
along the training path, ``w_i += -g_i * delta_i`` per optimiser step (``g`` the gradient the
optimiser used, ``delta`` the step it took). At the end of the task its importance grows by
``w_i / ((theta_i - theta_i^{start})^2 + xi)`` and the anchor moves to the new weights; later
tasks pay ``lam * sum_i Omega_i (theta_i - theta*_i)^2``.

Departures, in the README's fidelity table: ``g`` is the gradient of the whole objective
(penalty included, as the reference implementations use ``p.grad``), and a weight whose
path integral is negative (the loss rose along its path) gets importance 0 instead of a
negative one, which would push it away from its anchor.

The per-step update is three fused tensor operations per parameter under ``no_grad`` (the
training loop's ``after_step`` hook), so SI costs about as much as fine-tuning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from den.config.registry import STRATEGIES
from den.data.streams.base import Split, Task
from den.errors import ConfigError
from den.strategies.regularization import (
    QuadraticPenaltyConfig,
    QuadraticPenaltyReport,
    QuadraticPenaltyStrategy,
)


@dataclass
class SIConfig(QuadraticPenaltyConfig):
    name: str = "si"
    lam: float = field(default=1.0, metadata={"allow_inf": True})  # c in the paper
    xi: float = 0.1  # damping of the normalisation by the squared total change


@dataclass
class SITaskReport(QuadraticPenaltyReport):
    importance_mean: float = 0.0  # the accumulated importance's mean over the trunk


@STRATEGIES.register("si", SIConfig)
class SIStrategy(QuadraticPenaltyStrategy):
    report_class = SITaskReport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path: list[torch.Tensor] = []  # w: path integral of the current task
        self.previous: list[torch.Tensor] = []  # weights before the last step
        self.start: list[torch.Tensor] = []  # weights at the start of the current task

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        super().check_config(cfg, run)
        if not cfg.xi > 0:
            raise ConfigError(
                "strategy.xi", cfg.xi, "the damping must be > 0 (it divides)", "use e.g. 0.1"
            )

    def step_hook(self) -> Callable[[float], None]:
        trunk = self.net.trunk_parameters()
        self.start = self.current_trunk()
        self.previous = self.current_trunk()
        self.path = [torch.zeros_like(p) for p in trunk]

        def accumulate(lr: float) -> None:
            for p, w, before in zip(trunk, self.path, self.previous, strict=True):
                if p.grad is None:
                    continue
                w.addcmul_(p.grad, p.detach() - before, value=-1.0)
                before.copy_(p.detach())

        return accumulate

    def consolidate(self, task: Task, train: Split) -> dict[str, Any]:
        theta = self.current_trunk()
        new = [
            (w / ((th - s).square() + self.cfg.xi)).clamp_min(0.0)
            for w, th, s in zip(self.path, theta, self.start, strict=True)
        ]
        if self.importance is None:
            self.importance = new
        else:
            self.importance = [o + n for o, n in zip(self.importance, new, strict=True)]
        self.anchor = theta
        self.path, self.previous, self.start = [], [], []
        total = sum(float(o.sum()) for o in self.importance)
        return {"importance_mean": total / sum(o.numel() for o in self.importance)}
