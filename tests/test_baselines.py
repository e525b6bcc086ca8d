"""The baselines' defining behaviours on tiny data (issue: baselines).

Each test checks what makes the method that method: PNN and PackNet never change an earlier
task, EWC's penalty is the Fisher-weighted pull, an infinite L2 weight freezes the trunk,
LwF distils from the model before the task, ER's memory is bounded and class-balanced, joint
training sees every task at once.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from den.config.registry import STRATEGIES
from den.config.schema import ModelConfig, TrainerConfig
from den.data.streams.base import Split
from den.strategies import lwf as lwf_module
from den.strategies.er import ClassBalancedBuffer, ERConfig
from den.strategies.ewc import EWCConfig, fisher_diagonal
from den.strategies.l2 import L2Config
from den.strategies.packnet import FREE, PackNetConfig
from den.strategies.si import SIConfig

from conftest import tiny_permuted_stream

MLP = ModelConfig(name="tiny", arch="mlp", hidden=[12, 8])
CONV = ModelConfig(name="tiny_conv", arch="conv", conv_channels=[3, 4], hidden=[8], kernel_size=3)
TRAINER = TrainerConfig(max_iters=40, batch_size=32, patience=0, progress=False)


def make(cfg, model: ModelConfig = MLP, trainer: TrainerConfig = TRAINER):
    cls = STRATEGIES.get(cfg.name).target
    return cls(cfg, model, trainer, (1, 6, 6), torch.device("cpu"), seed=0)


def defaults(name: str):
    """The registered strategy ``name`` with its default settings."""
    return STRATEGIES.get(name).schema()


@pytest.fixture(scope="module")
def stream():
    return tiny_permuted_stream(3)


def probe(stream) -> torch.Tensor:
    return stream[0].split("test").x[:40]


# ----------------------------------------------------------------- every strategy
@pytest.mark.parametrize("model", [MLP, CONV], ids=["mlp", "conv"])
@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_learns_every_task_on_mlp_and_conv(name, model, stream):
    strategy = make(defaults(name), model)
    for task in stream:
        report = strategy.learn(task)
        assert report.phases, "every strategy trains through the training loop"
    for task in stream:
        logits = strategy.predict(task.split("test").x[:5], task.task_id)
        assert logits.shape == (5, task.num_classes) and torch.isfinite(logits).all()
    assert strategy.num_parameters() > 0


# ----------------------------------------------------------------- zero forgetting by design
@pytest.mark.parametrize("model", [MLP, CONV], ids=["mlp", "conv"])
@pytest.mark.parametrize("name", ["pnn", "packnet"])
def test_pnn_and_packnet_leave_earlier_tasks_bit_identical(name, model, stream):
    strategy = make(defaults(name), model)
    x = probe(stream)
    strategy.learn(stream[0])
    first = strategy.predict(x, 0)
    strategy.learn(stream[1])
    second = strategy.predict(x, 1)
    strategy.learn(stream[2])
    assert torch.equal(strategy.predict(x, 0), first)
    assert torch.equal(strategy.predict(x, 1), second)


def test_pnn_trains_only_the_new_column_and_counts_laterals(stream):
    pnn = make(defaults("pnn"))
    pnn.learn(stream[0])
    column0 = [p.detach().clone() for p in pnn.pnn.columns[0].parameters()]
    pnn.learn(stream[1])
    assert all(
        torch.equal(a, b) for a, b in zip(column0, pnn.pnn.columns[0].parameters(), strict=True)
    )
    # two columns (784->... here 36-12-8), one lateral 12->8 into column 1, heads on 8 and 16
    column = 36 * 12 + 12 + 12 * 8 + 8
    expected = 2 * column + 12 * 8 + (4 * 8 + 4) + (4 * 16 + 4)
    assert pnn.num_parameters() == expected


def test_packnet_frees_pruned_weights_and_counts_masks_as_bits(stream):
    packnet = make(PackNetConfig(prune=0.5))
    packnet.learn(stream[0])
    owner = packnet.owners[0]
    weight = packnet.net.weights[0].detach()
    assert int((owner == 0).sum()) == owner.numel() - owner.numel() // 2
    assert torch.all(weight[owner == FREE] == 0)  # pruned weights are zero until reused
    kept = weight[owner == 0].clone()
    packnet.learn(stream[1])
    assert torch.equal(packnet.net.weights[0].detach()[owner == 0], kept)
    assert int((packnet.owners[0] == 1).sum()) > 0  # task 2 trained the freed weights
    trunk = sum(w.numel() for w in packnet.net.weights)
    assert packnet.num_parameters() == packnet.net.num_parameters() + 2 * trunk // 32


def test_stl_shares_nothing(stream):
    stl = make(defaults("stl"))
    stl.learn(stream[0])
    stl.learn(stream[1])
    assert not {id(p) for p in stl.nets[0].parameters()} & {id(p) for p in stl.nets[1].parameters()}


# ----------------------------------------------------------------- EWC
def hand_fisher(net, task_id: int, data: Split, expected: bool = True) -> list[torch.Tensor]:
    """sum_c p(c|x) (d log p(c|x) / d theta)^2 (or the true label's term only), averaged over
    examples, by plain autograd one example and one class at a time."""
    trunk = net.trunk_parameters()
    total = [torch.zeros_like(p) for p in trunk]
    for i in range(len(data)):
        log_p = F.log_softmax(net(data.x[i : i + 1], task_id)[0], dim=-1)
        classes = range(log_p.shape[0]) if expected else [int(data.y[i])]
        for c in classes:
            grads = torch.autograd.grad(log_p[c], trunk, retain_graph=True)
            weight = log_p[c].exp().detach() if expected else 1.0
            for t, g in zip(total, grads, strict=True):
                t += weight * g.square()
    return [t / len(data) for t in total]


@pytest.mark.parametrize("expected", [True, False], ids=["expected", "empirical"])
@pytest.mark.parametrize("model", [MLP, CONV], ids=["mlp", "conv"])
def test_fisher_matches_per_example_autograd(model, expected, stream):
    ewc = make(EWCConfig(), model)
    ewc.learn(stream[0])
    data = stream[0].split("train")
    data = Split(data.x[:7], data.y[:7])
    auto = fisher_diagonal(ewc.net, 0, data, expected=expected, batch_size=3)
    for a, h in zip(auto, hand_fisher(ewc.net, 0, data, expected), strict=True):
        torch.testing.assert_close(a, h, rtol=1e-4, atol=1e-9)


def test_ewc_penalty_is_zero_at_the_anchor_and_its_gradient_is_fisher_weighted(stream):
    lam = 3.0
    ewc = make(EWCConfig(lam=lam, fisher_samples=None))
    ewc.learn(stream[0])
    assert float(ewc.penalty().detach()) == 0.0  # at the anchor
    train = stream[0].split("train")
    fisher = hand_fisher(ewc.net, 0, train)
    trunk = ewc.net.trunk_parameters()
    anchor = [p.detach().clone() for p in trunk]
    with torch.no_grad():
        for p in trunk:
            p.add_(torch.randn_like(p) * 0.1)
    grads = torch.autograd.grad(ewc.penalty(), trunk)
    for g, f, p, a in zip(grads, fisher, trunk, anchor, strict=True):
        torch.testing.assert_close(g, 2 * lam * f * (p.detach() - a), rtol=1e-3, atol=1e-7)


def test_separate_ewc_penalties_sum_and_online_ewc_decays(stream):
    separate, online = make(EWCConfig()), make(EWCConfig(online=True, gamma=0.5))
    for strategy in (separate, online):
        strategy.learn(stream[0])
    f0 = [i.clone() for i in separate.importance]
    a0 = [a.clone() for a in separate.anchor]
    for strategy in (separate, online):
        strategy.learn(stream[1])
    trunk = separate.net.trunk_parameters()
    after = [p.detach().clone() for p in trunk]
    f1 = [i - f for i, f in zip(separate.importance, f0, strict=True)]
    # sum_k F_k (theta - theta_k)^2 and the merged A (theta - m)^2 have the same gradient
    with torch.no_grad():
        for p in trunk:
            p.add_(torch.randn_like(p) * 0.1)
    grads = torch.autograd.grad(separate.penalty(), trunk)
    for g, p, fa, aa, fb, ab in zip(grads, trunk, f0, a0, f1, after, strict=True):
        expected = 2 * separate.cfg.lam * (fa * (p.detach() - aa) + fb * (p.detach() - ab))
        torch.testing.assert_close(g, expected, rtol=1e-3, atol=1e-6)
    assert all(
        torch.equal(a, b) for a, b in zip(online.anchor, online.current_trunk(), strict=True)
    )


# ----------------------------------------------------------------- L2 and SI
def test_l2_with_infinite_weight_freezes_the_trunk(stream):
    l2 = make(L2Config(lam=math.inf))
    l2.learn(stream[0])
    trunk = [p.detach().clone() for p in l2.net.trunk_parameters()]
    report = l2.learn(stream[1])
    assert report.trunk_frozen
    assert all(torch.equal(a, b) for a, b in zip(trunk, l2.net.trunk_parameters(), strict=True))
    assert report.phases["train"]["steps"] == TRAINER.max_iters  # the new head did train


def test_l2_penalty_pulls_towards_the_previous_task(stream):
    l2 = make(L2Config(lam=0.5))
    l2.learn(stream[0])
    trunk = l2.net.trunk_parameters()
    with torch.no_grad():
        for p in trunk:
            p.add_(1.0)
    expected = 0.5 * sum(p.numel() for p in trunk)  # lam * ||+1||^2
    assert float(l2.penalty().detach()) == pytest.approx(expected)


def test_si_importance_is_nonnegative_and_grows_with_tasks(stream):
    si = make(SIConfig())
    si.learn(stream[0])
    first = [o.clone() for o in si.importance]
    si.learn(stream[1])
    assert all(bool((o >= 0).all()) for o in si.importance)
    assert sum(float(o.sum()) for o in first) > 0
    assert all(bool((b >= a).all()) for a, b in zip(first, si.importance, strict=True))
    assert float(si.penalty().detach()) == 0.0  # anchor = the weights just trained


# ----------------------------------------------------------------- LwF
def test_lwf_distils_from_the_model_before_the_task(stream, monkeypatch):
    lwf = make(defaults("lwf"))
    lwf.learn(stream[0])
    x = probe(stream)
    before_task2 = lwf.predict(x, 0)
    seen = []
    original = lwf_module.distillation

    def spy(net, before, features, xb, t, temperature):
        seen.append(before(x, 0))  # the targets' source, at every step
        if len(seen) == 1:
            # the loss is the soft cross-entropy against the frozen model's outputs
            target = F.softmax(before(xb, 0) / temperature, dim=-1)
            own = F.log_softmax(net(xb, 0) / temperature, dim=-1)
            expected = -(target * own).sum(-1).mean()
            torch.testing.assert_close(
                original(net, before, features, xb, t, temperature), expected
            )
        return original(net, before, features, xb, t, temperature)

    monkeypatch.setattr(lwf_module, "distillation", spy)
    lwf.learn(stream[1])
    assert len(seen) == TRAINER.max_iters
    assert torch.equal(seen[-1], before_task2)  # the last step's targets: the model before task 2
    assert not torch.equal(lwf.predict(x, 0), before_task2)  # while the model itself moved


def test_lwf_trains_old_heads_unless_told_not_to(stream):
    heads = {}
    for train_old in (True, False):
        lwf = make(dataclasses.replace(defaults("lwf"), train_old_heads=train_old))
        lwf.learn(stream[0])
        head0 = lwf.net.head_weights[0].detach().clone()
        lwf.learn(stream[1])
        heads[train_old] = torch.equal(lwf.net.head_weights[0], head0)
    assert heads == {True: False, False: True}


# ----------------------------------------------------------------- ER
def test_er_buffer_is_bounded_and_class_balanced(stream):
    er = make(ERConfig(buffer_size=50))
    for task in stream:
        report = er.learn(task)
        counts = list(er.buffer.counts().values())
        assert len(er.buffer) <= 50 and report.storage["buffer_examples"] == len(er.buffer)
        assert max(counts) - min(counts) <= 1  # every (task, class) pair gets an equal share
        assert len(counts) == 4 * (task.task_id + 1)
    assert len(er.buffer) == 50  # full: 12 pairs share the 50 slots (5 pairs get one more)


def test_buffer_keeps_examples_of_the_right_class():
    buffer = ClassBalancedBuffer(6)
    x = torch.arange(20.0).reshape(20, 1, 1, 1)
    y = torch.tensor([0, 1] * 10)
    buffer.add_task(0, Split(x, y), torch.Generator().manual_seed(0))
    for (_, c), stored in buffer.examples.items():
        assert stored.shape[0] == 3
        assert torch.all(stored.flatten().long() % 2 == c)


def test_er_replays_old_tasks_in_every_step(stream, monkeypatch):
    er = make(ERConfig(buffer_size=40))
    er.learn(stream[0])
    batches = []
    original = er.labels.loss

    def spy(net, x, y):
        batches.append(y.clone())
        return original(net, x, y)

    monkeypatch.setattr(er.labels, "loss", spy)
    er.learn(stream[1])
    assert len(batches) == TRAINER.max_iters
    offset = er.labels.offset(1)
    assert all(bool((y < offset).any()) and bool((y >= offset).any()) for y in batches)


# ----------------------------------------------------------------- joint
def test_joint_sees_every_task_in_one_phase(stream, monkeypatch):
    joint = make(defaults("joint"))
    phases = []
    original = joint.fit

    def spy(name, params, objective, train, val, task_id, **kwargs):
        phases.append((name, len(train), sorted(train.y.unique().tolist())))
        return original(name, params, objective, train, val, task_id, **kwargs)

    monkeypatch.setattr(joint, "fit", spy)
    for task in stream:
        joint.learn(task)
    name, size, labels = phases[-1]
    assert len(phases) == 3  # one phase per task
    assert size == sum(len(task.split("train")) for task in stream)
    assert labels == list(range(12))  # 3 tasks x 4 classes, in their own label blocks
