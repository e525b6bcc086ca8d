"""``python -m den.compare``: groups runs by config up to the seed, reports mean ± std, plots."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import den.train as train_module
from den.compare import average_curve, compare, main
from den.schemas import register_configs

from conftest import REPO_ROOT

BASE = (
    "+experiment=pmnist",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "stream.samples_per_task=200",
    "trainer.max_iters=20",
    "trainer.progress=false",
    "model.hidden=[16]",
)


@pytest.fixture(scope="module")
def sweep(tiny_mnist_root, tmp_path_factory) -> Path:
    """finetune with seeds 0 and 1, stl with seed 0, laid out as a multirun directory."""
    register_configs()
    root = tmp_path_factory.mktemp("multirun")
    for i, (strategy, seed) in enumerate([("finetune", 0), ("finetune", 1), ("stl", 0)]):
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[
                    *BASE,
                    f"strategy={strategy}",
                    f"seed={seed}",
                    f"stream.root={tiny_mnist_root}",
                    f"paths.output_dir={root / str(i)}",
                ],
            )
        train_module.run(cfg)
    return root


def test_report_groups_seeds_and_gives_mean_and_std(sweep, tmp_path):
    report = compare([sweep], out=tmp_path / "report").read_text()
    finetune = [
        json.loads((sweep / str(i) / "results.json").read_text())["final"]["avg_acc"]
        for i in (0, 1)
    ]
    row = next(line for line in report.splitlines() if line.startswith("| finetune |"))
    mean, std = statistics.fmean(finetune), statistics.stdev(finetune)
    assert f"| finetune | 2 | {mean:.4f} ± {std:.4f} |" in row
    assert any(line.startswith("| stl | 1 |") for line in report.splitlines())
    for png in ("avg_acc_curve.png", "acc_vs_capacity.png", "acc_matrices.png"):
        assert (tmp_path / "report" / png).stat().st_size > 10_000
        assert f"]({png})" in report
    csv_rows = (tmp_path / "report" / "summary.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 3
    # accuracy when learned: the mean of the accuracy matrix's diagonal
    matrix = json.loads((sweep / "0" / "results.json").read_text())["acc_matrix"]
    learned = statistics.fmean(matrix[j][j] for j in range(len(matrix)))
    header = csv_rows[0].split(",")
    first = next(r for r in csv.DictReader(csv_rows) if r["run_dir"].endswith("/0"))
    assert "learned_acc" in header and float(first["learned_acc"]) == pytest.approx(learned)


def test_metric_auroc_ranks_and_plots_by_auroc(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path / "auroc"), "--metric", "auroc"]) == 0
    report = (tmp_path / "auroc" / "report.md").read_text()
    for png in ("avg_auroc_curve.png", "auroc_vs_capacity.png", "auroc_matrices.png"):
        assert (tmp_path / "auroc" / png).stat().st_size > 10_000
        assert f"]({png})" in report
    finals: dict[str, list[float]] = {}
    for i, label in ((0, "finetune"), (1, "finetune"), (2, "stl")):
        results = json.loads((sweep / str(i) / "results.json").read_text())
        finals.setdefault(label, []).append(results["final"]["avg_auroc"])
        # the AUROC curve ends at the run's final average AUROC
        assert average_curve(results, "auroc")[-1] == pytest.approx(results["final"]["avg_auroc"])
    table = [line.split("|")[1].strip() for line in report.splitlines() if line[:2] == "| "]
    ranked = [label for label in table if label in finals]
    assert sorted(ranked) == ["finetune", "stl"]
    assert ranked[0] == max(finals, key=lambda label: statistics.fmean(finals[label]))
    assert "AUROC when learned" in report
    head = [cell.strip() for cell in report.splitlines()[4].split("|")]
    assert "BWT (AUROC)" in head and "BWT" not in head  # accuracy's BWT is not shown


def test_metric_auroc_gives_backward_transfer_and_forgetting_on_auroc(sweep, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sweep / "0", run)  # finetune, 2 tasks
    results = json.loads((run / "results.json").read_text())
    results["auroc_matrix"] = [[0.9, None], [0.7, 0.8]]  # task 1 loses 0.2 AUROC
    (run / "results.json").write_text(json.dumps(results))
    report = compare([run], out=tmp_path / "out", metric="auroc").read_text()
    lines = report.splitlines()
    head = [c.strip() for c in lines[4].split("|")[1:-1]]
    row = [c.strip() for c in next(x for x in lines if x.startswith("| finetune |")).split("|")]
    cells = dict(zip(head, row[1:-1], strict=True))
    assert cells["BWT (AUROC)"] == "-0.2000 ± 0.0000"
    assert cells["forgetting (AUROC)"] == "0.2000 ± 0.0000"
    assert cells["AUROC when learned"] == "0.8500 ± 0.0000"
    assert cells["peak MiB"] == f"{results['peak_rss_mib']:.0f} ± 0"
    # the accuracy report of the same run keeps accuracy's BWT (not the AUROC one)
    acc = compare([run], out=tmp_path / "acc").read_text()
    assert f"{results['final']['bwt']:+.4f} ± 0.0000" in acc and "BWT (AUROC)" not in acc


def test_unfinished_runs_are_listed_not_averaged(sweep, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    results = json.loads((runs / "1" / "results.json").read_text())
    results["status"] = "running"
    (runs / "1" / "results.json").write_text(json.dumps(results))
    report = compare([runs]).read_text()
    assert "| finetune | 1 |" in report
    assert "Not complete" in report and str(runs / "1") in report


def test_same_strategy_with_different_settings_is_two_groups(sweep, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(sweep, runs)
    results = json.loads((runs / "1" / "results.json").read_text())
    results["config"]["trainer"]["lr"] = 0.5
    (runs / "1" / "results.json").write_text(json.dumps(results))
    report = compare([runs]).read_text()
    assert "| finetune (lr=0.001) | 1 |" in report and "| finetune (lr=0.5) | 1 |" in report


def test_nothing_to_compare_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no complete run"):
        compare([tmp_path])


class FakeRun:
    """What wandb.Api().runs yields, built from a run logged by WandbLogger."""

    def __init__(self, results: dict, state: str = "finished") -> None:
        from den.loggers import compact_results

        self.id = f"run{results['seed']}{results['strategy']}"
        self.state = state
        self.summary = compact_results(results)
        self.config = {**results["config"], "_wandb": {}}


def test_wandb_mode_reads_the_same_figures_from_the_api(sweep, tmp_path, monkeypatch):
    import wandb

    local = compare([sweep], out=tmp_path / "local").read_text()
    all_results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in range(3)]
    seen = {}

    class FakeApi:
        def runs(self, path, filters=None):
            seen.update(path=path, filters=filters)
            return [FakeRun(r) for r in all_results] + [FakeRun(all_results[0], "crashed")]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    remote = compare([], out=tmp_path / "remote", wandb_path="me/den", wandb_group="g1")
    text = remote.read_text()
    assert seen == {"path": "me/den", "filters": {"group": "g1"}}
    table = [line for line in local.splitlines() if line.startswith("| ")]
    assert table == [line for line in text.splitlines() if line.startswith("| ")]
    assert "Not complete" in text  # the crashed run is listed, not averaged
