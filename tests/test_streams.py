"""Task streams (den/data/streams.py): what each task holds, and that it is reproducible.

Most tests use a small synthetic :class:`RawDataset` whose pixels encode facts we can read
back from a task's float tensors (``normalize=none`` maps a uint8 value v to v / 255):

* pixels 0 and 1 of every image hold its index in its split (``i % 256``, ``i // 256``) and
  pixel 2 its global class, so an example can be identified in any unpermuted split;
* test image 0 of the permuted-stream dataset is a "probe" whose pixel j has value j, so a
  permuted task's copy of it spells out the task's pixel permutation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from den.config.schema import StreamConfig
from den.data.sources import RawDataset, load_dataset
from den.data.streams.base import build_stream
from den.errors import ConfigError

from conftest import make_digit_like

N_TRAIN, N_TEST, SIDE = 300, 100, 8  # 30 / 10 examples per class, 64 pixels per image


def synthetic_raw(seed: int = 0, probe: bool = True) -> RawDataset:
    """300 train / 100 test 1x8x8 images, 10 balanced classes, encoded as described above.

    The probe (``probe=True``) overwrites test image 0, whose class pixel then no longer
    matches its label: the split-stream tests, which read classes back, turn it off.
    """
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 10
        x = torch.randint(0, 256, (n, 1, SIDE, SIDE), generator=g, dtype=torch.uint8)
        flat = x.view(n, -1)
        flat[:, 0] = torch.arange(n) % 256
        flat[:, 1] = torch.arange(n) // 256
        flat[:, 2] = y
        return x, y

    train_x, train_y = split(N_TRAIN)
    test_x, test_y = split(N_TEST)
    if probe:
        test_x[0].view(-1).copy_(torch.arange(SIDE * SIDE, dtype=torch.uint8))
    return RawDataset(train_x, train_y, test_x, test_y, [f"c{i}" for i in range(10)])


def stream_cfg(**overrides) -> StreamConfig:
    base = {"name": "test", "kind": "permuted", "dataset": "mnist", "num_tasks": 3, "val_size": 50}
    return OmegaConf.structured(StreamConfig(**{**base, **overrides}))


def pixels(x: torch.Tensor) -> torch.Tensor:
    """The uint8 values behind a ``normalize=none`` float split, as int64 [N, pixels]."""
    return (x.flatten(1) * 255).round().long()


def example_ids(x: torch.Tensor) -> list[int]:
    """Split indices of the examples of an unpermuted split (pixels 0 and 1)."""
    p = pixels(x)
    return (p[:, 0] + 256 * p[:, 1]).tolist()


def global_classes(x: torch.Tensor) -> torch.Tensor:
    """Dataset class of every example of an unpermuted split (pixel 2)."""
    return pixels(x)[:, 2]


def permutation_of(task) -> torch.Tensor:
    """The task's pixel permutation, read from its copy of the probe image (test example 0)."""
    return pixels(task.split("test").x[:1])[0]


def same_tasks(a, b) -> bool:
    return all(
        torch.equal(ta.split(s).x, tb.split(s).x) and torch.equal(ta.split(s).y, tb.split(s).y)
        for ta, tb in zip(a, b, strict=True)
        for s in ("train", "val", "test")
    )


# --------------------------------------------------------------------------- permuted


def test_permuted_tasks_use_distinct_permutations_of_all_pixels():
    stream = build_stream(stream_cfg(), seed=0, raw=synthetic_raw())
    perms = [permutation_of(t) for t in stream]
    for perm in perms:
        assert torch.equal(perm.sort().values, torch.arange(SIDE * SIDE))  # a true permutation
        assert not torch.equal(perm, torch.arange(SIDE * SIDE))  # and not the identity
    assert len({tuple(p.tolist()) for p in perms}) == 3
    # Every task keeps the dataset's labels (all 10 classes) and shapes.
    for t in stream:
        assert t.classes == list(range(10))
        assert t.input_shape == (1, SIDE, SIDE)
        assert set(t.split("train").y.tolist()) == set(range(10))


def test_permuted_task_applies_the_same_permutation_to_every_split():
    raw = synthetic_raw()
    task = build_stream(stream_cfg(val_size=8), seed=0, raw=raw)[1]
    perm = permutation_of(task)
    expected = raw.test_x.flatten(1)[:, perm].view(-1, 1, SIDE, SIDE).float() / 255
    assert torch.equal(task.split("test").x, expected)
    all_train = raw.train_x.flatten(1)[:, perm].view(-1, 1, SIDE, SIDE).float() / 255
    val_x = task.split("val").x
    held_out = [
        i for i in range(all_train.shape[0]) if any(torch.equal(all_train[i], v) for v in val_x)
    ]
    assert len(held_out) == 8  # the validation images are permuted training images
    keep = torch.ones(all_train.shape[0], dtype=torch.bool)
    keep[held_out] = False
    assert torch.equal(task.split("train").x, all_train[keep])  # every other training image


