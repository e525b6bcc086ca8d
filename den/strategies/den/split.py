"""DEN's step 3, network split / duplication (paper Sec. 3, Eq. 4): train with the pull
towards W^{t-1}, duplicate the units that drifted past sigma, retrain the task's units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from den.data.streams.base import Split
from den.engine.metrics import float32_value
from den.strategies.den import ops
from den.strategies.den.cache import OldFirstLayerData
from den.strategies.den.config import UnsplitDrift
from den.strategies.den.report import DENTaskReport

if TYPE_CHECKING:
    from den.strategies.den.strategy import DENStrategy


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
    s: DENStrategy, t: int, train: Split, val: Split, prev: list, report: DENTaskReport
) -> list[int]:
    """Step 3 (Eq. 4): train with loss + lambda ||W - W^{t-1}||^2, measure every old unit's
    drift rho_i, duplicate the units with rho_i > sigma, retrain the units of task t (copies
    and expansion units) and every weight leaving them, and timestamp the copies.

    After the split, every weight an old task reads is either back at W^{t-1} (split units) or
    moved by at most sigma per unit (the rest), unless a split cap left units past sigma and
    ``unsplit_drift`` is keep. Returns the number of copies per layer.
    """
    if _runs_split_train(s, prev, report):
        train_towards_previous(s, t, train, val, prev, report)
    originals = duplicate_drifted(s, t, prev, report)
    if sum(report.split) or sum(report.pulled_back):
        retrain_task_units(s, t, train, val, originals, report)
    return report.split


def _runs_split_train(s: DENStrategy, prev: list, report: DENTaskReport) -> bool:
    """Whether split training runs: always with ``split_train``, and with
    ``split_train_if_drifted`` only when some old unit is already past sigma."""
    if not s.cfg.split_train:
        return False
    if not s.cfg.split_train_if_drifted:
        return True
    # Expansion leaves old units' old weights alone, so this is selective retraining's
    # drift: when no unit is past sigma, no unit would split on the code's measurement.
    net = s.net
    drifted = any(
        bool((ops.unit_drift(w, b, p) > s.sigma_of(layer)).any())
        for layer, (w, b, p) in enumerate(zip(net.weights, net.biases, prev, strict=True))
    )
    report.split_train_skipped = not drifted
    return drifted


def train_towards_previous(
    s: DENStrategy, t: int, train: Split, val: Split, prev: list, report: DENTaskReport
) -> None:
    """Split training (Eq. 4): the whole network on task t with the pull to W^{t-1}."""
    trunk_masks = None
    if s.cfg.keep_zeros:  # old connections and everything of task t's units
        _, task_masks = ops.task_unit_masks(s.net, t)
        trunk_masks = [(w != 0) | m for w, m in zip(s.net.weights, task_masks, strict=True)]
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


def duplicate_drifted(
    s: DENStrategy, t: int, prev: list, report: DENTaskReport
) -> list[torch.Tensor]:
    """Measure every old unit's drift rho_i and duplicate those past sigma (the most drifted
    first, up to the layer's split cap); the rest past sigma go as ``unsplit_drift`` says.
    Returns the units split in each layer (int64 [copies])."""
    net = s.net
    report.split, report.over_sigma, report.pulled_back, report.max_drift = [], [], [], []
    originals = []
    for layer in range(net.num_layers):
        drift = ops.unit_drift(net.weights[layer], net.biases[layer], prev[layer])
        report.max_drift.append(float32_value(float(drift.max())) if drift.numel() else 0.0)
        over = torch.nonzero(drift > s.sigma_of(layer)).flatten()
        report.over_sigma.append(over.numel())  # how many a cap leaves drifted, with split
        cap = s.split_cap(layer)
        units = over
        if cap is not None and over.numel() > cap:
            units = over[drift[over].argsort(descending=True)[:cap]].sort().values
        unsplit = over[~torch.isin(over, units)]  # past sigma, left unsplit by the cap
        report.pulled_back.append(pull_back_unsplit(s, layer, drift, unsplit, prev[layer]))
        duplicate_units(net, t, layer, units, prev[layer])
        report.split.append(units.numel())
        originals.append(units)
    return originals


def retrain_task_units(
    s: DENStrategy,
    t: int,
    train: Split,
    val: Split,
    originals: list[torch.Tensor],
    report: DENTaskReport,
) -> None:
    """Retrain the units of task t (copies and expansion units) and every weight leaving
    them; ``originals`` (the split units) stay what :func:`duplicate_units` made them."""
    net = s.net
    fresh, trunk_masks = ops.task_unit_masks(net, t)
    # The originals stay: W^{t-1} on old inputs, nothing from task-t units, and unread by
    # head t (the copy carries the task's weights).
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
