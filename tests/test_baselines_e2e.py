"""Every strategy through the real entry point (in-process), stopped after two tasks and
resumed from its checkpoint: the resumed run must end exactly as an uninterrupted one, so
every method's extra state (ER's memory, PackNet's owners, PNN's columns, EWC's Fisher and
anchor, joint's label space) survives a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import den.train as train_module
from den.config.registry import STRATEGIES
from den.config.store import register_configs
from den.utils.interrupt import RunInterrupted

from conftest import REPO_ROOT

BASE = (
    "+experiment=pmnist",
    "stream.download=false",
    "stream.num_tasks=3",
    "stream.val_size=100",
    "stream.samples_per_task=300",
    "trainer.max_iters=30",
    "trainer.eval_every=10",
    "trainer.batch_size=32",
    "trainer.progress=false",
    "model.hidden=[32,16]",
)
BASELINES = sorted(set(STRATEGIES.names()) - {"den"})  # DEN has its own resume tests


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> None:
    register_configs()


def config(name: str, root: Path, out: Path, *extra: str):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                *BASE,
                f"strategy={name}",
                f"stream.root={root}",
                f"paths.output_dir={out}",
                *extra,
            ],
        )


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_runs_and_resumes_to_the_same_results(
    name, tiny_mnist_root, tmp_path, monkeypatch
):
    full = tmp_path / "full"
    train_module.run(config(name, tiny_mnist_root, full))
    expected = results(full)
    assert expected["status"] == "complete" and expected["strategy"] == name
    assert len(expected["acc_matrix"]) == 3

    stopped = tmp_path / "stopped"
    cls = STRATEGIES.get(name).target
    learn = cls.learn

    def stop_at_third_task(self, task):
        if task.task_id == 2:
            raise RunInterrupted()
        return learn(self, task)

    monkeypatch.setattr(cls, "learn", stop_at_third_task)
    with pytest.raises(RunInterrupted):
        train_module.run(config(name, tiny_mnist_root, stopped))
    assert results(stopped)["tasks_done"] == 2
    monkeypatch.setattr(cls, "learn", learn)

    train_module.run(config(name, tiny_mnist_root, tmp_path / "unused", f"resume={stopped}"))
    resumed = results(stopped)
    assert resumed["status"] == "complete"
    for key in ("acc_matrix", "auroc_matrix", "val_acc_matrix", "params_per_task"):
        assert resumed[key] == expected[key], key


def test_resume_auto_starts_fresh_then_continues_its_own_directory(
    tiny_mnist_root, tmp_path, monkeypatch
):
    """What a requeued SLURM job does: the same command, ``resume=auto``, the same directory."""
    run_dir = tmp_path / "job"
    cls = STRATEGIES.get("finetune").target
    learn = cls.learn

    def stop_at_second_task(self, task):
        if task.task_id == 1:
            raise RunInterrupted()
        return learn(self, task)

    monkeypatch.setattr(cls, "learn", stop_at_second_task)
    with pytest.raises(RunInterrupted):  # first start: no checkpoint, so a fresh run
        train_module.run(config("finetune", tiny_mnist_root, run_dir, "resume=auto"))
    assert results(run_dir)["tasks_done"] == 1
    monkeypatch.setattr(cls, "learn", learn)
    train_module.run(config("finetune", tiny_mnist_root, run_dir, "resume=auto"))
    resumed = results(run_dir)
    assert resumed["status"] == "complete" and resumed["resumed_at_task"] == [1]
