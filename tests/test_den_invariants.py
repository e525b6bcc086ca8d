"""The invariants DEN relies on, each checked on a real (tiny) sparse DEN run.

Each test can fail: it compares against a reference computed here, not by the code under test
(e.g. timestamped inference against masks built from ``timestamp <= t``, not the prefix slices
the network uses).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from test_den import TINY_MLP, fixed_batch, make_den
from test_den_conv import CONV

from den.config.schema import ModelConfig
from den.strategies.den import ops
from den.strategies.den.report import DENTaskReport
from den.strategies.den.selective import selective_retrain
from den.strategies.den.split import split_drifted_units
from den.strategies.den.strategy import DENStrategy
from den.strategies.den.subnet import Subnetwork

from conftest import tiny_permuted_stream

CPU = torch.device("cpu")

# The lr-scaled proximal step (the default) at a strength that leaves a sparse network on the
# tiny stream within make_den's short budget (at lr 1e-2: make_sparse_den).
SPARSE = {"prox_scale": "lr", "l1": 0.5, "head_l1": 0.5}


def make_sparse_den(model: ModelConfig = TINY_MLP, **overrides) -> DENStrategy:
    torch.manual_seed(0)  # the initial weights
    den = make_den(model, **{**SPARSE, **overrides})
    den.trainer_cfg = dataclasses.replace(den.trainer_cfg, lr=1e-2, max_iters=60)
    return den


@pytest.fixture(scope="module")
def stream():
    return tiny_permuted_stream()


def test_lr_scaled_l1_leaves_a_sparse_network_and_the_codes_setting_does_not(stream):
    den = make_sparse_den()
    den.learn(stream[0])
    code = make_sparse_den(prox_scale="step", l1=1e-5)  # the authors' code's setting
    code.learn(stream[0])
    sparse = sum(ops.nonzero_fraction(den.net)) / den.net.num_layers
    dense = sum(ops.nonzero_fraction(code.net)) / code.net.num_layers
    print(f"non-zero fraction: lr-scaled {sparse:.3f}, the code's {dense:.3f}")
    assert sparse < 0.85
    assert dense > 0.95


def test_selection_on_a_trained_sparse_network_is_a_strict_subset(stream):
    den = make_sparse_den()
    den.learn(stream[0])
    widths = den.net.widths()
    report = den.learn(stream[1])
    assert all(s > 0 for s in report.selected)
    assert any(s < w for s, w in zip(report.selected, widths, strict=True))
    assert report.selected_fraction == [
        round(s / w, 4) for s, w in zip(report.selected, widths, strict=True)
    ]


def test_selective_retraining_changes_only_the_selected_subnetwork(stream, monkeypatch):
    searched = []
    search = ops.select_subnetwork
    monkeypatch.setattr(
        ops, "select_subnetwork", lambda *a: searched.append(search(*a)) or searched[-1]
    )
    den = make_sparse_den()
    den.learn(stream[0])
    net = den.net
    prev = ops.snapshot(net)
    net.add_head(4, 1)
    train, val = den.task_data(stream[1])
    report = DENTaskReport()
    selective_retrain(den, 1, train, val, prev, report)
    (selected,) = searched  # the selection the retrain used
    below = [ops.input_units_all(net, CPU), *selected[:-1]]
    moved_any = False
    for layer, (weight, bias) in enumerate(zip(net.weights, net.biases, strict=True)):
        inside = ops.weight_mask(net, layer, selected[layer], below[layer])
        before = prev[layer][0]
        assert torch.equal(weight[~inside], before[~inside])  # bit-identical outside S
        assert torch.equal(bias[~selected[layer]], prev[layer][1][~selected[layer]])
        moved_any |= not torch.equal(weight[inside], before[inside])
    assert moved_any  # the test needs a real retrain
    assert report.phases["selective"]["widths"] == report.selected


@pytest.mark.parametrize("model", [TINY_MLP, CONV], ids=["mlp", "conv"])
def test_gathered_subnetwork_computes_the_full_networks_head_output(stream, model):
    """Also across the conv-to-fully-connected boundary, where a filter owns a block of
    columns."""
    den = make_sparse_den(model)
    den.learn(stream[0])
    net = den.net
    net.add_head(4, 1)
    with torch.no_grad():
        # a sparse head: head t reads only some top units
        net.head_weights[1][:, ::2] = 0
    selected = ops.select_subnetwork(net, 1)
    sub = Subnetwork(net, 1, selected)
    x = fixed_batch(stream, 1)
    torch.testing.assert_close(sub.logits(x), net(x, 1), rtol=1e-5, atol=1e-6)
    # one gradient step on the gathered tensors equals the masked step on the full ones
    y = stream[1].split("test").y[:50]
    F.cross_entropy(sub.logits(x), y).backward()
    full = [*net.weights, net.head_weights[1]]
    loss = F.cross_entropy(net(x, 1), y)
    grads = torch.autograd.grad(loss, full)
    below = [ops.input_units_all(net, CPU), *selected[:-1]]
    for layer, (g, sw) in enumerate(zip(grads[:-1], sub.weights, strict=True)):
        mask = ops.weight_mask(net, layer, selected[layer], below[layer])
        torch.testing.assert_close(
            g[mask], sw.grad.reshape(-1), rtol=1e-4, atol=1e-6
        )  # row-major order of the selected block = the mask's order
    head_mask = ops.head_mask(net, 1, selected[-1])
    torch.testing.assert_close(grads[-1][head_mask], sub.head_weight.grad.reshape(-1))


def test_no_expansion_when_the_loss_is_below_tau(stream):
    den = make_sparse_den(tau=100.0)  # any loss is below it
    den.learn(stream[0])
    widths = den.net.widths()
    report = den.learn(stream[1])
    assert report.expanded is False
    assert "expansion" not in report.phases
    assert report.expansion_loss < 100.0
    assert den.net.widths() == [w + s for w, s in zip(widths, report.split, strict=True)]

    grows = make_sparse_den(tau=0.0)  # any loss is above it
    grows.learn(stream[0])
    assert grows.learn(stream[1]).expanded is True


@pytest.mark.parametrize("cap", [None, 1])
def test_unsplit_old_units_drift_at_most_sigma(stream, cap):
    """After a task, every old unit that was not split moved by at most sigma over its old
    inputs (split originals by exactly 0). With a cap on copies per layer, the units past
    sigma beyond the cap are exactly the ones left drifted (``over_sigma - split``)."""
    sigma = 0.05
    den = make_sparse_den(sigma=sigma, lam=0.01, tau=0.0, max_split_per_layer=cap)
    den.learn(stream[0])
    prev = ops.snapshot(den.net)
    report = den.learn(stream[1])
    left_drifted = 0
    for layer, (weight, bias) in enumerate(zip(den.net.weights, den.net.biases, strict=True)):
        drift = ops.unit_drift(weight, bias, prev[layer])
        split = drift == 0  # restored originals; an untouched unit also has 0, which is fine
        left_drifted += int((drift > sigma).sum())
        if cap is None:
            assert bool((drift <= sigma).all()), f"layer {layer}: {drift.max():.4f} > {sigma}"
        assert int(split.sum()) >= report.split[layer]
    over = sum(report.over_sigma)
    assert over > 0  # the test needs units past sigma
    assert left_drifted == over - sum(report.split)
    if cap is not None:
        assert left_drifted > 0  # the cap's effect: these units stay moved for old tasks


@pytest.mark.parametrize("model", [TINY_MLP, CONV], ids=["mlp", "conv"])
@pytest.mark.parametrize("mode", ["project", "restore"])
def test_unsplit_drift_brings_a_caps_leftovers_back_within_sigma(stream, mode, model):
    """With a split cap, ``unsplit_drift`` project / restore move the units past sigma that the
    cap left unsplit back onto the sigma ball / to W^{t-1}: the bound holds with the cap."""
    sigma = 0.05
    den = make_sparse_den(
        model,
        sigma=sigma,
        sigma_conv=sigma,
        lam=0.01,
        tau=0.0,
        max_split_per_layer=1,
        unsplit_drift=mode,
    )
    den.learn(stream[0])
    prev = ops.snapshot(den.net)
    report = den.learn(stream[1])
    left = [o - c for o, c in zip(report.over_sigma, report.split, strict=True)]
    assert sum(left) > 0  # the cap left units past sigma (the keep case test above)
    assert report.pulled_back == left
    restored = 0
    for layer, (weight, bias) in enumerate(zip(den.net.weights, den.net.biases, strict=True)):
        drift = ops.unit_drift(weight, bias, prev[layer])
        assert float(drift.max()) <= sigma * (1 + 1e-5), f"layer {layer}: {drift.max():.5f}"
        on_ball = int(torch.isclose(drift, torch.tensor(sigma), rtol=1e-4).sum())
        restored += int((drift == 0).sum()) - report.split[layer]
        if mode == "project":
            assert on_ball == left[layer]  # moved back exactly onto the ball, not further
    if mode == "restore":
        assert restored >= sum(left)


def test_split_in_the_top_hidden_layer_keeps_old_heads_and_feeds_the_new_head(stream):
    den = make_sparse_den(split_train=False, sigma=0.5)
    den.learn(stream[0])
    net = den.net
    x0 = fixed_batch(stream, 0)
    before = den.predict(x0, 0)
    prev = ops.snapshot(net)
    net.add_head(4, 1)
    top = net.num_layers - 1
    width = net.widths()
    with torch.no_grad():
        net.weights[top][3] += 1.0  # top-layer unit 3 drifts far past sigma
    train, val = den.task_data(stream[1])
    copies = split_drifted_units(den, 1, train, val, prev, DENTaskReport())
    assert copies[top] == 1
    assert net.widths()[top] == width[top] + 1
    assert torch.equal(net.weights[top][3], prev[top][0][3])  # the original is restored
    assert net.unit_timestamps[top][-1].item() == 1
    assert net.head_weights[0].shape[1] == width[top]  # the old head never grows
    assert net.head_weights[1].shape[1] == width[top] + 1  # head 1 reads the copy ...
    assert bool((net.head_weights[1][:, 3] == 0).all())  # ... and not the original, after
    assert bool((net.head_weights[1][:, -1] != 0).any())  # the retrain as well
    assert torch.equal(den.predict(x0, 0), before)


def test_old_heads_stay_bit_identical_over_later_tasks(stream):
    den = make_sparse_den(tau=0.0, sigma=0.01, lam=0.01)
    heads = []
    for task in stream:
        den.learn(task)
        for t, (w, b) in enumerate(heads):
            assert torch.equal(den.net.head_weights[t], w), f"head {t + 1} changed"
            assert torch.equal(den.net.head_biases[t], b), f"head {t + 1} bias changed"
        t = task.task_id
        heads.append(
            (den.net.head_weights[t].detach().clone(), den.net.head_biases[t].detach().clone())
        )


def masked_reference(net, x: torch.Tensor, t: int) -> torch.Tensor:
    """Task t's logits over the FULL matrices, with every unit of timestamp > t masked out of
    every layer's output (an independent reading of Sec. 3.4, not the prefix slices)."""
    h = x.flatten(1)
    for layer, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        visible = (net.unit_timestamps[layer] <= t).to(h.dtype)
        h = F.relu(F.linear(h, w, b)) * visible
    head = net.head_weights[t]
    return F.linear(h[:, : head.shape[1]], head, net.head_biases[t])


