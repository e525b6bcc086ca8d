"""Hydra sweeps through the real entry point: joblib and submitit_local launchers, the
single-objective optuna search (the multi-objective one: test_search.py), and den.compare over
the jobs a sweep produced (the SLURM launcher: test_slurm_queue.py and test_slurm_cluster.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from den.compare import compare

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


def test_single_objective_optuna_search_maximises_validation_accuracy(tiny_mnist_root, tmp_path):
    optuna = pytest.importorskip("optuna")
    journal = tmp_path / "study.journal"
    multirun(
        "hparams_search=den_optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={journal}",
        f"hydra.sweep.dir={tmp_path / 'search'}",
        root=tiny_mnist_root,
    )
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.load_study(study_name="den_pmnist", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [t.number for t in study.trials] == [0, 1]
    for trial in study.trials:  # the value is the run's validation average accuracy
        results = json.loads((Path(trial.user_attrs["job_dir"]) / "results.json").read_text())
        assert trial.value == results["val_final"]["avg_acc"]
    assert {"strategy.tau", "strategy.k", "strategy.sigma", "strategy.l1", "strategy.lam"} == set(
        study.trials[0].params
    )
