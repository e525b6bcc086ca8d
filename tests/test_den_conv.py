"""DEN on convolutional layers: filters are the units. The fully connected tests of
test_den.py, repeated on a tiny conv net (2 conv layers, one fully connected layer), plus the
conv-to-fully-connected boundary, where one filter owns a spatial block of columns."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_den import fixed_batch
from test_den import make_den as make_tiny_den

from den.config.schema import ModelConfig
from den.errors import ConfigError
from den.models.network import MultiHeadNet, build_network
from den.strategies.den import ops
from den.strategies.den.config import DENConfig
from den.strategies.den.expansion import add_units_everywhere, delete_dead_units, expand_network
from den.strategies.den.report import DENTaskReport
from den.strategies.den.split import split_drifted_units
from den.strategies.den.strategy import DENStrategy

from conftest import tiny_permuted_stream

CPU = torch.device("cpu")
SHAPE = (1, 6, 6)
# 6x6 -> conv 3x3 (4 filters) -> pool 2 -> 3x3 -> conv 3x3 (5 filters), no pool -> 3x3, so
# the fully connected layer reads 5 filters x 9 positions = 45 columns, 9 per filter.
CONV = ModelConfig(
    name="tiny_conv", arch="conv", conv_channels=[4, 5], hidden=[8], kernel_size=3, pools=[2, 1]
)
BLOCK = 9


@pytest.fixture(scope="module")
def stream():
    return tiny_permuted_stream()


def make_den(**overrides) -> DENStrategy:
    return make_tiny_den(CONV, **overrides)


def den_before_its_second_task(stream, **overrides):
    """A DEN that learned task 1 and opened task 2's head: (den, net, task-1 snapshot, widths),
    where a test moves weights by hand before calling a DEN step on task 2."""
    den = make_den(**overrides)
    den.learn(stream[0])
    net = den.net
    prev = ops.snapshot(net)
    net.add_head(4, 1)
    return den, net, prev, net.widths()


def test_the_tiny_conv_net_has_a_spatial_block_per_filter_at_the_boundary():
    net = build_network(CONV, SHAPE)
    assert net.kinds == ["conv", "conv", "linear"]
    assert net.in_blocks[2] == BLOCK
    assert net.weights[2].shape == (8, 5 * BLOCK)


def test_sparse_task1_training_leaves_exact_zeros_in_filters(stream):
    den = make_den(l1=3e-3)
    den.learn(stream[0])
    conv_zeros = sum(int((den.net.weights[layer] == 0).sum()) for layer in (0, 1))
    conv_total = sum(den.net.weights[layer].numel() for layer in (0, 1))
    assert conv_zeros > 0.1 * conv_total  # the proximal step reaches conv weights too

    dense = make_den(l1=0.0)
    dense.learn(stream[0])
    assert sum(int((w == 0).sum()) for w in dense.net.weights) == 0


def test_l1_conv_sets_the_filters_l1_apart_from_the_fully_connected_layers(stream):
    # Task 1 (sparse training) and task 2 (selective retraining on the compacted subnetwork,
    # the expansion and split training) all run the proximal step.
    den = make_den(l1=3e-3, l1_conv=0.0)
    den.learn(stream[0])
    den.learn(stream[1])
    assert all(int((den.net.weights[layer] == 0).sum()) == 0 for layer in (0, 1))
    assert int((den.net.weights[2] == 0).sum()) > 0.1 * den.net.weights[2].numel()

    conv_only = make_den(l1=0.0, l1_conv=3e-3)
    conv_only.learn(stream[0])
    assert int((conv_only.net.weights[1] == 0).sum()) > 0
    assert int((conv_only.net.weights[2] == 0).sum()) == 0


def test_filter_group_pruning_removes_exactly_the_zeroed_filters_and_their_blocks(stream):
    den = make_den()
    den.learn(stream[0])
    net = den.net
    net.add_head(4, 1)
    before = net.widths()  # [4, 5, 8]
    add_units_everywhere(net, 1, k=3)
    assert net.widths() == [w + 3 for w in before]
    # kill filter 1 of the new filters of conv layer 0 and filter 0 and 2 of conv layer 1
    dead = {0: [before[0] + 1], 1: [before[1], before[1] + 2]}
    with torch.no_grad():
        for layer, units in dead.items():
            net.weights[layer][units] = 0
            net.biases[layer][units] = 0
    survivors_conv1 = net.weights[1][[before[1] + 1]].clone()  # [1, in, 3, 3]
    fc = net.weights[2].detach().clone()
    kept = delete_dead_units(net, 1)
    assert kept == [2, 1, 3]
    assert net.widths() == [before[0] + 2, before[1] + 1, before[2] + 3]
    # conv layer 1's surviving new filter lost exactly the input channel of the dead filter
    in_keep = [c for c in range(before[0] + 3) if c not in dead[0]]
    assert torch.equal(net.weights[1][before[1]], survivors_conv1[0, in_keep])
    # the fully connected layer lost exactly the two dead filters' 9-column blocks
    dead_cols = {u * BLOCK + i for u in dead[1] for i in range(BLOCK)}
    keep_cols = [c for c in range(fc.shape[1]) if c not in dead_cols]
    assert net.weights[2].shape[1] == (before[1] + 1) * BLOCK
    assert torch.equal(net.weights[2], fc[:, keep_cols])


def test_group_soft_threshold_zeroes_whole_filters():
    w = torch.zeros(3, 2, 3, 3)
    w[0] = 0.01  # norm 0.18 with its bias: below the threshold, the whole filter goes
    w[1] = 1.0  # norm sqrt(18) = 4.24: shrunk, not zeroed
    w[2] = 0.01  # small, but not a group of this phase
    b = torch.zeros(3)
    ops.group_soft_threshold_(w, b, torch.tensor([True, True, False]), threshold=1.0)
    assert torch.equal(w[0], torch.zeros(2, 3, 3))
    assert torch.allclose(w[1], torch.full((2, 3, 3), 1 - 1 / 18**0.5))
    assert torch.equal(w[2], torch.full((2, 3, 3), 0.01))


def test_expansion_leaves_earlier_task_predictions_bit_identical(stream):
    den = make_den(k=4)
    den.learn(stream[0])
    x = fixed_batch(stream)
    before = den.predict(x, 0)
    den.net.add_head(4, 1)
    train, val = den.task_data(stream[1])
    report = DENTaskReport()
    expand_network(den, 1, train, val, report)
    assert report.expansion_kept[0] > 0 and report.expansion_kept[1] > 0  # filters kept
    assert torch.equal(den.predict(x, 0), before)


@pytest.mark.parametrize("k_conv", [0, 2])
def test_k_conv_sets_the_filters_an_expansion_adds_to_conv_layers_only(stream, k_conv):
    den = make_den(k=4, k_conv=k_conv, gl=0.0, l1=0.0)  # no sparsity: every new unit survives
    den.learn(stream[0])
    x = fixed_batch(stream)
    before_widths, before = den.net.widths(), den.predict(x, 0)
    den.net.add_head(4, 1)
    train, val = den.task_data(stream[1])
    report = DENTaskReport()
    expand_network(den, 1, train, val, report)
    assert report.expansion_added == [k_conv, k_conv, 4]
    assert den.net.widths() == [
        w + a for w, a in zip(before_widths, [k_conv, k_conv, 4], strict=True)
    ]
    assert torch.equal(den.predict(x, 0), before)
    assert den.predict(x, 1).shape == (x.shape[0], 4)


def test_k_layers_sets_each_layers_expansion_and_overrides_k_and_k_conv(stream):
    den = make_den(k=4, k_conv=2, k_layers=[1, 0, 5], gl=0.0, l1=0.0)  # every new unit survives
    den.learn(stream[0])
    x = fixed_batch(stream)
    before_widths, before = den.net.widths(), den.predict(x, 0)
    den.net.add_head(4, 1)
    train, val = den.task_data(stream[1])
    report = DENTaskReport()
    expand_network(den, 1, train, val, report)
    assert report.expansion_added == [1, 0, 5]
    assert den.net.widths() == [w + a for w, a in zip(before_widths, [1, 0, 5], strict=True)]
    assert torch.equal(den.predict(x, 0), before)


def test_k_layers_of_the_wrong_length_fails_before_training_naming_the_key(stream):
    run = SimpleNamespace(model=CONV)  # the conv network here has 3 layers
    with pytest.raises(ConfigError, match="strategy.k_layers"):
        DENStrategy.check_config(DENConfig(k_layers=[3, 3]), run)
    with pytest.raises(ConfigError, match="strategy.k_layers"):
        DENStrategy.check_config(DENConfig(k_layers=[3, -1, 0]), run)
    DENStrategy.check_config(DENConfig(k_layers=[3, 0, 1]), run)


def test_sigma_zero_gives_zero_forgetting_exactly(stream):
    den = make_den(sigma=0.0, sigma_conv=0.0, lam=0.01, tau=0.0)
    x0, x1 = fixed_batch(stream, 0), fixed_batch(stream, 1)
    den.learn(stream[0])
    after_first = den.predict(x0, 0)
    report = den.learn(stream[1])
    assert report.split[0] > 0 and report.split[1] > 0  # filters drifted and were split
    after_second = den.predict(x1, 1)
    den.learn(stream[2])
    assert torch.equal(den.predict(x0, 0), after_first)
    assert torch.equal(den.predict(x1, 1), after_second)


def test_a_drifted_filter_is_duplicated_against_sigma_conv(stream):
    # sigma (fully connected) is huge, sigma_conv small: only filters can split.
    den, net, prev, width = den_before_its_second_task(
        stream, split_train=False, sigma=100.0, sigma_conv=0.5
    )
    with torch.no_grad():
        net.weights[1][3] += 0.5  # filter 3 of conv layer 1: drift 0.5 * sqrt(4*9) = 3
        net.weights[1][0, 0, 0, 0] += 0.1  # filter 0 drifts by 0.1 < sigma_conv
        net.weights[2][0] += 1.0  # a fully connected unit drifts by sqrt(45) < 100
    train, val = den.task_data(stream[1])
    copies = split_drifted_units(den, 1, train, val, prev, DENTaskReport())
    assert copies == [0, 1, 0]
    assert net.widths() == [width[0], width[1] + 1, width[2]]
    assert torch.equal(net.weights[1][3], prev[1][0][3])  # the original is back
    assert net.unit_timestamps[1][-1].item() == 1
    # the copy's 9-column block was appended to the fully connected layer
    assert net.weights[2].shape[1] == (width[1] + 1) * BLOCK


@pytest.mark.parametrize(("max_split_conv", "copies"), [(None, [2, 2, 2]), (1, [1, 1, 2])])
def test_max_split_conv_caps_the_filter_copies_apart_from_the_units(stream, max_split_conv, copies):
    # Every filter and unit drifts past sigma; the cap keeps the most drifted (the larger
    # push), max_split_conv caps conv layers only (None: max_split_per_layer everywhere).
    den, net, prev, width = den_before_its_second_task(
        stream,
        split_train=False,
        sigma=0.5,
        sigma_conv=0.5,
        max_split_per_layer=2,
        max_split_conv=max_split_conv,
    )
    with torch.no_grad():
        for layer in range(net.num_layers):
            for unit in range(width[layer]):
                net.weights[layer][unit] += 1.0 + unit  # unit u drifts the most for the last u
    train, val = den.task_data(stream[1])
    assert split_drifted_units(den, 1, train, val, prev, DENTaskReport()) == copies
    assert net.widths() == [w + c for w, c in zip(width, copies, strict=True)]
    for layer, c in enumerate(copies):  # the most drifted (the last c units) are restored
        old = prev[layer][0]  # over the old inputs: the layer below grew by its copies
        for unit in range(width[layer] - c, width[layer]):
            assert torch.equal(net.weights[layer][unit, : old.shape[1]], old[unit])
        assert not torch.equal(net.weights[layer][0, : old.shape[1]], old[0])  # not split


def test_timestamped_inference_equals_the_sliced_network(stream):
    den = make_den(tau=0.0, sigma=0.0, sigma_conv=0.0, lam=0.01)
    for task in stream:
        den.learn(task)
    net = den.net
    assert net.widths()[:2] != net.widths_at(0)[:2]  # the conv layers grew
    x = fixed_batch(stream)
    for t in range(3):
        widths = net.widths_at(t)
        small = MultiHeadNet(SHAPE, widths[:2], widths[2:], kernel_size=3, pool=[2, 1])
        with torch.no_grad():
            small.weights[0].copy_(net.weights[0][: widths[0], :1])
            small.weights[1].copy_(net.weights[1][: widths[1], : widths[0]])
            small.weights[2].copy_(net.weights[2][: widths[2], : widths[1] * BLOCK])
            for layer in range(3):
                small.biases[layer].copy_(net.biases[layer][: widths[layer]])
            for head in range(t + 1):
                small.add_head(4, head)
            small.head_weights[t].copy_(net.head_weights[t])
            small.head_biases[t].copy_(net.head_biases[t])
        assert torch.equal(small(x, t), den.predict(x, t))


def test_pool_sizes_per_conv_layer_and_the_alexnet_shape():
    alexnet = ModelConfig(
        name="alexnet",
        arch="conv",
        conv_channels=[64, 128, 256, 256, 128],
        hidden=[384, 192],
        kernel_size=5,
        pools=[2, 2, 1, 1, 2],
    )
    net = build_network(alexnet, (3, 32, 32))
    # 32 -> 16 -> 8 -> 8 -> 8 -> 4: the first fully connected layer reads 128 x 4 x 4
    assert net.weights[5].shape == (384, 128 * 16)
    net.add_head(10, 0)
    assert net(torch.zeros(2, 3, 32, 32), 0).shape == (2, 10)


def test_pools_must_match_the_conv_layers():
    from den.errors import ConfigError

    bad = ModelConfig(name="m", arch="conv", conv_channels=[4, 4], hidden=[8], pools=[2])
    with pytest.raises(ConfigError, match=r"model\.pools"):
        build_network(bad, SHAPE)
