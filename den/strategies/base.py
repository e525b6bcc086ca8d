"""The strategy protocol every continual-learning method implements.

A strategy owns its network(s) and whatever state its method needs, learns one task at a
time, and predicts for any task seen so far (multi-head: the task id is given at test time).
It trains only through :func:`den.engine.training.train_phase` (via :meth:`Strategy.fit`) and never
touches loggers or files: the runner does that.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from den.config.schema import ModelConfig, StrategyConfig, TrainerConfig
from den.data.streams.base import Split, Task
from den.engine.training import Objective, PhaseResult, cross_entropy, train_phase
from den.models.network import MultiHeadNet, build_network


def count_nonzero(params: Iterable[torch.Tensor]) -> int:
    """Entries that are not exactly 0 over ``params``."""
    return int(sum(int(torch.count_nonzero(p)) for p in params))


def as_dataclass(cfg: Any, schema: type) -> Any:
    """A plain dataclass instance from a DictConfig (or the instance itself)."""
    if isinstance(cfg, schema):
        return cfg
    from omegaconf import OmegaConf

    obj = OmegaConf.to_object(cfg) if OmegaConf.is_config(cfg) else cfg
    return obj if isinstance(obj, schema) else schema(**obj)


@dataclass
class TaskReport:
    """What a strategy reports about one task: the phases it trained (phase name -> its
    steps, losses and seconds), and in a subclass whatever else the method decides per task.
    Loggers and results.json use :meth:`as_record` and never need to know the fields."""

    phases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        """Plain data for results.json: every field that is set (None fields left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


class Strategy(ABC):
    """Base class: a network built from the model config, the trainer config, a device and
    a seeded generator for the batch order."""

    def __init__(
        self,
        cfg: StrategyConfig,
        model_cfg: ModelConfig,
        trainer_cfg: TrainerConfig,
        input_shape: Sequence[int],
        device: torch.device,
        seed: int,
    ) -> None:
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.trainer_cfg = as_dataclass(trainer_cfg, TrainerConfig)
        self.input_shape = tuple(input_shape)
        self.device = device
        self.generator = torch.Generator().manual_seed(seed + 1)  # batch order only
        self.net: MultiHeadNet = self.new_network()

    @classmethod
    def check_config(cls, cfg: StrategyConfig, run: Any = None) -> None:
        """Raise :class:`~den.errors.ConfigError` for impossible hyperparameters; called once
        by :func:`den.config.validate.validate_config` with the whole typed ``run`` config."""
        return None  # an optional hook: most strategies have nothing to check

    # ----------------------------------------------------------------- the protocol
    @abstractmethod
    def learn(self, task: Task) -> TaskReport:
        """Learn ``task``; return what was done (phases, steps, losses, sizes)."""

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        """Logits [N, C_t] of task ``task_id`` for inputs [N, C, H, W] on ``self.device``."""
        return self.net(x, task_id)

    def num_parameters(self) -> int:
        """Every parameter the method stores to serve all tasks seen so far."""
        return self.net.num_parameters()

    def num_nonzero_parameters(self) -> int:
        """Stored parameters that are not exactly 0: the paper's "network capacity" (a sparse
        network needs only its non-zeros to predict). Same scope as :meth:`num_parameters`."""
        return count_nonzero(self.net.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.generator.set_state(state["generator"])

    def resume_tasks(self, tasks: Sequence[Task]) -> None:
        """After :meth:`load_state_dict` on resume: rebuild state derived from the finished
        ``tasks``' data instead of storing it in every checkpoint (``joint``'s data union)."""
        return None

    # ----------------------------------------------------------------- shared helpers
    def new_network(self) -> MultiHeadNet:
        return build_network(self.model_cfg, self.input_shape).to(self.device)

    def task_data(self, task: Task) -> tuple[Split, Split]:
        """Training and validation data of ``task``, moved to the device once."""
        return task.split("train").to(self.device), task.split("val").to(self.device)

    def data_loss(self, net: MultiHeadNet, task_id: int) -> Objective:
        """Cross-entropy of ``net``'s head ``task_id``: the objective before any penalty."""
        return lambda x, y: cross_entropy(net(x, task_id), y)

    def fit(
        self,
        name: str,
        params: Sequence[torch.Tensor],
        objective: Objective,
        train: Split,
        val: Split,
        task_id: int,
        **kwargs: Any,
    ) -> PhaseResult:
        """:func:`train_phase` with this strategy's trainer config and generator."""
        kwargs.setdefault("val_loss", self.data_loss(self.net, task_id))
        return train_phase(
            name,
            params,
            objective,
            train,
            self.trainer_cfg,
            self.generator,
            val=val,
            task_id=task_id,
            **kwargs,
        )
