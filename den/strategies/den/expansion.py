"""DEN's step 2, dynamic expansion (paper Sec. 3, Eq. 3): add units, train only them under
L1 + group lasso, delete the ones that died."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from den.data.streams.base import Split
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
