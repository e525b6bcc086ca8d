"""Continual-learning metrics (den/metrics.py) against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from den.engine import metrics

# R[i][j] = accuracy on task j after learning task i; None above the diagonal.
R = [
    [0.90, None, None],
    [0.95, 0.80, None],
    [0.60, 0.50, 0.95],
]
# average accuracy after the last task = mean of the last row = (0.60 + 0.50 + 0.95) / 3
#   = 2.05 / 3 = 0.683333...
# BWT = mean over j < 2 of R[2][j] - R[j][j] = ((0.60 - 0.90) + (0.50 - 0.80)) / 2 = -0.30
#   (R[1][0] = 0.95 does not enter BWT: it compares with the accuracy right after learning.)
# forgetting = mean over j < 2 of max_{l in j..1} R[l][j] - R[2][j]
#   j = 0: max(0.90, 0.95) - 0.60 = 0.35;  j = 1: max(0.80) - 0.50 = 0.30  ->  0.325
#   (here the best earlier accuracy of task 0 is the one after task 1, so it differs from -BWT)
# average accuracy curve = mean of row i over its i + 1 entries:
#   [0.90, (0.95 + 0.80) / 2 = 0.875, 0.683333...]


def test_average_final_accuracy_is_the_mean_of_the_last_row():
    assert metrics.average_final(R) == pytest.approx(2.05 / 3)


def test_backward_transfer():
    assert metrics.backward_transfer(R) == pytest.approx(-0.30)


def test_forgetting_uses_the_best_earlier_accuracy():
    assert metrics.forgetting(R) == pytest.approx(0.325)


def test_average_accuracy_curve():
    assert metrics.average_accuracy_curve(R) == pytest.approx([0.90, 0.875, 2.05 / 3])


def test_single_task_has_no_transfer_or_forgetting():
    assert metrics.backward_transfer([[0.7]]) == 0.0
    assert metrics.forgetting([[0.7]]) == 0.0
    assert metrics.average_final([[0.7]]) == pytest.approx(0.7)


def test_summarise_builds_the_final_block():
    auroc = [[0.99, None, None], [0.98, 0.97, None], [0.90, 0.80, 0.96]]
    final = metrics.summarise(R, auroc, params=1500, base_params=1000)
    assert final["avg_acc"] == pytest.approx(2.05 / 3)
    assert final["avg_auroc"] == pytest.approx((0.90 + 0.80 + 0.96) / 3)
    assert final["bwt"] == pytest.approx(-0.30)
    assert final["forgetting"] == pytest.approx(0.325)
    # AUROC BWT = ((0.90 - 0.99) + (0.80 - 0.97)) / 2 = -0.13
    assert final["auroc_bwt"] == pytest.approx(-0.13)
    assert final["params"] == 1500
    assert final["capacity"] == pytest.approx(1.5)


# --------------------------------------------------------------------------- accuracy


def test_accuracy_is_the_fraction_of_correct_argmaxes():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0], [1.0, 2.0]])
    y = torch.tensor([0, 1, 1, 1])  # argmax 0, 1, 0, 1: 3 of 4 correct
    assert metrics.accuracy(logits, y) == pytest.approx(0.75)


def test_accuracy_of_no_examples_is_nan():
    assert math.isnan(metrics.accuracy(torch.empty(0, 3), torch.empty(0, dtype=torch.long)))


# --------------------------------------------------------------------------- AUROC


def test_binary_auroc_counts_ties_as_one_half():
    scores = torch.tensor([0.1, 0.4, 0.4, 0.8])
    positive = torch.tensor([False, True, False, True])
    # Positive/negative pairs: (0.4 vs 0.1) = 1, (0.4 vs 0.4) = 1/2 (tie), (0.8 vs 0.1) = 1,
    # (0.8 vs 0.4) = 1  ->  3.5 / 4 = 0.875.
    assert metrics.binary_auroc(scores, positive) == pytest.approx(0.875)


def test_binary_auroc_hand_case_with_several_ties():
    scores = torch.tensor([3.0, 1.0, 2.0, 2.0, 2.0, 0.0])
    positive = torch.tensor([True, False, True, False, False, True])
    # positives 3, 2, 0; negatives 1, 2, 2.
    # 3 beats all three -> 3;  2 beats 1, ties 2, 2 -> 1 + 1/2 + 1/2 = 2;  0 beats none -> 0.
    # (3 + 2 + 0) / (3 * 3) = 5/9.
    assert metrics.binary_auroc(scores, positive) == pytest.approx(5 / 9)


def test_binary_auroc_all_tied_is_one_half_and_one_class_is_nan():
    assert metrics.binary_auroc(torch.zeros(4), torch.tensor([True, False, True, False])) == 0.5
    assert math.isnan(metrics.binary_auroc(torch.rand(3), torch.tensor([True, True, True])))
    assert math.isnan(metrics.binary_auroc(torch.rand(3), torch.tensor([False, False, False])))


def test_mean_auroc_of_perfect_and_reversed_logits():
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    one_hot = torch.nn.functional.one_hot(y, 3).double()
    assert metrics.mean_auroc(5 * one_hot, y) == pytest.approx(1.0)
    # The true class gets the lowest score: every class ranks its positives last.
    assert metrics.mean_auroc(-5 * one_hot, y) == pytest.approx(0.0)


def test_mean_auroc_skips_classes_absent_from_the_labels():
    y = torch.tensor([0, 0, 1, 1])  # class 2 has no example: its AUROC is undefined
    logits = torch.tensor([[3.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 2.0, 0.0]])
    assert metrics.mean_auroc(logits, y) == pytest.approx(1.0)
