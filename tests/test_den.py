"""DEN's defining behaviours, each on the smallest network and data that show it."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from den.config.schema import ModelConfig, TrainerConfig
from den.models.network import MultiHeadNet
from den.strategies.den import ops
from den.strategies.den.config import DENConfig
from den.strategies.den.expansion import (
    add_units_everywhere,
    delete_dead_units,
    expand_network,
    grow_network,
    task_val_loss,
)
from den.strategies.den.report import DENTaskReport
from den.strategies.den.split import split_drifted_units
from den.strategies.den.strategy import DENStrategy

from conftest import tiny_permuted_stream

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def stream():
    return tiny_permuted_stream()


TINY_MLP = ModelConfig(name="tiny", arch="mlp", hidden=[12, 8])


def make_den(model: ModelConfig = TINY_MLP, **overrides) -> DENStrategy:
    """DEN on the tiny 6x6 permuted stream (test_den_conv.py passes its conv model)."""
    cfg = DENConfig(**{"head_fit_iters": 20, **overrides})
    trainer = TrainerConfig(max_iters=40, batch_size=32, eval_every=10, patience=0, progress=False)
    return DENStrategy(cfg, model, trainer, (1, 6, 6), CPU, seed=0)


def fixed_batch(stream, task_id: int = 0) -> torch.Tensor:
    return stream[task_id].split("test").x[:50]


def test_sparse_task1_training_leaves_exact_zeros(stream):
    den = make_den(l1=3e-3)
    den.learn(stream[0])
    zeros = sum(int((w == 0).sum()) for w in den.net.weights)
    total = sum(w.numel() for w in den.net.weights)
    assert zeros > 0.2 * total  # the proximal step zeroes weights exactly

    dense = make_den(l1=0.0)
    dense.learn(stream[0])
    assert sum(int((w == 0).sum()) for w in dense.net.weights) == 0  # no L1: no exact zeros


def hand_built_net() -> MultiHeadNet:
    """4 inputs -> 4 units -> 3 units -> head with 2 outputs; chosen non-zeros only."""
    net = MultiHeadNet((1, 2, 2), hidden=(4, 3))
    with torch.no_grad():
        for w in net.weights:
            w.zero_()
        # layer 1 (3 units) reads layer-0 units: unit 0 <- 1, unit 1 <- 2, unit 2 <- 3
        net.weights[1][0, 1] = 1.0
        net.weights[1][1, 2] = 1.0
        net.weights[1][2, 3] = 1.0
        net.weights[0][:, :] = 1.0  # every layer-0 unit reads the input
    net.add_head(2, 0)
    with torch.no_grad():
        net.head_weights[0].zero_()
        net.head_weights[0][0, 0] = 0.5  # output 0 reads unit 0
        net.head_weights[0][1, 1] = 0.5  # output 1 reads unit 1; unit 2 is read by nobody
    return net


def test_selection_follows_nonzero_weights_from_every_head_output():
    net = hand_built_net()
    selected = ops.select_subnetwork(net, 0)
    assert selected[1].tolist() == [True, True, False]
    assert selected[0].tolist() == [False, True, True, False]


def test_selection_over_first_output_only_is_the_codes_variant():
    net = hand_built_net()
    selected = ops.select_subnetwork(net, 0, first_output_only=True)
    assert selected[1].tolist() == [True, False, False]
    assert selected[0].tolist() == [False, True, False, False]


def test_expansion_adds_k_units_then_deletes_exactly_the_zeroed_ones(stream):
    den = make_den()
    den.learn(stream[0])
    net = den.net
    net.add_head(4, 1)
    before = net.widths()
    add_units_everywhere(net, 1, k=5)
    assert net.widths() == [w + 5 for w in before]
    dead = {0: [before[0] + 1, before[0] + 3], 1: [before[1]]}
    survivors = {}
    with torch.no_grad():
        for layer, units in dead.items():
            net.weights[layer][units] = 0
            net.biases[layer][units] = 0
        for layer in range(2):
            alive = [
                u for u in range(before[layer], before[layer] + 5) if u not in dead.get(layer, [])
            ]
            survivors[layer] = net.weights[layer][alive].clone()
    kept = delete_dead_units(net, 1)
    assert kept == [3, 4]
    assert net.widths() == [before[0] + 3, before[1] + 4]
    # the survivors are the same units (their input columns from deleted units are removed)
    assert torch.equal(net.weights[0][before[0] :], survivors[0])
    cols_kept = [c for c in range(survivors[1].shape[1]) if c not in dead[0]]
    assert torch.equal(net.weights[1][before[1] :], survivors[1][:, cols_kept])


def test_expansion_leaves_earlier_task_predictions_bit_identical(stream):
    den = make_den(k=6)
    den.learn(stream[0])
    x = fixed_batch(stream)
    before = den.predict(x, 0)
    den.net.add_head(4, 1)
    train, val = den.task_data(stream[1])
    report = DENTaskReport()
    expand_network(den, 1, train, val, report)
    assert sum(report.expansion_kept) > 0  # the test needs a real expansion
    assert torch.equal(den.predict(x, 0), before)


def _task2_after_task1(stream, **overrides):
    """DEN after task 1, with head 2 added: the state in which step 2 runs."""
    den = make_den(**overrides)
    den.learn(stream[0])
    den.net.add_head(4, 1)
    train, val = den.task_data(stream[1])
    return den, train, val


def test_grow_network_defaults_to_one_expansion(stream):
    den, train, val = _task2_after_task1(stream, k=6)
    twin = copy.deepcopy(den)
    report, twin_report = DENTaskReport(), DENTaskReport()
    torch.manual_seed(5)  # new units draw their initial weights from the global generator
    kept = grow_network(den, 1, train, val, report)
    torch.manual_seed(5)
    assert kept == expand_network(twin, 1, train, val, twin_report)
    assert report.expansion_rounds is None
    for a, b in zip(den.net.parameters(), twin.net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_grow_network_undoes_a_round_without_the_stated_drop(stream):
    den, train, val = _task2_after_task1(stream, k=6, expansion_rounds=3)
    x = fixed_batch(stream, 1)
    widths, before, loss = den.net.widths(), den.predict(x, 1), task_val_loss(den, 1, val)
    den.cfg = dataclasses.replace(den.cfg, expansion_min_drop=0.999)  # no round can buy it
    report = DENTaskReport()
    assert grow_network(den, 1, train, val, report) == [0, 0]
    (only,) = report.expansion_rounds
    assert only["undone"] and only["val_loss_before"] == pytest.approx(loss, rel=1e-6)
    assert den.net.widths() == widths  # the network before the round is back
    assert torch.equal(den.predict(x, 1), before)


def test_grow_network_grows_while_rounds_buy_the_drop(stream):
    den, train, val = _task2_after_task1(stream, k=4, gl=0.0, expansion_rounds=3)
    den.cfg = dataclasses.replace(den.cfg, expansion_min_drop=0.0)  # any drop buys a round
    widths = den.net.widths()
    report = DENTaskReport()
    kept = grow_network(den, 1, train, val, report)
    rounds = report.expansion_rounds
    assert 1 <= len(rounds) <= 3
    for r in rounds:
        if not r["undone"]:
            assert r["val_loss_after"] <= r["val_loss_before"]
    done = [r for r in rounds if not r["undone"]]
    assert kept == done[-1]["kept"] and report.expansion_added == [4 * len(done)] * 2
    assert den.net.widths() == [w + k for w, k in zip(widths, kept, strict=True)]
    assert "round(s) kept" in report.describe(0.01)


def test_sigma_zero_gives_zero_forgetting_exactly(stream):
    den = make_den(sigma=0.0, lam=0.01, tau=0.0)
    x0, x1 = fixed_batch(stream, 0), fixed_batch(stream, 1)
    den.learn(stream[0])
    after_first = den.predict(x0, 0)
    report = den.learn(stream[1])
    assert sum(report.split) > 0  # units moved and were split
    after_second = (den.predict(x0, 0), den.predict(x1, 1))
    den.learn(stream[2])
    assert torch.equal(den.predict(x0, 0), after_first)
    assert torch.equal(den.predict(x1, 1), after_second[1])


def test_split_cap_keeps_the_cap_and_reports_how_many_units_passed_sigma(stream):
    den = make_den(sigma=0.0, lam=0.01, tau=0.0, max_split_per_layer=1)
    den.learn(stream[0])
    widths = den.net.widths()
    report = den.learn(stream[1])
    assert all(n > 1 for n in report.over_sigma)  # at sigma 0 every retrained unit drifts
    assert report.split == [1] * len(widths)  # but only the cap is split
    kept = report.expansion_kept
    assert den.net.widths() == [w + 1 + k for w, k in zip(widths, kept, strict=True)]


def test_drifted_unit_is_duplicated_and_original_keeps_old_weights(stream):
    den = make_den(split_train=False, sigma=0.5)
    den.learn(stream[0])
    net = den.net
    prev = ops.snapshot(net)
    net.add_head(4, 1)
    width = net.widths()
    with torch.no_grad():
        net.weights[0][2] += 1.0  # unit 2 of layer 0 drifts by sqrt(36) = 6 > sigma
        net.weights[1][5, 0] += 0.1  # unit 5 of layer 1 drifts by 0.1 < sigma
    moved = net.weights[0][2].detach().clone()
    train, val = den.task_data(stream[1])
    report = DENTaskReport()
    copies = split_drifted_units(den, 1, train, val, prev, report)
    assert copies == [1, 0]
    assert net.widths() == [width[0] + 1, width[1]]
    assert torch.equal(net.weights[0][2], prev[0][0][2])  # original: pre-task weights
    assert net.unit_timestamps[0][-1].item() == 1  # the copy belongs to task 1
    # the copy started from the drifted weights; only the retrain on task 1 moved it since
    assert not torch.equal(net.weights[0][-1], prev[0][0][2])
    assert torch.allclose(net.weights[0][-1], moved, atol=0.2)
    assert net.weights[1][5, 0].item() == pytest.approx(prev[1][0][5, 0].item() + 0.1)


@pytest.mark.parametrize("sigma, runs", [(100.0, False), (0.0, True)])
def test_split_train_if_drifted_runs_the_phase_only_when_a_unit_passed_sigma(stream, sigma, runs):
    den = make_den(split_train_if_drifted=True, sigma=sigma, tau=0.0, lam=0.01)
    den.learn(stream[0])
    report = den.learn(stream[1])
    assert report.split_train_skipped is not runs
    assert ("split_train" in report.phases) is runs
    if runs:
        assert sum(report.split) > 0  # at sigma 0 the trained units drift and split
    else:
        assert report.split == [0, 0]
    always = make_den(sigma=100.0, tau=0.0, lam=0.01)  # the default trains before measuring
    always.learn(stream[0])
    assert "split_train" in always.learn(stream[1]).phases


def test_phase_budgets_cap_each_phase_and_default_to_the_trainers(stream):
    budgets = {"selective_iters": 7, "expansion_iters": 11, "split_iters": 13}
    den = make_den(head_fit_iters=5, tau=0.0, sigma=0.0, lam=0.01, **budgets)
    den.learn(stream[0])
    phases = den.learn(stream[1]).phases
    steps = {name: phase["steps"] for name, phase in phases.items()}
    # patience 0: every phase runs exactly its budget
    assert steps == {
        "head_fit": 5,
        "selective": 7,
        "expansion": 11,
        "split_train": 13,
        "split_retrain": 13,
    }
    assert make_den().learn(stream[0]).phases["sparse"]["steps"] == 40  # trainer.max_iters


def test_den_patience_applies_to_the_phases_after_task_1_only(stream, monkeypatch):
    import den.strategies.base as base

    seen = []
    real = base.train_phase

    def spy(name, *args, **kwargs):
        seen.append((name, kwargs.get("task_id"), kwargs.get("patience")))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(base, "train_phase", spy)
    den = make_den(patience=2, tau=0.0)
    den.learn(stream[0])
    den.learn(stream[1])
    assert seen[0] == ("sparse", 0, None)  # task 1 keeps trainer.patience
    assert {p for name, t, p in seen[1:]} == {2}
    assert [name for name, _, _ in seen[1:]][:3] == ["head_fit", "selective", "expansion"]


def test_cached_first_layer_losses_equal_the_data_loss_on_train_and_val(stream):
    from den.strategies.den.cache import OldFirstLayerData

    den = make_den(tau=0.0)
    den.learn(stream[0])
    den.net.add_head(stream[1].num_classes, 1)
    add_units_everywhere(den.net, 1, 3)
    train, val = den.task_data(stream[1])
    data = OldFirstLayerData(den.net, 1, train, val, batch_size=7)
    plain = den.data_loss(den.net, 1)
    with torch.no_grad():
        for split, loss, rows in (
            (train, data.train_loss, data.train),
            (val, data.val_loss, data.val),
        ):
            assert torch.allclose(loss(rows.x, rows.y), plain(split.x, split.y), atol=1e-6)


@pytest.mark.parametrize("augmented", [False, True])
def test_expansion_on_cached_old_first_layer_trains_as_the_full_forward(
    stream, monkeypatch, augmented
):
    """The expansion and the retrain after a split compute layer 0's frozen old units once
    (OldFirstLayerData): the run must match the one that computes them every step."""
    import den.strategies.den.strategy as den_module

    def run(cached: bool) -> tuple[DENStrategy, dict]:
        if not cached:
            monkeypatch.setattr(den_module.OldFirstLayerData, "usable", lambda *a: None)
        torch.manual_seed(0)  # the same initial network
        den = make_den(tau=0.0, sigma=0.0, lam=0.01)
        den.learn(stream[0])
        task = stream[1]
        if augmented:  # an augmented training split: no cache (its outputs vary per batch)
            task = dataclasses.replace(task)
            task.split = lambda name, _s=task.split: (
                dataclasses.replace(_s(name), augment=lambda x, g: x)
                if name == "train"
                else _s(name)
            )
        report = den.learn(task)
        monkeypatch.undo()
        return den, report

    spy = []
    real_init = den_module.OldFirstLayerData.__init__

    def counting_init(self, *args, **kwargs):
        spy.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(den_module.OldFirstLayerData, "__init__", counting_init)
    cached, report = run(cached=True)
    assert len(spy) == (0 if augmented else 2)  # the expansion and the retrain after the split
    assert sum(report.split) > 0 and "split_retrain" in report.phases
    plain, _ = run(cached=False)
    for a, b in zip(cached.net.parameters(), plain.net.parameters(), strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5)


def test_timestamped_inference_equals_the_sliced_network(stream):
    den = make_den(tau=0.0, sigma=0.0, lam=0.01)
    for task in stream:
        den.learn(task)
    net = den.net
    assert net.widths() != net.widths_at(0)  # the network grew
    x = fixed_batch(stream)
    for t in range(3):
        widths = net.widths_at(t)
        small = MultiHeadNet((1, 6, 6), hidden=widths)
        with torch.no_grad():
            n_in = 36
            for layer, n_out in enumerate(widths):
                small.weights[layer].copy_(net.weights[layer][:n_out, :n_in])
                small.biases[layer].copy_(net.biases[layer][:n_out])
                n_in = n_out
            for head in range(t + 1):
                small.add_head(4, head)
            small.head_weights[t].copy_(net.head_weights[t])
            small.head_biases[t].copy_(net.head_biases[t])
        assert torch.allclose(small(x, t), den.predict(x, t), atol=0, rtol=0)


def test_resume_from_state_dict_reproduces_predictions(stream):
    den = make_den(tau=0.0)
    den.learn(stream[0])
    den.learn(stream[1])
    state = den.state_dict()
    fresh = make_den(tau=0.0)
    fresh.load_state_dict(state)
    x = fixed_batch(stream)
    for t in range(2):
        assert torch.equal(fresh.predict(x, t), den.predict(x, t))
    assert fresh.net.widths() == den.net.widths()
    assert [ts.tolist() for ts in fresh.net.unit_timestamps] == [
        ts.tolist() for ts in den.net.unit_timestamps
    ]


def test_group_soft_threshold_zeroes_whole_units_only_where_asked():
    w = torch.tensor([[0.1, 0.0], [3.0, 4.0], [0.05, 0.05]])
    b = torch.zeros(3)
    rows = torch.tensor([True, True, False])
    ops.group_soft_threshold_(w, b, rows, threshold=1.0)
    assert torch.equal(w[0], torch.zeros(2))  # norm 0.1 < 1: the whole unit is gone
    assert torch.allclose(w[1], torch.tensor([3.0, 4.0]) * (1 - 1.0 / 5.0))
    assert torch.equal(w[2], torch.tensor([0.05, 0.05]))  # not a group of this phase


def test_config_rejects_negative_thresholds():
    from den.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy.sigma"):
        DENStrategy.check_config(dataclasses.replace(DENConfig(), sigma=-1.0))
    with pytest.raises(ConfigError, match="strategy.expansion_iters"):
        DENStrategy.check_config(dataclasses.replace(DENConfig(), expansion_iters=-5))
    with pytest.raises(ConfigError, match="strategy.expansion_rounds"):
        DENStrategy.check_config(dataclasses.replace(DENConfig(), expansion_rounds=0))
    with pytest.raises(ConfigError, match="strategy.expansion_min_drop"):
        DENStrategy.check_config(dataclasses.replace(DENConfig(), expansion_min_drop=1.5))


def test_closed_form_pull_gradient_equals_autograd_bit_for_bit(stream):
    """DEN's lam * ||W - W^{t-1}||^2 is added to the gradient in closed form (no graph); the
    result must be exactly what differentiating the penalty in the loss gives, grown layers
    included (the pull acts only on the block that existed before the task)."""
    torch.manual_seed(0)
    den = make_den()
    den.learn(stream[0])
    net = den.net
    prev = ops.snapshot(net)
    net.add_head(4, 1)
    add_units_everywhere(net, 1, k=3)  # the pulled block is now a corner of each weight
    with torch.no_grad():
        for w in net.weights:
            w.add_(0.01 * torch.randn_like(w))
    x, y = stream[1].split("train").x[:32], stream[1].split("train").y[:32]
    loss = den.data_loss(net, 1)
    params = [*net.weights, *net.biases, *net.head_parameters(1)]

    (loss(x, y) + 0.5 * ops.l2_to_previous(net, prev)).backward()
    autograd = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    loss(x, y).backward()
    data_only = params[0].grad.clone()
    ops.add_l2_to_previous_grad_(net, prev, 0.5)
    assert all(torch.equal(p.grad, g) for p, g in zip(params, autograd, strict=True))
    assert not torch.equal(data_only, autograd[0])  # the pull did contribute
    new_rows = slice(prev[0][0].shape[0], None)
    assert torch.equal(data_only[new_rows], autograd[0][new_rows])  # but not to new units
