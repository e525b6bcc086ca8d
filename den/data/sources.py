"""Datasets as in-memory uint8 tensors: torchvision's classes or an ImageFolder tree.

Every source returns a :class:`RawDataset`; nothing here knows about tasks. Files are checked
before they are parsed so that a missing or damaged file produces one :class:`DataError`
naming the path and the fix instead of a parser traceback.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from den.config.registry import DATASETS
from den.config.schema import StreamConfig
from den.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class RawDataset:
    """A whole dataset in memory.

    ``train_x``/``test_x``: uint8 [N, C, H, W]; ``train_y``/``test_y``: int64 [N] in
    [0, len(class_names)).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def load_dataset(cfg: StreamConfig) -> RawDataset:
    """The dataset of a (validated) stream config: an image folder under ``cfg.root`` with
    ``source=imagefolder``, else the registered dataset ``cfg.dataset``."""
    root = Path(cfg.root).expanduser()
    try:
        if cfg.source == "imagefolder":
            return load_image_folder(root)
        return DATASETS.get(cfg.dataset).target(cfg)
    except PermissionError as err:  # a file or folder this user may not read
        raise DataError(
            err.filename or root,
            "cannot read it (permission denied)",
            "make the dataset readable by this user (chmod -R a+rX) or point stream.root at "
            "a readable copy",
        ) from err


def _missing_data_fix(root: Path, what: str) -> str:
    fix = (
        f"go online and keep stream.download=true so torchvision downloads {what} into {root}, "
        "or point stream.root=<folder> (or the DEN_DATA_ROOT environment variable) at a "
        "folder that already holds it"
    )
    jpeg = root / "cifar10-jpeg"
    if what == "cifar10" and (jpeg / "train").is_dir():
        fix += f"; or read the JPEG copy: stream.source=imagefolder stream.root={jpeg}"
    return fix


@dataclass(frozen=True)
class TorchvisionLayout:
    """Where torchvision keeps a dataset under its root, and its class."""

    name: str  # the dataset's name in den (stream.dataset)
    folder: str  # torchvision's folder under the root
    sub: str | None  # the subfolder holding the files (MNIST's raw/), if any
    cls: str  # the torchvision.datasets class
    num_classes: int

    def __call__(self, cfg: StreamConfig) -> RawDataset:
        return load_torchvision(self, Path(cfg.root).expanduser(), cfg.download)


def load_torchvision(spec: TorchvisionLayout, root: Path, download: bool) -> RawDataset:
    """Read with ``download=False`` when the files are there; otherwise download if allowed."""
    import torchvision.datasets as tvd

    dataset = spec.name
    expected = root / spec.folder / spec.sub if spec.sub else root / spec.folder
    cls = getattr(tvd, spec.cls)
    idx = spec.sub == "raw"  # MNIST-style IDX files
    if not _files_present(idx, expected) and (download or not expected.exists()):
        # Not only "folder missing": a failed (offline) attempt leaves an empty folder, and a
        # damaged file deleted as advised leaves a gap; both are downloaded again. Without
        # download, the checks below name the missing file.
        if not download:
            raise DataError(expected, f"no {dataset} files found", _missing_data_fix(root, dataset))
        log.info("%s not found under %s: downloading with torchvision", dataset, root)
        created = [p for p in (root, root / spec.folder) if not p.exists()]
        try:
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
        except Exception as err:  # network errors come in many types
            _remove_created(created)  # a failed attempt leaves no empty or partial folder
            raise DataError(
                expected,
                f"{dataset} is not there and the download failed ({type(err).__name__}: "
                f"{str(err).strip().splitlines()[0][:160]})",
                _missing_data_fix(root, dataset),
            ) from err
    if idx:
        for split in ("train", "test"):
            images, labels = (expected / name for name in IDX_FILES[split])
            check_idx_file(images)
            check_idx_file(labels)
            check_idx_labels(labels, images, spec.num_classes)
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except Exception as err:
        raise DataError(
            expected,
            f"torchvision could not read {dataset} ({type(err).__name__}: {err})",
            "delete the folder and download again, or point stream.root at an intact copy",
        ) from err
    return RawDataset(
        train_x=_as_nchw(train.data),
        train_y=torch.as_tensor(train.targets, dtype=torch.int64),
        test_x=_as_nchw(test.data),
        test_y=torch.as_tensor(test.targets, dtype=torch.int64),
        class_names=[str(c) for c in train.classes],
    )


def _remove_created(folders: list[Path]) -> None:
    """Delete the folders a failed download created (the deepest first), with what it left."""
    import shutil

    for folder in reversed(folders):
        shutil.rmtree(folder, ignore_errors=True)


