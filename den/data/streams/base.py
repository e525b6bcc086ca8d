"""Task streams: a dataset cut into a sequence of tasks, deterministically from a seed.

A stream kind (``permuted``, ``split``, ``one_vs_rest``, one module each) is a function
``(cfg, data, gen) -> list[Task]`` registered in :data:`den.config.registry.STREAMS` with its
settings' schema; :func:`build_stream` loads the dataset, holds out the validation examples
and hands the kind a :class:`Pools` of the three splits.

A :class:`Task` holds its train/validation/test tensors in memory (float32, [N, C, H, W],
labels local to the task: 0..num_classes-1). Permuted tasks share one uint8 copy of the
dataset and apply their pixel permutation when a split is asked for, so ten permuted-MNIST
tasks cost one dataset of memory, not ten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from den.config.registry import STREAMS
from den.config.schema import StreamConfig
from den.data.augment import Augmentation, build_augmentation
from den.data.sources import RawDataset, load_dataset
from den.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Inputs ``x`` float32 [N, C, H, W] and task-local labels ``y`` int64 [N].

    ``augment``, set on training splits when ``stream.augment`` asks for it, is applied by
    the training loop to every batch drawn from this split (never to evaluation data).
    """

    x: torch.Tensor
    y: torch.Tensor
    augment: Augmentation | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(
            self.x.to(device, non_blocking=True),
            self.y.to(device, non_blocking=True),
            self.augment,
        )


@dataclass
class Task:
    """One task of a stream.

    ``task_id`` is 0-based; ``classes`` are the dataset's global class ids in the order of the
    task-local labels (``classes[k]`` is label k), ``class_names`` their names.
    """

    task_id: int
    classes: list[int]
    class_names: list[str]
    input_shape: tuple[int, int, int]
    _make_split: Callable[[str], Split] = field(repr=False)
    sizes: dict[str, int] = field(default_factory=dict)
    _labels: Callable[[str], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def labels(self, name: str) -> torch.Tensor:
        """The task-local labels of split ``name``, without building its inputs when the
        stream kind can say them alone."""
        return self._labels(name) if self._labels is not None else self.split(name).y

    def split(self, name: str) -> Split:
        """Materialise ``train``, ``val`` or ``test`` (a fresh tensor pair on the CPU)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return self._make_split(name)


@dataclass
class Stream:
    name: str
    tasks: list[Task]
    dataset: str
    num_dataset_classes: int

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: int) -> Task:
        return self.tasks[i]


@dataclass
class Pools:
    """The dataset's examples each task draws from, split before any task is formed.

    ``x[split]`` uint8 [N, C, H, W] and ``y[split]`` int64 [N] are the dataset's arrays (train
    and val share the training arrays); ``index[split]`` int64 [n] are the rows of that split.
    ``mean`` and ``std`` [C, 1, 1] normalise pixels scaled to [0, 1].
    """

    raw: RawDataset
    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    index: dict[str, torch.Tensor]
    mean: torch.Tensor
    std: torch.Tensor

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> normalised float32 (a new tensor)."""
        return x.float().div_(255).sub_(self.mean).div_(self.std)

    def indexed_task(
        self,
        t: int,
        classes: Sequence[int],
        chosen: dict[str, torch.Tensor],
        relabel: Callable[[torch.Tensor], torch.Tensor],
        names: list[str] | None = None,
    ) -> Task:
        """Task ``t`` made of the ``chosen`` rows of each split, labels mapped by ``relabel``."""

        def make(split: str) -> Split:
            idx = chosen[split]
            return Split(self.to_float(self.x[split][idx]), relabel(self.y[split][idx]))

        return Task(
            t,
            list(classes),
            names or [self.raw.class_names[c] for c in classes],
            self.raw.image_shape,
            make,
            {k: v.numel() for k, v in chosen.items()},
            lambda split: relabel(self.y[split][chosen[split]]),
        )


StreamKind = Callable[[StreamConfig, Pools, torch.Generator], list[Task]]
"""What a registered stream kind is: (settings, pools, seeded generator) -> tasks."""


def build_stream(cfg: StreamConfig, seed: int, raw: RawDataset | None = None) -> Stream:
    """Cut the dataset named by ``cfg`` (a validated config) into tasks. ``raw`` skips
    loading (tests, reuse). Checks that need the data (sizes of splits and classes) raise a
    :class:`ConfigError` naming the key here, still before any training."""
    if raw is None:
        raw = load_dataset(cfg)
    gen = torch.Generator().manual_seed(seed)
    pools = hold_out_validation(cfg, raw, gen)
    tasks = STREAMS.get(cfg.kind).target(cfg, pools, gen)
    check_splits(cfg, tasks)
    augment = build_augmentation(cfg.augment)
    if augment is not None:
        for task in tasks:
            task._make_split = _augmented_train(task._make_split, augment)
    return Stream(cfg.name, tasks, cfg.dataset, raw.num_classes)