def test_same_seed_reproduces_the_tasks_and_another_seed_changes_them():
    raw = synthetic_raw()
    a = build_stream(stream_cfg(samples_per_task=120), seed=5, raw=raw)
    b = build_stream(stream_cfg(samples_per_task=120), seed=5, raw=raw)
    c = build_stream(stream_cfg(samples_per_task=120), seed=6, raw=raw)
    assert same_tasks(a, b)
    for ta, tc in zip(a, c, strict=True):
        assert not torch.equal(permutation_of(ta), permutation_of(tc))
    # The seed also decides which images are held out for validation.
    plain = {s: build_stream(stream_cfg(permute_first_task=False), seed=s, raw=raw) for s in (5, 6)}
    assert example_ids(plain[5][0].split("val").x) != example_ids(plain[6][0].split("val").x)


def test_permute_first_task_false_leaves_task_1_as_the_raw_images():
    raw = synthetic_raw()
    stream = build_stream(stream_cfg(permute_first_task=False), seed=0, raw=raw)
    test0 = stream[0].split("test")
    assert torch.equal(test0.x, raw.test_x.float() / 255)
    assert torch.equal(test0.y, raw.test_y)
    assert not torch.equal(stream[1].split("test").x, test0.x)  # later tasks are permuted


def test_val_split_has_val_size_examples_disjoint_from_train():
    stream = build_stream(
        stream_cfg(permute_first_task=False, val_size=70), seed=1, raw=synthetic_raw()
    )
    train_ids = example_ids(stream[0].split("train").x)
    val_ids = example_ids(stream[0].split("val").x)
    assert len(val_ids) == 70 == stream[0].sizes["val"]
    assert len(train_ids) == N_TRAIN - 70 == stream[0].sizes["train"]
    assert not set(train_ids) & set(val_ids)
    assert set(train_ids) | set(val_ids) == set(range(N_TRAIN))
    # Every task holds out the same validation images (one hold-out for the whole dataset).
    for task in stream:
        assert len(task.split("val")) == 70
        assert sorted(pixels(task.split("val").x).sum(1).tolist()) == sorted(
            pixels(stream[0].split("val").x).sum(1).tolist()
        )


def test_samples_per_task_subsets_the_train_split():
    raw = synthetic_raw()
    full = build_stream(stream_cfg(permute_first_task=False), seed=2, raw=raw)
    sub = build_stream(stream_cfg(permute_first_task=False, samples_per_task=40), seed=2, raw=raw)
    sub_ids = example_ids(sub[0].split("train").x)
    assert len(sub_ids) == 40 == sub[0].sizes["train"]
    assert len(set(sub_ids)) == 40
    assert set(sub_ids) <= set(example_ids(full[0].split("train").x))
    assert not set(sub_ids) & set(example_ids(sub[0].split("val").x))
    assert all(len(t.split("train")) == 40 for t in sub)
    assert len(sub[0].split("test")) == N_TEST  # the test split is not subset
    # Labels still belong to their images.
    assert torch.equal(sub[0].split("train").y, global_classes(sub[0].split("train").x))


def test_test_samples_per_task_subsets_the_test_split():
    stream = build_stream(stream_cfg(test_samples_per_task=25), seed=0, raw=synthetic_raw())
    assert all(len(t.split("test")) == 25 == t.sizes["test"] for t in stream)


def test_val_size_as_large_as_the_training_set_is_a_config_error():
    with pytest.raises(ConfigError, match=r"stream\.val_size"):
        build_stream(stream_cfg(val_size=N_TRAIN), seed=0, raw=synthetic_raw())


def test_samples_per_task_larger_than_the_split_is_a_config_error():
    with pytest.raises(ConfigError, match=r"stream\.samples_per_task"):
        build_stream(stream_cfg(samples_per_task=N_TRAIN), seed=0, raw=synthetic_raw())


# --------------------------------------------------------------------------- split


def test_split_tasks_hold_their_classes_with_local_labels():
    raw = synthetic_raw(probe=False)
    stream = build_stream(
        stream_cfg(kind="split", num_tasks=5, classes_per_task=2), seed=0, raw=raw
    )
    assert len(stream) == 5
    for t, task in enumerate(stream):
        assert task.classes == [2 * t, 2 * t + 1]  # natural order without class_order_seed
        assert task.class_names == [f"c{2 * t}", f"c{2 * t + 1}"]
        for s in ("train", "val", "test"):
            split = task.split(s)
            assert set(split.y.tolist()) == {0, 1}
            # Local label k means global class classes[k].
            mapped = torch.tensor(task.classes)[split.y]
            assert torch.equal(mapped, global_classes(split.x))
        # Every test example of the task's classes is there (10 per class).
        assert len(task.split("test")) == 20


def test_split_tasks_partition_the_classes_and_the_validation_hold_out():
    stream = build_stream(
        stream_cfg(kind="split", num_tasks=5, classes_per_task=2),
        seed=0,
        raw=synthetic_raw(probe=False),
    )
    seen = [c for task in stream for c in task.classes]
    assert sorted(seen) == list(range(10))  # disjoint and complete
    val_ids = [i for task in stream for i in example_ids(task.split("val").x)]
    assert len(val_ids) == len(set(val_ids)) == 50  # stream.val_size shared out among the tasks
    train_ids = {i for task in stream for i in example_ids(task.split("train").x)}
    assert not train_ids & set(val_ids)


