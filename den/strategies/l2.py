"""DNN-L2 (the DEN paper's baseline): fine-tuning with ``lam ||theta - theta^{t-1}||^2``.

Every trunk weight is pulled equally towards its value after the previous task (importance 1,
anchor = the last task's weights). ``lam=inf`` freezes the trunk after task 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from den.config.registry import STRATEGIES
from den.data.streams.base import Split, Task
from den.strategies.regularization import QuadraticPenaltyConfig, QuadraticPenaltyStrategy


@dataclass
class L2Config(QuadraticPenaltyConfig):
    name: str = "l2"
    lam: float = field(default=1.0e-3, metadata={"allow_inf": True})


@STRATEGIES.register("l2", L2Config)
class L2Strategy(QuadraticPenaltyStrategy):
    def consolidate(self, task: Task, train: Split) -> dict[str, Any]:
        self.anchor = self.current_trunk()
        self.importance = [torch.ones_like(a) for a in self.anchor]
        return {}
