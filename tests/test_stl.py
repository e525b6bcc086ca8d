"""STL, the paper's separate-network-per-task reference."""

from __future__ import annotations

import torch

from den.config.schema import ModelConfig, TrainerConfig
from den.strategies.stl import STLConfig, STLStrategy

from conftest import tiny_permuted_stream


def make_stl() -> STLStrategy:
    model = ModelConfig(name="tiny", arch="mlp", hidden=[12, 8])
    trainer = TrainerConfig(max_iters=20, batch_size=32, patience=0, progress=False)
    return STLStrategy(STLConfig(), model, trainer, (1, 6, 6), torch.device("cpu"), seed=0)


def test_stl_shares_no_parameter_between_tasks_and_never_forgets():
    stream = tiny_permuted_stream()
    stl = make_stl()
    x = stream[0].split("test").x[:20]
    stl.learn(stream[0])
    first = stl.predict(x, 0)
    stl.learn(stream[1])
    ids = [{id(p) for p in net.parameters()} for net in stl.nets]
    assert not ids[0] & ids[1]
    assert torch.equal(stl.predict(x, 0), first)
    one = sum(p.numel() for p in stl.nets[0].parameters())
    assert stl.num_parameters() == 2 * one  # capacity: T networks
