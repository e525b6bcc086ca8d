"""Evaluate a strategy on a task's split: accuracy and mean one-vs-rest AUROC."""

from __future__ import annotations

import torch

from den.data.streams.base import Split
from den.engine.metrics import accuracy, mean_auroc
from den.strategies.base import Strategy


@torch.inference_mode()
def evaluate(
    strategy: Strategy, data: Split, task_id: int, batch_size: int = 4096
) -> dict[str, float]:
    """``{"acc", "auroc"}`` of ``strategy`` on ``data`` (CPU tensors; moved in large batches)."""
    logits = []
    for start in range(0, len(data), batch_size):
        x = data.x[start : start + batch_size].to(strategy.device, non_blocking=True)
        logits.append(strategy.predict(x, task_id).float().cpu())
    all_logits = torch.cat(logits) if logits else torch.empty(0, 1)
    return {"acc": accuracy(all_logits, data.y), "auroc": mean_auroc(all_logits, data.y)}
