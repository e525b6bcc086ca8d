"""Mistakes in the config or the data stop ``python -m den.train`` with a short message.

Every error, a misspelled key, a value of the wrong type or an unknown group choice included,
exits with status 2 and prints one paragraph in den's format (:mod:`den.errors`) naming the
key or the file, what is allowed and the closest valid choice; no Python traceback, no Hydra
advice to add a ``+``, and no run starts: there is no results.json.
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


def test_misspelled_key_is_named_with_the_closest_valid_key(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "stream.nmu_tasks=3", cwd=tmp_path, check=False
    )
    assert_den_error(proc, tmp_path, "stream.nmu_tasks", "did you mean stream.num_tasks?")
    assert "+stream" not in proc.stderr  # never Hydra's advice to append the key


def test_wrongly_typed_value_is_named_with_its_type(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "trainer.batch_size=big", cwd=tmp_path, check=False
    )
    assert_den_error(proc, tmp_path, "trainer.batch_size='big'", "must be an integer")


def test_unknown_enum_value_lists_the_choices(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY,
        f"stream.root={tiny_mnist_root}",
        "strategy=den",
        "strategy.unsplit_drift=resotre",
        cwd=tmp_path,
        check=False,
    )
    assert_den_error(proc, tmp_path, "strategy.unsplit_drift", "did you mean restore?", "keep")


def test_unknown_strategy_is_named(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "strategy=nope", cwd=tmp_path, check=False
    )
    assert_den_error(proc, tmp_path, "strategy='nope'", "finetune", "conf/strategy/")


def test_a_schema_is_not_a_choice(tiny_mnist_root, tmp_path):
    proc = run_train(
        *TINY, f"stream.root={tiny_mnist_root}", "strategy=den_schema", cwd=tmp_path, check=False
    )
    assert_den_error(proc, tmp_path, "strategy='den_schema'", "did you mean strategy=den?")
