"""Hydra sweeps through the real entry point: joblib and submitit_local launchers, the optuna
search (resumable from its SQLite storage), the SLURM launcher config, and den.compare over
the jobs a sweep produced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from den.compare import compare
from den.schemas import register_configs

from conftest import REPO_ROOT

TINY = (
    "+experiment=pmnist",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "stream.samples_per_task=200",
    "trainer.max_iters=20",
    "trainer.progress=false",
    "model.hidden=[16]",
)


def multirun(*overrides: str, root: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DEN_DATA_ROOT"}
    env.update(WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "den.train", "-m", *TINY, f"stream.root={root}", *overrides]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def result_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.rglob("results.json"))


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_run_every_job_and_compare_reads_them(
    launcher, tiny_mnist_root, tmp_path
):
    sweep = tmp_path / "sweep"
    extra = (
        ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=10"]
    )
    multirun(
        f"hydra/launcher={launcher}",
        *extra,
        "strategy=finetune,stl",
        f"hydra.sweep.dir={sweep}",
        root=tiny_mnist_root,
    )
    dirs = result_dirs(sweep)
    assert len(dirs) == 2
    report = compare([sweep], out=tmp_path / "report").read_text()
    assert "| finetune | 1 |" in report and "| stl | 1 |" in report


def test_optuna_search_finishes_and_continues_from_its_storage(tiny_mnist_root, tmp_path):
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = (
        "hparams_search=den_optuna",
        "hydra.sweeper.n_trials=3",
        f"hydra.sweeper.storage={storage}",
    )
    multirun(*search, f"hydra.sweep.dir={tmp_path / 'first'}", root=tiny_mnist_root)
    study = optuna.load_study(study_name="den_pmnist", storage=storage)
    assert len(study.trials) == 3
    assert all(0.0 <= t.value <= 1.0 for t in study.trials)  # validation average accuracy
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert len(result_dirs(tmp_path / "first")) == 3

    multirun(*search, f"hydra.sweep.dir={tmp_path / 'second'}", root=tiny_mnist_root)
    study = optuna.load_study(study_name="den_pmnist", storage=storage)
    assert [t.number for t in study.trials] == list(range(6))  # the same study, continued
    assert {"strategy.tau", "strategy.k", "strategy.sigma", "strategy.l1", "strategy.lam"} == set(
        study.trials[0].params
    )


def test_slurm_launcher_config_composes_with_our_settings():
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "+experiment=pmnist",
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.timeout_min == 720 and launcher.gpus_per_node == 1
    assert launcher.partition == "gpu" and launcher.max_num_timeout == 3
