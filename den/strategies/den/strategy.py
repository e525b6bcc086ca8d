"""Dynamically Expandable Networks (Yoon, Yang, Lee, Hwang; ICLR 2018): the strategy.

Task 1 trains a sparse network (:func:`~den.strategies.den.selective.train_sparse`). Every
later task runs
1. selective retraining (:mod:`den.strategies.den.selective`): a sparse new head, a
   breadth-first search for the subnetwork it reads, and a retrain of only that subnetwork;
2. dynamic expansion (:mod:`den.strategies.den.expansion`), only if the loss is still above
   tau: k new units per layer trained under L1 + group lasso, then the units that died are
   deleted;
3. split / duplication (:mod:`den.strategies.den.split`): units whose incoming weights drifted
   by more than sigma are duplicated; the original goes back to its old weights for old tasks.
Every unit keeps the task that created it, and task t's prediction uses only units created at
or before t (timestamped inference, in :class:`~den.models.network.MultiHeadNet`).

Each step is a function of (strategy, task data, report) that trains through the one training
loop (:meth:`DENStrategy.run_phase` -> :meth:`Strategy.fit`) with a phase-specific objective,
gradient mask and proximal step. Where this code departs from the paper or follows the
authors' TensorFlow code instead, the comment says so; docs/den.md's fidelity table lists
every such choice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from den.config.registry import STRATEGIES
from den.data.streams.base import Split, Task
from den.engine.metrics import float32_value
from den.engine.training import PhaseResult
from den.errors import ConfigError
from den.models.network import num_layers
from den.strategies.base import Strategy
from den.strategies.den import ops
from den.strategies.den.cache import OldFirstLayerData
from den.strategies.den.config import DENConfig
from den.strategies.den.expansion import grow_network
from den.strategies.den.report import DENTaskReport
from den.strategies.den.selective import selective_retrain, train_sparse
from den.strategies.den.split import split_drifted_units

log = logging.getLogger(__name__)
T = TypeVar("T")


def expansion_sizes(
    k: int, k_conv: int | None, k_layers: Sequence[int] | None, kinds: Sequence[str]
) -> list[int]:
    """Units an expansion adds to each layer (``kinds``: "conv" or "linear" per layer): the
    entries of k_layers when set, else k_conv filters for a conv layer (k when unset) and k
    units for a fully connected one."""
    if k_layers is not None:
        return list(k_layers)
    return [k_conv if kind == "conv" and k_conv is not None else k for kind in kinds]


@STRATEGIES.register("den", DENConfig)
class DENStrategy(Strategy):
    """DEN on a :class:`MultiHeadNet` (fully connected or convolutional)."""

    cfg: DENConfig

    @classmethod
    def check_config(cls, cfg: Any, run: Any = None) -> None:
        for key in ("l1", "l2", "gl", "lam", "tau", "sigma", "sigma_conv"):
            value = getattr(cfg, key)
            if value < 0:
                raise ConfigError(
                    f"strategy.{key}", value, "must be >= 0", f"set strategy.{key} to 0 or more"
                )
        if cfg.k < 0:
            raise ConfigError(
                "strategy.k", cfg.k, "must be >= 0", "set strategy.k to the units per expansion"
            )
        if cfg.expansion_rounds < 1:
            raise ConfigError(
                "strategy.expansion_rounds",
                cfg.expansion_rounds,
                "must be >= 1",
                "set strategy.expansion_rounds to the most expansions per task (1 = the paper)",
            )
        if cfg.expansion_min_drop is not None and not 0 <= cfg.expansion_min_drop < 1:
            raise ConfigError(
                "strategy.expansion_min_drop",
                cfg.expansion_min_drop,
                "must be in [0, 1) or null",
                "give the fraction of the validation loss a round must remove, e.g. 0.05",
            )
        if cfg.k_layers is not None and any(k < 0 for k in cfg.k_layers):
            raise ConfigError(
                "strategy.k_layers",
                list(cfg.k_layers),
                "every entry must be >= 0",
                "give the units per expansion of each layer, e.g. strategy.k_layers=[40,0]",
            )
        for key in (
            "k_conv",
            "head_fit_iters",
            "selective_iters",
            "expansion_iters",
            "split_iters",
            "patience",
            "max_split_per_layer",
            "max_split_conv",
            "head_l1",
            "l1_conv",
        ):
            value = getattr(cfg, key)
            if value is not None and value < 0:
                raise ConfigError(f"strategy.{key}", value, "must be >= 0", "use a count or null")
        layers = num_layers(run.model) if run is not None else None
        if cfg.k_layers is not None and layers is not None and len(cfg.k_layers) != layers:
            raise ConfigError(
                "strategy.k_layers",
                list(cfg.k_layers),
                f"has {len(cfg.k_layers)} entries for a network of {layers} layers",
                f"give one count per layer ({layers}), or null to use k and k_conv",
            )

    def __init__(self, cfg: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.net.growable = True  # expansion and splits change the layers' sizes
        # Every DEN phase decays the weights it trains by l2 (the code's l2_lambda).
        self.trainer_cfg = dataclasses.replace(self.trainer_cfg, weight_decay=self.cfg.l2)

    # ----------------------------------------------------------------- protocol
    def learn(self, task: Task) -> DENTaskReport:
        t = task.task_id
        train, val = self.task_data(task)
        report = DENTaskReport()
        if t == 0:
            self.net.add_head(task.num_classes, 0)
            _timed(report, "sparse_training", lambda: train_sparse(self, train, val, report))
        else:
            prev = ops.snapshot(self.net)
            self.net.add_head(task.num_classes, t)
            loss = _timed(
                report,
                "selective_retraining",
                lambda: selective_retrain(self, t, train, val, prev, report),
            )
            report.expansion_loss = float32_value(loss)
            report.expanded = loss > self.cfg.tau
            if report.expanded:
                _timed(report, "expansion", lambda: grow_network(self, t, train, val, report))
            if report.expanded or self.cfg.split_always:
                _timed(
                    report, "split", lambda: split_drifted_units(self, t, train, val, prev, report)
                )
        report.widths = self.net.widths()
        report.params = self.net.num_parameters()
        report.params_task = self.net.num_parameters_for(t)
        report.nonzero_params = self.num_nonzero_parameters()
        report.nonzero_fraction = ops.nonzero_fraction(self.net)
        if t > 0:
            log.info("task %d DEN: %s", t + 1, report.describe(self.cfg.tau))
        return report

    def fit(
        self,
        name: str,
        params: Any,
        objective: Any,
        train: Split,
        val: Split,
        task_id: int,
        **kwargs: Any,
    ) -> PhaseResult:
        """:meth:`Strategy.fit` with DEN's own patience for the phases after task 1."""
        if task_id > 0 and self.cfg.patience is not None:
            kwargs.setdefault("patience", self.cfg.patience)
        return super().fit(name, params, objective, train, val, task_id, **kwargs)

    # ----------------------------------------------------------------- helpers
    def expansion_sizes(self) -> list[int]:
        """Units an expansion adds to each layer of this network."""
        return expansion_sizes(self.cfg.k, self.cfg.k_conv, self.cfg.k_layers, self.net.kinds)

    def sigma_of(self, layer: int) -> float:
        return self.cfg.sigma_conv if self.net.kinds[layer] == "conv" else self.cfg.sigma

    def split_cap(self, layer: int) -> int | None:
        """Most copies a split may make in ``layer`` (None = no cap): max_split_conv for a conv
        layer when set, max_split_per_layer otherwise."""
        if self.net.kinds[layer] == "conv" and self.cfg.max_split_conv is not None:
            return self.cfg.max_split_conv
        return self.cfg.max_split_per_layer

    def prox(
        self,
        l1_targets: list[ops.ProxTarget],
        groups: list[ops.GroupTarget] = (),
        l1: float | None = None,
    ) -> Any:
        """The proximal ``after_step`` hook: L1 (``l1``, default ``cfg.l1``, and ``l1_conv``
        on conv filters, the 4-d weights) on the targets, then the group lasso on the groups,
        thresholds scaled by ``prox_scale``."""
        if l1 is None:
            conv = self.cfg.l1 if self.cfg.l1_conv is None else self.cfg.l1_conv
            l1 = [conv if w.ndim == 4 else self.cfg.l1 for w, _ in l1_targets]
        return ops.make_prox_step(
            l1_targets,
            l1,
            groups,
            self.cfg.gl,
            scale_by_lr=self.cfg.prox_scale == "lr",
        )

    def run_phase(
        self,
        name: str,
        t: int,
        train: Split,
        val: Split,
        report: DENTaskReport,
        trunk_masks: list[torch.Tensor | None] | None,
        bias_masks: list[torch.Tensor | None] | None,
        head_mask: torch.Tensor | None,
        pull_to: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        groups: list[ops.GroupTarget] = (),
        max_iters: int | None = None,
        data: OldFirstLayerData | None = None,
    ) -> PhaseResult:
        """Train trunk + head ``t`` under masks (None = free) with L1 prox on the trainable
        weights (biases are not sparsified: they are not connections), plus
        ``lam * ||W - W^{t-1}||^2`` towards ``pull_to`` (Eq. 2 and 4) when given.
        ``data`` replaces ``train``, ``val`` and the data loss with their cached-first-layer
        form (:class:`OldFirstLayerData`) where layer 0's old units are frozen.

        The pull's gradient is added in closed form after the backward pass (bit-identical
        to differentiating the penalty, without its graph), so the phase's logged training
        loss is the data loss."""
        net = self.net
        params, float_masks, l1_targets = self._phase_parameters(
            t, trunk_masks, bias_masks, head_mask
        )
        pull = None
        if pull_to is not None and self.cfg.lam > 0:

            def pull() -> None:
                ops.add_l2_to_previous_grad_(net, pull_to, self.cfg.lam)

        loss = val_loss = self.data_loss(net, t)
        if data is not None:
            train, val, loss, val_loss = data.train, data.val, data.train_loss, data.val_loss
        result = self.fit(
            name,
            params,
            loss,
            train,
            val,
            t,
            val_loss=val_loss,
            grad_masks=float_masks,
            after_step=self.prox(l1_targets, groups),
            grad_hook=pull,
            max_iters=max_iters,
        )
        # The widths a phase trained at: what a full-run accounting times its bare twin at.
        report.phases[name] = {**result.as_dict(), "widths": net.widths()}
        return result

    def _phase_parameters(
        self,
        t: int,
        trunk_masks: list[torch.Tensor | None] | None,
        bias_masks: list[torch.Tensor | None] | None,
        head_mask: torch.Tensor | None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None], list[ops.ProxTarget]]:
        """Trunk weights, biases and head ``t``; their gradient masks as floats (None =
        free); the L1 targets: every weight with its mask (biases are not connections)."""
        weights, biases = list(self.net.weights), list(self.net.biases)
        head_w, head_b = self.net.head_parameters(t)
        trunk_masks = trunk_masks or [None] * len(weights)
        bias_masks = bias_masks or [None] * len(biases)
        params = [*weights, *biases, head_w, head_b]
        masks = [*trunk_masks, *bias_masks, head_mask, None]
        float_masks = [
            None if m is None else m.to(p.dtype) for p, m in zip(params, masks, strict=True)
        ]
        # The proximal step reuses the float masks: a bool mask would be converted to float
        # on every step (a copy of each weight matrix's size), with the same result.
        n = len(weights)
        l1_targets = [(w, m) for w, m in zip(weights, float_masks[:n], strict=True)]
        return params, float_masks, [*l1_targets, (head_w, float_masks[-2])]


def _timed(report: DENTaskReport, step: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = fn()
    report.step_seconds[step] = round(time.perf_counter() - start, 3)
    return out
