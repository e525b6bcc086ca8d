"""Tensor operations of DEN: proximal steps, gradient masks, subnetwork search, drift.

Pure functions on a :class:`~den.models.network.MultiHeadNet`; :mod:`den.strategies.den.strategy`
chains them into the four steps of the algorithm. Every operation is a fused tensor
expression over whole weight matrices (no Python loop over units), so a proximal step costs
a few element-wise kernels per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from den.models.network import MultiHeadNet

# ----------------------------------------------------------------------------- proximal steps


def soft_threshold_(
    weight: torch.Tensor, threshold: float, mask: torch.Tensor | None = None
) -> None:
    """In place: w <- sign(w) * max(|w| - threshold, 0), only where ``mask`` is 1 (a float
    0/1 mask of ``weight``'s dtype, built once per phase; a bool mask works but is converted
    on every call).

    The proximal operator of threshold * ||w||_1: entries with |w| <= threshold become 0.0
    exactly, which a plain L1 penalty in the loss never achieves.
    """
    # w - clamp(w, -t, t) is sign(w) * max(|w| - t, 0) with the same rounding, in two kernels;
    # a masked-out entry subtracts an exact 0.0 and keeps its bits.
    step = weight.clamp(-threshold, threshold)
    if mask is not None:
        step.mul_(mask)
    weight.sub_(step)


def group_soft_threshold_(
    weight: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor, threshold: float
) -> None:
    """In place, for every unit i with ``rows[i]``: g_i <- g_i * max(1 - threshold / ||g_i||, 0).

    The group of unit i is its incoming weights ``weight[i]`` (a row, or a whole conv filter)
    together with its bias, so a unit whose group reaches 0 outputs exactly 0 and can be
    deleted without changing the network's function (Eq. 3's group lasso, proximal form).
    """
    flat = weight.reshape(weight.shape[0], -1)
    norms = torch.sqrt(flat.pow(2).sum(1) + bias.pow(2))
    scale = (1 - threshold / norms.clamp_min(1e-12)).clamp_(min=0)
    scale = torch.where(rows, scale, torch.ones_like(scale))
    weight.mul_(scale.view(-1, *([1] * (weight.ndim - 1))))
    bias.mul_(scale)


ProxTarget = tuple[torch.Tensor, torch.Tensor | None]  # (weight, 0/1 mask or None)
GroupTarget = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (weight, bias, bool rows)


def make_prox_step(
    l1_targets: Sequence[ProxTarget],
    l1: float | Sequence[float],
    groups: Sequence[GroupTarget] = (),
    group_lasso: float = 0.0,
    scale_by_lr: bool = False,
) -> Callable[[float], None]:
    """The ``after_step`` hook of a DEN phase: L1 then group-lasso proximal steps.

    ``l1`` is one strength for every target or one per target. With ``scale_by_lr`` the
    thresholds are ``lr * l1`` and ``lr * group_lasso`` (the textbook proximal-gradient step);
    otherwise ``l1`` and ``group_lasso`` per step (the DEN code).
    """
    strengths = [l1] * len(l1_targets) if isinstance(l1, (int, float)) else list(l1)
    if len(strengths) != len(l1_targets):
        raise ValueError(f"{len(strengths)} L1 strengths for {len(l1_targets)} targets")
    # Targets at strength 0 are skipped once here, not tested on every step.
    l1_steps = [(w, m, s) for (w, m), s in zip(l1_targets, strengths, strict=True) if s > 0]

    def step(lr: float) -> None:
        scale = lr if scale_by_lr else 1.0
        for weight, mask, strength in l1_steps:
            soft_threshold_(weight, strength * scale, mask)
        if group_lasso > 0:
            for weight, bias, rows in groups:
                group_soft_threshold_(weight, bias, rows, group_lasso * scale)

    return step


# ----------------------------------------------------------------------------- masks


def weight_mask(
    net: MultiHeadNet, layer: int, rows: torch.Tensor, cols: torch.Tensor, union: bool = False
) -> torch.Tensor:
    """Bool mask of ``layer``'s weight shape: entry (i, j) trainable iff rows[i] AND cols[j]
    (or OR with ``union``). ``rows``: bool [n_out]; ``cols``: bool [input units]."""
    weight = net.weights[layer]
    if net.kinds[layer] == "linear":
        cols = cols.repeat_interleave(net.in_blocks[layer])
    mask = (rows[:, None] | cols[None, :]) if union else (rows[:, None] & cols[None, :])
    if weight.ndim == 4:
        mask = mask[:, :, None, None].expand_as(weight)
    return mask


def head_mask(net: MultiHeadNet, task_id: int, units: torch.Tensor) -> torch.Tensor:
    """Bool mask of head ``task_id``: the columns that read ``units`` (bool [n_L])."""
    head = net.head_weights[task_id]
    cols = units.repeat_interleave(net.head_block)
    return cols[None, :].expand_as(head)


def input_units_all(net: MultiHeadNet, device: torch.device) -> torch.Tensor:
    return torch.ones(net.input_units(0), dtype=torch.bool, device=device)


def new_units(net: MultiHeadNet, task_id: int, device: torch.device) -> list[torch.Tensor]:
    """Bool [n_l] per layer: units created by task ``task_id``."""
    return [(ts == task_id).to(device) for ts in net.unit_timestamps]


def task_unit_masks(
    net: MultiHeadNet, task_id: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(units of task ``task_id`` per layer, weight masks of every weight into or out of them).

    What the expansion and the post-split retrain may change: old tasks never read these
    weights (their slices end before the task's units), so training them cannot touch an
    old task's outputs.
    """
    device = net.weights[0].device
    fresh = new_units(net, task_id, device)
    below = [torch.zeros(net.input_units(0), dtype=torch.bool, device=device), *fresh[:-1]]
    masks = [
        weight_mask(net, layer, fresh[layer], below[layer], union=True)
        for layer in range(net.num_layers)
    ]
    return fresh, masks


