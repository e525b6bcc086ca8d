"""Mistakes in the config or the data stop ``python -m den.train`` with a short message.

den's own errors (:mod:`den.errors`) exit with status 2 and print one paragraph naming the
key or the file; Hydra's own errors (a misspelled key, an unknown config group option) exit
non-zero with Hydra's message naming the key. Neither prints a Python traceback, and no run
starts: there is no results.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_train

TINY = ("stream.download=false", "stream.val_size=100", "trainer.max_iters=5")


def assert_den_error(proc, run_dir: Path, *names: str) -> None:
    """Exit 2, one ``Error: ...`` paragraph naming every string of ``names``, no traceback."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr[-2000:]
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"
    assert not (run_dir / "results.json").exists()


def assert_hydra_error(proc, run_dir: Path, *names: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 60, proc.stderr  # Hydra lists the group's options
    for name in names:
        assert name in proc.stderr, f"{name!r} not in {proc.stderr!r}"
    assert not (run_dir / "results.json").exists()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("stream.num_tasks=0",), "stream.num_tasks=0"),
        (("stream.samples_per_task=100000",), "stream.samples_per_task=100000"),
        (("stream=split_mnist", "stream.num_tasks=6"), "stream.num_tasks=6"),
        (("stream.val_size=600",), "stream.val_size=600"),
        (("trainer.lr=-1",), "trainer.lr=-1"),
        (("trainer.batch_size=0",), "trainer.batch_size=0"),
        (("trainer.max_iters=0",), "trainer.max_iters=0"),
        (("model.hidden=[]",), "model.hidden"),
    ],
    ids=[
        "num_tasks_0",
        "samples_per_task_too_large",
        "split_more_tasks_than_classes",
        "val_size_whole_train_set",
        "negative_lr",
        "batch_size_0",
        "max_iters_0",
        "no_hidden_layer",
    ],
)
def test_impossible_config_values_name_their_key(overrides, key, tiny_mnist_root, tmp_path):
    proc = run_train(*TINY, f"stream.root={tiny_mnist_root}", *overrides, cwd=tmp_path, check=False)
    assert_den_error(proc, tmp_path, key)


def test_empty_data_root_names_the_missing_folder(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, f"stream.root={root}", cwd=run_dir, check=False)
    assert_den_error(proc, run_dir, str(root / "MNIST" / "raw"), "stream.download=true")


def test_data_folder_without_its_files_names_the_missing_file(tmp_path):
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, f"stream.root={root}", cwd=run_dir, check=False)
    assert_den_error(
        proc, run_dir, str(root / "MNIST" / "raw" / "train-images-idx3-ubyte"), "missing"
    )


def damaged_copy(tiny_mnist_root: Path, tmp_path: Path, name: str, damage) -> tuple[Path, Path]:
    root = tmp_path / "data"
    shutil.copytree(tiny_mnist_root, root)
    path = root / "MNIST" / "raw" / name
    path.write_bytes(damage(path.read_bytes()))
    return root, path


def test_truncated_idx_file_is_named(tiny_mnist_root, tmp_path):
    root, path = damaged_copy(
        tiny_mnist_root, tmp_path, "train-images-idx3-ubyte", lambda data: data[: len(data) // 2]
    )
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, f"stream.root={root}", cwd=run_dir, check=False)
    assert_den_error(proc, run_dir, str(path))


def test_idx_file_with_a_wrong_magic_number_is_named(tiny_mnist_root, tmp_path):
    # A gzip header where the IDX magic should be: the file was never decompressed.
    root, path = damaged_copy(
        tiny_mnist_root,
        tmp_path,
        "t10k-labels-idx1-ubyte",
        lambda data: b"\x1f\x8b\x08\x00" + data[4:],
    )
    run_dir = tmp_path / "run"
    proc = run_train(*TINY, f"stream.root={root}", cwd=run_dir, check=False)
    assert_den_error(proc, run_dir, str(path), "magic")


def test_missing_image_folder_names_the_path(tmp_path):
    root = tmp_path / "no_such_folder"
    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY,
        "stream=split_cifar10",
        "stream.source=imagefolder",
        f"stream.root={root}",
        cwd=run_dir,
        check=False,
    )
    assert_den_error(proc, run_dir, str(root))


def test_misspelled_key_is_named_by_hydra(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "stream.nmu_tasks=3", cwd=tmp_path, check=False
    )
    assert_hydra_error(proc, tmp_path, "nmu_tasks")


def test_wrongly_typed_value_is_named_by_hydra(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "trainer.batch_size=big", cwd=tmp_path, check=False
    )
    assert_hydra_error(proc, tmp_path, "batch_size")


def test_unknown_strategy_is_named(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "strategy=nope", cwd=tmp_path, check=False
    )
    assert_hydra_error(proc, tmp_path, "strategy/nope", "finetune")
