"""The selected subnetwork of DEN's selective retraining, gathered into dense tensors.

Selective retraining (Sec. 3.1, Eq. 2) trains only the units that the breadth-first search
selected. Training them through gradient masks over the full matrices costs a full network's
forward and backward pass per step, whatever the selection; gathering the selected rows and
columns into small dense tensors makes a step cost what the subnetwork costs. The forward pass
is the same function: every weight from an unselected unit into a selected unit is exactly 0
(that is why the unit was not selected), and head t reads only selected top units.

Usage: ``sub = Subnetwork(net, t, selected)``; train ``sub.parameters()`` on
``sub.logits``; ``sub.write_back()`` scatters the trained values into ``net``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from den.models.network import MultiHeadNet


def _columns(units: torch.Tensor, block: int) -> torch.Tensor:
    """Column indices of ``units`` when each unit owns ``block`` contiguous columns."""
    offsets = torch.arange(block, device=units.device)
    return (units[:, None] * block + offsets[None, :]).reshape(-1)


class Subnetwork:
    """Dense copies of the selected part of ``net`` for head ``task_id``.

    Args:
        net: the network; every unit must be visible to ``task_id`` (selective retraining runs
            before the task adds units, so this holds).
        task_id: the head the subnetwork feeds.
        selected: bool [n_l] per hidden layer, the units to train (from
            :func:`den.strategies.den.ops.select_subnetwork`).

    Shapes: ``weights[l]`` is [s_l, s_{l-1} * block_l] (linear) or [s_l, s_{l-1}, k, k]
    (conv), with s_l the selected units of layer l (s_{-1} = every input); ``head_weight`` is
    [C_t, s_L * head_block].
    """

    def __init__(self, net: MultiHeadNet, task_id: int, selected: Sequence[torch.Tensor]) -> None:
        if any(w != full for w, full in zip(net.widths_at(task_id), net.widths(), strict=True)):
            raise RuntimeError("selective retraining runs before the task adds units")
        self.net, self.task_id = net, task_id
        device = net.weights[0].device
        self.rows = [torch.nonzero(m.to(device)).flatten() for m in selected]
        # Input columns of each layer: every input for the first, else the selected units below.
        self.cols: list[torch.Tensor | None] = [None]
        for layer in range(1, net.num_layers):
            block = net.in_blocks[layer] if net.kinds[layer] == "linear" else 1
            self.cols.append(_columns(self.rows[layer - 1], block))
        self.head_cols = _columns(self.rows[-1], net.head_block)
        with torch.no_grad():
            self.weights = [
                nn.Parameter(self._gather(w.detach(), layer)) for layer, w in enumerate(net.weights)
            ]
            self.biases = [
                nn.Parameter(b.detach()[rows].clone())
                for b, rows in zip(net.biases, self.rows, strict=True)
            ]
            self.head_weight = nn.Parameter(
                net.head_weights[task_id].detach()[:, self.head_cols].clone()
            )
        self.head_bias = net.head_biases[task_id]  # every output is trained: no copy needed

    def _gather(self, weight: torch.Tensor, layer: int) -> torch.Tensor:
        rows, cols = self.rows[layer], self.cols[layer]
        out = weight.index_select(0, rows)
        return out if cols is None else out.index_select(1, cols)

    def parameters(self) -> list[torch.Tensor]:
        """[*weights, *biases, head weight, head bias]: what selective retraining trains."""
        return [*self.weights, *self.biases, self.head_weight, self.head_bias]

    def anchors(
        self, prev: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, its value in W^{t-1}) for every subnetwork weight and bias: what the
        lam pull of Eq. 2 acts on. Selected units are all old, so every entry has an anchor."""
        pairs = [
            (w, self._gather(pw, layer))
            for layer, (w, (pw, _)) in enumerate(zip(self.weights, prev, strict=True))
        ]
        pairs += [
            (b, pb[rows]) for b, (_, pb), rows in zip(self.biases, prev, self.rows, strict=True)
        ]
        return pairs

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Head ``task_id``'s logits [N, C_t] through the subnetwork only, for x [N, C, H, W]."""
        net = self.net
        h = x
        if net.kinds[0] == "conv":
            h = h.contiguous(memory_format=torch.channels_last)  # as MultiHeadNet.features
        for layer in range(net.num_layers):
            z = net.pre_activation(layer, h, self.weights[layer], self.biases[layer])
            h = net.activation(layer, z)
        h = h.flatten(1) if h.ndim > 2 else h
        return F.linear(h, self.head_weight, self.head_bias)

    @torch.no_grad()
    def write_back(self) -> None:
        """Scatter the trained values into ``net``; every other entry keeps its bits."""
        net = self.net
        for layer, (sub, rows, cols) in enumerate(
            zip(self.weights, self.rows, self.cols, strict=True)
        ):
            weight = net.weights[layer]
            if cols is None:
                weight.index_copy_(0, rows, sub.detach())
            else:
                weight[rows[:, None], cols[None, :]] = sub.detach()
            net.biases[layer].index_copy_(0, rows, self.biases[layer].detach())
        net.head_weights[self.task_id][:, self.head_cols] = self.head_weight.detach()
