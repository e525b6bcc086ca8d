"""A run killed after a finished task resumes from its checkpoint and ends exactly as an
uninterrupted run: DEN's grown layers, timestamps and RNG states all come back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_train

DEN_RUN = (
    "+experiment=pmnist",  # DEN (den_pmnist) on a tiny permuted stream
    "stream.download=false",
    "stream.num_tasks=4",
    "stream.val_size=100",
    "trainer.max_iters=150",
    "trainer.patience=0",
    "trainer.batch_size=32",
    "strategy.tau=0.0",  # always expand, so the network grows before the kill
)


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def checkpointed_tasks(run_dir: Path) -> int:
    import torch

    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    return len(state["record"]["params"])


def tasks_done(run_dir: Path) -> int:
    try:
        return results(run_dir)["tasks_done"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.fixture(scope="module")
def uninterrupted(tiny_mnist_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("den_full")
    run_train(*DEN_RUN, f"stream.root={tiny_mnist_root}", cwd=run_dir)
    return run_dir


def start_run(tiny_mnist_root: Path, run_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DEN_DATA_ROOT"}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "den.train",
        *DEN_RUN,
        f"stream.root={tiny_mnist_root}",
        f"hydra.run.dir={run_dir}",
    ]
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_tasks(proc: subprocess.Popen, run_dir: Path, n: int) -> None:
    deadline = time.monotonic() + 240
    while tasks_done(run_dir) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def assert_same_results(a: dict, b: dict) -> None:
    assert b["status"] == "complete"
    for key in ("acc_matrix", "auroc_matrix", "val_acc_matrix", "params_per_task"):
        assert a[key] == b[key], key
    assert a["final"] == b["final"]
    for ta, tb in zip(a["tasks"], b["tasks"], strict=True):
        assert ta["report"]["widths"] == tb["report"]["widths"]
        for name, phase in ta["report"]["phases"].items():
            assert phase["train_loss"] == tb["report"]["phases"][name]["train_loss"], name


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_results(uninterrupted, tiny_mnist_root, tmp_path):
    run_dir = tmp_path / "killed"
    proc = start_run(tiny_mnist_root, run_dir)
    wait_for_tasks(proc, run_dir, 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = checkpointed_tasks(run_dir)
    assert tasks_done(run_dir) <= killed_at  # results.json never runs ahead of the checkpoint
    assert 2 <= killed_at < 4, "the kill must land after task 2 and before the end"
    assert results(run_dir)["status"] == "running"  # nothing claims success

    resumed = run_train(
        *DEN_RUN, f"stream.root={tiny_mnist_root}", f"resume={run_dir}", cwd=tmp_path / "log"
    )
    assert f"resuming {run_dir} after {killed_at} finished tasks" in resumed.stdout
    for task in range(1, killed_at + 1):  # finished tasks are not trained again
        assert f"task {task}/4" not in resumed.stdout
    assert_same_results(results(uninterrupted), results(run_dir))
    assert results(run_dir)["tasks"][-1]["report"]["widths"] != [312, 128]  # DEN really grew


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_the_run_resumes(uninterrupted, tiny_mnist_root, tmp_path):
    run_dir = tmp_path / "terminated"
    proc = start_run(tiny_mnist_root, run_dir)
    wait_for_tasks(proc, run_dir, 1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert f"resume={run_dir}" in stderr and "Traceback" not in stderr
    assert (run_dir / "checkpoint.pt").is_file()
    assert results(run_dir)["status"] == "running"
    run_train(*DEN_RUN, f"stream.root={tiny_mnist_root}", f"resume={run_dir}", cwd=tmp_path / "log")
    assert_same_results(results(uninterrupted), results(run_dir))


@pytest.mark.slow
def test_resume_refuses_a_different_experiment(uninterrupted, tiny_mnist_root, tmp_path):
    proc = run_train(
        *DEN_RUN,
        f"stream.root={tiny_mnist_root}",
        "seed=7",
        f"resume={uninterrupted}",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert "seed" in proc.stderr and "Traceback" not in proc.stderr


def test_resume_without_checkpoint_names_the_file(tmp_path, tiny_mnist_root):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    proc = run_train(
        *DEN_RUN,
        f"stream.root={tiny_mnist_root}",
        f"resume={empty}",
        cwd=tmp_path / "log",
        check=False,
    )
    assert proc.returncode == 2
    assert "checkpoint.pt" in proc.stderr


def one_task_record(record_class):
    """The record of a 3-task run after its first task (every list one entry long)."""
    rows = {split: {"acc": [0.5], "auroc": [0.6]} for split in ("val", "test")}

    class Sizes:  # what add_task asks a strategy
        def num_parameters(self) -> int:
            return 10

        num_nonzero_parameters = num_parameters

    record = record_class(num_tasks=3, base_params=10)
    record.add_task(rows, Sizes(), 1.0, 0.5)
    record.tasks.append({"task_id": 0})
    return record


def test_checkpoint_keeps_the_logger_state(tmp_path):
    """A resumed run gets back what its logger saved (e.g. an experiment-tracker run id)."""
    import torch

    from den.config.schema import ModelConfig, TrainerConfig
    from den.run.checkpoint import load_checkpoint, save_checkpoint
    from den.run.record import RunRecord
    from den.strategies.finetune import FinetuneConfig, FinetuneStrategy

    def strategy() -> FinetuneStrategy:
        model = ModelConfig(name="m", arch="mlp", hidden=[4])
        return FinetuneStrategy(
            FinetuneConfig(), model, TrainerConfig(), (1, 2, 2), torch.device("cpu"), 0
        )

    record = one_task_record(RunRecord)
    save_checkpoint(tmp_path, strategy(), record, {"run_id": "abc123"})
    loaded, logger_state = load_checkpoint(tmp_path, strategy())
    assert logger_state == {"run_id": "abc123"}
    assert loaded.tasks_done == 1


def test_a_checkpoint_holding_torchs_version_object_still_loads(tmp_path):
    """Runs started before the record stored torch's version as a plain str have
    torch.__version__ (a TorchVersion) in their checkpoint: they must still resume, while any
    other class stays refused."""
    import torch

    from den.config.schema import ModelConfig, TrainerConfig
    from den.errors import DataError
    from den.run.checkpoint import CHECKPOINT, read_checkpoint, save_checkpoint
    from den.run.record import RunRecord
    from den.strategies.finetune import FinetuneConfig, FinetuneStrategy

    model = ModelConfig(name="m", arch="mlp", hidden=[4])
    strategy = FinetuneStrategy(
        FinetuneConfig(), model, TrainerConfig(), (1, 2, 2), torch.device("cpu"), 0
    )
    save_checkpoint(tmp_path, strategy, one_task_record(RunRecord), {})
    path = tmp_path / CHECKPOINT
    state = torch.load(path, weights_only=True)
    state["logger"] = {"torch": torch.__version__}
    assert type(state["logger"]["torch"]).__name__ == "TorchVersion"
    torch.save(state, path)
    assert read_checkpoint(tmp_path)["logger"]["torch"] == str(torch.__version__)
    state["logger"] = {"path": Path("/tmp")}  # any other class: refused, and named
    torch.save(state, path)
    with pytest.raises(DataError, match="Path"):
        read_checkpoint(tmp_path)


def test_a_run_from_before_a_new_option_resumes_while_the_option_keeps_its_default():
    """Checkpoints record the whole config; an option added to a schema since then must not
    block resuming when it is left at its default, and must when it is changed."""
    from omegaconf import OmegaConf

    from den.config.schema import StreamConfig
    from den.run.resume import first_difference, schema_defaults

    node = OmegaConf.structured(StreamConfig(name="s", kind="permuted", dataset="mnist"))
    defaults = schema_defaults(StreamConfig)
    assert defaults["augment"] == "none"
    now = OmegaConf.to_container(node)
    saved = {k: v for k, v in now.items() if k != "augment"}  # written before augment existed
    assert first_difference("stream", saved, now, defaults) is None
    changed = {**now, "augment": "crop_flip"}
    assert first_difference("stream", saved, changed, defaults) == (
        "stream.augment",
        None,
        "crop_flip",
    )
    assert first_difference("stream", now, {**now, "num_tasks": 3}, defaults) == (
        "stream.num_tasks",
        10,
        3,
    )


def test_a_resume_may_change_what_the_run_prints_but_not_what_it_learns():
    """A run started without progress bars (a sweep) resumes from a terminal with them;
    the step budget is still checked."""
    from omegaconf import OmegaConf

    from den.config.schema import TrainerConfig
    from den.run.resume import first_difference, schema_defaults

    node = OmegaConf.structured(TrainerConfig())
    defaults = schema_defaults(TrainerConfig)
    saved = OmegaConf.to_container(node)
    shown = {**saved, "progress": not saved["progress"], "log_every": saved["log_every"] + 1}
    assert first_difference("trainer", saved, shown, defaults) is None
    longer = {**saved, "max_iters": saved["max_iters"] + 1}
    assert first_difference("trainer", saved, longer, defaults)[0] == "trainer.max_iters"
