"""Single-task learning: a separate network per task, nothing shared (the paper's "STL").

The upper reference for accuracy without transfer and the capacity reference: after T tasks
it stores T networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.data.streams.base import Task
from den.strategies.base import Strategy, TaskReport, count_nonzero


@dataclass
class STLConfig(StrategyConfig):
    name: str = "stl"


@STRATEGIES.register("stl", STLConfig)
class STLStrategy(Strategy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nets = nn.ModuleList()  # nets[t] serves task t through its only head

    def learn(self, task: Task) -> TaskReport:
        t = task.task_id
        net = self.net if t == 0 else self.new_network()
        net.add_head(task.num_classes, 0)
        self.nets.append(net)
        train, val = self.task_data(task)
        result = self.fit(
            "train",
            list(net.parameters()),
            self.data_loss(net, 0),
            train,
            val,
            t,
            val_loss=self.data_loss(net, 0),
        )
        return TaskReport(phases={"train": result.as_dict()})

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        return self.nets[task_id](x, 0)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.nets.parameters())

    def num_nonzero_parameters(self) -> int:
        return count_nonzero(self.nets.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": [n.state_dict() for n in self.nets],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets = nn.ModuleList()
        for i, net_state in enumerate(state["nets"]):
            net = self.net if i == 0 else self.new_network()
            net.load_state_dict(net_state)
            self.nets.append(net)
        self.generator.set_state(state["generator"])
