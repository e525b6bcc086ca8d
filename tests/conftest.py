"""Shared fixtures: tiny on-disk datasets and a helper that runs the real entry point.

Nothing here reads /work/shared or the network: the datasets are written by numpy/PIL into
pytest's temporary directories, and every run of ``python -m den.train`` gets
``WANDB_MODE=disabled`` and no ``DEN_DATA_ROOT`` (so a forgotten ``stream.root=`` cannot
silently read the real data).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

# One OpenMP thread in this process too, also for runs the tests start in it (threads=auto
# honours OMP_NUM_THREADS); before torch is imported, which reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) from anywhere
    sys.path.insert(0, str(REPO_ROOT))

# The machine has 2 cores, often shared with other jobs: OpenMP's spinning threads then make
# tiny networks 100x slower. One thread is also the fastest setting for the tiny test models.
torch.set_num_threads(1)

IMAGE_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

# One distinct, saturated colour per class of the tiny image folder.
PALETTE = np.array(
    [
        [230, 25, 25],
        [25, 230, 25],
        [25, 25, 230],
        [230, 230, 25],
        [230, 25, 230],
        [25, 230, 230],
        [240, 140, 20],
        [120, 40, 200],
        [250, 250, 250],
        [10, 10, 10],
    ],
    dtype=np.int16,
)


# --------------------------------------------------------------------------- tiny MNIST


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """Uncompressed IDX3 uint8: magic 0x00000803, then N, 28, 28 (big-endian int32)."""
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """Uncompressed IDX1 uint8: magic 0x00000801, then N (big-endian int32)."""
    path.write_bytes(
        struct.pack(">II", 0x00000801, labels.shape[0]) + labels.astype(np.uint8).tobytes()
    )


def make_digit_like(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images, balanced over 10 classes; class c lights its own 7x7 block.

    The blocks sit on a 4x4 grid (the first 10 cells), with noise of up to 60 everywhere and
    block intensities 180..255, so a linear model separates the classes easily.
    """
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.int16)
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 4)
        images[i, 7 * r : 7 * r + 7, 7 * col : 7 * col + 7] = rng.integers(180, 256, size=(7, 7))
    return images.astype(np.uint8), labels.astype(np.uint8)


