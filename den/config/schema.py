"""The settings of a run as dataclasses: the one place every default is written.

The fixed sections (``trainer``, ``model``, ``paths`` and the top level) are defined here; the
sections that name a component (``strategy``, ``stream``, ``logger``) are typed by the
component's own schema, a subclass of :class:`StrategyConfig`, :class:`StreamConfig` or
:class:`LoggerConfig` registered with it (:mod:`den.config.registry`). YAML files under
``conf/`` extend these defaults and state only what differs. Checks that a type cannot
express (positive sizes, probabilities in [0, 1]) are in :mod:`den.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: the same behaviour from a str mixin

    class StrEnum(str, Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str(self.value)


# Choice fields are enums: validation refuses any other value, naming the key and the choices.
# StrEnum members equal their names as strings ("adam" == Optimizer.adam), so code and YAML
# keep using plain strings. Names chosen from a registry (a strategy, a stream kind, a dataset,
# a logger) are plain strings checked against the registry instead.
class Source(StrEnum):
    torchvision = "torchvision"
    imagefolder = "imagefolder"


class Normalize(StrEnum):
    none = "none"
    standard = "standard"


class Augment(StrEnum):
    none = "none"
    crop_flip = "crop_flip"


class Arch(StrEnum):
    mlp = "mlp"
    conv = "conv"


class Init(StrEnum):
    default = "default"
    truncated_normal = "truncated_normal"


class Optimizer(StrEnum):
    adam = "adam"
    sgd = "sgd"


@dataclass
class StreamConfig:
    """A sequence of tasks drawn from one dataset; ``kind`` (a registered stream kind) decides
    how tasks are formed: ``permuted`` (every task sees all classes under its own fixed pixel
    permutation), ``split`` (disjoint groups of ``classes_per_task`` classes) or
    ``one_vs_rest`` (task t is the binary problem "class t versus the rest")."""

    name: str = MISSING
    kind: str = MISSING  # a registered stream kind: permuted | split | one_vs_rest | ...
    dataset: str = MISSING  # a registered dataset: mnist | fashion_mnist | cifar10 | cifar100
    source: Source = Source.torchvision  # torchvision | imagefolder (root/{train,test}/<class>/)
    root: str = "${oc.env:DEN_DATA_ROOT,data}"
    download: bool = True  # torchvision sources only; files already present are never fetched
    num_tasks: int = 10
    classes_per_task: int | None = None  # split streams; None = all classes / num_tasks
    samples_per_task: int | None = None  # training examples per task; None = all
    # held out of the training set before tasks are formed (shared out among split tasks; the
    # same images, permuted, for permuted tasks)
    val_size: int = 5000
    test_samples_per_task: int | None = None  # None = the whole test split of the task
    class_order_seed: int | None = None  # None = natural class order (0, 1, 2, ...)
    permute_first_task: bool = True  # permuted streams: False leaves task 1 unpermuted
    negatives_per_positive: float = 1.0  # one_vs_rest: negatives sampled per positive example
    normalize: Normalize = Normalize.none  # none | standard (per-channel mean/std of training)
    augment: Augment = Augment.none  # none | crop_flip (4-pixel shift + horizontal flip)


@dataclass
class ModelConfig:
    """A multi-head network: a shared trunk of hidden layers and one output head per task.

    ``arch=mlp`` uses ``hidden`` fully connected layers. ``arch=conv`` puts ``conv_channels``
    convolution layers (``kernel_size`` filters, each followed by ReLU and ``pool`` max-pooling,
    or ``pools[l]`` after conv layer l when ``pools`` is given) in front of the fully connected
    ``hidden`` layers.
    """

    name: str = MISSING
    arch: Arch = MISSING  # mlp | conv
    hidden: list[int] = field(default_factory=list)
    conv_channels: list[int] = field(default_factory=list)
    kernel_size: int = 5  # "same" padding
    pool: int = 2
    pools: list[int] | None = None  # max-pool size after each conv layer (1 = none); null = pool
    init: Init = Init.default  # default (PyTorch's) | truncated_normal (the DEN code's, std 0.01)


@dataclass
class TrainerConfig:
    """The one training loop every strategy and every DEN phase uses (:mod:`den.engine.training`)."""

    optimizer: Optimizer = Optimizer.adam  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # coupled L2 (grad += wd * w), applied before gradient masks
    lr_decay: float = 1.0  # multiply the lr by this after every epoch (DEN code: 0.95)
    batch_size: int = 256
    max_iters: int = (
        1000  # the most steps any phase runs (a strategy's phase budget can only lower it)
    )
    eval_every: int = 100  # steps between validation-loss checks
    patience: int = 5  # early stop after this many checks without improvement; 0 = never
    min_delta: float = 0.0  # an improvement must beat the best loss by more than this
    eval_batch_size: int = 4096
    log_every: int = 100  # steps between progress lines (the only per-step host syncs)
    progress: bool = True  # a progress bar per phase when stderr is a terminal


@dataclass
class PathsConfig:
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class StrategyConfig:
    """Common to every strategy; each strategy's schema extends it."""

    name: str = MISSING


@dataclass
class LoggerConfig:
    """Common to every logger; a logger with settings extends it."""

    name: str = MISSING


@dataclass
class RunConfig:
    """A whole run's settings. Composed by Hydra from ``conf/``, then typed and checked once
    by :func:`den.config.validate.validate_config`; everything after that trusts it."""

    stream: StreamConfig = MISSING
    model: ModelConfig = MISSING
    strategy: StrategyConfig = MISSING  # the chosen strategy's schema, a subclass
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = MISSING  # the chosen logger's schema
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present, else MPS, else CPU) | cpu | cuda | cuda:N | mps
    # torch intra-op threads: auto (the CPUs this run was given, shared by a sweep's parallel
    # jobs; den/utils/threads.py) | N | None (PyTorch's default: every core)
    threads: Any = "auto"
    deterministic: bool = True  # torch.use_deterministic_algorithms (CPU results repeat exactly)
    experiment: str = "default"  # set by +experiment=...; names the run group
    resume: str | None = None  # a run directory to continue, "true" (this run's) or "auto"


# The sections of RunConfig that are typed by a fixed schema, and those typed by a component's.
FIXED_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "trainer": TrainerConfig,
    "paths": PathsConfig,
}
SECTIONS = ("stream", "model", "strategy", "trainer", "logger", "paths")
