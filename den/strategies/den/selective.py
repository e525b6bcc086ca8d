"""DEN's task 1 (sparse training) and step 1, selective retraining (paper Sec. 3, Eq. 2)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from den.data.streams.base import Split
from den.engine.training import PhaseResult, cross_entropy, evaluate_loss
from den.strategies.den import ops
from den.strategies.den.cache import in_batches
from den.strategies.den.report import DENTaskReport
from den.strategies.den.subnet import Subnetwork

if TYPE_CHECKING:
    from den.strategies.den.strategy import DENStrategy

log = logging.getLogger(__name__)


def train_sparse(s: DENStrategy, train: Split, val: Split, report: DENTaskReport) -> PhaseResult:
    """Task 1: minimise loss + mu * sum_l ||W_l||_1 with a proximal step after every
    optimiser step, so that weights become exactly zero (Eq. 2 for t = 1)."""
    return s.run_phase("sparse", 0, train, val, report, None, None, None)


def fit_sparse_head(
    s: DENStrategy, t: int, train: Split, val: Split, report: DENTaskReport
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
            Split(in_batches(net.features, d.x, s.trainer_cfg.eval_batch_size), d.y)
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
    report.phases["head_fit"] = {**result.as_dict(), "features": int(feats[0].x.shape[1])}
    return result


def selective_retrain(
    s: DENStrategy, t: int, train: Split, val: Split, prev: list, report: DENTaskReport
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
    report.selected = [int(m.sum()) for m in selected]
    report.selected_fraction = [round(int(m.sum()) / max(m.numel(), 1), 4) for m in selected]
    if all(report.selected):
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
        report.phases["selective"] = {**result.as_dict(), "widths": report.selected}
    else:
        # A layer with nothing selected cuts the head off the input: there is no subnetwork
        # to retrain, and the expansion has to learn the task.
        log.info("task %d: an empty selection %s, no selective retraining", t + 1, report.selected)
    data = train if s.cfg.expansion_loss == "train" else val
    return evaluate_loss(s.data_loss(net, t), data, s.trainer_cfg.eval_batch_size)
