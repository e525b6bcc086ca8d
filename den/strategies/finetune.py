"""Fine-tuning: one shared trunk trained on each task in turn, a new head per task.

The DEN paper's "DNN" baseline and the lower bound of every comparison: nothing protects
earlier tasks, so their accuracy falls as the trunk moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.data.streams.base import Task
from den.strategies.base import Strategy, TaskReport


@dataclass
class FinetuneConfig(StrategyConfig):
    name: str = "finetune"


@STRATEGIES.register("finetune", FinetuneConfig)
class FinetuneStrategy(Strategy):
    def learn(self, task: Task) -> TaskReport:
        t = task.task_id
        self.net.add_head(task.num_classes, t)
        train, val = self.task_data(task)
        params = [*self.net.trunk_parameters(), *self.net.head_parameters(t)]
        result = self.fit("train", params, self.data_loss(self.net, t), train, val, t)
        return TaskReport(phases={"train": result.as_dict()})
