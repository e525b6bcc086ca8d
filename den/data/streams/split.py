"""Split streams: disjoint groups of ``classes_per_task`` classes, one group per task."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from den.config.registry import STREAMS
from den.config.schema import StreamConfig
from den.data.streams.base import Pools, Task, class_order, split_limits, subset
from den.errors import ConfigError


@dataclass
class SplitStreamConfig(StreamConfig):
    kind: str = "split"


@STREAMS.register("split", SplitStreamConfig)
def split_tasks(cfg: StreamConfig, pools: Pools, gen: torch.Generator) -> list[Task]:
    """Task t: classes ``order[t * c : (t + 1) * c]`` relabelled 0..c-1."""
    num_classes = pools.raw.num_classes
    per_task = cfg.classes_per_task or num_classes // cfg.num_tasks
    if per_task < 1 or per_task * cfg.num_tasks > num_classes:
        raise ConfigError(
            "stream.num_tasks",
            cfg.num_tasks,
            f"{cfg.num_tasks} tasks x {per_task} classes per task (stream.classes_per_task) need "
            f"{cfg.num_tasks * max(per_task, 1)} classes but {cfg.dataset} has {num_classes}",
            "lower stream.num_tasks or stream.classes_per_task",
        )
    order = class_order(cfg, num_classes)
    tasks = []
    for t in range(cfg.num_tasks):
        classes = order[t * per_task : (t + 1) * per_task]
        lookup = torch.full((num_classes,), -1, dtype=torch.int64)
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
        chosen = {}
        for split, (key, n) in split_limits(cfg).items():
            idx = pools.index[split]
            in_task = idx[lookup[pools.y[split][idx]] >= 0]
            chosen[split] = subset(in_task, n, gen, key, t)
        tasks.append(pools.indexed_task(t, classes, chosen, lambda y, lk=lookup: lk[y]))
    return tasks
