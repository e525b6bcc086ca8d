"""Every bad input stops the run before training, with a message naming the key or the file.

Table-driven and in-process (Hydra's compose API + ``den.train.run``) so that dozens of cases
cost seconds; ``learn_stream`` is patched to fail the test if training were ever reached. The
exit status and the absence of a traceback on the command line are checked by
``test_errors.py`` with real subprocesses.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

import den.train as train_module
from den.config.store import register_configs
from den.errors import DenError

from conftest import REPO_ROOT

BASE = (
    "+experiment=pmnist",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "trainer.max_iters=5",
    "trainer.progress=false",
)
CIFAR = (
    "stream=split_cifar10",
    "stream.source=imagefolder",
    "model=lenet",
    "strategy=den_cifar_sparse",
    "stream.val_size=20",
)

# (id, overrides, text the message must contain)
BAD_CONFIGS = [
    ("zero tasks", ["stream.num_tasks=0"], "stream.num_tasks"),
    ("zero samples", ["stream.samples_per_task=0"], "stream.samples_per_task"),
    ("subset beyond data", ["stream.samples_per_task=100000"], "stream.samples_per_task"),
    ("zero validation", ["stream.val_size=0"], "stream.val_size"),
    ("validation beyond data", ["stream.val_size=100000"], "stream.val_size"),
    ("zero test samples", ["stream.test_samples_per_task=0"], "stream.test_samples_per_task"),
    (
        "tasks x classes beyond data",
        ["stream=split_mnist", "stream.num_tasks=6"],
        "stream.num_tasks",
    ),
    (
        "zero classes per task",
        ["stream=split_mnist", "stream.classes_per_task=0"],
        "stream.classes_per_task",
    ),
    ("unknown stream kind", ["stream.kind=rotated"], "stream.kind"),
    ("unknown dataset", ["stream.dataset=svhn"], "stream.dataset"),
    ("unknown source", ["stream.source=web"], "stream.source"),
    ("unknown normalisation", ["stream.normalize=zca"], "stream.normalize"),
    ("unknown augmentation", ["stream.augment=mixup"], "stream.augment"),
    ("a pool size per conv layer", ["model=lenet", "model.pools=[2]"], "model.pools"),
    ("zero pool size", ["model=lenet", "model.pools=[2,0]"], "model.pools"),
    ("no negatives", ["stream.negatives_per_positive=0"], "stream.negatives_per_positive"),
    ("negative class-order seed", ["stream.class_order_seed=-1"], "stream.class_order_seed"),
    ("no hidden layer", ["model.hidden=[]"], "model.hidden"),
    ("empty hidden layer", ["model.hidden=[0,10]"], "model.hidden"),
    ("unknown architecture", ["model.arch=transformer"], "model.arch"),
    ("unknown initialisation", ["model.init=xavier"], "model.init"),
    ("negative learning rate", ["trainer.lr=-1"], "trainer.lr"),
    ("lr decay above 1", ["trainer.lr_decay=1.5"], "trainer.lr_decay"),
    ("momentum of 1", ["trainer.momentum=1.0"], "trainer.momentum"),
    ("zero batch", ["trainer.batch_size=0"], "trainer.batch_size"),
    ("zero steps", ["trainer.max_iters=0"], "trainer.max_iters"),
    ("unknown optimiser", ["trainer.optimizer=rmsprop"], "trainer.optimizer"),
    ("negative patience", ["trainer.patience=-1"], "trainer.patience"),
    ("negative weight decay", ["trainer.weight_decay=-0.1"], "trainer.weight_decay"),
    ("negative sigma", ["strategy.sigma=-0.1"], "strategy.sigma"),
    ("negative tau", ["strategy.tau=-1"], "strategy.tau"),
    ("negative k", ["strategy.k=-1"], "strategy.k"),
    ("negative lambda", ["strategy.lam=-0.5"], "strategy.lam"),
    ("unknown prox scale", ["strategy.prox_scale=never"], "strategy.prox_scale"),
    ("unknown unsplit drift", ["strategy.unsplit_drift=ignore"], "strategy.unsplit_drift"),
    ("unknown device", ["device=tpu"], "device"),
    ("negative seed", ["seed=-1"], "seed"),
    ("zero threads", ["threads=0"], "threads"),
    ("unknown logger", ["logger.name=tensorboard"], "logger.name"),
    ("resume from nowhere", ["resume=/nonexistent/run"], "resume"),
]


@pytest.fixture(scope="module", autouse=True)
def _schemas() -> None:
    register_configs()


@pytest.fixture(autouse=True)
def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("training started although the input was bad")

    monkeypatch.setattr(train_module, "learn_stream", fail)


def run_config(overrides: list[str], root: Path, out: Path) -> Exception:
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        try:
            cfg = compose(
                "config",
                overrides=[*BASE, f"stream.root={root}", f"paths.output_dir={out}", *overrides],
            )
        except ConfigCompositionException as err:
            # a choice field (an enum in den.config.schema) refuses other values while composing
            assert "expected one of" in str(err.__cause__)
            return err
    with pytest.raises(DenError) as err:
        train_module.run(cfg)
    assert not (out / "results.json").exists()
    return err.value


@pytest.mark.parametrize(
    ("overrides", "expected"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_fails_before_training(overrides, expected, tiny_mnist_root, tmp_path):
    err = run_config(overrides, tiny_mnist_root, tmp_path / "out")
    assert expected in str(err)
    assert "Fix:" in str(err) or isinstance(err, ConfigCompositionException)


def raw(root: Path, name: str) -> Path:
    return root / "MNIST" / "raw" / name


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def gzip_header(path: Path) -> None:
    path.write_bytes(b"\x1f\x8b\x08\x00" + path.read_bytes()[4:])


def wrong_shape(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:16] = (32).to_bytes(4, "big") * 2  # header says 32x32: the size no longer matches
    path.write_bytes(bytes(data))


def label_out_of_range(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8] = 12
    path.write_bytes(bytes(data))


def fewer_labels(path: Path) -> None:
    data = path.read_bytes()
    n = int.from_bytes(data[4:8], "big") - 10
    path.write_bytes(data[:4] + n.to_bytes(4, "big") + data[8 : 8 + n])


BAD_MNIST_FILES: list[tuple[str, str, Callable[[Path], None] | None, str]] = [
    ("missing images", "train-images-idx3-ubyte", Path.unlink, "train-images-idx3-ubyte"),
    ("missing labels", "t10k-labels-idx1-ubyte", Path.unlink, "t10k-labels-idx1-ubyte"),
    ("truncated images", "train-images-idx3-ubyte", truncate, "train-images-idx3-ubyte"),
    ("gzip instead of IDX", "t10k-images-idx3-ubyte", gzip_header, "t10k-images-idx3-ubyte"),
    ("wrong image shape", "train-images-idx3-ubyte", wrong_shape, "train-images-idx3-ubyte"),
    (
        "label out of range",
        "train-labels-idx1-ubyte",
        label_out_of_range,
        "train-labels-idx1-ubyte",
    ),
    ("fewer labels than images", "t10k-labels-idx1-ubyte", fewer_labels, "t10k-labels-idx1-ubyte"),
]


@pytest.mark.parametrize(
    ("name", "damage", "expected"),
    [c[1:] for c in BAD_MNIST_FILES],
    ids=[c[0] for c in BAD_MNIST_FILES],
)
def test_corrupt_mnist_file_is_named(name, damage, expected, tiny_mnist_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_mnist_root, root)
    damage(raw(root, name))
    err = run_config([], root, tmp_path / "out")
    assert expected in str(err)


def test_empty_data_root_names_the_folder(tmp_path):
    err = run_config([], tmp_path / "empty", tmp_path / "out")
    assert str(tmp_path / "empty" / "MNIST" / "raw") in str(err)


def corrupt_image(root: Path) -> Path:
    path = next((root / "train" / "bird").iterdir())
    path.write_bytes(b"not an image at all")
    return path


def odd_size_image(root: Path) -> Path:
    from PIL import Image

    path = next((root / "test" / "cat").iterdir())
    Image.new("RGB", (20, 20)).save(path)
    return path


def no_test_split(root: Path) -> Path:
    shutil.rmtree(root / "test")
    return root / "test"


@pytest.mark.parametrize(
    "damage", [corrupt_image, odd_size_image, no_test_split], ids=lambda f: f.__name__
)
def test_corrupt_image_folder_is_named(damage, tiny_imagefolder_root, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(tiny_imagefolder_root, root)
    shutil.rmtree(root / ".den_cache", ignore_errors=True)
    path = damage(root)
    err = run_config(list(CIFAR), root, tmp_path / "out")
    assert str(path) in str(err)
