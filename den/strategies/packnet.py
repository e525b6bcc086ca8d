"""PackNet (Mallya and Lazebnik, CVPR 2018): one network, a binary mask per task.

Every trunk weight has an owner: the task that trained it last, or none (free). Task t:

1. takes every free weight (``owner = t``) and trains only those, plus its head (and, for the
   first task only, the biases, which are shared and fixed afterwards, as in the paper);
2. prunes, per layer, the ``prune`` fraction of its weights with the smallest magnitude
   (set to 0, owner back to free, so later tasks can use them);
3. retrains its remaining weights for ``retrain_iters`` steps, the pruned ones held at 0.

Task s predicts with the weights owned by tasks 0..s only (a binary mask per task), so later
tasks never change an earlier task's output: gradients of weights owned by earlier tasks are
masked, and later tasks' weights are multiplied by 0 at inference.

Capacity: one network plus one bit per trunk weight per task (each task's mask, counted as
``T * weights / 32`` float32 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.data.streams.base import Task
from den.errors import ConfigError
from den.strategies.base import Strategy, TaskReport, count_nonzero

FREE = -1


@dataclass
class PackNetConfig(StrategyConfig):
    name: str = "packnet"
    prune: float = 0.75  # fraction of a task's weights freed after it (the paper: 0.5 or 0.75)
    retrain_iters: int | None = None  # steps after pruning; None = trainer.max_iters


@dataclass
class PackNetTaskReport(TaskReport):
    """Per trunk layer: weights pruned (freed) after the task, owned by it, still free."""

    pruned: list[int] = field(default_factory=list)
    owned: list[int] = field(default_factory=list)
    free: list[int] = field(default_factory=list)


@STRATEGIES.register("packnet", PackNetConfig)
class PackNetStrategy(Strategy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # owner[l]: int16, shape of weight l; -1 = free. Kept on the weights' device.
        self.owners = [torch.full_like(w, FREE, dtype=torch.int16) for w in self.net.weights]

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        if not 0 <= cfg.prune < 1:
            raise ConfigError(
                "strategy.prune",
                cfg.prune,
                "must be in [0, 1) (the fraction of a task's weights freed after it)",
                "use e.g. 0.75",
            )
        if cfg.retrain_iters is not None and cfg.retrain_iters < 0:
            raise ConfigError(
                "strategy.retrain_iters", cfg.retrain_iters, "must be >= 0", "use e.g. 1000"
            )

    def learn(self, task: Task) -> PackNetTaskReport:
        t = task.task_id
        self.net.add_head(task.num_classes, t)
        train, val = self.task_data(task)
        for owner in self.owners:
            owner[owner == FREE] = t
        weights = list(self.net.weights)
        biases = list(self.net.biases) if t == 0 else []
        params = [*weights, *biases, *self.net.head_parameters(t)]
        objective = self.data_loss(self.net, t)  # no weight is owned by a later task yet
        trained = self.fit(
            "train", params, objective, train, val, t, grad_masks=self._masks(t, params)
        )
        pruned = self._prune(t)
        phases = {"train": trained.as_dict()}
        iters = (
            self.trainer_cfg.max_iters if self.cfg.retrain_iters is None else self.cfg.retrain_iters
        )
        if iters > 0:
            retrained = self.fit(
                "retrain",
                params,
                objective,
                train,
                val,
                t,
                grad_masks=self._masks(t, params),
                max_iters=iters,
            )
            phases["retrain"] = retrained.as_dict()
        owned = [int((o == t).sum()) for o in self.owners]
        free = [int((o == FREE).sum()) for o in self.owners]
        return PackNetTaskReport(phases=phases, pruned=pruned, owned=owned, free=free)

    def _masks(self, t: int, params: list[torch.Tensor]) -> list[torch.Tensor | None]:
        """Gradient masks: a trunk weight moves only if task ``t`` owns it (built once per phase)."""
        masks: list[torch.Tensor | None] = [
            (o == t).to(w.dtype) for o, w in zip(self.owners, self.net.weights, strict=True)
        ]
        return masks + [None] * (len(params) - len(masks))

    @torch.no_grad()
    def _prune(self, t: int) -> list[int]:
        """Free the ``prune`` fraction of task ``t``'s weights with the smallest magnitude."""
        freed = []
        for weight, owner in zip(self.net.weights, self.owners, strict=True):
            mine = owner == t
            k = int(self.cfg.prune * int(mine.sum()))
            if k == 0:
                freed.append(0)
                continue
            threshold = weight[mine].abs().kthvalue(k).values
            drop = mine & (weight.abs() <= threshold)
            weight[drop] = 0.0
            owner[drop] = FREE
            freed.append(int(drop.sum()))
        return freed

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        masked = [
            w * ((o >= 0) & (o <= task_id)).to(w.dtype)
            for w, o in zip(self.net.weights, self.owners, strict=True)
        ]
        features = self.net.features(x, weights=masked)
        return torch.nn.functional.linear(
            features, self.net.head_weights[task_id], self.net.head_biases[task_id]
        )

    def num_parameters(self) -> int:
        """The network plus one bit per trunk weight for each task's mask."""
        return self.net.num_parameters() + self._mask_words()

    def num_nonzero_parameters(self) -> int:
        """The network's non-zeros plus the masks, counted as for :meth:`num_parameters`."""
        return count_nonzero(self.net.parameters()) + self._mask_words()

    def _mask_words(self) -> int:
        """One bit per trunk weight per task, in 32-bit words."""
        return self.net.num_heads * sum(w.numel() for w in self.net.weights) // 32

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "owners": [o.cpu() for o in self.owners]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if [tuple(o.shape) for o in state["owners"]] != [tuple(w.shape) for w in self.net.weights]:
            raise ValueError("the owners of the weights do not match the network's layers")
        self.owners = [o.to(self.device) for o in state["owners"]]
