"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017), and online EWC (Schwarz et
al., ICML 2018) with ``online=true``.

After each task the diagonal Fisher information of the trunk weights is estimated on that
task's training data, and later tasks pay ``lam * sum_i F_i (theta_i - theta*_i)^2``.

- ``fisher=expected`` (default, the Fisher of the paper): ``E_x sum_c p(c|x) (d log p(c|x))^2``,
  exact over the classes of the task; ``fisher=empirical`` uses the true label only. The
  squares are of single-example gradients, not of batch means (see :func:`fisher_diagonal`).
- Separate penalties (one per task, the paper) are kept as one quadratic with the same
  gradient: ``sum_k F_k (theta - theta_k)^2 = A (theta - m)^2 + const`` with ``A = sum_k F_k``
  and ``m = sum_k F_k theta_k / A``; memory stays two trunk copies however many tasks.
- Online: ``A <- gamma A + F_t`` and the anchor is the latest weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from den.config.registry import STRATEGIES
from den.data.streams.base import Split, Task
from den.errors import ConfigError
from den.models.network import MultiHeadNet
from den.strategies.regularization import (
    QuadraticPenaltyConfig,
    QuadraticPenaltyReport,
    QuadraticPenaltyStrategy,
)


@dataclass
class EWCConfig(QuadraticPenaltyConfig):
    name: str = "ewc"
    lam: float = field(default=500.0, metadata={"allow_inf": True})
    online: bool = False
    gamma: float = 1.0  # online only: decay of the accumulated Fisher
    fisher: str = "expected"  # expected | empirical
    fisher_samples: int | None = None  # training examples per task for the Fisher; None = all
    fisher_batch: int = 256  # examples per batched backward pass


@dataclass
class EWCTaskReport(QuadraticPenaltyReport):
    fisher_examples: int = 0  # examples the task's Fisher was estimated on
    fisher_mean: float = 0.0  # its mean over the trunk


@STRATEGIES.register("ewc", EWCConfig)
class EWCStrategy(QuadraticPenaltyStrategy):
    report_class = EWCTaskReport

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        super().check_config(cfg, run)
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
    net: MultiHeadNet, task_id: int, data: Split, expected: bool = True, batch_size: int = 256
) -> list[torch.Tensor]:
    """Diagonal Fisher of the trunk parameters for head ``task_id``, averaged over ``data``.

    Returns one tensor per trunk parameter (``net.trunk_parameters()`` order, same shapes):
    ``mean_x sum_c p(c|x) g_c(x)^2`` (expected) or ``mean_x g_y(x)^2`` (empirical), where
    ``g_c(x)`` is the gradient of ``log p(c|x)`` for the single example ``x``.

    Exact per-example squares without materialising per-example gradients of the whole net:
    one batched backward pass per class gives each example's gradient ``delta`` at every
    layer's pre-activation; a linear weight's per-example gradient is ``delta a^T``, so the
    sum of its squares is ``(delta^2)^T (a^2)``, one matmul; a conv weight's is
    ``delta @ unfold(a)^T`` per example (a batched matmul), squared and summed.
    """
    weights = [w.detach() for w in net.weights]
    biases = [b.detach() for b in net.biases]
    fisher_w = [torch.zeros_like(w) for w in weights]
    fisher_b = [torch.zeros_like(b) for b in biases]
    for start in range(0, len(data), batch_size):
        x, y = data.x[start : start + batch_size], data.y[start : start + batch_size]
        inputs, pres = [], []
        h = x
        for layer in range(net.num_layers):
            z = net.pre_activation(layer, h, weights[layer], biases[layer])  # constants: W, b
            if not z.requires_grad:
                z.requires_grad_(True)  # the first layer: the graph starts at its output
            inputs.append(h)
            pres.append(z)
            h = net.activation(layer, z)
        features = h.flatten(1) if h.ndim > 2 else h
        head_w, head_b = net.head_weights[task_id].detach(), net.head_biases[task_id].detach()
        log_p = F.log_softmax(F.linear(features, head_w, head_b), dim=-1)  # [B, C]
        if expected:
            probs = log_p.detach().exp()
            terms = [(log_p[:, c].sum(), probs[:, c]) for c in range(log_p.shape[1])]
        else:
            terms = [(log_p.gather(1, y[:, None]).sum(), torch.ones_like(y, dtype=x.dtype))]
        for i, (objective, example_weight) in enumerate(terms):
            deltas = torch.autograd.grad(objective, pres, retain_graph=i < len(terms) - 1)
            with torch.no_grad():
                for layer, (a, delta) in enumerate(zip(inputs, deltas, strict=True)):
                    _accumulate(net, layer, a, delta, example_weight, fisher_w, fisher_b)
    n = max(len(data), 1)
    return [f / n for f in fisher_w] + [f / n for f in fisher_b]


def _accumulate(
    net: MultiHeadNet,
    layer: int,
    a: torch.Tensor,
    delta: torch.Tensor,
    example_weight: torch.Tensor,
    fisher_w: list[torch.Tensor],
    fisher_b: list[torch.Tensor],
) -> None:
    """Add ``sum_i example_weight_i * g_i^2`` of ``layer``'s weight and bias.

    Args:
        a: the layer's input [B, ...]; delta: d objective / d pre-activation [B, n_l, ...].
        example_weight: [B] (p(c|x_i) for the expected Fisher, 1 for the empirical one).
    """
    if net.kinds[layer] == "conv":
        k = net.kernel_size
        cols = F.unfold(a, k, padding=k // 2)  # [B, n_in * k * k, L]
        d = delta.flatten(2)  # [B, n_l, L]
        grad_w = torch.bmm(d, cols.transpose(1, 2))  # [B, n_l, n_in * k * k]
        grad_b = d.sum(-1)  # [B, n_l]
        fisher_w[layer] += torch.einsum("b,bij->ij", example_weight, grad_w.square()).view_as(
            fisher_w[layer]
        )
        fisher_b[layer] += example_weight @ grad_b.square()
    else:
        a = a.flatten(1) if a.ndim > 2 else a
        weighted = example_weight[:, None] * delta.square()  # [B, n_l]
        fisher_w[layer] += weighted.T @ a.square()
        fisher_b[layer] += weighted.sum(0)