# ----------------------------------------------------------------------------- search


def connectivity(net: MultiHeadNet, layer: int) -> torch.Tensor:
    """Bool [n_out, input units]: True where unit i of ``layer`` has a non-zero weight from
    input unit j (any weight of j's block of columns, or of the filter slice for conv)."""
    weight = net.weights[layer]
    if weight.ndim == 4:
        return (weight != 0).any(dim=3).any(dim=2)
    n_in = net.input_units(layer)
    return (weight != 0).view(weight.shape[0], n_in, -1).any(dim=2)


def head_connectivity(
    net: MultiHeadNet, task_id: int, first_output_only: bool = False
) -> torch.Tensor:
    """Bool [n_L]: last-layer units with a non-zero weight to ANY output of head ``task_id``
    (or to output 0 only, as the DEN code does, with ``first_output_only``)."""
    head = net.head_weights[task_id]
    if first_output_only:
        head = head[:1]
    return (head != 0).view(head.shape[0], -1, net.head_block).any(dim=2).any(dim=0)


@torch.no_grad()
def select_subnetwork(
    net: MultiHeadNet, task_id: int, first_output_only: bool = False
) -> list[torch.Tensor]:
    """Breadth-first search from head ``task_id`` down the network (Sec. 3.1, Alg. 2).

    Returns bool [n_l] per hidden layer: the last layer's units connected to the head, then,
    layer by layer downwards, every unit with a non-zero weight into an already selected unit.
    """
    selected: list[torch.Tensor] = [torch.empty(0)] * net.num_layers
    selected[-1] = head_connectivity(net, task_id, first_output_only)
    for layer in range(net.num_layers - 1, 0, -1):
        selected[layer - 1] = connectivity(net, layer)[selected[layer]].any(dim=0)
    return selected


# ----------------------------------------------------------------------------- drift


@torch.no_grad()
def snapshot(net: MultiHeadNet) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of every hidden layer's (weight, bias): W^{t-1} at the start of a task."""
    return [
        (w.detach().clone(), b.detach().clone())
        for w, b in zip(net.weights, net.biases, strict=True)
    ]


def old_part(weight: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """The block of ``weight`` that existed in ``prev`` (old units x old inputs), a view."""
    return weight[tuple(slice(0, s) for s in prev.shape)]


def l2_to_previous(
    net: MultiHeadNet, prev: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """sum_l ||W_l^old - W_l^{t-1}||_2^2 + ||b_l^old - b_l^{t-1}||^2 over the weights that
    existed before the task (Eq. 2 and Eq. 4's regulariser)."""
    total = net.weights[0].new_zeros(())
    for weight, bias, (pw, pb) in zip(net.weights, net.biases, prev, strict=True):
        total = (
            total
            + (old_part(weight, pw) - pw).pow(2).sum()
            + (bias[: pb.shape[0]] - pb).pow(2).sum()
        )
    return total


def add_l2_to_previous_grad_(
    net: MultiHeadNet, prev: Sequence[tuple[torch.Tensor, torch.Tensor]], lam: float
) -> None:
    """In place: add the gradient of ``lam * l2_to_previous(net, prev)``, 2 lam (W - W^{t-1})
    on the block of every weight and bias that existed before the task, to ``.grad``.

    Bit-identical to autograd's gradient of the penalty added to the loss (autograd computes
    ``lam * (2 * diff)`` and adds it to the data gradient; so does this, with multiplication
    and addition in the same rounding), at a fraction of the cost: no graph, no full-size
    zero tensor for the slice's backward, three in-place kernels per tensor.
    """
    add_pull_grad_(
        [
            *zip(net.weights, (pw for pw, _ in prev), strict=True),
            *zip(net.biases, (pb for _, pb in prev), strict=True),
        ],
        lam,
    )


@torch.no_grad()
def add_pull_grad_(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], lam: float) -> None:
    """In place, for every (param, anchor): param.grad[block] += 2 lam (param[block] - anchor),
    where block is the corner of ``param`` of ``anchor``'s shape (the part that existed
    before the task). The one implementation of the lam pull's closed-form gradient."""
    for param, anchor in pairs:
        if param.grad is None:
            continue
        diff = old_part(param, anchor) - anchor
        old_part(param.grad, anchor).add_(diff.mul_(2.0).mul_(lam))


@torch.no_grad()
def unit_drift(
    weight: torch.Tensor, bias: torch.Tensor, prev: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """rho_i = ||(w_i, b_i)^t - (w_i, b_i)^{t-1}||_2 over old inputs, for every old unit i
    (float [n_old]). The bias counts: a unit whose bias moved computes something new."""
    pw, pb = prev
    diff = (old_part(weight, pw) - pw).reshape(pw.shape[0], -1)
    return torch.sqrt(diff.pow(2).sum(1) + (bias[: pb.shape[0]] - pb).pow(2))


def nonzero_fraction(net: MultiHeadNet) -> list[float]:
    """Fraction of each hidden layer's weights that are not exactly 0 (biases excluded)."""
    return [round(int(torch.count_nonzero(w)) / max(w.numel(), 1), 4) for w in net.weights]
