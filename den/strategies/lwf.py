"""Learning without forgetting (Li and Hoiem, ECCV 2016 / TPAMI 2018).

No old data and no stored weights beyond the network: while learning task t, the outputs of
every earlier head on task t's inputs are recorded from the model as it was before the task,
and the current model is trained to keep them (knowledge distillation at temperature T) while
it learns the new head. Old heads train too, as in the paper (``train_old_heads=false``
keeps them fixed).

Loss: ``CE(new head) + alpha * sum_{j<t} KD_T(head_j(x), head_j^{before}(x))`` with
``KD_T = -sum_c softmax(z_old/T)_c log softmax(z/T)_c``, summed over old tasks (the paper's
``lambda_o`` multiplies the sum). The targets come from a frozen copy of the network taken
before the task, evaluated on each batch (so they follow any data augmentation), under
``no_grad``. Not done: the paper's warm-up phase training the new head alone first.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.data.streams.base import Task
from den.errors import ConfigError
from den.models.network import MultiHeadNet
from den.strategies.base import Strategy, TaskReport


@dataclass
class LwFConfig(StrategyConfig):
    name: str = "lwf"
    alpha: float = 1.0  # lambda_o in the paper
    temperature: float = 2.0  # T in the paper
    train_old_heads: bool = True  # the paper trains theta_o too; False keeps old heads fixed


@STRATEGIES.register("lwf", LwFConfig)
class LwFStrategy(Strategy):
    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        if not cfg.alpha >= 0:
            raise ConfigError("strategy.alpha", cfg.alpha, "must be >= 0", "use e.g. 1.0")
        if not cfg.temperature > 0:
            raise ConfigError(
                "strategy.temperature", cfg.temperature, "must be > 0", "use e.g. 2.0"
            )

    def learn(self, task: Task) -> TaskReport:
        t = task.task_id
        before = frozen_copy(self.net) if t > 0 else None
        self.net.add_head(task.num_classes, t)
        train, val = self.task_data(task)
        params = [*self.net.trunk_parameters(), *self.net.head_parameters(t)]
        if self.cfg.train_old_heads:
            for seen in range(t):
                params += self.net.head_parameters(seen)
        if before is None or self.cfg.alpha == 0:
            objective = self.data_loss(self.net, t)
        else:

            def objective(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                features = self.net.features(x)  # one trunk pass for the new and old heads
                logits = self.net.head(features, t)
                kd = distillation(self.net, before, features, x, t, self.cfg.temperature)
                return F.cross_entropy(logits, y) + self.cfg.alpha * kd

        result = self.fit("train", params, objective, train, val, t)
        return TaskReport(phases={"train": result.as_dict()})


def distillation(
    net: MultiHeadNet,
    before: MultiHeadNet,
    features: torch.Tensor,
    x: torch.Tensor,
    t: int,
    temperature: float,
) -> torch.Tensor:
    """Sum over heads 0..t-1 of the distillation loss, each a mean over the batch.

    Args:
        features: ``net.features(x)`` [B, F] (shared with the new head's loss).
        x: the batch [B, C, H, W]; ``before`` computes its targets from it without gradients.
    """
    with torch.no_grad():
        old_features = before.features(x)
        targets = [
            F.softmax(
                before.head(old_features, j) / temperature,
                dim=-1,
            )
            for j in range(t)
        ]
    total = features.new_zeros(())
    for j, target in enumerate(targets):
        logits = net.head(features, j)
        total = total - (target * F.log_softmax(logits / temperature, dim=-1)).sum(-1).mean()
    return total


def frozen_copy(net: MultiHeadNet) -> MultiHeadNet:
    """A copy of ``net`` that never trains (the model before the task)."""
    before = copy.deepcopy(net)
    for p in before.parameters():
        p.requires_grad_(False)
    return before
