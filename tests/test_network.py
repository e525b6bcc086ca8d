"""MultiHeadNet (den/models/network.py): shapes, sizes, checkpoints and timestamped growth."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from den.config.schema import ModelConfig
from den.errors import ConfigError
from den.models.network import MultiHeadNet, build_network


def mlp_cfg(**kw) -> ModelConfig:
    return ModelConfig(**{"name": "mlp", "arch": "mlp", "hidden": [312, 128], **kw})


def conv_cfg(**kw) -> ModelConfig:
    base = {"name": "lenet", "arch": "conv", "conv_channels": [4, 6], "hidden": [16, 12]}
    return ModelConfig(**{**base, **kw})


def test_mlp_shapes():
    torch.manual_seed(0)
    net = build_network(mlp_cfg(), (1, 28, 28))
    net.add_head(10, 0)
    net.add_head(3, 1)
    assert net.kinds == ["linear", "linear"]
    assert [tuple(w.shape) for w in net.weights] == [(312, 784), (128, 312)]
    assert [tuple(w.shape) for w in net.head_weights] == [(10, 128), (3, 128)]
    x = torch.rand(5, 1, 28, 28)
    assert net(x, 0).shape == (5, 10)
    assert net(x, 1).shape == (5, 3)
    assert net.features(x).shape == (5, 128)


def test_conv_shapes():
    torch.manual_seed(0)
    net = build_network(conv_cfg(), (3, 32, 32))
    net.add_head(2, 0)
    assert net.kinds == ["conv", "conv", "linear", "linear"]
    # "same" padding, 2x2 pooling after each conv: 32 -> 16 -> 8, so 6 * 8 * 8 = 384 features.
    assert [tuple(w.shape) for w in net.weights] == [
        (4, 3, 5, 5),
        (6, 4, 5, 5),
        (16, 384),
        (12, 16),
    ]
    assert net(torch.rand(7, 3, 32, 32), 0).shape == (7, 2)


def test_conv_only_network_feeds_the_head_with_the_flattened_map():
    net = build_network(conv_cfg(conv_channels=[5], hidden=[]), (1, 28, 28))
    net.add_head(4, 0)
    assert tuple(net.head_weights[0].shape) == (4, 5 * 14 * 14)
    assert net(torch.rand(2, 1, 28, 28), 0).shape == (2, 4)


def test_num_parameters_of_the_den_mnist_mlp():
    net = build_network(mlp_cfg(), (1, 28, 28))
    net.add_head(10, 0)
    # (784 * 312 + 312) + (312 * 128 + 128) + (128 * 10 + 10) = 244920 + 40064 + 1290
    assert net.num_parameters() == 286274
    net.add_head(10, 1)
    assert net.num_parameters() == 286274 + 1290  # every head counts


def test_heads_must_be_added_in_task_order():
    net = build_network(mlp_cfg(hidden=[8]), (1, 4, 4))
    with pytest.raises(RuntimeError):
        net.add_head(2, 1)


def test_too_many_poolings_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.conv_channels"):
        build_network(conv_cfg(conv_channels=[2, 2, 2]), (1, 4, 4))


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"arch": "rnn", "hidden": [4]}, "model.arch"),
        ({"arch": "mlp", "hidden": []}, "model.hidden"),
        ({"arch": "mlp", "hidden": [4, 0]}, "model.hidden"),
        ({"arch": "conv", "hidden": [4]}, "model.conv_channels"),
        ({"arch": "mlp", "hidden": [4], "init": "xavier"}, "model.init"),
    ],
)
def test_impossible_model_configs_name_their_key(values, key):
    from den.config.validate import check_model, typed

    with pytest.raises(ConfigError) as err:
        check_model(typed("model", {"name": "m", **values}, ModelConfig))
    assert err.value.key == key


@pytest.mark.parametrize("make_cfg", [mlp_cfg, conv_cfg], ids=["mlp", "conv"])
def test_load_state_dict_into_a_fresh_network_reproduces_predictions(make_cfg):
    shape = (3, 16, 16)
    torch.manual_seed(0)
    net = build_network(make_cfg(), shape)
    net.add_head(10, 0)
    net.add_head(2, 1)
    state = copy.deepcopy(net.state_dict())
    x = torch.rand(6, *shape)

    torch.manual_seed(123)  # a different initialisation, and no heads yet
    fresh = build_network(make_cfg(), shape)
    fresh.load_state_dict(state)
    assert fresh.num_heads == 2
    for t in (0, 1):
        assert torch.equal(fresh(x, t), net(x, t))


def test_load_state_dict_restores_a_grown_network_and_its_timestamps(tmp_path):
    torch.manual_seed(0)
    net = MultiHeadNet((1, 8, 8), hidden=(6, 5))
    net.add_head(3, 0)
    net.add_head(3, 1)
    net.append_units(0, task_id=1, count=4)  # layer 0 grows to 10 units, layer 1 reads them
    net.append_units(1, task_id=1, count=2)  # layer 1 grows to 7 units, head 1 reads them
    x = torch.rand(4, 1, 8, 8)

    torch.save(net.state_dict(), tmp_path / "net.pt")  # through a file, as a checkpoint
    fresh = MultiHeadNet((1, 8, 8), hidden=(6, 5))
    fresh.growable = True  # as DEN's network is; others refuse widths the config does not give
    fresh.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
    assert fresh.widths() == [10, 7]
    assert fresh.widths_at(0) == [6, 5] and fresh.widths_at(1) == [10, 7]
    assert [ts.tolist() for ts in fresh.unit_timestamps] == [[0] * 6 + [1] * 4, [0] * 5 + [1] * 2]
    assert torch.equal(fresh(x, 0), net(x, 0))
    assert torch.equal(fresh(x, 1), net(x, 1))


def test_growth_for_a_new_task_leaves_old_task_outputs_bit_identical():
    torch.manual_seed(0)
    net = MultiHeadNet((1, 8, 8), hidden=(6, 5))
    net.add_head(3, 0)
    x = torch.rand(9, 1, 8, 8)
    before = net(x, 0).clone()
    net.add_head(2, 1)
    new = net.append_units(0, task_id=1, count=3)
    assert new.tolist() == [6, 7, 8]
    net.append_units(1, task_id=1, count=2)
    assert net.widths() == [9, 7]
    assert torch.equal(net(x, 0), before)  # task 0 never reads units created for task 1
    assert net.num_parameters_for(0) < net.num_parameters_for(1)


def test_delete_units_removes_their_rows_and_consumer_columns():
    torch.manual_seed(0)
    net = MultiHeadNet((1, 8, 8), hidden=(6, 5))
    net.add_head(3, 0)
    net.add_head(3, 1)
    net.append_units(0, task_id=1, count=3)
    kept_row = net.weights[0][7].detach().clone()
    net.delete_units(0, torch.tensor([6, 8]), task_id=1)
    assert net.widths() == [7, 5]
    assert torch.equal(net.weights[0][6], kept_row)
    assert tuple(net.weights[1].shape) == (5, 7)
    with pytest.raises(RuntimeError):
        net.delete_units(0, torch.tensor([0]), task_id=1)  # a unit of task 0


@pytest.mark.parametrize(
    "make_cfg, input_shape",
    [
        (lambda: mlp_cfg(hidden=[7, 6, 5]), (1, 6, 6)),  # layer 2 needs its whole input grad
        (lambda: conv_cfg(hidden=[9, 5]), (3, 8, 8)),  # linear layers after the convs
    ],
)
def test_frozen_old_units_gives_the_same_gradients_where_the_expansion_masks_allow(
    make_cfg, input_shape
):
    from den.strategies.den import ops

    torch.manual_seed(0)
    net = build_network(make_cfg(), input_shape)
    net.add_head(3, 0)
    net.add_head(4, 1)
    for layer in range(net.num_layers):
        net.append_units(layer, task_id=1, count=2)
    fresh, masks = ops.task_unit_masks(net, 1)  # what DEN's expansion lets move
    x, y = torch.rand(11, *input_shape), torch.randint(0, 4, (11,))

    def grads(fast: bool) -> list[torch.Tensor]:
        net.zero_grad(set_to_none=True)
        with net.frozen_old_units(1) if fast else contextlib.nullcontext():
            torch.nn.functional.cross_entropy(net(x, 1), y).backward()
        return [p.grad.clone() for p in [*net.weights, *net.biases, net.head_weights[1]]]

    full, fast = grads(False), grads(True)
    allowed = [*masks, *fresh, torch.ones_like(net.head_weights[1], dtype=torch.bool)]
    for g_full, g_fast, mask, param in zip(
        full, fast, allowed, [*net.weights, *net.biases, net.head_weights[1]], strict=True
    ):
        mask = mask.expand_as(param)
        assert torch.allclose(g_fast[mask], g_full[mask], rtol=1e-5, atol=1e-7)
        if param.ndim >= 2 and param is not net.head_weights[1]:  # a layer's old block
            assert not g_fast[~mask].any()
    # the plain backward does compute gradients for the frozen block (the masks discard them)
    assert any(g[~m.expand_as(g)].abs().sum() > 0 for g, m in zip(full, masks, strict=True))


def test_frozen_conv_backward_keeps_channels_last_and_the_plain_gradients():
    """The frozen-block conv backward runs in the input's memory format: the new filters'
    weight gradient and the input gradient equal the plain conv backward's bit for bit (the
    same oneDNN kernels on the same layout); the old filters' new channels agree to float
    rounding; the frozen block gets 0."""
    from den.models.network import _FrozenBlockConv

    torch.manual_seed(0)
    rows, cols = 6, 4  # 6 old filters of 4 old channels; 2 new filters, 1 new channel
    h0 = torch.randn(8, 5, 12, 12).contiguous(memory_format=torch.channels_last)
    weight0, bias0 = torch.randn(8, 5, 5, 5) * 0.1, torch.randn(8)
    dz = torch.randn(8, 8, 12, 12).contiguous(memory_format=torch.channels_last)

    def grads(frozen: bool) -> list[torch.Tensor]:
        h, weight, bias = (t.clone().requires_grad_(True) for t in (h0, weight0, bias0))
        if frozen:
            z = _FrozenBlockConv.apply(h, weight, bias, rows, cols, cols, 2)
        else:
            z = torch.nn.functional.conv2d(h, weight, bias, padding=2)
        z.backward(dz)
        return [h.grad, weight.grad, bias.grad]

    (dh, dw, db), (fh, fw, fb) = grads(False), grads(True)
    assert fh.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fh[:, cols:], dh[:, cols:]) and not fh[:, :cols].any()
    assert torch.equal(fw[rows:], dw[rows:])
    assert torch.allclose(fw[:rows, cols:], dw[:rows, cols:], rtol=1e-5, atol=1e-6)
    assert not fw[:rows, :cols].any()
    assert torch.allclose(fb[rows:], db[rows:], rtol=1e-4, atol=1e-4), (fb, db)
    assert not fb[:rows].any(), fb


def test_cached_first_layer_outputs_reach_the_next_conv_channels_last():
    """DEN's cache of layer 0's frozen units (no augmentation) hands its rows to layer 1 in
    the layout forward uses: channels-last (index_select returns NCHW), so layer 1's conv
    and its frozen-block backward keep the fast kernels; the logits equal forward's."""
    torch.manual_seed(0)
    net = build_network(conv_cfg(hidden=[9, 5]), (3, 8, 8))
    net.add_head(3, 0)
    net.add_head(4, 1)
    for layer in range(net.num_layers):
        net.append_units(layer, task_id=1, count=2)
    x = torch.rand(6, 3, 8, 8)
    rows = torch.tensor([4, 0, 5, 2])
    cached = net.first_layer_units(x, 0, net.widths_at(0)[0]).index_select(0, rows)
    layouts = []
    pre_activation = net.pre_activation

    def spy(layer, h, *args, **kwargs):
        layouts.append((layer, h.is_contiguous(memory_format=torch.channels_last)))
        return pre_activation(layer, h, *args, **kwargs)

    net.pre_activation = spy
    with torch.no_grad():
        logits = net.logits_from_old_first_layer(x[rows], cached, 1)
    assert (1, True) in layouts
    del net.pre_activation
    with torch.no_grad():
        assert torch.allclose(logits, net(x[rows], 1), atol=1e-6)
