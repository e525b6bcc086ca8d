"""Training-time data augmentation on whole batches of in-memory image tensors.

The training loop draws a batch by index and, when the task's training split carries an
augmentation, passes the batch through it before the forward pass. Everything here is one
vectorised tensor expression per batch (no per-image Python loop, no PIL), so augmentation
costs a few gathers per step on any device, and it is deterministic given the loop's
generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from den.errors import ConfigError

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""(x [B, C, H, W], CPU generator) -> augmented x of the same shape, device and dtype."""

AUGMENTATIONS = ("none", "crop_flip")


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random ``padding``-pixel translation (a random H x W crop of the zero-padded image) and
    a random horizontal flip with probability 1/2, drawn independently per image: the
    standard CIFAR augmentation (He et al. 2016). Zero padding is applied to the normalised
    image, so the border is the training mean rather than black.

    Args:
        x: float [B, C, H, W].
        generator: CPU generator; the random offsets are drawn on the CPU and moved once.
    """
    b, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    offsets, flips = offsets.to(x.device, non_blocking=True), flips.to(x.device, non_blocking=True)
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # [B, H]
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flips[:, None], cols.flip(1), cols) + offsets[1, :, None]  # [B, W]
    # Gather rows, then columns, of every image and channel: [B, C, H, W + 2p] -> [B, C, H, W].
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def build_augmentation(name: str) -> Augmentation | None:
    """The augmentation named by ``stream.augment`` (None for ``none``)."""
    if name == "none":
        return None
    if name == "crop_flip":
        return random_crop_flip
    raise ConfigError(
        "stream.augment", name, "unknown augmentation", f"use one of {list(AUGMENTATIONS)}"
    )
