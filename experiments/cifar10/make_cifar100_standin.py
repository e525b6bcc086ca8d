"""Build a stand-in for CIFAR-100 from the CIFAR-10 JPEG copy, to time +experiment=split_cifar100.

CIFAR-100 cannot be downloaded on an offline machine, but split CIFAR-100's running time
depends on the data only through its sizes (LeNet on 32x32 RGB images, 10 tasks of 10
classes, 500 training and 100 test images per class) and through how soon each phase's
validation loss stops improving. This script lays out 100 "classes" as an image folder
(symlinks, no copies): class ``t{t}_{name}`` holds the t-th block of 500 training and 100
test images of CIFAR-10 class ``name``. Sorted by name, task t of split CIFAR-100 (classes
10t..10t+9, the stream's default order) is then a 10-way CIFAR-10 problem on images no
other task sees: the sizes of CIFAR-100 and natural-image difficulty, so early stopping
behaves like on real data (not exactly: these are CIFAR-10's classes, not CIFAR-100's).

    python experiments/cifar10/make_cifar100_standin.py ../shared/data/cifar10-jpeg \
        outputs/cifar100_standin_data
    python -m den.train +experiment=split_cifar100 stream.source=imagefolder \
        stream.root=outputs/cifar100_standin_data
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TASKS = 10


def make_standin(src: Path, out: Path, tasks: int = TASKS) -> dict[str, int]:
    """Write ``out/{train,test}/t{t}_{class}/`` symlinks; return images per class per split.

    Each CIFAR-10 class's sorted files are cut into ``tasks`` equal blocks (the remainder is
    left out), so every stand-in class of one split has the same number of images.
    """
    src, out = src.resolve(), Path(out)
    classes = sorted(p.name for p in (src / "train").iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"Error: no class folders in {src / 'train'}. Fix: pass the JPEG copy.")
    per_class = {}
    for split in ("train", "test"):
        listing = {name: sorted(os.listdir(src / split / name)) for name in classes}
        per_class[split] = min(map(len, listing.values())) // tasks
        if per_class[split] == 0:
            raise SystemExit(f"Error: {src / split} has fewer than {tasks} images in a class.")
        for name, files in listing.items():
            for t in range(tasks):
                folder = out / split / f"t{t}_{name}"
                folder.mkdir(parents=True, exist_ok=True)
                block = files[t * per_class[split] : (t + 1) * per_class[split]]
                for file in block:
                    link = folder / file
                    if not link.is_symlink():
                        link.symlink_to(src / split / name / file)
    return per_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="the CIFAR-10 image folder (train/, test/)")
    parser.add_argument("out", type=Path, help="where to write the stand-in folder")
    args = parser.parse_args()
    per_class = make_standin(args.src, args.out)
    print(
        f"{args.out}: {TASKS * 10} classes, {per_class['train']} training and "
        f"{per_class['test']} test images each"
    )


if __name__ == "__main__":
    main()
