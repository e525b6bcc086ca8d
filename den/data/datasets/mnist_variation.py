"""MNIST-Variation, the DEN paper's MLP benchmark, rebuilt offline from MNIST.

The DEN paper (Yoon et al., ICLR 2018, Sec. 4, "Datasets") describes MNIST-Variation as
62,000 images of the handwritten digits 0-9 that, unlike MNIST, are rotated to arbitrary
angles and have noise in the background; it uses 1,000 / 200 / 5,000 images per class for
training / validation / test and makes each task a one-versus-rest binary classification.
62,000 is the size of each of Larochelle et al.'s "variations on MNIST" (ICML 2007: 12,000
training and validation + 50,000 test images), and the variation with both a random rotation
and a natural background is their mnist-rot-back-image. Its recipe, from the authors' page
on the datasets:

- mnist-rot: the digit is rotated by an angle drawn uniformly between 0 and 2 pi radians;
- mnist-back-image: a patch of a black-and-white image is the digit's background; the
  patches are cut at random from 20 images downloaded from the internet, and patches with a
  low pixel variance (little texture) are ignored;
- mnist-rot-back-image: both perturbations combined.

Their 20 background images are not available here, so this builder cuts the patches from
grayscale versions of other natural images (the project uses the CIFAR-10 JPEG copy). The
page does not say how the digit and the patch are combined; ``composite`` chooses: ``over``
(default) lays the white digit over the patch with its intensity as opacity,
``x = d + (1 - d) b`` for d, b in [0, 1], so ink hides the patch and the anti-aliased rim
blends into it; ``max`` keeps the brighter pixel, ``x = max(d, b)``.

Everything is drawn from one ``torch.Generator`` seeded by ``seed``, in a fixed order, so the
same inputs and seed give the same bytes. ``stream.dataset=mnist_variation`` builds it once,
with seed 0 (a fixed dataset, as the original is; the run's seed draws the tasks' examples),
and caches it beside the data (``<stream.root>/.den_cache/``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from den.config.registry import DATASETS
from den.config.schema import StreamConfig
from den.data.datasets.torchvision import CIFAR10, MNIST
from den.data.sources import (
    RawDataset,
    cache_path,
    load_image_folder,
    load_torchvision,
    read_cache,
    save_cache,
)
from den.errors import DataError

log = logging.getLogger(__name__)


PAPER_SIZES = (1000, 200, 5000)  # train / validation / test images per class (DEN, Sec. 4)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """uint8 [M, 3, H, W] RGB (or [M, 1, H, W] / [M, H, W] already gray) -> uint8 [M, H, W],
    with ITU-R 601 luma weights (0.299, 0.587, 0.114), rounded (PIL's "L" conversion)."""
    if images.ndim == 3:
        return images
    if images.shape[1] == 1:
        return images[:, 0]
    if images.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {images.shape[1]}")
    w = torch.tensor([299, 587, 114], dtype=torch.int64).view(1, 3, 1, 1)
    return (
        ((images.to(torch.int64) * w).sum(1) + 500).div(1000, rounding_mode="floor").to(torch.uint8)
    )


def rotate(images: torch.Tensor, angles: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Rotate float [N, C, H, W] images about their centre by ``angles`` (radians, [N]) with
    bilinear interpolation; pixels that come from outside the image are 0 (black, like
    MNIST's border). Batched through ``affine_grid`` / ``grid_sample``, ``chunk`` images at a
    time."""
    out = torch.empty_like(images)
    for i in range(0, images.shape[0], chunk):
        x, a = images[i : i + chunk], angles[i : i + chunk].to(images.dtype)
        cos, sin = torch.cos(a), torch.sin(a)
        zero = torch.zeros_like(a)
        # affine_grid maps output coordinates to input coordinates: the inverse rotation.
        theta = torch.stack(
            [torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out[i : i + chunk] = F.grid_sample(
            x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    return out


def sample_patches(
    backgrounds: torch.Tensor,
    n: int,
    size: int,
    gen: torch.Generator,
    min_std: float = 0.0,
    max_rounds: int = 100,
) -> torch.Tensor:
    """``n`` patches of ``size`` x ``size`` (uint8 [n, size, size]) cut at uniformly random
    positions of uniformly random images of ``backgrounds`` (uint8 [M, H, W]). A patch whose
    pixel standard deviation (0-255 scale) is below ``min_std`` is drawn again (Larochelle et
    al. ignored patches with little texture), at most ``max_rounds`` times."""
    m, h, w = backgrounds.shape
    if h < size or w < size:
        raise ValueError(f"background images are {h}x{w}, smaller than the {size}x{size} patch")
    offsets = torch.arange(size)
    patches = torch.empty(n, size, size, dtype=torch.uint8)
    todo = torch.arange(n)
    for _ in range(max_rounds):
        k = todo.numel()
        img = torch.randint(m, (k,), generator=gen)
        top = torch.randint(h - size + 1, (k,), generator=gen)
        left = torch.randint(w - size + 1, (k,), generator=gen)
        rows = (top[:, None] + offsets)[:, :, None]
        cols = (left[:, None] + offsets)[:, None, :]
        cut = backgrounds[img[:, None, None], rows, cols]
        patches[todo] = cut
        if min_std <= 0:
            return patches
        flat = cut.reshape(k, -1).float()
        todo = todo[flat.std(1) < min_std]
        if todo.numel() == 0:
            return patches
    raise ValueError(
        f"{todo.numel()} patches stayed below min_std={min_std} after {max_rounds} draws: "
        "the background images are too flat, lower min_std"
    )


def composite(digits: torch.Tensor, patches: torch.Tensor, mode: str = "over") -> torch.Tensor:
    """Combine digits (float [N, 1, S, S] in [0, 1]) with patches (uint8 [N, S, S]) into
    uint8 [N, 1, S, S]: ``over`` = d + (1 - d) b, ``max`` = max(d, b)."""
    b = patches.unsqueeze(1).to(digits.dtype).div(255)
    if mode == "over":
        x = digits + (1 - digits) * b
    elif mode == "max":
        x = torch.maximum(digits, b)
    else:
        raise ValueError(f"unknown composite mode {mode!r}: use over or max")
    return x.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def make_mnist_variation(
    digits_x: torch.Tensor,
    digits_y: torch.Tensor,
    background_images: torch.Tensor,
    sizes: Sequence[int] = (PAPER_SIZES[0] + PAPER_SIZES[1], PAPER_SIZES[2]),
    seed: int = 0,
    num_classes: int = 10,
    min_patch_std: float = 10.0,
    composite_mode: str = "over",
    max_angle: float = 2 * math.pi,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build MNIST-Variation (mnist-rot-back-image's recipe) from digits and background images.

    Args:
        digits_x: uint8 [N, 1, S, S] digit images (white on black, MNIST's convention).
        digits_y: int64 [N] labels in [0, num_classes).
        background_images: uint8 [M, H, W] grayscale images (H, W >= S) to cut patches from;
            RGB [M, 3, H, W] is converted with :func:`grayscale`.
        sizes: images per class of each returned split: (train, test). The default, 1,200 and
            5,000, is the paper's per-class 1,000 train + 200 validation and 5,000 test; hold
            the validation images out of the train split afterwards (the stream's val_size).
        seed: every random draw (which digits, angles, patches) comes from it.
        min_patch_std: patches with a lower pixel standard deviation (0-255) are drawn again.
        composite_mode: ``over`` or ``max`` (module docstring).
        max_angle: angles are uniform in [0, max_angle) radians (2 pi: the recipe).

    Returns:
        (train_x, train_y, test_x, test_y): uint8 [n, 1, S, S] images and int64 [n] labels,
        each split holding sizes[i] images of every class in a seeded random order. The
        digits of different splits are distinct images of ``digits_x``.

    Raises:
        ValueError: a class has fewer than sum(sizes) digits, or bad shapes or modes.
    """
    if digits_x.ndim != 4 or digits_x.shape[1] != 1 or digits_x.dtype != torch.uint8:
        raise ValueError(f"digits_x must be uint8 [N, 1, S, S], got {tuple(digits_x.shape)}")
    if digits_y.shape[0] != digits_x.shape[0]:
        raise ValueError(f"{digits_y.shape[0]} labels for {digits_x.shape[0]} digits")
    backgrounds = grayscale(background_images)
    if backgrounds.dtype != torch.uint8:
        raise ValueError("background_images must be uint8")
    if composite_mode not in ("over", "max"):
        raise ValueError(f"unknown composite mode {composite_mode!r}: use over or max")
    gen = torch.Generator().manual_seed(seed)
    need = sum(sizes)
    picked: list[list[torch.Tensor]] = [[] for _ in sizes]
    for c in range(num_classes):
        idx = torch.nonzero(digits_y == c).flatten()
        if idx.numel() < need:
            raise ValueError(f"class {c} has {idx.numel()} digits, {need} needed for sizes {sizes}")
        idx = idx[torch.randperm(idx.numel(), generator=gen)[:need]]
        start = 0
        for split, n in enumerate(sizes):
            picked[split].append(idx[start : start + n])
            start += n
    size = digits_x.shape[-1]
    out: list[torch.Tensor] = []
    for split_idx in picked:
        idx = torch.cat(split_idx)
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        angles = torch.rand(idx.numel(), generator=gen, dtype=torch.float64) * max_angle
        digits = rotate(digits_x[idx].float().div_(255), angles)
        patches = sample_patches(backgrounds, idx.numel(), size, gen, min_patch_std)
        out += [composite(digits, patches, composite_mode), digits_y[idx].to(torch.int64)]
    return out[0], out[1], out[2], out[3]


# --------------------------------------------------------------------------- the registered dataset

BUILD_SEED = 0  # the dataset is fixed, like the original; runs draw their examples by their seed
BUILD_VERSION = 1  # bump when the recipe changes: the cache key includes it


@DATASETS.register("mnist_variation")
def load_mnist_variation(cfg: StreamConfig) -> RawDataset:
    """MNIST-Variation from ``<stream.root>``: MNIST (torchvision's layout, downloaded when
    allowed) and the background images, CIFAR-10's training images in grayscale (the JPEG copy
    ``<stream.root>/cifar10-jpeg`` when present, else torchvision's CIFAR-10). Built once and
    cached: 12,000 training (1,000 + 200 validation per class) and 50,000 test images of 28x28,
    one channel."""
    root = Path(cfg.root).expanduser()
    per_class = (PAPER_SIZES[0] + PAPER_SIZES[1], PAPER_SIZES[2])
    cache = cache_path(root, f"mnist_variation-v{BUILD_VERSION}-seed{BUILD_SEED}")
    data = read_cache(cache)
    if data is not None:
        return RawDataset(**data, class_names=[str(c) for c in range(10)])
    mnist = load_torchvision(MNIST, root, cfg.download)
    backgrounds = grayscale(_background_images(root, cfg.download).train_x)
    log.info("building MNIST-Variation from MNIST and %d background images", len(backgrounds))
    train_x, train_y, test_x, test_y = make_mnist_variation(
        torch.cat([mnist.train_x, mnist.test_x]),
        torch.cat([mnist.train_y, mnist.test_y]),
        backgrounds,
        per_class,
        BUILD_SEED,
    )
    tensors = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
    if cache is not None:
        save_cache(tensors, cache)
    return RawDataset(**tensors, class_names=[str(c) for c in range(10)])


def _background_images(root: Path, download: bool) -> RawDataset:
    """CIFAR-10, the source of the background patches: the JPEG copy under ``root`` when it
    is there, else torchvision's CIFAR-10 (downloaded when allowed)."""
    jpeg = root / "cifar10-jpeg"
    if (jpeg / "train").is_dir():
        return load_image_folder(jpeg)
    try:
        return load_torchvision(CIFAR10, root, download)
    except DataError as err:
        raise DataError(
            root / CIFAR10.folder,
            "MNIST-Variation needs natural images for its backgrounds and found none "
            f"({err.problem})",
            f"put CIFAR-10 under {root} (torchvision's cifar-10-batches-py, or a JPEG copy in "
            f"{jpeg}/train/<class>/), or go online with stream.download=true",
        ) from err
