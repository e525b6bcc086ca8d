"""Joint (multi-task) training: after each task, train on the data of every task seen so far.

The DEN paper's "MTL" and the upper reference of every comparison: nothing is forgotten
because nothing is sequential. At task t one training phase sees the union of tasks 0..t
(mixed batches, each example through its own task's head), continuing from the weights
trained at task t-1, so the accuracy matrix's row t is the joint model of the first t+1
tasks. Its training data grows with the stream (10 permuted-MNIST tasks: 550k images,
1.7 GB as float32), which is the point: it is the reference, not a continual learner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.data.streams.base import Split, Task
from den.strategies.base import Strategy, TaskReport
from den.strategies.multitask import GlobalLabels


@dataclass
class JointConfig(StrategyConfig):
    name: str = "joint"


@dataclass
class JointTaskReport(TaskReport):
    examples: int = 0  # training examples of the phase (every task seen)
    tasks_in_phase: int = 0


@STRATEGIES.register("joint", JointConfig)
class JointStrategy(Strategy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels = GlobalLabels()
        self.train_data: Split | None = None  # the union, global labels, on the CPU
        self.val_data: Split | None = None

    def learn(self, task: Task) -> JointTaskReport:
        t = task.task_id
        self.net.add_head(task.num_classes, t)
        self.labels.add_task(task.num_classes)
        self.train_data = _append(self.train_data, self.labels.encode(task.split("train"), t))
        self.val_data = _append(self.val_data, self.labels.encode(task.split("val"), t))
        train, val = self.train_data.to(self.device), self.val_data.to(self.device)

        def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.labels.loss(self.net, x, y)

        params = [*self.net.trunk_parameters()]
        for seen in range(t + 1):
            params += self.net.head_parameters(seen)
        result = self.fit("train_joint", params, loss, train, val, t, val_loss=loss)
        return JointTaskReport(
            phases={"train_joint": result.as_dict()}, examples=len(train), tasks_in_phase=t + 1
        )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "classes_per_task": self.labels.classes_per_task}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.labels = GlobalLabels()
        for n in state["classes_per_task"]:
            self.labels.add_task(n)

    def resume_tasks(self, tasks: Sequence[Task]) -> None:
        """Rebuild the union of the finished tasks' data (not stored in checkpoints)."""
        for task in tasks:
            t = task.task_id
            self.train_data = _append(self.train_data, self.labels.encode(task.split("train"), t))
            self.val_data = _append(self.val_data, self.labels.encode(task.split("val"), t))


def _append(union: Split | None, new: Split) -> Split:
    if union is None:
        return new
    return Split(torch.cat([union.x, new.x]), torch.cat([union.y, new.y]), new.augment)
