"""Start-up checks of config values that a type cannot express.

Everything here runs before any data is read, so an impossible config fails in the first
second with a :class:`~den.errors.ConfigError` naming the key. Checks that need the data
(more tasks than classes, a subset larger than a split) run while the stream is built, still
before any training.
"""

from __future__ import annotations

from typing import Any

from den.data.streams import check_stream_config
from den.errors import ConfigError
from den.models.network import check_model_config


def require(key: str, value: Any, ok: bool, problem: str, fix: str) -> None:
    if not ok:
        raise ConfigError(key, value, problem, fix)


def check_trainer_config(cfg: Any) -> None:
    for key in ("batch_size", "max_iters", "eval_every", "eval_batch_size", "log_every"):
        value = getattr(cfg, key)
        require(
            f"trainer.{key}",
            value,
            value >= 1,
            "must be at least 1",
            f"set trainer.{key} to a positive integer",
        )
    require(
        "trainer.lr",
        cfg.lr,
        cfg.lr > 0,
        "the learning rate must be > 0",
        "use e.g. trainer.lr=1e-3",
    )
    require(
        "trainer.weight_decay",
        cfg.weight_decay,
        cfg.weight_decay >= 0,
        "must be >= 0",
        "use 0 to disable it",
    )
    require(
        "trainer.lr_decay",
        cfg.lr_decay,
        0 < cfg.lr_decay <= 1,
        "must be in (0, 1]",
        "use 1.0 for no decay",
    )
    require(
        "trainer.patience",
        cfg.patience,
        cfg.patience >= 0,
        "must be >= 0",
        "use 0 to disable early stopping",
    )
    require("trainer.min_delta", cfg.min_delta, cfg.min_delta >= 0, "must be >= 0", "use e.g. 0.0")
    require(
        "trainer.momentum", cfg.momentum, 0 <= cfg.momentum < 1, "must be in [0, 1)", "use e.g. 0.9"
    )
    require(
        "trainer.optimizer",
        cfg.optimizer,
        cfg.optimizer in ("adam", "sgd"),
        "unknown optimiser",
        "use adam or sgd",
    )


STREAM_NAMES = {
    "kind": ("permuted", "split", "one_vs_rest"),
    "dataset": ("mnist", "fashion_mnist", "cifar10", "cifar100"),
    "source": ("torchvision", "imagefolder"),
}
LOGGERS = ("none", "csv", "wandb")


def check_names(cfg: Any) -> None:
    """Unknown names fail here, before the dataset is read."""
    for key, allowed in STREAM_NAMES.items():
        value = getattr(cfg.stream, key)
        if key == "dataset" and cfg.stream.source == "imagefolder":
            continue  # an image folder brings its own classes
        require(
            f"stream.{key}", value, value in allowed, "unknown name", f"use one of {list(allowed)}"
        )
    require(
        "logger.name",
        cfg.logger.name,
        cfg.logger.name in LOGGERS,
        "unknown logger",
        f"use logger={'|'.join(LOGGERS)}",
    )
    if cfg.logger.name == "wandb":
        mode = cfg.logger.get("mode")
        require(
            "logger.mode",
            mode,
            mode in (None, "online", "offline", "disabled"),
            "unknown W&B mode",
            "use online, offline, disabled or null (offline unless WANDB_API_KEY is set)",
        )
    device = str(cfg.device)
    ok = (
        device in ("auto", "cpu", "mps")
        or device == "cuda"
        or (device.startswith("cuda:") and device[5:].isdigit())
    )
    require("device", device, ok, "unknown device", "use auto, cpu, cuda, cuda:N or mps")
    seed = cfg.stream.class_order_seed
    require(
        "stream.class_order_seed",
        seed,
        seed is None or seed >= 0,
        "must be >= 0",
        "use a non-negative integer or null",
    )


def validate_config(cfg: Any) -> None:
    """Check the whole composed config; raise on the first impossible value."""
    check_names(cfg)
    check_stream_config(cfg.stream)
    check_model_config(cfg.model)
    check_trainer_config(cfg.trainer)
    require("seed", cfg.seed, cfg.seed >= 0, "must be >= 0", "use a non-negative integer")
    if cfg.threads is not None:
        require(
            "threads",
            cfg.threads,
            cfg.threads >= 1,
            "must be at least 1",
            "set threads=null for PyTorch's default",
        )
    from den.strategies.registry import validate_strategy_config

    validate_strategy_config(cfg.strategy)
