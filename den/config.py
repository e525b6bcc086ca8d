"""Structured configs: the schema of every config group, registered in Hydra's ConfigStore.

The YAML files under ``conf/`` hold the defaults; these dataclasses hold the *types*. Each YAML
file of a group lists its schema first in its defaults list (``- mlp_schema``), so a misspelled
key or a value of the wrong type fails at start-up with Hydra's message naming the key.
Value checks that a type cannot express (positive sizes, probabilities in [0, 1]) live in
:mod:`den.validation` and run before any data is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

try:
    from enum import StrEnum
except ImportError:  # Python 3.10: the same behaviour from a str mixin

    class StrEnum(str, Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str(self.value)


from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


# Choice fields are enums: OmegaConf then refuses any other value at composition, naming the
# key and the choices. StrEnum members equal their names as strings ("adam" == Optimizer.adam),
# so code and YAML keep using plain strings. stream.dataset stays a str: an image folder may
# carry any dataset name.
class StreamKind(StrEnum):
    permuted = "permuted"
    split = "split"
    one_vs_rest = "one_vs_rest"


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


class WandbMode(StrEnum):
    online = "online"
    offline = "offline"
    disabled = "disabled"


class ProxScale(StrEnum):
    """DEN's ``strategy.prox_scale`` (see den.strategies.den.DENConfig)."""

    step = "step"
    lr = "lr"


class UnsplitDrift(StrEnum):
    """DEN's ``strategy.unsplit_drift`` (see den.strategies.den.DENConfig)."""

    keep = "keep"
    project = "project"
    restore = "restore"


class ExpansionLoss(StrEnum):
    """DEN's ``strategy.expansion_loss`` (see den.strategies.den.DENConfig)."""

    train = "train"
    val = "val"


@dataclass
class StreamConfig:
    """A sequence of tasks drawn from one dataset.

    ``kind`` decides how tasks are formed: ``permuted`` (every task sees all classes under its
    own fixed pixel permutation), ``split`` (disjoint groups of ``classes_per_task`` classes) or
    ``one_vs_rest`` (task t is the binary problem "class t versus the rest").
    """

    name: str = MISSING
    kind: StreamKind = MISSING  # permuted | split | one_vs_rest
    dataset: str = MISSING  # mnist | fashion_mnist | cifar10 | cifar100
    source: Source = Source.torchvision  # torchvision | imagefolder
    root: str = "${oc.env:DEN_DATA_ROOT,data}"
    download: bool = True  # torchvision sources only; files already present are never fetched
    num_tasks: int = 10
    classes_per_task: int | None = None  # split streams; None = all classes / num_tasks
    samples_per_task: int | None = None  # training examples per task; None = all
    val_size: int = 5000  # held out of the training set before tasks are formed (shared out
    # among split tasks; the same images, permuted, for permuted tasks)
    test_samples_per_task: int | None = None  # None = the whole test split of the task
    class_order_seed: int | None = None  # None = natural class order (0, 1, 2, ...)
    permute_first_task: bool = True  # permuted streams: False leaves task 1 unpermuted
    negatives_per_positive: float = 1.0  # one_vs_rest: negatives sampled per positive example
    normalize: Normalize = (
        Normalize.none
    )  # none | standard (per-channel mean/std of the training split)
    augment: Augment = (
        Augment.none
    )  # none | crop_flip (random 4-pixel shift + horizontal flip, training)


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
    kernel_size: int = 5
    pool: int = 2
    pools: list[int] | None = None  # max-pool size after each conv layer (1 = none); null = pool
    init: Init = Init.default  # default (PyTorch's) | truncated_normal (the DEN code's, std 0.01)


@dataclass
class TrainerConfig:
    """The one training loop every strategy and every DEN phase uses (:mod:`den.training`)."""

    optimizer: Optimizer = Optimizer.adam  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # coupled L2, as Adam/SGD's weight_decay
    lr_decay: float = 1.0  # multiply the lr by this after every epoch (DEN code: 0.95)
    batch_size: int = 256
    max_iters: int = 1000  # training steps per phase
    eval_every: int = 100  # steps between validation-loss checks
    patience: int = 5  # early stop after this many checks without improvement; 0 = never
    min_delta: float = 0.0  # an improvement must beat the best loss by more than this
    eval_batch_size: int = 4096
    log_every: int = 100  # steps between progress lines (the only per-step host syncs)
    progress: bool = True  # a progress bar per phase


@dataclass
class PathsConfig:
    output_dir: str = "${hydra:runtime.output_dir}"


@dataclass
class StrategyConfig:
    """Common to every strategy; each strategy's schema extends it."""

    name: str = MISSING


@dataclass
class LoggerConfig:
    name: str = MISSING


@dataclass
class WandbLoggerConfig(LoggerConfig):
    """Weights & Biases (:class:`den.loggers.WandbLogger`)."""

    name: str = "wandb"
    project: str = "den"
    entity: str | None = None  # None = the API key's default entity
    mode: WandbMode | None = None  # online | offline | disabled; None = $WANDB_MODE, else online
    # when WANDB_API_KEY is set, else offline (never a login prompt)
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    group: str | None = None  # None = the experiment name (+ the sweep id in a multirun)
    log_train_loss: bool = True  # the training loss every trainer.log_every steps
    init_timeout: float = 60.0  # seconds wandb.init may take before the run goes on without it


@dataclass
class Config:
    stream: StreamConfig = MISSING
    model: ModelConfig = MISSING
    strategy: Any = MISSING  # typed by the strategy's own schema (its YAML's defaults list)
    trainer: TrainerConfig = MISSING
    logger: Any = MISSING
    paths: PathsConfig = MISSING
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N | mps
    threads: int | None = None  # torch intra-op threads; None = PyTorch's default
    deterministic: bool = True  # torch.use_deterministic_algorithms (CPU results repeat exactly)
    experiment: str = "default"  # set by +experiment=...; names the run group
    resume: str | None = None  # a run directory to continue, "true" (this run's) or "auto"


def short_name(text: str, limit: int = 100) -> str:
    """``text`` if at most ``limit`` characters, else its start plus a hash of the whole: a
    job's overrides as a directory name that file systems accept (255 bytes) and that stays
    unique (optuna's trials carry long floats)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{text[: limit - 11]}-{digest}"


def register_configs() -> None:
    """Put every schema into Hydra's ConfigStore and the ``den_short`` resolver into
    OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("den_short"):
        OmegaConf.register_new_resolver("den_short", short_name)
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="stream", name="stream_schema", node=StreamConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    cs.store(group="paths", name="paths_schema", node=PathsConfig)
    cs.store(group="logger", name="logger_schema", node=LoggerConfig)
    cs.store(group="logger", name="wandb_schema", node=WandbLoggerConfig)
    # The strategies' schemas: den.strategies.registry.register_strategy_schemas (kept there
    # so that this module imports no strategy).
