"""The optuna searches (hydra_plugins/den_optuna_sweeper, den/search.py) and the front report
(den/pareto.py): objectives from validation figures and capacity only, the Hydra sweep syntax
as optuna distributions, and tiny studies through the real entry point that finish, continue,
share one journal between parallel jobs, and never depend on the test set."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from den.errors import ConfigError
from den.reports import pareto
from den.reports.objectives import OBJECTIVES, check_objectives, objective_values, task_return

from conftest import REPO_ROOT, TINY_PMNIST, run_multirun

optuna = pytest.importorskip("optuna")

from hydra_plugins.den_optuna_sweeper.den_optuna_sweeper import (  # noqa: E402
    distribution_of,
    trial_subdir,
)

TINY = (*TINY_PMNIST, "logger=none")
STUDY = Path("outputs/multirun/pmnist/den_pareto_pmnist")  # the default, under the cwd


# --------------------------------------------------------------------------- objectives


class GuardedTestFigures(dict):
    """A dict whose test figures fail the test when read (by [] or .get)."""

    FORBIDDEN = frozenset(
        {"acc_matrix", "auroc_matrix", "avg_acc_curve", "avg_acc", "avg_auroc", "bwt"}
        | {"forgetting", "acc_when_learned", "auroc_bwt", "auroc_forgetting"}
    )

    def __getitem__(self, key):
        assert key not in self.FORBIDDEN, f"an objective read the test figure {key!r}"
        return super().__getitem__(key)

    def get(self, key, default=None):
        assert key not in self.FORBIDDEN, f"an objective read the test figure {key!r}"
        return super().get(key, default)


def results_with_guarded_test_figures(**final_extra: float) -> dict:
    final = GuardedTestFigures(
        avg_acc=0.5, avg_auroc=0.6, bwt=-0.1, forgetting=0.1, capacity=1.75, **final_extra
    )
    results = GuardedTestFigures(
        acc_matrix=[[0.5]], auroc_matrix=[[0.6]], avg_acc_curve=[0.5], final=final
    )
    results["val_final"] = {"avg_acc": 0.91, "avg_auroc": 0.97}  # validation: readable
    return results


def test_objectives_read_validation_and_capacity_never_a_test_figure():
    results = results_with_guarded_test_figures()
    assert objective_values(results, ["val_avg_acc", "capacity"]) == (0.91, 1.75)
    assert objective_values(results, ["val_avg_auroc"]) == (0.97,)
    # outside a search den.train returns the validation average accuracy, as before
    assert task_return(results) == 0.91
    # sparse DEN's non-zero capacity wins over stored parameters when the run records it
    sparse = results_with_guarded_test_figures(nonzero_capacity=1.25)
    assert objective_values(sparse, ["capacity"]) == (1.25,)
    assert set(OBJECTIVES) == {"val_avg_acc", "val_avg_auroc", "capacity"}


def test_unknown_objectives_are_refused_with_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"hydra\.sweeper\.objectives\.test_acc.*val_avg_acc"):
        check_objectives({"test_acc": "maximize"})
    with pytest.raises(ConfigError, match="maximize or minimize"):
        check_objectives({"capacity": "smaller"})


# --------------------------------------------------------------------------- search space


def parse(line: str):
    return OverridesParser.create().parse_overrides([line])[0]


def test_hydra_sweep_syntax_becomes_optuna_distributions():
    d = optuna.distributions
    tau = distribution_of(parse("strategy.tau=tag(log, interval(0.001, 0.3))"))
    assert tau == d.FloatDistribution(0.001, 0.3, log=True)
    assert distribution_of(parse("strategy.k=range(5, 55, step=5)")) == d.IntDistribution(
        5, 50, step=5
    )  # Hydra's range leaves out its stop
    assert distribution_of(parse("strategy.k=tag(int, interval(2, 9))")) == d.IntDistribution(2, 9)
    assert distribution_of(parse("strategy=choice(den, den_pmnist)")) == (
        d.CategoricalDistribution(["den", "den_pmnist"])
    )
    assert distribution_of(parse("seed=0,1,2")) == d.CategoricalDistribution(["0", "1", "2"])


def test_trial_folders_are_the_number_and_a_short_hash_of_the_overrides():
    name = trial_subdir(7, ["strategy.k=10", "strategy.tau=0.01"])
    assert name.startswith("trial_0007_") and len(name) == len("trial_0007_") + 8
    assert name == trial_subdir(7, ["strategy.tau=0.01", "strategy.k=10"])  # order-free
    assert name != trial_subdir(7, ["strategy.k=15", "strategy.tau=0.01"])


# --------------------------------------------------------------------------- real searches


def search(*overrides: str, root: Path, cwd: Path, check: bool = True, start: bool = False):
    """``python -m den.train -m TINY hparams_search=den_pareto ...`` run from ``cwd`` (not
    the repository: the study must land under the cwd's outputs/ by absolute path)."""
    return run_multirun(*TINY, f"stream.root={root}", *overrides, cwd=cwd, check=check, start=start)


def load(journal: Path, name: str = "den_pareto_pmnist"):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    return optuna.load_study(study_name=name, storage=storage)


def read_results(trial) -> dict:
    import json

    return json.loads((Path(trial.user_attrs["job_dir"]) / "results.json").read_text())


@pytest.mark.slow
def test_pareto_search_finishes_continues_and_its_front_is_reported(
    tiny_mnist_root, tmp_path, monkeypatch
):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    command = ("hparams_search=den_pareto", "hydra.sweeper.n_trials=2")
    first = search(*command, root=tiny_mnist_root, cwd=cwd)
    sweep = cwd / STUDY
    study = load(sweep / "optuna.journal")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert [t.number for t in study.trials] == [0, 1]
    for trial in study.trials:
        folder = Path(trial.user_attrs["job_dir"])
        assert folder.parent == sweep and folder.name.startswith(f"trial_{trial.number:04d}_")
        results = read_results(trial)
        # the study holds validation accuracy and capacity, exactly what the run measured
        # (capacity: the non-zero parameters the run counted, relative to one base network)
        assert trial.values == [
            results["val_final"]["avg_acc"],
            results["final"]["nonzero_capacity"],
        ]
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        assert f"strategy.k={trial.params['strategy.k']}" in overrides
    log = first.stdout + first.stderr
    assert "alembic" not in log and "\x1b[" not in log  # quiet, no raw colour codes

    search(*command, root=tiny_mnist_root, cwd=cwd)  # the same command continues the study
    study = load(sweep / "optuna.journal")
    assert [t.number for t in study.trials] == list(range(4))
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    assert len(list(sweep.glob("trial_*/results.json"))) == 4

    # a different experiment in the same study would mix incomparable trials: refused
    other = search(*command, "stream.num_tasks=3", root=tiny_mnist_root, cwd=cwd, check=False)
    assert other.returncode != 0
    assert "stream.num_tasks=3" in other.stderr + other.stdout
    assert len(load(sweep / "optuna.journal").trials) == 4

    # the report: the choice from the study alone, then test figures of the chosen only
    read = []
    real_read = pareto.read_test_metrics

    def recording_read(job_dir):
        read.append(Path(job_dir))
        return real_read(job_dir)

    monkeypatch.setattr(pareto, "read_test_metrics", recording_read)
    front = pareto.load_front(sweep)
    assert not read  # loading and choosing the front read no test figure
    assert {t.number for t in front.pareto} == {t.number for t in study.best_trials}
    monkeypatch.chdir(tmp_path)
    assert pareto.main([str(sweep)]) == 0
    chosen = sorted(front.pareto, key=lambda t: t.values["capacity"])
    assert read == [t.job_dir for t in chosen]
    out = tmp_path / "outputs" / "pareto" / front.study_name  # never the sweep folder
    assert not (sweep / "pareto.md").exists()
    report = (out / "pareto.md").read_text()
    assert (out / "pareto_front.png").stat().st_size > 10_000
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + 4
    for t in chosen:
        test_acc = read_results(study.trials[t.number])["final"]["avg_acc"]
        assert f"| {t.number} | {t.values['val_avg_acc']:.4g} |" in report
        assert f"{test_acc:.4g}" in report
    read.clear()
    assert pareto.main([str(sweep), "--choose", "3", "--out", str(tmp_path / "r")]) == 0
    assert read == [Path(study.trials[3].user_attrs["job_dir"])]

    # a sweep folder copied elsewhere (from the cluster) still finds its trials' results
    copy = shutil.copytree(sweep, tmp_path / "copied")
    shutil.rmtree(sweep)
    moved = pareto.load_front(copy)
    assert all(t.job_dir.parent == copy and t.job_dir.is_dir() for t in moved.trials)


@pytest.mark.slow
def test_two_parallel_jobs_share_one_study(tiny_mnist_root, tmp_path):
    # the joblib launcher runs one batch of two trials at once, both told to one study
    journal = tmp_path / "shared" / "study.journal"  # hydra.sweeper.storage: any journal file
    proc = search(
        "hparams_search=den_pareto",
        f"hydra.sweeper.storage={journal}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "hydra.sweeper.n_trials=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        root=tiny_mnist_root,
        cwd=tmp_path,
    )
    assert "adding 2, 2 at a time" in proc.stdout + proc.stderr  # one batch of two jobs
    study = load(journal)
    assert [t.number for t in study.trials] == [0, 1]
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    folders = {t.user_attrs["job_dir"] for t in study.trials}
    assert len(folders) == 2 and all((Path(f) / "results.json").is_file() for f in folders)


SHARER = """
import sys
import optuna
from den.reports.objectives import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(
    study_name="shared", storage=open_storage(sys.argv[1], "."), load_if_exists=True,
    directions=["maximize", "minimize"],
)
for _ in range(10):
    trial = study.ask()
    x = trial.suggest_float("x", 0, 1)
    study.tell(trial, [x, x * x])
"""


def test_searches_on_several_processes_share_one_journal(tmp_path):
    # what several search commands (cluster jobs on one shared filesystem) do to the journal
    journal = tmp_path / "deep" / "study.journal"  # its folder is created
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", SHARER, str(journal)], env=env, cwd=tmp_path)
        for _ in range(3)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    study = load(journal, "shared")
    assert sorted(t.number for t in study.trials) == list(range(30))
    assert all(t.state.name == "COMPLETE" for t in study.trials)


def scramble_test_labels(root: Path, dest: Path) -> Path:
    """A copy of the tiny MNIST whose test labels are shuffled: other test figures, the same
    training and validation data."""
    shutil.copytree(root, dest)
    labels_file = dest / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = labels_file.read_bytes()
    labels = np.frombuffer(raw[8:], dtype=np.uint8).copy()
    np.random.default_rng(1).shuffle(labels)
    labels_file.write_bytes(struct.pack(">II", 0x00000801, labels.size) + labels.tobytes())
    return dest


@pytest.mark.slow
def test_the_search_does_not_depend_on_the_test_set(tiny_mnist_root, tmp_path):
    scrambled = scramble_test_labels(tiny_mnist_root, tmp_path / "scrambled")
    studies = {}
    for name, root in (("real", tiny_mnist_root), ("scrambled", scrambled)):
        cwd = tmp_path / f"cwd_{name}"
        cwd.mkdir()
        search(
            "hparams_search=den_pareto",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.seed=0",
            root=root,
            cwd=cwd,
        )
        studies[name] = load(cwd / STUDY / "optuna.journal")
    real, other = studies["real"].trials, studies["scrambled"].trials
    assert [t.params for t in real] == [t.params for t in other]
    assert [t.values for t in real] == [t.values for t in other]
    # ... although the test figures the runs measured differ
    assert [read_results(t)["final"]["avg_acc"] for t in real] != [
        read_results(t)["final"]["avg_acc"] for t in other
    ]


@pytest.mark.slow
def test_a_failed_trial_is_recorded_and_the_search_goes_on_unless_all_fail(
    tiny_mnist_root, tmp_path
):
    # strategy.k=-1 is refused by DEN before training; the seeded sampler draws -1, 5, -1
    # (for den_pareto.yaml's search space: a new space needs a seed that draws both)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    proc = search(
        "hparams_search=den_pareto",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.seed=4",
        "strategy.k=choice(-1, 5)",
        root=tiny_mnist_root,
        cwd=mixed,
        check=False,
    )
    trials = load(mixed / STUDY / "optuna.journal").trials
    assert {t.state.name for t in trials} == {"FAIL", "COMPLETE"}
    failed = [t for t in trials if t.state.name == "FAIL"]
    for t in failed:
        assert t.params["strategy.k"] == "-1" and "strategy.k=-1" in t.user_attrs["error"]
        assert (Path(t.user_attrs["job_dir"]) / "failed.json").is_file()
    # the search went on, then listed the failed trials and exited 1
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"{len(failed)} of 3 trials of the sweep failed" in proc.stderr
    assert "Traceback" not in proc.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    proc = search(
        "hparams_search=den_pareto",
        "hydra.sweeper.n_trials=5",
        "strategy.k=choice(-1)",
        root=tiny_mnist_root,
        cwd=broken,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "The first 3 trials of this search all failed" in proc.stderr
    assert [t.state.name for t in load(broken / STUDY / "optuna.journal").trials] == ["FAIL"] * 3
