"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017), and online EWC (Schwarz et
al., ICML 2018) with ``online=true``.

After each task the diagonal Fisher information of the trunk weights is estimated on that
task's training data, and later tasks pay ``lam * sum_i F_i (theta_i - theta*_i)^2``.

- ``fisher=expected`` (default, the Fisher of the paper): ``E_x sum_c p(c|x) (d log p(c|x))^2``,
  exact over the classes of the task; ``fisher=empirical`` uses the true label only.
  Per-example gradients come from ``torch.func`` (vmap), so the squares are of single-example
  gradients, not of batch means.
- Separate penalties (one per task, the paper) are kept as one quadratic with the same
  gradient: ``sum_k F_k (theta - theta_k)^2 = A (theta - m)^2 + const`` with ``A = sum_k F_k``
  and ``m = sum_k F_k theta_k / A``; memory stays two trunk copies however many tasks.
- Online: ``A <- gamma A + F_t`` and the anchor is the latest weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jacrev, vmap

from den.data.streams import Split, Task
from den.errors import ConfigError
from den.models.network import MultiHeadNet
from den.strategies.regularization import QuadraticPenaltyConfig, QuadraticPenaltyStrategy


@dataclass
class EWCConfig(QuadraticPenaltyConfig):
    name: str = "ewc"
    lam: float = 500.0
    online: bool = False
    gamma: float = 1.0  # online only: decay of the accumulated Fisher
    fisher: str = "expected"  # expected | empirical
    fisher_samples: int | None = 1000  # training examples per task for the Fisher; None = all
    fisher_batch: int = 32  # examples per vmap chunk (memory: batch x classes x weights)


class EWCStrategy(QuadraticPenaltyStrategy):
    @classmethod
    def check_config(cls, cfg: Any) -> None:
        super().check_config(cfg)
        if cfg.fisher not in ("expected", "empirical"):
            raise ConfigError(
                "strategy.fisher",
                cfg.fisher,
                "unknown Fisher estimate",
                "use expected or empirical",
            )
        if cfg.fisher_samples is not None and cfg.fisher_samples < 1:
            raise ConfigError(
                "strategy.fisher_samples",
                cfg.fisher_samples,
                "needs at least one example",
                "use a positive number or null for the whole training set",
            )
        if not 0 <= cfg.gamma <= 1:
            raise ConfigError("strategy.gamma", cfg.gamma, "must be in [0, 1]", "use e.g. 1.0")

    def consolidate(self, task: Task, train: Split) -> dict[str, Any]:
        n = (
            len(train)
            if self.cfg.fisher_samples is None
            else min(self.cfg.fisher_samples, len(train))
        )
        idx = torch.randperm(len(train), generator=self.generator)[:n].to(self.device)
        fisher = fisher_diagonal(
            self.net,
            task.task_id,
            Split(train.x[idx], train.y[idx]),
            expected=self.cfg.fisher == "expected",
            batch_size=self.cfg.fisher_batch,
        )
        theta = self.current_trunk()
        if self.anchor is None:
            self.importance, self.anchor = fisher, theta
        elif self.cfg.online:
            self.importance = [
                self.cfg.gamma * a + f for a, f in zip(self.importance, fisher, strict=True)
            ]
            self.anchor = theta
        else:
            merged = []
            for a, m, f, th in zip(self.importance, self.anchor, fisher, theta, strict=True):
                total = a + f
                weighted = (a * m + f * th) / total.clamp_min(torch.finfo(total.dtype).tiny)
                merged.append(torch.where(total > 0, weighted, th))
            self.importance = [a + f for a, f in zip(self.importance, fisher, strict=True)]
            self.anchor = merged
        return {
            "fisher_examples": n,
            "fisher_mean": float(sum(f.sum() for f in fisher) / sum(f.numel() for f in fisher)),
        }


def fisher_diagonal(
    net: MultiHeadNet, task_id: int, data: Split, expected: bool = True, batch_size: int = 32
) -> list[torch.Tensor]:
    """Diagonal Fisher of the trunk parameters for head ``task_id``, averaged over ``data``.

    Returns one tensor per trunk parameter (``net.trunk_parameters()`` order, same shapes):
    ``mean_x sum_c p(c|x) g_c(x)^2`` (expected) or ``mean_x g_y(x)^2`` (empirical), where
    ``g_c(x)`` is the gradient of ``log p(c|x)`` for the single example ``x``.
    """
    names = [f"weights.{i}" for i in range(len(net.weights))]
    names += [f"biases.{i}" for i in range(len(net.biases))]
    params = {name: p.detach() for name, p in net.named_parameters() if name in names}
    # Heads (and anything else) enter as constants, so no autograd graph reaches the module.
    constants = {name: p.detach() for name, p in net.named_parameters() if name not in names}

    def log_probs(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        logits = functional_call(net, {**p, **constants}, (x[None], task_id))[0]
        return F.log_softmax(logits, dim=-1)  # [C]

    def label_log_prob(
        p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        return log_probs(p, x)[y]

    total = {name: torch.zeros_like(p) for name, p in params.items()}
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        if expected:
            grads = vmap(jacrev(log_probs), in_dims=(None, 0))(params, x)  # name -> [B, C, ...]
            with torch.no_grad():
                probs = vmap(log_probs, in_dims=(None, 0))(params, x).exp()  # [B, C]
            for name, g in grads.items():
                weights = probs.reshape(*probs.shape, *([1] * (g.ndim - 2)))
                total[name] += (weights * g.square()).sum(dim=(0, 1))
        else:
            grads = vmap(grad(label_log_prob), in_dims=(None, 0, 0))(params, x, y)  # [B, ...]
            for name, g in grads.items():
                total[name] += g.square().sum(dim=0)
    n = max(len(data), 1)
    by_name = {name: t / n for name, t in total.items()}
    return [by_name[name] for name in names]
