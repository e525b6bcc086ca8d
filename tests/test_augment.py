"""Training-time augmentation (stream.augment): what each image becomes, and where it applies."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from den.config.schema import StreamConfig, TrainerConfig
from den.data.augment import random_crop_flip
from den.data.streams.base import Split, build_stream
from den.engine.training import train_phase
from den.errors import ConfigError

from conftest import synthetic_raw


def test_every_image_is_a_shifted_and_maybe_flipped_crop_of_itself():
    x = torch.randn(64, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2))
    candidates = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (False, True)]
    seen_flip, seen_shift = False, False
    for i in range(x.shape[0]):
        matches = []
        for dy, dx, flip in candidates:
            crop = padded[i, :, dy : dy + 8, dx : dx + 8]
            # a flip mirrors the crop window: columns dx+7, ..., dx read left to right
            if flip:
                crop = crop.flip(-1)
            if torch.equal(out[i], crop):
                matches.append((dy, dx, flip))
        assert matches, f"image {i} is not a crop of its padded self"
        seen_flip |= any(m[2] for m in matches)
        seen_shift |= any(m[:2] != (2, 2) for m in matches)
    assert seen_flip and seen_shift  # 64 images: both kinds of change happen


def test_augmentation_is_deterministic_given_the_generator():
    x = torch.randn(16, 1, 6, 6)
    a = random_crop_flip(x, torch.Generator().manual_seed(3))
    b = random_crop_flip(x, torch.Generator().manual_seed(3))
    c = random_crop_flip(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def stream_cfg(augment: str) -> StreamConfig:
    return StreamConfig(
        name="tiny", kind="split", dataset="synthetic", num_tasks=2, val_size=40, augment=augment
    )


def test_only_training_splits_carry_the_augmentation():
    stream = build_stream(stream_cfg("crop_flip"), seed=0, raw=synthetic_raw())
    task = stream[0]
    assert task.split("train").augment is random_crop_flip
    assert task.split("val").augment is None and task.split("test").augment is None
    assert (
        build_stream(stream_cfg("none"), seed=0, raw=synthetic_raw())[0].split("train").augment
        is None
    )
    assert task.split("train").to("cpu").augment is random_crop_flip  # survives a device move


def test_the_training_loop_feeds_augmented_batches():
    x = torch.arange(1, 2 * 1 * 4 * 4 + 1, dtype=torch.float32).view(2, 1, 4, 4)
    y = torch.zeros(2, dtype=torch.long)
    seen: list[torch.Tensor] = []
    w = torch.zeros((), requires_grad=True)

    def objective(batch: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(batch.clone())
        return (w * batch.sum()).pow(2)

    def is_original(image: torch.Tensor) -> bool:
        return any(torch.equal(image, original) for original in x)

    cfg = TrainerConfig(max_iters=3, batch_size=2, patience=0, progress=False)
    train_phase("plain", [w], objective, Split(x, y), cfg, torch.Generator().manual_seed(0))
    assert all(is_original(img) for batch in seen for img in batch)
    seen.clear()
    augmented = Split(x, y, random_crop_flip)
    train_phase("aug", [w], objective, augmented, cfg, torch.Generator().manual_seed(0))
    assert len(seen) == 3 and not all(is_original(img) for batch in seen for img in batch)


def test_an_unknown_augmentation_is_a_config_error():
    with pytest.raises(ConfigError, match=r"stream\.augment"):
        build_stream(stream_cfg("mixup"), seed=0, raw=synthetic_raw())
