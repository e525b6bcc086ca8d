"""DEN's settings: the paper's names, the authors' code's permuted-MNIST defaults.

Where a default or an option is neither the paper's nor the code's, its comment says so and
docs/decisions.md gives the evidence; docs/den.md has the fidelity table.
"""

from __future__ import annotations

from dataclasses import dataclass

from den.config.schema import StrategyConfig, StrEnum


class ProxScale(StrEnum):
    """How proximal thresholds scale: per step as the code (step) or by the lr (textbook)."""

    step = "step"
    lr = "lr"


class UnsplitDrift(StrEnum):
    """What happens to old units a split cap leaves past sigma."""

    keep = "keep"
    project = "project"
    restore = "restore"


class ExpansionLoss(StrEnum):
    """Which data loss is compared with tau."""

    train = "train"
    val = "val"


@dataclass
class DENConfig(StrategyConfig):
    """DEN's hyperparameters: the paper's names, the authors' code's permuted-MNIST values.
    Options that are neither the paper's nor the code's say so and link their evidence in
    docs/decisions.md; docs/den.md#fidelity-table lists every departure."""

    name: str = "den"
    l1: float = 1e-5  # mu: L1 sparsity of every phase (code: l1_lambda)
    # mu of conv filters; None = l1. Not in the paper or the code (one mu for every layer):
    # docs/decisions.md#den_cifar_sparsel1_conv
    l1_conv: float | None = None
    l2: float = 1e-4  # weight decay of every phase (code: l2_lambda)
    gl: float = 1e-3  # gamma: group lasso on the new units of the expansion (code: gl_lambda)
    lam: float = 0.5  # lambda: pull towards the previous task's weights (code: regular_lambda)
    k: int = 10  # units added to every hidden layer by an expansion (code: ex_k)
    k_conv: int | None = None  # filters added to every conv layer by an expansion; None = k
    # Units an expansion adds to each layer, one entry per layer (conv layers first); None = k
    # and k_conv. Not in the paper or the code: docs/decisions.md#den_pmnistk_layers
    k_layers: list[int] | None = None
    tau: float = 0.01  # expand when the loss after selective retraining exceeds this (loss_thr)
    sigma: float = 0.05  # split fully connected units that drift more (code spl_thr; paper 0.002)
    sigma_conv: float = 0.02  # the same for conv filters (paper)
    # step: threshold l1 per step (the code) | lr: lr * l1 (the textbook proximal step)
    prox_scale: ProxScale = ProxScale.step
    head_l1: float | None = None  # L1 of the sparse head fit (step 1.1); None = l1
    head_fit_iters: int | None = None  # sparse head fit of step 1; None = trainer.max_iters
    # Step budgets of the other phases, at most trainer.max_iters; None = trainer.max_iters.
    # Not in the paper or the code (one budget for every phase), cost settings:
    # docs/decisions.md#den_pmnistselective_iters
    selective_iters: int | None = None  # selective retraining of the subnetwork (step 1.3)
    expansion_iters: int | None = None  # training of the new units (step 2)
    split_iters: int | None = None  # split training and the retrain after a split (step 3)
    # Early-stopping patience (validation checks) of every phase after task 1; None =
    # trainer.patience. A cost setting like the budgets: docs/decisions.md#den_pmnistpatience
    patience: int | None = None
    search_first_output_only: bool = False  # True = the code's search over head column 0 only
    split_train: bool = True  # train with lambda before measuring drift (paper Eq. 4)
    # True: run split training only when some old unit drifted past sigma in selective
    # retraining (neither the paper nor the code: it saves the phase)
    split_train_if_drifted: bool = False
    split_always: bool = True  # False = split only after an expansion (the code)
    max_split_per_layer: int | None = None  # cap, most drifted first (the code caps at k)
    # cap of conv layers; None = max_split_per_layer. Not in the paper or the code: a copied
    # conv-2 filter also copies its columns into the first fully connected layer.
    # docs/decisions.md#den_cifar_sparsel1_gl_k_conv_max_split_conv
    max_split_conv: int | None = None
    # What happens to the old units a cap leaves unsplit past sigma: keep (their drift stays and
    # old tasks see it), project (moved back onto the sigma ball around W^{t-1}: the paper's
    # bound, that every unsplit unit drifted at most sigma, holds with the cap) or restore
    # (back to W^{t-1}, as the code's shallow copy does for every old unit). Not in the paper
    # (it has no cap): docs/decisions.md#den_cifar_sparseunsplit_drift
    unsplit_drift: UnsplitDrift = UnsplitDrift.keep
    keep_zeros: bool = False  # True: an old weight that is exactly 0 stays 0 (a pruned connection)
    # train | val: the data loss compared with tau (docs/decisions.md#denexpansion_loss)
    expansion_loss: ExpansionLoss = ExpansionLoss.train
    # Capacity that follows the task, neither the paper's nor the code's (both expand once by
    # k): up to expansion_rounds expansions per task; with expansion_min_drop set, a round that
    # lowers the task's validation loss by less than that fraction of its value is undone and
    # growth stops, so an easy task keeps few units and a hard one up to rounds x k.
    # docs/decisions.md#denexpansion_rounds
    expansion_rounds: int = 1
    expansion_min_drop: float | None = None
