"""Hydra sweeps through the real entry point: joblib and submitit_local launchers, the
single-objective optuna search (the multi-objective one: test_search.py), and den.compare over
the jobs a sweep produced (the SLURM launcher: test_slurm_queue.py and test_slurm_cluster.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from den.reports.compare import compare

from conftest import TINY_PMNIST, run_multirun


def multirun(*overrides: str, root: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_multirun(*TINY_PMNIST, f"stream.root={root}", *overrides, timeout=timeout)


def result_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.rglob("results.json"))


@pytest.mark.parametrize(
    "launcher", ["joblib", pytest.param("submitit_local", marks=pytest.mark.slow)]
)
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


@pytest.mark.slow
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
