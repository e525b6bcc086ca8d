"""MNIST-Variation (den/data/datasets/mnist_variation.py) on tiny synthetic digits and
backgrounds: determinism, shapes, values, rotation, background; the registered dataset built
from an MNIST folder and background images, cached, and its errors; a grayscale image folder
loads as one channel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from den.config.schema import StreamConfig
from den.data.datasets import mnist_variation
from den.data.datasets.mnist_variation import (
    composite,
    grayscale,
    make_mnist_variation,
    rotate,
    sample_patches,
)
from den.data.sources import load_dataset, load_image_folder
from den.errors import DataError

from conftest import run_train, write_image_folder, write_tiny_mnist

S = 8  # digit side


def tiny_digits(per_class: int = 12, classes: int = 3, blank: bool = False):
    """uint8 [n, 1, S, S]: class c is a bright horizontal bar in row 2 + c (all black when
    ``blank``); labels int64 [n]."""
    x = torch.zeros(per_class * classes, 1, S, S, dtype=torch.uint8)
    y = torch.arange(classes).repeat_interleave(per_class)
    if not blank:
        for i, c in enumerate(y.tolist()):
            x[i, 0, 2 + c, 1 : S - 1] = 200 + i % 50
    return x, y


def tiny_backgrounds(n: int = 4, side: int = 12, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, side, side), generator=g, dtype=torch.uint8)


def build(seed: int = 0, **kwargs):
    x, y = kwargs.pop("digits", tiny_digits())
    bg = kwargs.pop("backgrounds", tiny_backgrounds())
    kwargs.setdefault("sizes", (5, 4))
    return make_mnist_variation(x, y, bg, seed=seed, num_classes=3, **kwargs)


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, b = build(seed=3), build(seed=3)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    c = build(seed=4)
    assert not torch.equal(a[0], c[0])


def test_shapes_dtypes_and_per_class_counts():
    train_x, train_y, test_x, test_y = build(sizes=(5, 4))
    assert train_x.shape == (15, 1, S, S) and test_x.shape == (12, 1, S, S)
    assert train_x.dtype == test_x.dtype == torch.uint8
    assert train_y.dtype == test_y.dtype == torch.int64
    assert torch.bincount(train_y).tolist() == [5, 5, 5]
    assert torch.bincount(test_y).tolist() == [4, 4, 4]
    # in the uint8 range by type; not all black, not all white
    assert 0 < int(train_x.float().mean()) < 255


def test_splits_use_distinct_digits():
    # every digit image is unique (its brightness encodes its index), so a digit that
    # appeared in both splits would show up as the same bar brightness in both
    x, y = tiny_digits(per_class=9)
    flat = torch.zeros(2, S + 4, S + 4, dtype=torch.uint8)
    tr_x, _, te_x, _ = make_mnist_variation(
        x, y, flat, sizes=(5, 4), num_classes=3, min_patch_std=0, max_angle=0.0
    )
    tr_vals = {int(v) for v in tr_x.flatten() if v > 0}
    te_vals = {int(v) for v in te_x.flatten() if v > 0}
    assert tr_vals.isdisjoint(te_vals)


def test_without_rotation_and_background_the_digit_is_unchanged():
    x, y = tiny_digits()
    flat = torch.zeros(2, S, S, dtype=torch.uint8)
    tr_x, tr_y, _, _ = make_mnist_variation(
        x, y, flat, sizes=(5, 4), num_classes=3, min_patch_std=0, max_angle=0.0
    )
    for img, label in zip(tr_x, tr_y.tolist(), strict=True):
        row = 2 + label
        assert img[0, row, 1 : S - 1].min() >= 200
        assert img.sum() == img[0, row].sum()  # nothing outside the bar


def test_rotation_is_applied():
    x, y = tiny_digits()
    flat = torch.zeros(2, S, S, dtype=torch.uint8)
    tr_x, tr_y, _, _ = make_mnist_variation(
        x, y, flat, sizes=(5, 4), num_classes=3, min_patch_std=0
    )
    moved = 0
    for img, label in zip(tr_x, tr_y.tolist(), strict=True):
        outside = img[0].clone()
        outside[2 + label] = 0
        moved += int(outside.sum() > 0)
    assert moved >= 12  # of 15: a uniform angle leaves the bar horizontal almost never


def test_rotate_by_a_quarter_turn_is_rot90():
    x = torch.rand(3, 1, 6, 6)
    r = rotate(x, torch.full((3,), math.pi / 2))
    assert torch.allclose(r, torch.rot90(x, -1, (2, 3)), atol=1e-5)
    assert torch.allclose(rotate(x, torch.zeros(3)), x, atol=1e-6)


def test_background_is_a_window_of_a_background_image():
    x, y = tiny_digits(blank=True)
    bg = tiny_backgrounds()
    tr_x, _, _, _ = make_mnist_variation(x, y, bg, sizes=(5, 4), num_classes=3, min_patch_std=0)
    windows = bg.unfold(1, S, 1).unfold(2, S, 1).reshape(-1, S, S)
    for img in tr_x:
        assert (windows == img[0]).all(-1).all(-1).any()  # a blank digit shows its patch


def test_over_and_max_composites():
    d = torch.tensor([0.0, 0.6, 1.0]).view(3, 1, 1, 1)
    b = torch.full((3, 1, 1), 102, dtype=torch.uint8)  # 0.4
    assert composite(d, b, "over").flatten().tolist() == [102, 194, 255]  # d + (1-d) b
    assert composite(d, b, "max").flatten().tolist() == [102, 153, 255]
    with pytest.raises(ValueError, match="composite"):
        composite(d, b, "add")


def test_flat_patches_are_drawn_again():
    bg = torch.cat([torch.full((3, 10, 10), 7, dtype=torch.uint8), tiny_backgrounds(1, 10)])
    gen = torch.Generator().manual_seed(0)
    patches = sample_patches(bg, 50, S, gen, min_std=5.0)
    assert (patches.reshape(50, -1).float().std(1) >= 5.0).all()
    with pytest.raises(ValueError, match="min_std"):
        sample_patches(bg[:3], 5, S, gen, min_std=5.0)


def test_too_few_digits_is_an_error():
    x, y = tiny_digits(per_class=6)
    with pytest.raises(ValueError, match="class 0 has 6 digits"):
        make_mnist_variation(x, y, tiny_backgrounds(), sizes=(5, 4), num_classes=3)


def test_grayscale_uses_luma_weights():
    rgb = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], dtype=torch.uint8)
    gray = grayscale(rgb.T.reshape(1, 3, 1, 4))
    assert gray.flatten().tolist() == [76, 150, 29, 18]


def test_grayscale_image_folder_loads_as_one_channel(tmp_path):
    from PIL import Image

    tr_x, tr_y, te_x, te_y = build(sizes=(5, 4))
    for split, (x, y) in {"train": (tr_x, tr_y), "test": (te_x, te_y)}.items():
        for i, (img, label) in enumerate(zip(x[:, 0].numpy(), y.tolist(), strict=True)):
            (tmp_path / split / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img, mode="L").save(tmp_path / split / str(label) / f"{i:03d}.png")
    raw = load_image_folder(tmp_path)
    assert raw.train_x.shape == (15, 1, S, S) and raw.test_x.shape == (12, 1, S, S)
    for c in range(3):  # read class by class: compare the images of each class as sets
        ours = sorted(tr_x[tr_y == c].flatten(1).tolist())
        theirs = sorted(raw.train_x[raw.train_y == c].flatten(1).tolist())
        assert ours == theirs


TINY_SIZES = (5, 1, 4)  # train / validation / test per class, instead of the paper's


def tiny_root(tmp_path, backgrounds: bool = True):
    """MNIST (80 train + 20 test images per class) and, with ``backgrounds``, a folder of
    noisy images where the CIFAR-10 JPEG copy would be, under ``tmp_path``."""
    write_tiny_mnist(tmp_path, n_train=800, n_test=200)
    if backgrounds:
        grey = {name: np.array([128, 128, 128], dtype=np.int16) for name in "ab"}
        write_image_folder(tmp_path / "cifar10-jpeg", grey, n_train=3, n_test=1, seed=0, noise=90)
    return tmp_path


def stream_cfg(root) -> StreamConfig:
    return StreamConfig(
        name="mnist_variation", kind="one_vs_rest", dataset="mnist_variation",
        root=str(root), download=False,
    )  # fmt: skip


def test_registered_dataset_is_built_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_variation, "PAPER_SIZES", TINY_SIZES)
    root = tiny_root(tmp_path)
    raw = load_dataset(stream_cfg(root))
    assert raw.train_x.shape == (60, 1, 28, 28) and raw.test_x.shape == (40, 1, 28, 28)
    assert torch.bincount(raw.train_y).tolist() == [6] * 10
    assert raw.class_names == [str(c) for c in range(10)]
    (cache,) = (root / ".den_cache").glob("mnist_variation-*.pt")
    # the second load reads the cache: the same bytes, even with the sources gone
    (root / "MNIST").rename(root / "gone")
    again = load_dataset(stream_cfg(root))
    assert torch.equal(again.train_x, raw.train_x) and torch.equal(again.test_y, raw.test_y)
    assert cache.is_file()


def test_missing_backgrounds_name_cifar10_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_variation, "PAPER_SIZES", TINY_SIZES)
    root = tiny_root(tmp_path, backgrounds=False)
    with pytest.raises(DataError, match="backgrounds.*cifar10-jpeg"):
        load_dataset(stream_cfg(root))


def test_missing_mnist_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no mnist files found"):
        load_dataset(stream_cfg(tmp_path))


def test_experiment_runs_end_to_end_on_the_cached_dataset(tmp_path, monkeypatch):
    """+experiment=mnist_variation in a real den.train process; the tiny dataset is built
    here (the paper's sizes need 6,200 digits per class) and the run reads it from the cache."""
    monkeypatch.setattr(mnist_variation, "PAPER_SIZES", TINY_SIZES)
    root = tiny_root(tmp_path / "data")
    load_dataset(stream_cfg(root))
    run_dir = tmp_path / "run"
    run_train(
        "+experiment=mnist_variation", f"stream.root={root}", "stream.download=false",
        "stream.num_tasks=2", "stream.val_size=10", "trainer.max_iters=10",
        "model.hidden=[16,8]", "trainer.progress=false", "logger=none", cwd=run_dir,
    )  # fmt: skip
    import json

    result = json.loads((run_dir / "results.json").read_text())
    assert result["status"] == "complete" and result["tasks_done"] == 2
    assert len(result["auroc_matrix"]) == 2
