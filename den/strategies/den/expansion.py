"""DEN's step 2, dynamic expansion (paper Sec. 3, Eq. 3): add units, train only them under
L1 + group lasso, delete the ones that died."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from den.data.streams.base import Split
from den.engine.metrics import float32_value
from den.engine.training import evaluate_loss
from den.strategies.den import ops
from den.strategies.den.cache import OldFirstLayerData
from den.strategies.den.report import DENTaskReport

if TYPE_CHECKING:
    from den.strategies.den.strategy import DENStrategy


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
    s: DENStrategy, t: int, train: Split, val: Split, report: DENTaskReport
) -> list[int]:
    """Step 2 (Eq. 3): add k units per layer (k_conv per conv layer), train ONLY the new
    weights (new units' incoming weights, every weight leaving a new unit, head t) with L1 +
    group-lasso proximal steps, then delete the new units whose group went to zero. Returns
    units kept per layer."""
    net = s.net
    added = s.expansion_sizes()
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
    report.expansion_added = added
    report.expansion_kept = kept
    return kept


@torch.no_grad()
def task_val_loss(s: DENStrategy, t: int, val: Split) -> float:
    """Task ``t``'s mean validation data loss (cross-entropy of head t, no penalty)."""
    return evaluate_loss(s.data_loss(s.net, t), val, s.trainer_cfg.eval_batch_size)


def grow_network(
    s: DENStrategy, t: int, train: Split, val: Split, report: DENTaskReport
) -> list[int]:
    """Step 2 with capacity that follows the task: :func:`expand_network` up to
    ``expansion_rounds`` times. The task's validation loss is measured before and after each
    round; with ``expansion_min_drop`` set, a round that lowers it by less than that fraction
    of its value before the round is undone (the network before the round is put back) and
    growth stops. Growth also stops when a round keeps no new unit.

    Returns the units of task t kept per layer. ``report.expansion_rounds`` lists every round
    (units added and kept, validation loss before and after, whether it was undone); with the
    defaults (one round, no minimum drop) this is exactly one :func:`expand_network`.
    """
    cfg = s.cfg
    if cfg.expansion_rounds == 1 and cfg.expansion_min_drop is None:
        return expand_network(s, t, train, val, report)
    rounds: list[dict[str, Any]] = []
    kept = [0] * s.net.num_layers
    added_total = [0] * s.net.num_layers
    before = first = task_val_loss(s, t, val)
    for r in range(cfg.expansion_rounds):
        # A deep copy, not a snapshot of the weights: an undone round also takes back its units.
        saved = copy.deepcopy(s.net) if cfg.expansion_min_drop is not None else None
        now = expand_network(s, t, train, val, report)
        after = task_val_loss(s, t, val)
        entry = {
            "round": r + 1,
            "added": list(report.expansion_added or []),
            "kept": now,
            "val_loss_before": float32_value(before),
            "val_loss_after": float32_value(after),
            "undone": False,
        }
        rounds.append(entry)
        if saved is not None and before - after < cfg.expansion_min_drop * before:
            s.net = saved
            entry["undone"] = True
            break
        grew = sum(now) > sum(kept)
        kept, before = now, after
        added_total = [a + b for a, b in zip(added_total, entry["added"], strict=True)]
        if not grew:
            break
    report.expansion_rounds = rounds
    report.expansion_added = added_total
    report.expansion_kept = kept
    report.expansion_val_loss = [float32_value(first), float32_value(before)]
    return kept
