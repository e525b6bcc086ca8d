"""``logger=wandb``: offline runs of the real entry point, read back with wandb's own reader
(``wandb.sdk.internal.datastore``), one W&B run per job of a multirun, and failures of W&B
that leave training and results.json intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import den.train as train_module
from den.schemas import register_configs

from conftest import REPO_ROOT

pytest.importorskip("wandb.sdk.internal.datastore", reason="needs wandb<0.30 (offline reader)")

TINY = (
    "+experiment=pmnist",
    "logger=wandb",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "stream.samples_per_task=200",
    "trainer.max_iters=30",
    "trainer.log_every=10",
    "trainer.progress=false",
    "model.hidden=[16]",
)


def read_wandb_run(run_file: Path) -> dict:
    """History rows, summary, config and exit code of an offline ``run-*.wandb`` file."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(str(run_file))
    out: dict = {"history": [], "summary": {}, "config": {}, "exit_code": None, "id": None}
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append(
                {
                    i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in record.history.item
                }
            )
        elif kind == "summary":
            for item in record.summary.update:
                out["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "run":
            out["id"] = record.run.run_id
            out["group"], out["job_type"] = record.run.run_group, record.run.job_type
            for item in record.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def wandb_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.fixture(scope="module")
def multirun(tiny_mnist_root, tmp_path_factory) -> Path:
    """Two jobs (seeds 0 and 1) of one multirun, logging to W&B offline."""
    sweep = tmp_path_factory.mktemp("wandb_sweep")
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "WANDB_API_KEY")}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "den.train",
        "-m",
        *TINY,
        f"stream.root={tiny_mnist_root}",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def test_offline_run_has_task_metrics_training_loss_and_summary(multirun):
    [job] = multirun.glob("0_*")
    results = json.loads((job / "results.json").read_text())
    [run_file] = wandb_files(job)
    run = read_wandb_run(run_file)
    per_task = [row for row in run["history"] if "task" in row]
    assert [row["task"] for row in per_task] == [1, 2]
    assert per_task[-1]["test/avg_acc"] == pytest.approx(results["final"]["avg_acc"])
    assert per_task[-1]["test/acc_task1"] == pytest.approx(results["acc_matrix"][1][0])
    assert per_task[-1]["progress/capacity"] == pytest.approx(results["capacity_per_task"][1])
    losses = [row for row in run["history"] if "train/loss" in row]
    assert len(losses) >= 2 * 30 // 10 and losses[-1]["train/step"] > losses[0]["train/step"]
    assert run["summary"]["final/avg_acc"] == pytest.approx(results["final"]["avg_acc"])
    assert run["summary"]["results"]["acc_matrix"] == results["acc_matrix"]
    assert run["summary"]["acc_matrix/_type"] == "table-file"  # the matrix as a W&B table
    assert run["config"]["strategy"]["name"] == "den"
    assert run["job_type"] == "den" and run["group"].startswith("pmnist-")
    assert run["exit_code"] == 0


def test_each_job_of_a_multirun_has_its_own_run(multirun):
    jobs = sorted(multirun.glob("[01]_*"))
    runs = [read_wandb_run(f) for job in jobs for f in wandb_files(job)]
    assert len(runs) == 2 and runs[0]["id"] != runs[1]["id"]
    assert runs[0]["group"] == runs[1]["group"]  # one sweep, one group
    assert [r["config"]["seed"] for r in runs] == [0, 1]


@pytest.fixture()
def tiny_cfg(tiny_mnist_root, tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                *TINY,
                f"stream.root={tiny_mnist_root}",
                f"paths.output_dir={tmp_path / 'run'}",
            ],
        )


def test_failing_wandb_init_leaves_training_and_results_intact(tiny_cfg, tmp_path, monkeypatch):
    import wandb

    def broken_init(*args, **kwargs):
        raise wandb.errors.CommError("network is unreachable")

    monkeypatch.setattr(wandb, "init", broken_init)
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.warns(RuntimeWarning, match="W&B wandb.init failed"):
        results = train_module.run(tiny_cfg)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["status"] == "complete" and on_disk["tasks_done"] == 2
    assert on_disk["final"] == results["final"]


def test_wandb_failing_mid_run_is_dropped_not_fatal(tiny_cfg, tmp_path, monkeypatch):
    from wandb.sdk.wandb_run import Run

    calls = {"n": 0}
    original = Run.log

    def flaky_log(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("connection reset")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Run, "log", flaky_log)
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.warns(RuntimeWarning, match="W&B log failed"):
        train_module.run(tiny_cfg)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "complete"
    assert calls["n"] == 3  # after the failure the logger stops calling W&B


def test_no_api_key_means_offline_never_a_prompt(monkeypatch, tmp_path):
    from den.loggers import resolve_wandb_mode

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert resolve_wandb_mode(None) == "offline"
    assert resolve_wandb_mode("online") == "offline"
    assert resolve_wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode(None) == "disabled"
