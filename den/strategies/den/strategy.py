"""Dynamically Expandable Networks (Yoon, Yang, Lee, Hwang; ICLR 2018).

Task 1 trains a sparse network (:func:`train_sparse`). Every later task runs
1. selective retraining (:func:`selective_retrain`): a sparse new head, a breadth-first search
   for the subnetwork it reads, and a retrain of only that subnetwork;
2. dynamic expansion (:func:`expand_network`), only if the loss is still above tau: k new units
   per layer trained under L1 + group lasso, then the units that died are deleted;
3. split / duplication (:func:`split_drifted_units`): units whose incoming weights drifted by
   more than sigma are duplicated; the original goes back to its old weights for old tasks.
Every unit keeps the task that created it, and task t's prediction uses only units created at
or before t (timestamped inference, in :class:`~den.models.network.MultiHeadNet`).

Each step is a function of (strategy, task data) that trains through the one training loop
(:meth:`Strategy.fit`) with a phase-specific objective, gradient mask and proximal step.
Where this code departs from the paper or follows the authors' TensorFlow code instead, the
comment says so; the README's fidelity table lists every such choice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import torch

from den.config.registry import STRATEGIES
from den.data.streams.base import Split, Task
from den.engine.training import PhaseResult, cross_entropy, evaluate_loss
from den.errors import ConfigError
from den.models.network import num_layers
from den.strategies.base import Strategy
from den.strategies.den import ops
from den.strategies.den.config import DENConfig, UnsplitDrift
from den.strategies.den.subnet import Subnetwork

log = logging.getLogger(__name__)


def expansion_sizes(
    k: int, k_conv: int | None, k_layers: Sequence[int] | None, kinds: Sequence[str]
) -> list[int]:
    """Units an expansion adds to each layer (``kinds``: "conv" or "linear" per layer): the
    entries of k_layers when set, else k_conv filters for a conv layer (k when unset) and k
    units for a fully connected one. experiments/bench/full_run.py reads recorded runs with it."""
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
        if cfg.k_layers is not None and any(k < 0 for k in cfg.k_layers):
            raise ConfigError(
                "strategy.k_layers",
                list(cfg.k_layers),
                "every entry must be >= 0",
                "give the units per expansion of each layer, e.g. strategy.k_layers=[40,0]",
            )
        if cfg.prox_scale not in ("step", "lr"):
            raise ConfigError("strategy.prox_scale", cfg.prox_scale, "unknown", "use step or lr")
        if cfg.unsplit_drift not in tuple(UnsplitDrift):
            raise ConfigError(
                "strategy.unsplit_drift",
                cfg.unsplit_drift,
                "unknown",
                "use keep, project or restore",
            )
        if cfg.expansion_loss not in ("train", "val"):
            raise ConfigError(
                "strategy.expansion_loss", cfg.expansion_loss, "unknown", "use train or val"
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
        # Every DEN phase decays the weights it trains by l2 (the code's l2_lambda).
        self.trainer_cfg = dataclasses.replace(self.trainer_cfg, weight_decay=self.cfg.l2)

    # ----------------------------------------------------------------- protocol
    def learn(self, task: Task) -> dict[str, Any]:
        t = task.task_id
        train, val = self.task_data(task)
        report: dict[str, Any] = {"phases": {}, "step_seconds": {}}
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
            report["expansion_loss"] = loss
            report["expanded"] = loss > self.cfg.tau
            if report["expanded"]:
                _timed(report, "expansion", lambda: expand_network(self, t, train, val, report))
            if report["expanded"] or self.cfg.split_always:
                _timed(
                    report, "split", lambda: split_drifted_units(self, t, train, val, prev, report)
                )
        report["widths"] = self.net.widths()
        report["params"] = self.net.num_parameters()
        report["params_task"] = self.net.num_parameters_for(t)
        report["nonzero_params"] = self.num_nonzero_parameters()
        report["nonzero_fraction"] = ops.nonzero_fraction(self.net)
        if t > 0:
            log.info(
                "task %d DEN: selected %s, expansion loss %.4f (tau %g) -> %s, kept %s, split %s, "
                "widths %s, seconds %s",
                t + 1,
                report["selected"],
                report["expansion_loss"],
                self.cfg.tau,
                "expand" if report["expanded"] else "no expansion",
                report.get("expansion_kept", "-"),
                report.get("split", "-"),
                report["widths"],
                report["step_seconds"],
            )
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
        report: dict[str, Any],
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
        weights, biases = list(net.weights), list(net.biases)
        head_w, head_b = net.head_parameters(t)
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
        l1_targets = [(w, m) for w, m in zip(weights, float_masks[:n], strict=True)] + [
            (head_w, float_masks[-2])
        ]
        lam = self.cfg.lam
        pull = None
        if pull_to is not None and lam > 0:

            def pull() -> None:
                ops.add_l2_to_previous_grad_(net, pull_to, lam)

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
        # The widths a phase trained at: what den.bench's full-run accounting times its bare
        # twin at (experiments/bench/full_run.py).
        report["phases"][name] = {**result.as_dict(), "widths": net.widths()}
        return result


def _timed(report: dict[str, Any], step: str, fn: Any) -> Any:
    start = time.perf_counter()
    out = fn()
    report["step_seconds"][step] = round(time.perf_counter() - start, 3)
    return out


class OldFirstLayerData:
    """Training and validation data for a phase in which layer 0's old units (created before
    task t) are frozen: the expansion and the retrain after a split. Those units read only
    the data, so their outputs are computed once per phase instead of on every step (layer 0
    is most of an MLP's weights: 784 x 312 of permuted MNIST's 286k). The splits' inputs
    become row indices; ``train_loss`` and ``val_loss`` read the rows' inputs and cached
    outputs back. Not used when training batches are augmented (the outputs would change
    with every batch). Memory: [N, old units (, H', W')] floats for train and val."""

    def __init__(self, net: Any, t: int, train: Split, val: Split, batch_size: int) -> None:
        n_old = net.widths_at(t - 1)[0]
        self.inputs = (train.x, val.x)
        with torch.no_grad():
            self.first_old = tuple(
                _in_batches(lambda b: net.first_layer_units(b, 0, n_old), x, batch_size)
                for x in self.inputs
            )
        self.train, self.val = (
            Split(torch.arange(len(d), device=d.y.device), d.y) for d in (train, val)
        )
        self.net, self.t = net, t

    @classmethod
    def usable(cls, s: DENStrategy, t: int, train: Split, val: Split) -> OldFirstLayerData | None:
        """The cache for task ``t``'s phase, or None where it cannot apply (augmentation)."""
        if train.augment is not None:
            return None
        return cls(s.net, t, train, val, s.trainer_cfg.eval_batch_size)

    def train_loss(self, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(0, rows, y)

    def val_loss(self, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(1, rows, y)

    def _loss(self, split: int, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.inputs[split].index_select(0, rows)
        first_old = self.first_old[split].index_select(0, rows)
        return cross_entropy(self.net.logits_from_old_first_layer(x, first_old, self.t), y)


# --------------------------------------------------------------------------- task 1


def train_sparse(s: DENStrategy, train: Split, val: Split, report: dict[str, Any]) -> PhaseResult:
    """Task 1: minimise loss + mu * sum_l ||W_l||_1 with a proximal step after every
    optimiser step, so that weights become exactly zero (Eq. 2 for t = 1)."""
    return s.run_phase("sparse", 0, train, val, report, None, None, None)


# --------------------------------------------------------------------------- step 1


def fit_sparse_head(
    s: DENStrategy, t: int, train: Split, val: Split, report: dict[str, Any]
) -> PhaseResult:
    """Step 1.1: hidden layers frozen, train the new head with an L1 proximal step so that it
    reads only a few top units. A real fit (``head_fit_iters``, default the phase budget);
    the DEN code runs a single iteration here, which selects almost every unit.

    The trunk is frozen, so its features are computed once and the head trains on them:
    the same optimisation as training through the trunk, at the cost of a linear layer.
    """
    net = s.net
    head_w, head_b = net.head_parameters(t)
    with torch.no_grad():
        feats = [
            Split(_in_batches(net.features, d.x, s.trainer_cfg.eval_batch_size), d.y)
            for d in (train, val)
        ]

    def head_loss(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(torch.nn.functional.linear(h, head_w, head_b), y)

    result = s.fit(
        "head_fit",
        [head_w, head_b],
        head_loss,
        feats[0],
        feats[1],
        t,
        val_loss=head_loss,
        after_step=s.prox([(head_w, None)], l1=s.cfg.head_l1),
        max_iters=s.cfg.head_fit_iters,
    )
    report["phases"]["head_fit"] = {**result.as_dict(), "features": int(feats[0].x.shape[1])}
    return result


def _in_batches(fn: Any, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` over all of ``x`` in batches of ``batch_size``, concatenated along dim 0 (e.g.
    the last hidden layer's output [N, n_L * block] with ``net.features``)."""
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def selective_retrain(
    s: DENStrategy, t: int, train: Split, val: Split, prev: list, report: dict[str, Any]
) -> float:
    """Step 1: sparse head fit, breadth-first selection, then retrain only the selected
    subnetwork S with loss + mu ||W_S||_1 (prox) + lambda ||W_S - W_S^{t-1}||^2 (Eq. 2).

    Returns the data loss that decides expansion (on train or val, ``expansion_loss``).
    S is gathered into dense tensors (:class:`~den.strategies.den.subnet.Subnetwork`), trained
    there and scattered back, so a step costs what the selection costs; every weight outside
    S keeps its bits.
    """
    net = s.net
    fit_sparse_head(s, t, train, val, report)
    selected = ops.select_subnetwork(net, t, s.cfg.search_first_output_only)
    report["selected"] = [int(m.sum()) for m in selected]
    report["selected_fraction"] = [round(int(m.sum()) / max(m.numel(), 1), 4) for m in selected]
    if all(report["selected"]):
        sub = Subnetwork(net, t, selected)

        def objective(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return cross_entropy(sub.logits(x), y)

        anchors = sub.anchors(prev)
        pull = None
        if s.cfg.lam > 0:

            def pull() -> None:
                ops.add_pull_grad_(anchors, s.cfg.lam)

        masks = None
        if s.cfg.keep_zeros:  # only the subnetwork's connections move; head t is free
            masks = [(w != 0).to(w.dtype) for w in sub.weights]
            masks += [None] * (len(sub.parameters()) - len(masks))
        result = s.fit(
            "selective",
            sub.parameters(),
            objective,
            train,
            val,
            t,
            val_loss=objective,
            grad_masks=masks,
            after_step=s.prox([(w, None) for w in (*sub.weights, sub.head_weight)]),
            grad_hook=pull,
            max_iters=s.cfg.selective_iters,
        )
        sub.write_back()
        report["phases"]["selective"] = {**result.as_dict(), "widths": report["selected"]}
    else:
        # A layer with nothing selected cuts the head off the input: there is no subnetwork
        # to retrain, and the expansion has to learn the task.
        log.info(
            "task %d: an empty selection %s, no selective retraining", t + 1, report["selected"]
        )
    data = train if s.cfg.expansion_loss == "train" else val
    return evaluate_loss(s.data_loss(net, t), data, s.trainer_cfg.eval_batch_size)


# --------------------------------------------------------------------------- step 2


def add_units_everywhere(net: Any, t: int, k: int | list[int]) -> None:
    """Append k units (or k[layer] to each layer) with timestamp t to every hidden layer,
    bottom-up, so that each new unit reads every unit below it (old and new) and feeds every
    unit above and head t."""
    counts = k if isinstance(k, list) else [k] * net.num_layers
    for layer, count in enumerate(counts):
        if count:
            net.append_units(layer, t, count=count)


@torch.no_grad()
def delete_dead_units(net: Any, t: int) -> list[int]:
    """Delete the units of task t whose incoming group (weights and bias) is all zero, top
    layer first; return how many units of task t each layer keeps."""
    kept = [0] * net.num_layers
    for layer in range(net.num_layers - 1, -1, -1):
        weight, bias = net.weights[layer], net.biases[layer]
        is_new = (net.unit_timestamps[layer] == t).to(weight.device)
        alive = weight.reshape(weight.shape[0], -1).ne(0).any(1) | bias.ne(0)
        dead = torch.nonzero(is_new & ~alive).flatten()
        net.delete_units(layer, dead, t)
        kept[layer] = int(is_new.sum()) - dead.numel()
    return kept


def expand_network(
    s: DENStrategy, t: int, train: Split, val: Split, report: dict[str, Any]
) -> list[int]:
    """Step 2 (Eq. 3): add k units per layer (k_conv per conv layer), train ONLY the new
    weights (new units' incoming weights, every weight leaving a new unit, head t) with L1 +
    group-lasso proximal steps, then delete the new units whose group went to zero. Returns
    units kept per layer."""
    net = s.net
    added = expansion_sizes(s.cfg.k, s.cfg.k_conv, s.cfg.k_layers, net.kinds)
    add_units_everywhere(net, t, added)
    fresh, trunk_masks = ops.task_unit_masks(net, t)
    groups = [
        (net.weights[layer], net.biases[layer], fresh[layer]) for layer in range(net.num_layers)
    ]
    # Only the new units' weights learn: the backward skips the old block's gradients.
    with net.frozen_old_units(t):
        s.run_phase(
            "expansion",
            t,
            train,
            val,
            report,
            trunk_masks,
            fresh,
            None,
            groups=groups,
            max_iters=s.cfg.expansion_iters,
            data=OldFirstLayerData.usable(s, t, train, val),
        )
    kept = delete_dead_units(net, t)
    report["expansion_added"] = added
    report["expansion_kept"] = kept
    return kept


# --------------------------------------------------------------------------- step 3


@torch.no_grad()
def duplicate_units(
    net: Any, t: int, layer: int, units: torch.Tensor, prev: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """Split ``units`` of ``layer``: each copy (timestamp t, appended) carries the unit's new
    weights; the original gets back its weights of W^{t-1} for the old tasks and drops its
    weights from units of task t. Head t then reads the copy instead of the original; the
    next layer reads both (its retrain sorts that out)."""
    weight, bias = net.weights[layer], net.biases[layer]
    plist, index, _ = net.consumer(layer, t)
    columns = net.unit_columns(layer, units, t)
    consumer_cols = plist[index].detach()[:, columns].clone()
    net.append_units(
        layer,
        t,
        rows=weight.detach()[units].clone(),
        bias=bias.detach()[units].clone(),
        consumer_columns=consumer_cols,
    )
    weight, bias = net.weights[layer], net.biases[layer]
    pw, pb = prev
    old = ops.old_part(weight, pw)
    old[units] = pw[units]
    weight[units, pw.shape[1] :] = 0
    bias[units] = pb[units]
    if layer == net.num_layers - 1:
        net.head_weights[t][:, columns] = 0  # the current head reads the copy only


@torch.no_grad()
def pull_back_unsplit(
    s: DENStrategy,
    layer: int,
    drift: torch.Tensor,
    units: torch.Tensor,
    prev: tuple[torch.Tensor, torch.Tensor],
) -> int:
    """Move the old ``units`` of ``layer`` that drifted past sigma but were not split (a split
    cap's leftovers) as ``strategy.unsplit_drift`` says; returns how many moved.

    ``drift`` (float [n_old]) is every old unit's rho_i; ``units`` (int64 [m]) index it.
    project scales each unit's change over its old inputs and bias by sigma / rho_i, so it
    ends exactly on the sigma ball; restore sets both back to W^{t-1}. Weights from task-t
    inputs are left alone: old tasks never read them.
    """
    mode = s.cfg.unsplit_drift
    if mode == UnsplitDrift.keep or units.numel() == 0:
        return 0
    weight, bias = s.net.weights[layer], s.net.biases[layer]
    pw, pb = prev
    old = ops.old_part(weight, pw)
    if mode == UnsplitDrift.restore:
        scale = torch.zeros_like(drift[units])
    else:
        scale = s.sigma_of(layer) / drift[units]
    shape = (-1,) + (1,) * (pw.dim() - 1)
    old[units] = pw[units] + (old[units] - pw[units]) * scale.reshape(shape)
    bias[units] = pb[units] + (bias[units] - pb[units]) * scale
    return units.numel()


def split_drifted_units(
    s: DENStrategy, t: int, train: Split, val: Split, prev: list, report: dict[str, Any]
) -> list[int]:
    """Step 3 (Eq. 4): train with loss + lambda ||W - W^{t-1}||^2, measure every old unit's
    drift rho_i, duplicate the units with rho_i > sigma, retrain the units of task t (copies
    and expansion units) and every weight leaving them, and timestamp the copies.

    After the split, every weight an old task reads is either back at W^{t-1} (split units) or
    moved by at most sigma per unit (the rest), unless a split cap left units past sigma and
    ``unsplit_drift`` is keep. Returns the number of copies per layer.
    """
    net = s.net
    run_split_train = s.cfg.split_train
    if run_split_train and s.cfg.split_train_if_drifted:
        # Expansion leaves old units' old weights alone, so this is selective retraining's
        # drift: when no unit is past sigma, no unit would split on the code's measurement.
        run_split_train = any(
            bool((ops.unit_drift(w, b, p) > s.sigma_of(layer)).any())
            for layer, (w, b, p) in enumerate(zip(net.weights, net.biases, prev, strict=True))
        )
        report["split_train_skipped"] = not run_split_train
    if run_split_train:
        trunk_masks = None
        if s.cfg.keep_zeros:  # old connections and everything of task t's units
            _, task_masks = ops.task_unit_masks(net, t)
            trunk_masks = [(w != 0) | m for w, m in zip(net.weights, task_masks, strict=True)]
        s.run_phase(
            "split_train",
            t,
            train,
            val,
            report,
            trunk_masks,
            None,
            None,
            pull_to=prev,
            max_iters=s.cfg.split_iters,
        )
    copies = []
    drift_max = []
    over_sigma = []  # units past sigma before the cap: how many a cap leaves drifted
    pulled_back = []  # of those left unsplit, how many unsplit_drift moved back
    originals = []  # the units split in each layer (int64 [copies])
    for layer in range(net.num_layers):
        drift = ops.unit_drift(net.weights[layer], net.biases[layer], prev[layer])
        drift_max.append(float(drift.max()) if drift.numel() else 0.0)
        over = torch.nonzero(drift > s.sigma_of(layer)).flatten()
        over_sigma.append(over.numel())
        cap = s.split_cap(layer)
        units = over
        if cap is not None and over.numel() > cap:
            units = over[drift[over].argsort(descending=True)[:cap]].sort().values
        unsplit = over[~torch.isin(over, units)]  # past sigma, left unsplit by the cap
        pulled_back.append(pull_back_unsplit(s, layer, drift, unsplit, prev[layer]))
        duplicate_units(net, t, layer, units, prev[layer])
        copies.append(units.numel())
        originals.append(units)
    report["split"] = copies
    report["over_sigma"] = over_sigma
    report["pulled_back"] = pulled_back
    report["max_drift"] = drift_max
    if sum(copies) or sum(pulled_back):
        fresh, trunk_masks = ops.task_unit_masks(net, t)
        # The originals stay what duplicate_units made them: W^{t-1} on old inputs, nothing
        # from task-t units, and unread by head t (the copy carries the task's weights).
        trunk_masks = [m.contiguous() for m in trunk_masks]  # conv masks are expanded views
        for mask, units in zip(trunk_masks, originals, strict=True):
            mask[units] = False
        top = net.num_layers - 1
        head_mask = torch.ones_like(net.head_weights[t], dtype=torch.bool)
        head_mask[:, net.unit_columns(top, originals[top], t)] = False
        with net.frozen_old_units(t):
            s.run_phase(
                "split_retrain",
                t,
                train,
                val,
                report,
                trunk_masks,
                fresh,
                head_mask,
                max_iters=s.cfg.split_iters,
                data=OldFirstLayerData.usable(s, t, train, val),
            )
    return copies