def _files_present(idx: bool, expected: Path) -> bool:
    """Whether every file torchvision needs is in ``expected`` (MNIST's four IDX files, or a
    non-empty CIFAR batches folder)."""
    if idx:
        return all((expected / name).exists() for names in IDX_FILES.values() for name in names)
    return expected.is_dir() and any(expected.iterdir())


def _as_nchw(data: torch.Tensor | np.ndarray) -> torch.Tensor:
    """torchvision stores MNIST as [N, H, W] tensors and CIFAR as [N, H, W, C] arrays."""
    x = torch.as_tensor(data)
    if x.ndim == 3:
        return x.unsqueeze(1).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()


def _open_data(path: Path):
    """``path`` opened for reading; an unreadable file is a DataError naming it."""
    try:
        return path.open("rb")
    except OSError as err:
        raise DataError(
            path,
            f"cannot read the file ({err.strerror or err})",
            "make it readable by this user (chmod a+r) or point stream.root at a readable copy",
        ) from err


def check_idx_file(path: Path) -> None:
    """Check an uncompressed IDX file's header against its size before anyone parses it.

    IDX: 2 zero bytes, a type byte (0x08 = uint8), a byte with the number of dimensions, then
    one big-endian int32 per dimension, then the data.
    """
    fix = (
        "replace it with an intact copy (delete it and rerun with stream.download=true when online)"
    )
    if path.is_dir():
        raise DataError(path, "is a directory, not an IDX file", fix)
    if not path.is_file():
        gz = path.with_name(path.name + ".gz")
        hint = f" (found {gz.name}: decompress it with gunzip)" if gz.is_file() else ""
        raise DataError(
            path, f"file is missing{hint}", _missing_data_fix(path.parent.parent.parent, "MNIST")
        )
    size = path.stat().st_size
    with _open_data(path) as f:
        head = f.read(4)
        if (
            len(head) < 4
            or head[0] != 0
            or head[1] != 0
            or head[2] != 0x08
            or head[3] not in (1, 3)
        ):
            raise DataError(
                path, f"not an IDX uint8 file (magic bytes {head.hex() or 'empty'})", fix
            )
        ndim = head[3]
        dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(path, "file is truncated inside its header", fix)
    dims = [int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        raise DataError(
            path, f"header says {dims} ({expected} bytes) but the file has {size} bytes", fix
        )
    if ndim == 3 and dims[1:] != [28, 28]:
        raise DataError(path, f"images are {dims[1]}x{dims[2]}, expected 28x28", fix)


def check_idx_labels(labels: Path, images: Path, num_classes: int) -> None:
    """Labels must be < ``num_classes`` and as many as the images (both files already checked)."""
    fix = (
        "replace it with an intact copy (delete it and rerun with stream.download=true when online)"
    )
    with _open_data(labels) as f:
        values = np.frombuffer(f.read()[8:], dtype=np.uint8)
    with _open_data(images) as f:
        n_images = int.from_bytes(f.read(8)[4:8], "big")
    if values.size != n_images:
        raise DataError(labels, f"{values.size} labels for {n_images} images in {images.name}", fix)
    if values.size and int(values.max()) >= num_classes:
        raise DataError(
            labels, f"label {int(values.max())} is out of range 0..{num_classes - 1}", fix
        )


def load_image_folder(root: Path) -> RawDataset:
    """Read ``root/{train,test}/<class>/<image>`` (torchvision's ImageFolder layout).

    Decoding CIFAR-10's 60,000 JPEGs takes about 10 s, so the decoded uint8 tensors are
    cached in ``root/.den_cache/`` (or ``~/.cache/den`` when ``root`` is read-only), keyed by
    the file list, sizes and modification times: an edited tree is decoded again.
    """
    if not root.is_dir():
        raise DataError(
            root,
            "image folder does not exist",
            "set stream.root to a folder holding train/<class>/*.jpg and test/<class>/*.jpg "
            "(a copy of CIFAR-10 as JPEGs in class folders works)",
        )
    files = {split: _list_images(root / split) for split in ("train", "test")}
    classes = sorted({cls for cls, _ in files["train"]})
    test_classes = sorted({cls for cls, _ in files["test"]})
    if test_classes != classes:
        raise DataError(
            root / "test",
            f"test classes {test_classes} differ from train classes {classes}",
            "give train/ and test/ the same class folders",
        )
    key = _cache_key(files)
    cache = cache_path(root, f"images-{key}")
    data = read_cache(cache)
    if data is not None:
        return RawDataset(**data, class_names=classes)
    index = {c: i for i, c in enumerate(classes)}
    tensors = {}
    for split in ("train", "test"):
        x, y = _decode_images(files[split], index)
        tensors[f"{split}_x"], tensors[f"{split}_y"] = x, y
    if tensors["train_x"].shape[1:] != tensors["test_x"].shape[1:]:
        raise DataError(
            root, "train and test images differ in size", "resize all images to one size"
        )
    if cache is not None:
        save_cache(tensors, cache)
    return RawDataset(**tensors, class_names=classes)


def _list_images(split_dir: Path) -> list[tuple[str, Path]]:
    if not split_dir.is_dir():
        raise DataError(
            split_dir,
            "missing split folder",
            "an image-folder source needs train/<class>/ and test/<class>/ subfolders",
        )
    try:
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name[0] != ".")
        out = []
        for cls_dir in class_dirs:
            images = [f for f in sorted(cls_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                # dropping it would renumber the classes and fail later as "N classes"
                raise DataError(
                    cls_dir,
                    "class folder holds no images",
                    f"put images ({', '.join(IMAGE_SUFFIXES)}) in it or remove the folder",
                )
            out += [(cls_dir.name, f) for f in images]
    except PermissionError as err:
        raise DataError(
            err.filename or split_dir,
            "cannot read the folder (permission denied)",
            "make it readable by this user or point stream.root at a readable copy",
        ) from err
    if not out:
        raise DataError(
            split_dir,
            "no images found",
            f"put images ({', '.join(IMAGE_SUFFIXES)}) in class subfolders",
        )
    return out


def _cache_key(files: dict[str, list[tuple[str, Path]]]) -> str:
    h = hashlib.sha1()
    for split, items in files.items():
        for cls, path in items:
            st = path.stat()
            h.update(f"{split}/{cls}/{path.name}/{st.st_size}/{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def read_cache(path: Path | None) -> dict | None:
    """The tensors a dataset cache holds, or None when there is none or it cannot be read
    (a broken cache is rebuilt, never trusted)."""
    if path is None or not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:
        log.warning("ignoring unreadable cache %s", path)
        return None


def cache_path(root: Path, name: str) -> Path | None:
    """Where a decoded or built dataset ``name`` is cached: ``root/.den_cache/<name>.pt``, or
    ``~/.cache/den/<name>.pt`` when ``root`` is read-only; None when neither is writable."""
    for folder in (root / ".den_cache", Path.home() / ".cache" / "den"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder / f"{name}.pt"
        except OSError:
            continue
    return None


def _decode_images(
    items: list[tuple[str, Path]], index: dict[str, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    import sys

    from PIL import Image, UnidentifiedImageError
    from rich.console import Console
    from rich.progress import track

    arrays = []
    shape = None
    log.info(
        "decoding %d images under %s (cached afterwards)", len(items), items[0][1].parent.parent
    )
    progress = track(
        items,
        description=f"decoding {items[0][1].parent.parent.name} images",
        console=Console(stderr=True),
        disable=not sys.stderr.isatty(),
    )
    for _cls, path in progress:
        try:
            with Image.open(path) as img:
                # Grayscale ("L") images stay one channel; any other mode becomes RGB.
                arr = np.asarray(img if img.mode == "L" else img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(
                path, f"cannot decode image ({err})", "delete or replace the file"
            ) from err
        if shape is None:
            shape = arr.shape[:2]
        elif arr.shape[:2] != shape:
            raise DataError(
                path,
                f"image is {arr.shape[1]}x{arr.shape[0]}, others are {shape[1]}x{shape[0]}",
                "resize all images to one size",
            )
        arrays.append(arr)
    x = torch.from_numpy(_stack_channels(arrays)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([index[cls] for cls, _ in items], dtype=torch.int64)
    return x, y


def _stack_channels(arrays: list[np.ndarray]) -> np.ndarray:
    """uint8 [N, H, W, C] from [H, W] (grayscale) and [H, W, 3] (RGB) arrays: a tree of
    grayscale images only is one channel (MNIST-like data keeps its 784 inputs); in a mixed
    tree the grayscale images are repeated to RGB, as PIL's convert("RGB") does."""
    if all(a.ndim == 2 for a in arrays):
        return np.stack(arrays)[..., None]
    return np.stack([np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays])


def save_cache(obj: object, path: Path) -> None:
    """Write a dataset cache atomically; a cache that cannot be written is only a warning."""
    import io

    from den.utils.files import UnsafePathError, WriteError, write_atomic

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        write_atomic(path, buffer.getvalue())
    except (WriteError, UnsafePathError) as err:
        log.warning("dataset not cached (%s); it is built again next time", err)
