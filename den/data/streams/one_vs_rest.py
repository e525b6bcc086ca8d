"""One-vs-rest streams: task t is the binary problem "class t versus the rest"."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from den.config.registry import STREAMS
from den.config.schema import StreamConfig
from den.data.streams.base import Pools, Task, class_order, split_limits, subset
from den.errors import ConfigError


@dataclass
class OneVsRestStreamConfig(StreamConfig):
    kind: str = "one_vs_rest"


@STREAMS.register("one_vs_rest", OneVsRestStreamConfig)
def one_vs_rest_tasks(cfg: StreamConfig, pools: Pools, gen: torch.Generator) -> list[Task]:
    """Task t: is it class ``order[t]``? Label 1 for the class, 0 for a sample of
    ``negatives_per_positive`` times as many examples of the other classes."""
    raw = pools.raw
    if cfg.num_tasks > raw.num_classes:
        raise ConfigError(
            "stream.num_tasks",
            cfg.num_tasks,
            f"one-vs-rest tasks need one class each but {cfg.dataset} has {raw.num_classes}",
            f"set stream.num_tasks<={raw.num_classes}",
        )
    order = class_order(cfg, raw.num_classes)
    tasks = []
    for t in range(cfg.num_tasks):
        target = order[t]
        chosen = {}
        for split, (key, n) in split_limits(cfg).items():
            idx = pools.index[split]
            labels = pools.y[split][idx]
            pos, neg = idx[labels == target], idx[labels != target]
            n_neg = min(neg.numel(), round(pos.numel() * cfg.negatives_per_positive))
            neg = neg[torch.randperm(neg.numel(), generator=gen)[:n_neg]]
            chosen[split] = subset(torch.cat([pos, neg]).sort().values, n, gen, key, t)
        names = [f"not {raw.class_names[target]}", raw.class_names[target]]
        relabel = lambda y, c=target: (y == c).long()  # noqa: E731
        tasks.append(pools.indexed_task(t, [-1, target], chosen, relabel, names))
    return tasks
