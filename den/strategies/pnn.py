"""Progressive neural networks (Rusu et al., 2016): a new column per task, old columns frozen.

Column c is a copy of the model's trunk (widths scaled by ``column_scale``). Its layer l reads
its own layer l-1 and, through lateral weights ``U[c, l, j]``, layer l-1 of every earlier
column j < c; task c's head reads the last layer of columns 0..c. Training task c moves only
column c, its laterals and its head, and the forward pass for task s touches only columns
0..s, so an earlier task's predictions never change (bit for bit). Laterals are plain linear
maps (or convolutions, for conv layers) without the paper's non-linear adapters.

Capacity: every column, every lateral and every head, which grows quadratically with the
number of tasks (the price of zero forgetting without sharing).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from den.config.registry import STRATEGIES
from den.config.schema import ModelConfig, StrategyConfig
from den.data.streams.base import Task
from den.errors import ConfigError
from den.models.network import build_network
from den.strategies.base import Strategy, TaskReport, as_dataclass, count_nonzero


@dataclass
class PNNConfig(StrategyConfig):
    name: str = "pnn"
    column_scale: float = 1.0  # width of each column relative to the model (the paper: 1.0)


class ProgressiveNet(nn.Module):
    """Columns (head-less :class:`MultiHeadNet` trunks), laterals and one head per task."""

    def __init__(self, model_cfg: ModelConfig, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model_cfg = model_cfg
        self.input_shape = input_shape
        self.columns = nn.ModuleList()
        # laterals[c][l - 1][j]: layer l-1 of column j -> layer l of column c (j < c, l >= 1)
        self.laterals = nn.ModuleList()
        self.head_weights = nn.ParameterList()
        self.head_biases = nn.ParameterList()

    @property
    def num_columns(self) -> int:
        return len(self.columns)

    def add_column(self, num_classes: int, device: torch.device) -> None:
        """Append column ``c``, its laterals from columns 0..c-1 and head ``c``."""
        column = build_network(self.model_cfg, self.input_shape).to(device)
        c = self.num_columns
        per_layer = nn.ModuleList()
        for layer in range(1, column.num_layers):
            from_columns = nn.ParameterList()
            for j in range(c):
                n_in = self.columns[j].widths()[layer - 1]
                shape = column._weight_shape(layer, column.widths()[layer], n_in)
                weight, _ = column._init_tensors(shape, fan_in=math.prod(shape[1:]), device=device)
                from_columns.append(nn.Parameter(weight))
            per_layer.append(from_columns)
        self.columns.append(column)
        self.laterals.append(per_layer)
        n_features = sum(col.widths()[-1] * col.head_block for col in self.columns)
        weight, bias = column._init_tensors((num_classes, n_features), n_features, device=device)
        self.head_weights.append(nn.Parameter(weight))
        self.head_biases.append(nn.Parameter(bias))

    def column_parameters(self, c: int) -> list[nn.Parameter]:
        """What task ``c`` trains: column c, its laterals and head c."""
        return [
            *self.columns[c].parameters(),
            *self.laterals[c].parameters(),
            self.head_weights[c],
            self.head_biases[c],
        ]

    def forward(self, x: torch.Tensor, task_id: int, frozen_below: bool = False) -> torch.Tensor:
        """Logits [N, C_t] of task ``task_id`` from columns 0..task_id.

        ``frozen_below``: compute columns < task_id without autograd (they never train).
        """
        hs: list[torch.Tensor] = [x] * (task_id + 1)
        reference = self.columns[0]
        for layer in range(reference.num_layers):
            new_hs = []
            for c in range(task_id + 1):
                with torch.set_grad_enabled(
                    torch.is_grad_enabled() and not (frozen_below and c < task_id)
                ):
                    column = self.columns[c]
                    pre = column.pre_activation(
                        layer, hs[c], column.weights[layer], column.biases[layer]
                    )
                    if layer > 0:
                        for j in range(c):
                            pre = pre + column.pre_activation(
                                layer, hs[j], self.laterals[c][layer - 1][j]
                            )
                    new_hs.append(column.activation(layer, pre))
            hs = new_hs
        features = torch.cat([h.flatten(1) for h in hs], dim=1)
        return F.linear(features, self.head_weights[task_id], self.head_biases[task_id])


def scaled_model(cfg: ModelConfig, scale: float) -> ModelConfig:
    """``cfg`` with every layer's width multiplied by ``scale`` (at least one unit)."""
    return dataclasses.replace(
        cfg,
        hidden=[max(1, round(n * scale)) for n in cfg.hidden],
        conv_channels=[max(1, round(n * scale)) for n in cfg.conv_channels],
    )


@dataclass
class PNNTaskReport(TaskReport):
    columns: int = 0  # columns after the task, one per task seen


@STRATEGIES.register("pnn", PNNConfig)
class PNNStrategy(Strategy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model = scaled_model(as_dataclass(self.model_cfg, ModelConfig), self.cfg.column_scale)
        self.pnn = ProgressiveNet(model, self.input_shape)

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        if not cfg.column_scale > 0:
            raise ConfigError(
                "strategy.column_scale", cfg.column_scale, "must be > 0", "use e.g. 1.0"
            )

    def learn(self, task: Task) -> PNNTaskReport:
        t = task.task_id
        self.pnn.add_column(task.num_classes, self.device)
        train, val = self.task_data(task)

        def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(self.pnn(x, t, frozen_below=True), y)

        result = self.fit(
            "train", self.pnn.column_parameters(t), loss, train, val, t, val_loss=loss
        )
        return PNNTaskReport(phases={"train": result.as_dict()}, columns=self.pnn.num_columns)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int) -> torch.Tensor:
        return self.pnn(x, task_id)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.pnn.parameters())

    def num_nonzero_parameters(self) -> int:
        return count_nonzero(self.pnn.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {
            "pnn": self.pnn.state_dict(),
            "classes": [int(w.shape[0]) for w in self.pnn.head_weights],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pnn = ProgressiveNet(self.pnn.model_cfg, self.input_shape)
        for num_classes in state["classes"]:
            self.pnn.add_column(num_classes, self.device)
        self.pnn.load_state_dict(state["pnn"])
        self.generator.set_state(state["generator"])
