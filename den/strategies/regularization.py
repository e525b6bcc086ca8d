"""Quadratic-penalty methods: fine-tuning plus ``lam * sum_i Omega_i (theta_i - theta*_i)^2``.

``l2``, ``ewc`` and ``si`` differ only in the importance ``Omega`` of each trunk weight and the
anchor ``theta*`` it is pulled to, so they share this class and each overrides
:meth:`consolidate` (what to remember after a task) and, for SI, :meth:`step_hook` (what to
measure during training). The penalty covers the shared trunk; every task's head is its own.

The weight is written as in Hsu et al. 2018 (GT-RIPL/Continual-Learning-Benchmark) and the DEN
paper's ``lambda ||W - W^{t-1}||^2``: no factor 1/2, so ``lam`` values from that benchmark can
be used as they are. An infinite ``lam`` freezes the trunk (the limit of the penalty): the
trunk is left out of the optimiser and only the new head trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from den.config.schema import StrategyConfig
from den.data.streams.base import Split, Task
from den.errors import ConfigError
from den.strategies.base import Strategy, TaskReport


@dataclass
class QuadraticPenaltyConfig(StrategyConfig):
    # weight of the penalty; inf freezes the trunk after task 1 (so +infinity is allowed)
    lam: float = field(default=1.0, metadata={"allow_inf": True})


@dataclass
class QuadraticPenaltyReport(TaskReport):
    trunk_frozen: bool = False  # lam=inf: only the new head trained
    storage: dict[str, int] = field(default_factory=dict)  # numbers kept for training only


class QuadraticPenaltyStrategy(Strategy):
    """Fine-tuning with a quadratic pull of the trunk towards an anchor, weighted per weight."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.importance: list[torch.Tensor] | None = None  # Omega, one per trunk parameter
        self.anchor: list[torch.Tensor] | None = None  # theta*, one per trunk parameter

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        if not cfg.lam >= 0:  # also rejects nan
            raise ConfigError(
                "strategy.lam", cfg.lam, "the penalty weight must be >= 0", "use e.g. 1.0"
            )

    # ----------------------------------------------------------------- the method
    def penalty(self) -> torch.Tensor:
        """``lam * sum Omega (theta - theta*)^2`` over the trunk (0 before any anchor)."""
        trunk = self.net.trunk_parameters()
        if self.anchor is None:
            return trunk[0].new_zeros(())
        total = trunk[0].new_zeros(())
        for p, omega, star in zip(trunk, self.importance, self.anchor, strict=True):
            total = total + (omega * (p - star).square()).sum()
        return self.cfg.lam * total

    report_class: type[QuadraticPenaltyReport] = QuadraticPenaltyReport

    def consolidate(self, task: Task, train: Split) -> dict[str, Any]:
        """Update :attr:`importance` and :attr:`anchor` after learning ``task``; return the
        values of the fields :attr:`report_class` adds."""
        raise NotImplementedError

    def step_hook(self) -> Callable[[float], None] | None:
        """Called after every optimiser step of a task (SI's path integral); None = nothing."""
        return None

    # ----------------------------------------------------------------- the protocol
    def learn(self, task: Task) -> QuadraticPenaltyReport:
        t = task.task_id
        self.net.add_head(task.num_classes, t)
        train, val = self.task_data(task)
        data_loss = self.data_loss(self.net, t)
        frozen = self.anchor is not None and math.isinf(self.cfg.lam)
        params = [*self.net.head_parameters(t)]
        if not frozen:
            params = [*self.net.trunk_parameters(), *params]
        if self.anchor is None or frozen or self.cfg.lam == 0:
            objective = data_loss
        else:

            def objective(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return data_loss(x, y) + self.penalty()

        result = self.fit("train", params, objective, train, val, t, after_step=self.step_hook())
        return self.report_class(
            phases={"train": result.as_dict()},
            trunk_frozen=frozen,
            **self.consolidate(task, train),
            storage={"train_state_values": self.train_state_values()},
        )

    def train_state_values(self) -> int:
        """Numbers kept for training only (importance and anchor), not needed to predict."""
        if self.anchor is None:
            return 0
        return sum(a.numel() for a in self.anchor) + sum(o.numel() for o in self.importance)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "importance": self.importance, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        trunk = [tuple(p.shape) for p in self.net.trunk_parameters()]
        for key in ("importance", "anchor"):
            kept = state[key]
            if kept is not None and [tuple(x.shape) for x in kept] != trunk:
                raise ValueError(f"the {key} tensors do not match the network's parameters")
        self.importance = _to_device(state["importance"], self.device)
        self.anchor = _to_device(state["anchor"], self.device)

    # ----------------------------------------------------------------- helpers
    def current_trunk(self) -> list[torch.Tensor]:
        """A detached copy of the trunk's weights (the next anchor)."""
        return [p.detach().clone() for p in self.net.trunk_parameters()]


def _to_device(tensors: list[torch.Tensor] | None, device: torch.device) -> list | None:
    return None if tensors is None else [x.to(device) for x in tensors]
