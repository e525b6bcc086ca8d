"""A phase's data when layer 0's old units are frozen: their outputs computed once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from den.data.streams.base import Split
from den.engine.training import cross_entropy

if TYPE_CHECKING:
    from den.strategies.den.strategy import DENStrategy


class OldFirstLayerData:
    """Training and validation data for a phase in which layer 0's old units (created before
    task t) are frozen: the expansion and the retrain after a split. Those units read only
    the data, so their outputs are computed once per phase instead of on every step (layer 0
    is most of an MLP's weights: 784 x 312 of permuted MNIST's 286k). The splits' inputs
    become row indices; ``train_loss`` and ``val_loss`` read the rows' inputs and cached
    outputs back. Not used when training batches are augmented (the outputs would change
    with every batch). Memory: [N, old units (, H', W')] floats for train and val."""

    def __init__(self, net: Any, t: int, train: Split, val: Split, batch_size: int) -> None:
        n_old = net.widths_at(t - 1)[0]
        self.inputs = (train.x, val.x)
        with torch.no_grad():
            self.first_old = tuple(
                in_batches(lambda b: net.first_layer_units(b, 0, n_old), x, batch_size)
                for x in self.inputs
            )
        self.train, self.val = (
            Split(torch.arange(len(d), device=d.y.device), d.y) for d in (train, val)
        )
        self.net, self.t = net, t

    @classmethod
    def usable(cls, s: DENStrategy, t: int, train: Split, val: Split) -> OldFirstLayerData | None:
        """The cache for task ``t``'s phase, or None where it cannot apply (augmentation)."""
        if train.augment is not None:
            return None
        return cls(s.net, t, train, val, s.trainer_cfg.eval_batch_size)

    def train_loss(self, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(0, rows, y)

    def val_loss(self, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(1, rows, y)

    def _loss(self, split: int, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.inputs[split].index_select(0, rows)
        first_old = self.first_old[split].index_select(0, rows)
        return cross_entropy(self.net.logits_from_old_first_layer(x, first_old, self.t), y)


def in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``fn`` over all of ``x`` in batches of ``batch_size``, concatenated along dim 0 (e.g.
    the last hidden layer's output [N, n_L * block] with ``net.features``)."""
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
