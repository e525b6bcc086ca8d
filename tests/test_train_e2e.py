"""The real entry point, ``python -m den.train``, on tiny on-disk data (a few seconds per run).

Each run happens once per module (fixtures below); the tests read what it left in its run
directory: results.json, metrics.jsonl and, with ``logger=csv``, metrics.csv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_train

PMNIST = (
    "+experiment=pmnist",
    "stream.download=false",
    "stream.num_tasks=3",
    "stream.val_size=100",
    "trainer.max_iters=30",
    "trainer.eval_every=10",
    "trainer.batch_size=32",
    "strategy=finetune",
)


def load_results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def pmnist_run(tiny_mnist_root, tmp_path_factory) -> tuple[Path, object]:
    run_dir = tmp_path_factory.mktemp("pmnist_run")
    proc = run_train(*PMNIST, f"stream.root={tiny_mnist_root}", cwd=run_dir)
    return run_dir, proc


@pytest.fixture(scope="module")
def pmnist_csv_run(tiny_mnist_root, tmp_path_factory) -> Path:
    """The same run as ``pmnist_run`` with ``logger=csv``."""
    run_dir = tmp_path_factory.mktemp("pmnist_csv_run")
    run_train(*PMNIST, f"stream.root={tiny_mnist_root}", "logger=csv", cwd=run_dir)
    return run_dir


@pytest.fixture(scope="module")
def split_cifar_run(tiny_imagefolder_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("split_cifar_run")
    run_train(
        "stream=split_cifar10",
        "stream.source=imagefolder",
        f"stream.root={tiny_imagefolder_root}",
        "stream.download=false",
        "model=lenet",
        "strategy=finetune",
        "stream.num_tasks=5",
        "stream.val_size=50",
        "trainer.max_iters=10",
        "trainer.eval_every=5",
        "trainer.batch_size=16",
        cwd=run_dir,
    )
    return run_dir


def assert_lower_triangular(matrix: list, n: int) -> None:
    assert len(matrix) == n
    for i, row in enumerate(matrix):
        assert len(row) == n
        for j, value in enumerate(row):
            if j > i:
                assert value is None, f"entry [{i}][{j}] above the diagonal is {value}"
            else:
                assert isinstance(value, float) and 0.0 <= value <= 1.0, (
                    f"entry [{i}][{j}] = {value}"
                )


# --------------------------------------------------------------------------- permuted MNIST


def test_pmnist_run_exits_0_and_completes(pmnist_run):
    run_dir, proc = pmnist_run
    assert proc.returncode == 0
    results = load_results(run_dir)
    assert results["status"] == "complete"
    assert results["tasks_done"] == 3
    assert results["experiment"] == "pmnist" and results["strategy"] == "finetune"
    assert results["config"]["stream"]["num_tasks"] == 3
    assert results["config"]["trainer"]["max_iters"] == 30
    assert not list(run_dir.glob(".results.json.tmp*"))  # no leftover of the atomic write


def test_pmnist_matrices_are_lower_triangular_fractions(pmnist_run):
    results = load_results(pmnist_run[0])
    for key in ("acc_matrix", "auroc_matrix", "val_acc_matrix", "val_auroc_matrix"):
        assert_lower_triangular(results[key], 3)


def test_pmnist_tasks_are_learned(pmnist_run):
    # The tiny data is easy (each class lights its own block of pixels): 30 steps learn it.
    acc = load_results(pmnist_run[0])["acc_matrix"]
    assert all(acc[i][i] > 0.8 for i in range(3)), acc


def test_pmnist_final_block_and_timings(pmnist_run):
    results = load_results(pmnist_run[0])
    final = results["final"]
    for key in ("avg_acc", "avg_auroc", "bwt", "forgetting", "params", "capacity"):
        assert key in final
    acc = results["acc_matrix"]
    assert final["avg_acc"] == pytest.approx(sum(acc[2]) / 3)
    assert final["bwt"] == pytest.approx(((acc[2][0] - acc[0][0]) + (acc[2][1] - acc[1][1])) / 2)
    assert 0.0 <= final["avg_auroc"] <= 1.0
    # 784-312-128 with three 10-class heads; capacity is relative to the one-head network.
    assert final["params"] == 286274 + 2 * 1290
    assert final["capacity"] == pytest.approx(final["params"] / 286274)
    assert results["base_params"] == 286274
    assert results["params_per_task"] == [286274, 286274 + 1290, 286274 + 2 * 1290]
    assert results["wall_time_s"] > 0
    # a Python process with torch loaded holds well over 100 MiB; a unit slip (KiB) would not
    assert 100 < results["peak_rss_mib"] < 8192
    assert len(results["learn_time_s"]) == 3 and all(t > 0 for t in results["learn_time_s"])
    # 600 training images - 100 held out; the whole 200-image test split.
    assert [t["sizes"] for t in results["tasks"]] == [{"train": 500, "val": 100, "test": 200}] * 3
    assert all(t["report"]["phases"]["train"]["steps"] == 30 for t in results["tasks"])


def test_pmnist_metrics_jsonl_has_one_line_per_evaluation(pmnist_run):
    run_dir = pmnist_run[0]
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert len(rows) == 2 * (1 + 2 + 3)  # val and test, for every task seen so far
    pairs = sorted((r["after_task"], r["task"], r["split"]) for r in rows)
    expected = sorted((i, j, s) for i in range(3) for j in range(i + 1) for s in ("val", "test"))
    assert pairs == expected
    acc = load_results(run_dir)["acc_matrix"]
    for r in rows:
        if r["split"] == "test":
            assert r["acc"] == acc[r["after_task"]][r["task"]]
    assert not (run_dir / "metrics.csv").exists()  # logger=none (the default) writes no CSV


def test_csv_logger_writes_metrics_csv(pmnist_csv_run):
    rows = list(csv.DictReader((pmnist_csv_run / "metrics.csv").open()))
    assert len(rows) == 12
    assert set(rows[0]) == {"after_task", "task", "split", "acc", "auroc"}
    jsonl = read_jsonl(pmnist_csv_run / "metrics.jsonl")
    for row, line in zip(rows, jsonl, strict=True):
        assert int(row["after_task"]) == line["after_task"] and int(row["task"]) == line["task"]
        assert row["split"] == line["split"]
        assert float(row["acc"]) == pytest.approx(line["acc"])


def test_same_seed_and_config_give_identical_metrics(pmnist_run, pmnist_csv_run):
    # The CSV run differs only in its logger, which must not change what is learned.
    a, b = load_results(pmnist_run[0]), load_results(pmnist_csv_run)
    for key in ("acc_matrix", "auroc_matrix", "val_acc_matrix", "val_auroc_matrix"):
        assert a[key] == b[key]

    def losses(results):
        return [
            {k: v for k, v in t["report"]["phases"]["train"].items() if "seconds" not in k}
            for t in results["tasks"]
        ]

    assert losses(a) == losses(b)


# --------------------------------------------------------------------------- split CIFAR-10


def test_split_cifar10_from_an_image_folder(split_cifar_run):
    results = load_results(split_cifar_run)
    assert results["status"] == "complete"
    assert results["model"] == "lenet" and results["stream"] == "split_cifar10"
    assert_lower_triangular(results["acc_matrix"], 5)
    assert_lower_triangular(results["auroc_matrix"], 5)
    assert [t["classes"] for t in results["tasks"]] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    # 10 test images per class, 2 classes per task; the 50 validation images shared out.
    assert all(t["sizes"]["test"] == 20 for t in results["tasks"])
    assert sum(t["sizes"]["val"] for t in results["tasks"]) == 50
    assert sum(t["sizes"]["train"] for t in results["tasks"]) == 300 - 50
    assert all(results["acc_matrix"][i][i] > 0.7 for i in range(5)), results["acc_matrix"]
    assert len(read_jsonl(split_cifar_run / "metrics.jsonl")) == 2 * (1 + 2 + 3 + 4 + 5)