def test_timestamped_inference_equals_a_timestamp_masked_reference(stream):
    den = make_sparse_den(tau=0.0, sigma=0.01, lam=0.01)
    for task in stream:
        den.learn(task)
    net = den.net
    assert any(bool((ts > 0).any()) for ts in net.unit_timestamps)  # units of later tasks exist
    x = fixed_batch(stream)
    with torch.no_grad():
        for t in range(len(stream)):
            torch.testing.assert_close(
                den.predict(x, t), masked_reference(net, x, t), rtol=1e-5, atol=1e-6
            )


def test_keep_zeros_leaves_every_pruned_old_connection_at_zero(stream):
    """With keep_zeros, the connections L1 pruned stay pruned through every later phase. Task 2
    runs without L1, so nothing but the mask could put a revived weight back to 0 (the
    default, keep_zeros=false, revives them)."""

    def pruned_then_revived(keep_zeros: bool) -> tuple[int, int]:
        den = make_sparse_den(keep_zeros=keep_zeros, tau=0.0, sigma=10.0)  # expand, no split
        den.learn(stream[0])
        pruned = [w == 0 for w in den.net.weights]
        den.cfg = dataclasses.replace(den.cfg, l1=0.0, head_l1=0.5)
        den.learn(stream[1])
        back = sum(
            int((w[: p.shape[0], : p.shape[1]][p] != 0).sum())
            for w, p in zip(den.net.weights, pruned, strict=True)
        )
        return sum(int(p.sum()) for p in pruned), back

    pruned, back = pruned_then_revived(keep_zeros=True)
    assert pruned > 0  # the test needs pruned connections
    assert back == 0
    assert pruned_then_revived(keep_zeros=False)[1] > 0
