"""The one training loop (den/training.py): masks, weight decay, early stopping, divergence."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from den.config.schema import TrainerConfig
from den.data.streams.base import Split
from den.engine.training import cross_entropy, make_optimizer, train_phase
from den.errors import ConfigError, NonFiniteLossError
from den.models.network import MultiHeadNet

CFG = TrainerConfig(
    batch_size=16, max_iters=40, eval_every=10, patience=0, log_every=10, progress=False
)


def toy_problem(seed: int = 0) -> tuple[MultiHeadNet, Split, Split]:
    """A 16-pixel, 3-class problem (class c brightens pixels 5c..5c+4) and a small MLP."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(120) % 3
    x = torch.rand(120, 1, 4, 4, generator=g) * 0.2
    for c in range(3):
        x.view(120, -1)[y == c, 5 * c : 5 * c + 5] += 0.8
    torch.manual_seed(seed)
    net = MultiHeadNet((1, 4, 4), hidden=(8,))
    net.add_head(3, 0)
    return net, Split(x[:96], y[:96]), Split(x[96:], y[96:])


def constant_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A validation loss that never improves."""
    return torch.tensor(1.0)


def loss_of(net: MultiHeadNet):
    return lambda x, y: cross_entropy(net(x, 0), y)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_masked_weights_stay_bit_identical_with_weight_decay(optimizer):
    net, train, val = toy_problem()
    params = list(net.parameters())
    masks = []
    for p in params:
        m = (torch.rand(p.shape, generator=torch.Generator().manual_seed(p.numel())) < 0.5).float()
        masks.append(m)
    before = [p.detach().clone() for p in params]
    cfg = dataclasses.replace(CFG, optimizer=optimizer, weight_decay=0.1, lr=1e-2)
    result = train_phase(
        "masked",
        params,
        loss_of(net),
        train,
        cfg,
        torch.Generator().manual_seed(0),
        val=val,
        grad_masks=masks,
    )
    assert result.steps == 40
    for p, b, m in zip(params, before, masks, strict=True):
        frozen = m == 0
        assert torch.equal(p.detach()[frozen], b[frozen])  # bit-identical, decay included
        assert not torch.equal(p.detach()[~frozen], b[~frozen])  # the free weights did train


def test_free_training_learns_the_toy_problem():
    net, train, val = toy_problem()
    before = loss_of(net)(val.x, val.y).item()
    cfg = dataclasses.replace(CFG, lr=1e-2)
    result = train_phase(
        "free", list(net.parameters()), loss_of(net), train, cfg, torch.Generator().manual_seed(0)
    )
    after = loss_of(net)(val.x, val.y).item()
    assert after < 0.5 * before
    assert result.val_loss is None and not result.stopped_early


def test_a_mask_list_of_the_wrong_length_is_rejected():
    net, train, _ = toy_problem()
    params = list(net.parameters())
    with pytest.raises(ValueError):
        train_phase("p", params, loss_of(net), train, CFG, torch.Generator(), grad_masks=[None])


def test_early_stopping_when_the_validation_loss_cannot_improve():
    net, train, val = toy_problem()
    cfg = dataclasses.replace(CFG, max_iters=200, eval_every=5, patience=1)
    result = train_phase(
        "stop",
        list(net.parameters()),
        loss_of(net),
        train,
        cfg,
        torch.Generator().manual_seed(0),
        val=val,
        val_loss=constant_loss,  # never improves after the first check
    )
    # Check 1 (step 5) sets the best loss; check 2 (step 10) does not improve: patience 1 used up.
    assert result.stopped_early
    assert result.steps == 10 < cfg.max_iters
    assert result.val_loss == pytest.approx(1.0)


def test_patience_counts_checks_without_improvement():
    net, train, val = toy_problem()
    cfg = dataclasses.replace(CFG, max_iters=200, eval_every=5, patience=3)

    def run(**kw):
        return train_phase(
            "stop",
            list(net.parameters()),
            loss_of(net),
            train,
            cfg,
            torch.Generator(),
            val=val,
            val_loss=constant_loss,
            **kw,
        )

    result = run()
    assert result.stopped_early and result.steps == 20  # best at step 5, then 3 bad checks
    # a phase's own patience overrides the config's (DEN's strategy.patience)
    own = run(patience=1)
    assert own.stopped_early and own.steps == 10


def test_patience_zero_never_stops_early():
    net, train, val = toy_problem()
    cfg = dataclasses.replace(CFG, max_iters=30, eval_every=5, patience=0)
    result = train_phase(
        "nostop",
        list(net.parameters()),
        loss_of(net),
        train,
        cfg,
        torch.Generator(),
        val=val,
        val_loss=constant_loss,
    )
    assert not result.stopped_early and result.steps == 30


def test_nan_objective_raises_naming_the_phase_and_task():
    net, train, val = toy_problem()

    def nan_loss(x, y):
        return loss_of(net)(x, y) * float("nan")

    with pytest.raises(NonFiniteLossError, match=r"task 3, phase 'selective'") as err:
        train_phase(
            "selective",
            list(net.parameters()),
            nan_loss,
            train,
            CFG,
            torch.Generator(),
            val=val,
            task_id=2,
        )
    assert "trainer.lr" in str(err.value)  # the fix it suggests
    assert err.value.exit_code == 2


def test_nan_objective_raises_even_when_early_stopping_comes_first():
    net, train, val = toy_problem()

    def nan_loss(x, y):
        return loss_of(net)(x, y) * float("nan")

    # Validation every 10 steps with patience 2 stops at step 20, before the first loss
    # read-out at step 100 (trainer.log_every's default).
    cfg = dataclasses.replace(CFG, max_iters=200, eval_every=10, patience=2, log_every=100)
    with pytest.raises(NonFiniteLossError):
        train_phase(
            "train", list(net.parameters()), nan_loss, train, cfg, torch.Generator(), val=val
        )


def test_lr_decay_multiplies_the_learning_rate_every_epoch():
    net, train, _ = toy_problem()
    seen = []
    # 96 examples / batch 16 = 6 steps per epoch; 13 steps = 2 decays (after steps 6 and 12).
    cfg = dataclasses.replace(CFG, max_iters=13, lr=1e-2, lr_decay=0.5)
    train_phase(
        "decay",
        list(net.parameters()),
        loss_of(net),
        train,
        cfg,
        torch.Generator(),
        after_step=seen.append,
    )
    assert seen[:6] == [pytest.approx(1e-2)] * 6
    assert seen[6:12] == [pytest.approx(5e-3)] * 6
    assert seen[12] == pytest.approx(2.5e-3)


def test_unknown_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match=r"trainer\.optimizer"):
        make_optimizer(
            [torch.nn.Parameter(torch.zeros(1))], dataclasses.replace(CFG, optimizer="lbfgs")
        )


def test_optimizer_is_fused_on_cpu_and_follows_the_plain_update_rule():
    """The factory picks PyTorch's fused kernels; after 20 steps they agree with the
    per-tensor implementation to float rounding, for Adam and for SGD with momentum."""
    for optimizer in ("adam", "sgd"):
        cfg = dataclasses.replace(CFG, optimizer=optimizer, lr=1e-2)
        torch.manual_seed(0)
        fused = [torch.nn.Parameter(torch.randn(5, 4)), torch.nn.Parameter(torch.randn(5))]
        plain = [torch.nn.Parameter(p.detach().clone()) for p in fused]
        opt_fused = make_optimizer(fused, cfg)
        assert opt_fused.defaults["fused"] is True
        if optimizer == "adam":
            opt_plain = torch.optim.Adam(plain, lr=cfg.lr, foreach=False)
        else:
            opt_plain = torch.optim.SGD(plain, lr=cfg.lr, momentum=cfg.momentum, foreach=False)
        for _ in range(20):
            for params, opt in ((fused, opt_fused), (plain, opt_plain)):
                opt.zero_grad()
                (params[0].sin().sum() + params[1].square().sum()).backward()
                opt.step()
        for a, b in zip(fused, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