def check_splits(cfg: StreamConfig, tasks: Sequence[Task]) -> None:
    """Refuse a stream with a task whose split has no examples, or whose validation or test
    split holds a single class of a task of several (its AUROC would be undefined, NaN):
    before any training, naming the task and the split (a :class:`DataError`)."""
    for task in tasks:
        for split in SPLITS:
            labels = task.labels(split)
            present = torch.unique(labels).tolist()
            if labels.numel() and (split == "train" or task.num_classes < 2 or len(present) > 1):
                continue
            what = f"task {task.task_id + 1} ({', '.join(task.class_names)})"
            if not labels.numel():
                problem = f"{what} has no examples in its {split} split"
            else:
                only = task.class_names[present[0]]
                problem = (
                    f"the {split} split of {what} holds examples of one class only ({only}), "
                    "so its AUROC is undefined"
                )
            raise DataError(Path(str(cfg.root)).expanduser(), problem, _split_fix(cfg, split))


def _split_fix(cfg: StreamConfig, split: str) -> str:
    if split == "val":
        return "raise stream.val_size so that every task gets validation examples of each class"
    return (
        f"check that the dataset's {split} files hold every class of the stream (a complete "
        f"copy of {cfg.dataset}), or use fewer tasks (stream.num_tasks)"
    )


def hold_out_validation(cfg: StreamConfig, raw: RawDataset, gen: torch.Generator) -> Pools:
    """One validation hold-out of ``cfg.val_size`` training examples for the whole dataset,
    drawn before any task is formed; normalisation statistics from the rest."""
    n_train = raw.train_x.shape[0]
    if cfg.val_size >= n_train:
        raise ConfigError(
            "stream.val_size",
            cfg.val_size,
            f"the dataset has only {n_train} training examples",
            "lower it",
        )
    order = torch.randperm(n_train, generator=gen)
    val_idx, train_idx = order[: cfg.val_size].sort().values, order[cfg.val_size :].sort().values
    mean, std = _normalisation(cfg.normalize, raw.train_x[train_idx])
    return Pools(
        raw,
        x={"train": raw.train_x, "val": raw.train_x, "test": raw.test_x},
        y={"train": raw.train_y, "val": raw.train_y, "test": raw.test_y},
        index={"train": train_idx, "val": val_idx, "test": torch.arange(raw.test_x.shape[0])},
        mean=mean,
        std=std,
    )


def _augmented_train(make: Callable[[str], Split], augment: Augmentation) -> Callable[[str], Split]:
    """``make`` whose training split carries ``augment`` (validation and test never do)."""

    def make_augmented(split: str) -> Split:
        data = make(split)
        if split == "train":
            data.augment = augment
        return data

    return make_augmented


def _normalisation(kind: str, train_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) to apply after scaling to [0, 1]; identity for ``none``."""
    c = train_x.shape[1]
    if kind == "none":
        return torch.zeros(c, 1, 1), torch.ones(c, 1, 1)
    x = train_x.float().div_(255).transpose(0, 1).reshape(c, -1)
    return x.mean(1).view(c, 1, 1), x.std(1).clamp_min(1e-6).view(c, 1, 1)


def subset(
    idx: torch.Tensor, n: int | None, gen: torch.Generator, key: str, task_id: int
) -> torch.Tensor:
    """``n`` of ``idx`` drawn at random (order kept), or all of them when ``n`` is None;
    ``key`` names the setting that asked for ``n``."""
    if n is None:
        return idx
    if n > idx.numel():
        raise ConfigError(
            f"stream.{key}",
            n,
            f"task {task_id + 1} has only {idx.numel()} examples in that split",
            f"set stream.{key}<={idx.numel()} or null for all",
        )
    return idx[torch.randperm(idx.numel(), generator=gen)[:n].sort().values]


def split_limits(cfg: StreamConfig) -> dict[str, tuple[str, int | None]]:
    """Per split: the setting that caps a task's examples, and its value (None = all)."""
    return {
        "train": ("samples_per_task", cfg.samples_per_task),
        "val": ("val_size", None),
        "test": ("test_samples_per_task", cfg.test_samples_per_task),
    }


def class_order(cfg: StreamConfig, num_classes: int) -> list[int]:
    """The dataset's classes in the stream's order (``class_order_seed``; None = natural)."""
    if cfg.class_order_seed is None:
        return list(range(num_classes))
    g = torch.Generator().manual_seed(cfg.class_order_seed)
    return torch.randperm(num_classes, generator=g).tolist()
