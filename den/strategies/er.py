"""Experience replay with a bounded, class-balanced episodic memory (Chaudhry et al. 2019,
"On tiny episodic memories in continual learning"; Hsu et al. 2018's Naive Rehearsal).

Every step trains on the current batch concatenated with a batch drawn uniformly from the
memory, each example through its own task's head (one forward pass, one mean loss over both,
as in Chaudhry et al.). After a task, the memory is refilled so that every (task, class) pair
seen so far holds an equal share of ``buffer_size`` examples (the first pairs get the
remainder): old pairs drop their last examples, new pairs get a random sample of the task's
training data. The memory is counted apart from the network's capacity
(``report.storage.buffer_examples``): the memory is storage, not network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from den.config.registry import STRATEGIES
from den.config.schema import StrategyConfig
from den.data.streams.base import Split, Task
from den.errors import ConfigError
from den.strategies.base import Strategy, TaskReport
from den.strategies.multitask import GlobalLabels


@dataclass
class ERConfig(StrategyConfig):
    name: str = "er"
    buffer_size: int = 4000  # examples kept over all tasks (Hsu et al.'s pMNIST memory)
    replay_batch_size: int | None = None  # memory examples per step; None = trainer.batch_size


class ClassBalancedBuffer:
    """At most ``size`` examples, shared equally among the (task, class) pairs seen so far."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.examples: dict[tuple[int, int], torch.Tensor] = {}  # (task, class) -> [n, C, H, W]

    def __len__(self) -> int:
        return sum(x.shape[0] for x in self.examples.values())

    def counts(self) -> dict[str, int]:
        return {f"{t}:{c}": int(x.shape[0]) for (t, c), x in self.examples.items()}

    def add_task(self, task_id: int, data: Split, generator: torch.Generator) -> None:
        """Make room for task ``task_id``'s classes and fill their share from ``data``."""
        classes = sorted(int(c) for c in data.y.unique().cpu())
        pairs = [*self.examples, *((task_id, c) for c in classes)]
        base, extra = divmod(self.size, len(pairs))
        quota = {pair: base + (i < extra) for i, pair in enumerate(pairs)}
        for pair in list(self.examples):
            self.examples[pair] = self.examples[pair][: quota[pair]]
        for c in classes:
            members = torch.nonzero(data.y == c).flatten()
            pick = torch.randperm(members.numel(), generator=generator)[: quota[(task_id, c)]]
            self.examples[(task_id, c)] = data.x[members[pick.to(members.device)]].clone()

    def as_split(self, labels: GlobalLabels) -> Split:
        """All stored examples with global labels (see :class:`GlobalLabels`)."""
        xs = list(self.examples.values())
        ys = [
            torch.full((x.shape[0],), labels.offset(t) + c, dtype=torch.long, device=x.device)
            for (t, c), x in self.examples.items()
        ]
        return Split(torch.cat(xs), torch.cat(ys))


@dataclass
class ERTaskReport(TaskReport):
    storage: dict[str, int] = field(default_factory=dict)  # the memory: examples, values
    buffer_per_class: dict[str, int] = field(default_factory=dict)  # "task:class" -> examples


@STRATEGIES.register("er", ERConfig)
class ERStrategy(Strategy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels = GlobalLabels()
        self.buffer = ClassBalancedBuffer(self.cfg.buffer_size)
        # Memory draws have their own generator, so the batch order is that of finetune.
        self.replay_generator = torch.Generator().manual_seed(self.generator.initial_seed() + 1)

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        if cfg.buffer_size < 1:
            raise ConfigError(
                "strategy.buffer_size", cfg.buffer_size, "must be at least 1", "use e.g. 4000"
            )
        if cfg.replay_batch_size is not None and cfg.replay_batch_size < 1:
            raise ConfigError(
                "strategy.replay_batch_size",
                cfg.replay_batch_size,
                "must be at least 1",
                "use a positive size or null for trainer.batch_size",
            )

    def learn(self, task: Task) -> ERTaskReport:
        t = task.task_id
        self.net.add_head(task.num_classes, t)
        self.labels.add_task(task.num_classes)
        train, val = self.task_data(task)
        params = [*self.net.trunk_parameters()]
        for seen in range(t + 1):
            params += self.net.head_parameters(seen)
        if len(self.buffer) == 0:
            objective = self.data_loss(self.net, t)
        else:
            memory = self.buffer.as_split(self.labels)
            replay = self.cfg.replay_batch_size or self.trainer_cfg.batch_size
            offset = self.labels.offset(t)

            def objective(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                pick = torch.randint(len(memory), (replay,), generator=self.replay_generator)
                pick = pick.to(memory.x.device, non_blocking=True)
                replayed = memory.x[pick]
                if train.augment is not None:  # replayed images are augmented like the task's
                    replayed = train.augment(replayed, self.replay_generator)
                both_x = torch.cat([x, replayed])
                both_y = torch.cat([y + offset, memory.y[pick]])
                return self.labels.loss(self.net, both_x, both_y)

        result = self.fit("train", params, objective, train, val, t)
        self.buffer.add_task(t, train, self.replay_generator)
        values = sum(x.numel() for x in self.buffer.examples.values())
        return ERTaskReport(
            phases={"train": result.as_dict()},
            storage={"buffer_examples": len(self.buffer), "buffer_values": values},
            buffer_per_class=self.buffer.counts(),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "classes_per_task": self.labels.classes_per_task,
            "buffer": {f"{t}:{c}": x.cpu() for (t, c), x in self.buffer.examples.items()},
            "replay_generator": self.replay_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.labels = GlobalLabels()
        for n in state["classes_per_task"]:
            self.labels.add_task(n)
        self.buffer.examples = {
            tuple(int(v) for v in key.split(":")): x.to(self.device)
            for key, x in state["buffer"].items()
        }
        if any(tuple(x.shape[1:]) != self.input_shape for x in self.buffer.examples.values()):
            raise ValueError(f"the memory's examples are not of the input shape {self.input_shape}")
        self.replay_generator.set_state(state["replay_generator"])