def test_split_default_classes_per_task_divides_the_classes():
    stream = build_stream(
        stream_cfg(kind="split", num_tasks=3), seed=0, raw=synthetic_raw(probe=False)
    )
    assert [t.classes for t in stream] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert all(set(t.split("train").y.tolist()) == {0, 1, 2} for t in stream)


def test_class_order_seed_reorders_classes_reproducibly():
    raw = synthetic_raw(probe=False)

    def classes(seed):
        cfg = stream_cfg(kind="split", num_tasks=5, classes_per_task=2, class_order_seed=seed)
        return [t.classes for t in build_stream(cfg, seed=0, raw=raw)]

    natural = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    first, again, other = classes(7), classes(7), classes(8)
    assert first == again
    assert first != natural
    assert first != other
    for order in (first, other):
        assert sorted(c for task in order for c in task) == list(range(10))
    # The labels follow the new order: local label k is global class classes[k].
    task = build_stream(
        stream_cfg(kind="split", num_tasks=5, classes_per_task=2, class_order_seed=7),
        seed=0,
        raw=raw,
    )[0]
    test = task.split("test")
    assert torch.equal(torch.tensor(task.classes)[test.y], global_classes(test.x))


def test_split_with_too_many_tasks_names_stream_num_tasks():
    with pytest.raises(ConfigError, match=r"stream\.num_tasks=6") as err:
        build_stream(
            stream_cfg(kind="split", num_tasks=6, classes_per_task=2),
            seed=0,
            raw=synthetic_raw(probe=False),
        )
    assert err.value.key == "stream.num_tasks"
    with pytest.raises(ConfigError, match=r"stream\.num_tasks=11"):
        build_stream(stream_cfg(kind="split", num_tasks=11), seed=0, raw=synthetic_raw(probe=False))


# --------------------------------------------------------------------------- one vs rest


def test_one_vs_rest_tasks_are_binary_with_positives_of_the_target_class():
    raw = synthetic_raw(probe=False)
    stream = build_stream(stream_cfg(kind="one_vs_rest", num_tasks=4), seed=0, raw=raw)
    for t, task in enumerate(stream):
        assert task.num_classes == 2
        assert task.classes == [-1, t]
        assert task.class_names == [f"not c{t}", f"c{t}"]
        for s in ("train", "val", "test"):
            split = task.split(s)
            cls = global_classes(split.x)
            assert set(split.y.tolist()) <= {0, 1}
            assert torch.equal(split.y == 1, cls == t)  # label 1 exactly for the target class
            n_pos = int(split.y.sum())
            assert n_pos > 0
            assert len(split) - n_pos == n_pos  # negatives_per_positive=1.0
        # Every test image of the target class is a positive.
        assert int(task.split("test").y.sum()) == int((raw.test_y == t).sum())


def test_one_vs_rest_negatives_per_positive_scales_the_negatives():
    stream = build_stream(
        stream_cfg(kind="one_vs_rest", num_tasks=2, negatives_per_positive=2.0),
        seed=0,
        raw=synthetic_raw(probe=False),
    )
    test = stream[0].split("test")
    n_pos = int(test.y.sum())
    assert len(test) - n_pos == 2 * n_pos


# --------------------------------------------------------------------------- from files


def test_tiny_mnist_files_load_and_form_a_permuted_stream(tiny_mnist_root):
    raw = load_dataset(
        StreamConfig(
            name="m", kind="permuted", dataset="mnist", root=str(tiny_mnist_root), download=False
        )
    )
    assert raw.train_x.shape == (600, 1, 28, 28) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (200, 1, 28, 28)
    assert raw.num_classes == 10 and raw.image_shape == (1, 28, 28)
    # The bytes are the ones the fixture wrote (regenerated with the same seed).
    rng = np.random.default_rng(0)
    for x, y in ((raw.train_x, raw.train_y), (raw.test_x, raw.test_y)):
        images, labels = make_digit_like(x.shape[0], rng)
        assert torch.equal(x[:, 0], torch.from_numpy(images))
        assert torch.equal(y, torch.from_numpy(labels).long())

    cfg = stream_cfg(num_tasks=2, val_size=100, root=str(tiny_mnist_root), download=False)
    from_files = build_stream(cfg, seed=0)  # loads the files itself
    assert [t.sizes for t in from_files] == [{"train": 500, "val": 100, "test": 200}] * 2
    assert same_tasks(from_files, build_stream(cfg, seed=0, raw=raw))
    x = from_files[0].split("train").x
    assert x.dtype == torch.float32 and x.shape == (500, 1, 28, 28)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_standard_normalisation_uses_the_training_split_statistics():
    raw = synthetic_raw()
    cfg = dataclasses.replace(
        StreamConfig(
            name="n", kind="split", dataset="mnist", num_tasks=1, classes_per_task=10, val_size=10
        ),
        normalize="standard",
    )
    train = build_stream(cfg, seed=0, raw=raw)[0].split("train")
    assert abs(float(train.x.mean())) < 1e-4
    assert abs(float(train.x.std()) - 1.0) < 1e-3
