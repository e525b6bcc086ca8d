"""Start-up checks of config values that a type cannot express.

Everything here runs before any data is read, so an impossible config fails in the first
second with a :class:`~den.errors.ConfigError` naming the key. Checks that need the data
(more tasks than classes, a subset larger than a split) run while the stream is built, still
before any training.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

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


SECTIONS = ("stream", "model", "strategy", "trainer", "logger", "paths")


def _schema_fields(node: Any) -> dict[str, dataclasses.Field] | None:
    """The fields of the dataclass schema behind ``node``, or None without one."""
    schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if schema is None or not dataclasses.is_dataclass(schema):
        return None
    return {f.name: f for f in dataclasses.fields(schema)}


def _all_keys(cfg: DictConfig) -> list[str]:
    keys = [k for k in (_schema_fields(cfg) or {}) if k not in SECTIONS]
    for section in SECTIONS:
        node = cfg.get(section) if section in cfg else None
        keys += [f"{section}.{k}" for k in (_schema_fields(node) or {})]
    return keys


def check_known_keys(cfg: DictConfig) -> None:
    """Reject keys the schema does not have. Hydra rejects a misspelled ``key=value``, but a
    ``+key=value`` override adds the key anyway (and Hydra's own message suggests ``+``), so a
    typo such as ``+trainer.lrr=0.1`` would otherwise be accepted and ignored."""
    known = _all_keys(cfg)
    nodes = [("", cfg)] + [
        (f"{s}.", cfg[s]) for s in SECTIONS if s in cfg and isinstance(cfg[s], DictConfig)
    ]
    for prefix, node in nodes:
        fields = _schema_fields(node)
        if fields is None:
            continue
        for key in node:
            if key in fields:
                continue
            dotted = f"{prefix}{key}"
            close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.6) or (
                difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            )
            if close and "." not in close[0] and prefix:
                close = [f"{prefix}{close[0]}"]
            hint = f"did you mean {close[0]}? " if close else ""
            value = OmegaConf.to_container(node, resolve=False).get(key)
            raise ConfigError(
                dotted,
                value,
                "no such setting (a `+` override adds keys that den never reads)",
                f"{hint}remove it; the settings of {prefix.rstrip('.') or 'the top level'} are "
                f"{', '.join(k for k in fields if k not in SECTIONS)}",
            )


def check_finite(cfg: DictConfig) -> None:
    """NaN or infinity in any float setting fails here, naming the key: NaN compares false
    with every threshold (``strategy.tau=nan`` would silently never expand) and infinity
    makes training diverge mid-run. A schema field whose ``metadata`` has ``allow_inf``
    (e.g. a quadratic penalty's ``lam=inf``: freeze) accepts +infinity."""
    for section in SECTIONS:
        node = cfg.get(section) if section in cfg else None
        fields = _schema_fields(node)
        if fields is None:
            continue
        for key, field in fields.items():
            if OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key):
                continue
            value = node[key]
            values = list(value) if isinstance(value, ListConfig) else [value]
            for v in values:
                if not isinstance(v, float) or math.isfinite(v):
                    continue
                if v == math.inf and field.metadata.get("allow_inf"):
                    continue
                default = field.default if field.default is not dataclasses.MISSING else None
                example = f"e.g. {section}.{key}={default}" if default is not None else ""
                raise ConfigError(
                    f"{section}.{key}",
                    value,
                    "must be a finite number (NaN and infinity are not valid settings)",
                    f"give a number {example}".strip(),
                )


def check_device_and_threads(cfg: Any) -> None:
    """A device this machine lacks, or more threads than it can run, fails before any data."""
    import torch

    device = str(cfg.device)
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        require(
            "device",
            device,
            mps is not None and mps.is_available(),
            "Apple's MPS is not available on this machine",
            "use device=auto or device=cpu",
        )
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device[5:]) if device.startswith("cuda:") else 0
        require(
            "device",
            device,
            index < count,
            f"CUDA is not available on this machine ({count} GPUs)"
            if count == 0
            else f"this machine has {count} GPUs (cuda:0..cuda:{count - 1})",
            "use device=auto, device=cpu or an existing cuda:N",
        )
    if cfg.threads is not None:
        cpus = os.cpu_count() or 1
        limit = max(64, 4 * cpus)
        require(
            "threads",
            cfg.threads,
            cfg.threads <= limit,
            f"more than {limit} threads on a machine with {cpus} CPUs (OpenMP may crash, and "
            "threads beyond the CPUs only slow a run down)",
            f"use at most {cpus}, or threads=null for PyTorch's default",
        )


def validate_config(cfg: Any) -> None:
    """Check the whole composed config; raise on the first impossible value."""
    if isinstance(cfg, DictConfig):
        check_known_keys(cfg)
        check_finite(cfg)
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
    check_device_and_threads(cfg)
    from den.strategies.registry import validate_strategy_config

    validate_strategy_config(cfg.strategy)
