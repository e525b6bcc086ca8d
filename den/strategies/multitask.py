"""Batches that mix several tasks: every example goes through its own task's head.

``joint`` trains on every task's data at once and ``er`` replays stored examples of earlier
tasks; both need a multi-head loss over a batch drawn from many tasks. Instead of a Python
loop over the tasks of a batch, labels are encoded globally (task t's label c becomes
``offset[t] + c``), all heads are applied as one stacked matrix, and the logits of the other
tasks' heads are masked to -inf before the softmax: exactly the per-task cross-entropy, in one
matmul.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from den.data.streams.base import Split
from den.models.network import MultiHeadNet


class GlobalLabels:
    """The global label space of the tasks seen so far (heads 0..T-1, in order)."""

    def __init__(self) -> None:
        self.classes_per_task: list[int] = []
        self._column_task = torch.empty(0, dtype=torch.long)

    def add_task(self, num_classes: int) -> None:
        self.classes_per_task.append(num_classes)
        self._column_task = torch.repeat_interleave(
            torch.arange(len(self.classes_per_task)), torch.tensor(self.classes_per_task)
        )

    @property
    def num_tasks(self) -> int:
        return len(self.classes_per_task)

    def offset(self, task_id: int) -> int:
        return sum(self.classes_per_task[:task_id])

    def encode(self, data: Split, task_id: int) -> Split:
        """``data`` with labels moved to task ``task_id``'s block of the global label space."""
        return Split(data.x, data.y + self.offset(task_id), data.augment)

    def column_task(self, device: torch.device) -> torch.Tensor:
        """int64 [sum C_t]: the task each global label belongs to."""
        if self._column_task.device != device:
            self._column_task = self._column_task.to(device)
        return self._column_task

    def loss(self, net: MultiHeadNet, x: torch.Tensor, y_global: torch.Tensor) -> torch.Tensor:
        """Mean multi-head cross-entropy of a mixed batch.

        Args:
            x: inputs [B, C, H, W] of any of the tasks seen so far.
            y_global: global labels [B] (from :meth:`encode`).
        """
        heads = range(self.num_tasks)
        weight = torch.cat([net.head_weights[t] for t in heads])  # [sum C_t, F]
        bias = torch.cat([net.head_biases[t] for t in heads])
        logits = F.linear(net.features(x), weight, bias)  # [B, sum C_t]
        column_task = self.column_task(x.device)
        other_task = column_task[None, :] != column_task[y_global][:, None]
        return F.cross_entropy(logits.masked_fill(other_task, float("-inf")), y_global)
