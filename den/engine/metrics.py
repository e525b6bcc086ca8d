"""Continual-learning metrics, as separate pure functions.

``R`` is the accuracy matrix: ``R[i][j]`` = accuracy on task j after learning task i, defined
for j <= i (entries above the diagonal are None). All metrics take fractions and return them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a function needs it: den.compare starts fast
    import torch

Matrix = Sequence[Sequence[float | None]]


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` [N, C] whose argmax equals ``y`` [N] (correct / N, exact
    in double precision: 857 of 1,000 is 0.857)."""
    return int((logits.argmax(1) == y).sum()) / y.numel() if y.numel() else float("nan")


def float32_value(x: float) -> float:
    """``x`` as the shortest decimal that reads back as the same float32: a value measured in
    single precision (a loss, a weight statistic) without the digits float64 adds to it
    (0.8569999933242798 -> 0.857)."""
    import numpy as np

    return float(str(np.float32(x)))


def binary_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """ROC AUC of ``scores`` [N] for the boolean labels ``positive`` [N].

    The Mann-Whitney statistic with tied scores given their average rank, so it equals the
    area under the step ROC curve with ties counted as one half. NaN if a class is absent.
    """
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    import torch

    scores = scores.double()
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    # rank of the first of each group of tied values, then the group's average rank (1-based)
    first = torch.cumsum(counts, 0) - counts + 1
    avg_rank = first.double() + (counts.double() - 1) / 2
    ranks = avg_rank[inverse]
    rank_sum = ranks[positive].sum().item()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def mean_auroc(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over classes of the one-vs-rest ROC AUC of the softmax scores (the paper's AUROC).

    Classes absent from ``y`` (or present alone) are skipped.
    """
    import torch

    probs = torch.softmax(logits.double(), dim=1)
    values = [binary_auroc(probs[:, c], y == c) for c in range(logits.shape[1])]
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def average_final(R: Matrix) -> float:
    """Mean of the last row: average accuracy over all tasks after the last one."""
    last = [v for v in R[-1] if v is not None]
    return sum(last) / len(last)


def backward_transfer(R: Matrix) -> float:
    """BWT = mean over j < T of R[T-1][j] - R[j][j] (Lopez-Paz & Ranzato, 2017).

    Negative means forgetting; 0.0 for a single task.
    """
    T = len(R)
    if T < 2:
        return 0.0
    return sum(R[T - 1][j] - R[j][j] for j in range(T - 1)) / (T - 1)


def forgetting(R: Matrix) -> float:
    """Mean over j < T of max_{i < T-1} R[i][j] - R[T-1][j] (Chaudhry et al., 2018).

    The drop from each old task's best accuracy to its final one; 0.0 for a single task.
    """
    T = len(R)
    if T < 2:
        return 0.0
    return sum(max(R[i][j] for i in range(j, T - 1)) - R[T - 1][j] for j in range(T - 1)) / (T - 1)


def average_accuracy_curve(R: Matrix) -> list[float]:
    """Average accuracy over the tasks seen so far, after each task: mean of row i."""
    return [sum(v for v in row[: i + 1]) / (i + 1) for i, row in enumerate(R)]


def summarise(
    acc: Matrix, auroc: Matrix, params: int, base_params: int, nonzero_params: int | None = None
) -> dict[str, float]:
    """The ``final`` block of results.json. Capacity is relative to one base network with one
    head: ``capacity`` counts stored parameters, ``nonzero_capacity`` the non-zero ones (the
    paper's "network capacity" of a sparse network)."""
    out = {
        "avg_acc": average_final(acc),
        "avg_auroc": average_final(auroc),
        "bwt": backward_transfer(acc),
        "forgetting": forgetting(acc),
        "auroc_bwt": backward_transfer(auroc),
        "params": params,
        "capacity": params / base_params,
    }
    if nonzero_params is not None:
        out["nonzero_params"] = nonzero_params
        out["nonzero_capacity"] = nonzero_params / base_params
    return out