def write_tiny_mnist(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """torchvision's MNIST layout ``root/MNIST/raw/*-ubyte`` with a learnable tiny dataset."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = make_digit_like(n, rng)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="session")
def tiny_mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder usable as ``stream.root`` for MNIST: 600 train / 200 test images, 10 classes."""
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny_mnist"))


# --------------------------------------------------------------------------- tiny image folder


def write_image_folder(
    root: Path, colours: dict[str, np.ndarray], n_train: int, n_test: int, seed: int, noise: int
) -> Path:
    """``root/{train,test}/<class>/*.png``: 32x32 RGB images, class ``name`` its colour
    ``colours[name]`` (int16 RGB) plus uniform noise in [-noise, noise]."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                jitter = rng.integers(-noise, noise + 1, size=(32, 32, 3), dtype=np.int16)
                pixels = np.clip(colour + jitter, 0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode="RGB").save(folder / f"{i:03d}.png")
    return root


def write_tiny_imagefolder(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    """10 classes with CIFAR-10's names, one saturated colour each (see write_image_folder)."""
    colours = dict(zip(IMAGE_CLASSES, PALETTE, strict=True))
    return write_image_folder(root, colours, n_train, n_test, seed, noise=20)


def write_tiny_imagefolder_100(
    root: Path, n_train: int = 8, n_test: int = 2, seed: int = 0
) -> Path:
    """100 classes ``class_NNN`` (CIFAR-100's class count), class c a colour made from its
    digits (see write_image_folder)."""
    colours = {
        f"class_{c:03d}": np.array([25 * (c // 10), 25 * (c % 10), 255 - 2 * c], dtype=np.int16)
        for c in range(100)
    }
    return write_image_folder(root, colours, n_train, n_test, seed, noise=10)


@pytest.fixture(scope="session")
def tiny_imagefolder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder usable as ``stream.root`` with ``stream.source=imagefolder`` (CIFAR-10 names)."""
    return write_tiny_imagefolder(tmp_path_factory.mktemp("tiny_imagefolder"))


# --------------------------------------------------------------------------- the entry point


# A 2-task permuted-MNIST run small enough for a test: 200 samples per task, a 16-8 MLP (two
# layers, as den_pmnist's k_layers expects), 20 steps per phase, on the tiny on-disk MNIST
# (add ``stream.root=<tiny_mnist_root>``).
TINY_PMNIST = (
    "+experiment=pmnist",
    "stream.download=false",
    "stream.num_tasks=2",
    "stream.val_size=50",
    "stream.samples_per_task=200",
    "trainer.max_iters=20",
    "trainer.progress=false",
    "model.hidden=[16,8]",
)


def child_env(env_extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``den.train`` child: no ``DEN_DATA_ROOT`` (a forgotten
    ``stream.root=`` must not read the real data), W&B disabled, one intra-op thread (see
    torch.set_num_threads above), the repository importable from any cwd; ``env_extra`` wins."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEN_DATA_ROOT", "HYDRA_FULL_ERROR")}
    env["WANDB_MODE"] = "disabled"
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return env


def _check(cmd: list[str], proc: subprocess.CompletedProcess) -> None:
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited with {proc.returncode}\n"
            f"--- stdout (tail) ---\n{proc.stdout[-3000:]}\n"
            f"--- stderr (tail) ---\n{proc.stderr[-3000:]}"
        )


def run_train(
    *overrides: str,
    cwd: str | os.PathLike,
    env_extra: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run ``python -m den.train *overrides`` with its Hydra run directory at ``cwd``.

    The process itself runs in the repository root (where ``conf/`` and ``den/`` live);
    ``cwd`` is where the run writes (``hydra.run.dir``): results.json, metrics.jsonl, ...
    The child's environment is :func:`child_env`. With ``check`` a non-zero exit fails the
    test and shows the tail of the output.
    """
    cmd = [sys.executable, "-m", "den.train", *overrides, f"hydra.run.dir={Path(cwd)}"]
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=child_env(env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        _check(cmd, proc)
    return proc


def run_multirun(
    *overrides: str,
    cwd: str | os.PathLike = REPO_ROOT,
    check: bool = True,
    start: bool = False,
    timeout: float = 600,
) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run ``python -m den.train -m *overrides`` from ``cwd`` (Hydra's sweep directory is
    relative to it) with :func:`child_env`. ``start``: return the running process
    (stdout and stderr merged) instead of waiting for it."""
    cmd = [sys.executable, "-m", "den.train", "-m", *overrides]
    if start:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc = subprocess.run(
        cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=timeout
    )
    if check:
        _check(cmd, proc)
    return proc


@pytest.fixture(name="run_train")
def run_train_fixture() -> Callable[..., subprocess.CompletedProcess]:
    """The :func:`run_train` helper, for tests that prefer a fixture to an import."""
    return run_train


# --------------------------------------------------------------------------- in-memory streams


def synthetic_raw(n_train: int = 400, n_test: int = 100, side: int = 6, classes: int = 4):
    """A tiny learnable RawDataset without files: class c lights pixel row c, plus noise."""
    from den.data.sources import RawDataset

    g = torch.Generator().manual_seed(0)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % classes
        x = torch.randint(0, 60, (n, 1, side, side), generator=g)
        for c in range(classes):
            x[y == c, 0, c, :] = 250
        return x.to(torch.uint8), y

    tx, ty = make(n_train)
    sx, sy = make(n_test)
    return RawDataset(tx, ty, sx, sy, [str(c) for c in range(classes)])


def tiny_permuted_stream(num_tasks: int = 3):
    """Permuted tasks of 6x6 single-channel images, 4 classes, 320/80/100 examples."""
    from den.config.schema import StreamConfig
    from den.data.streams.base import build_stream

    cfg = StreamConfig(
        name="tiny", kind="permuted", dataset="synthetic", num_tasks=num_tasks, val_size=80
    )
    return build_stream(cfg, seed=0, raw=synthetic_raw())
