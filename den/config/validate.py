"""The one validation of a run's settings: Hydra's composed config in, a typed RunConfig out.

:func:`validate_config` runs once per run, before anything is written (den's Hydra callback
calls it for a single run; a multirun job calls it first thing). It types every section by
its schema (a fixed one, or the registered component's), so a misspelled key, a value of the
wrong type or an unknown name fails here with one :class:`~den.errors.ConfigError` that names
the key, what is allowed and the closest valid key. Then it checks what a type cannot express
(positive sizes, probabilities, finite numbers, a device this machine has) and asks the chosen
components for their own checks (a strategy's ``check_config(cfg, run)``). Everything built
from the returned config trusts it. Checks that need the data (a subset larger than a split)
run while the stream is built, still before any training.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from enum import Enum
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from den.config.registry import DATASETS, LOGGERS, STRATEGIES, STREAMS, Registry, choices_hint
from den.config.schema import (
    FIXED_SECTIONS,
    SECTIONS,
    ModelConfig,
    RunConfig,
    StreamConfig,
    TrainerConfig,
)
from den.errors import ConfigError

COMPONENT_SECTIONS: dict[str, Registry] = {
    "strategy": STRATEGIES,
    "stream": STREAMS,
    "logger": LOGGERS,
}


def validate_config(cfg: DictConfig | dict[str, Any]) -> RunConfig:
    """Type and check a composed config (the task config, without ``hydra``); raise the
    first :class:`ConfigError`. Returns the config every builder trusts."""
    plain = _resolved(cfg)
    run = RunConfig(**_typed_sections(plain), **_typed_top_level(plain))
    check_values(run)
    return run


# ------------------------------------------------------------------------------ typing
def _resolved(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved (``${oc.env:...}``,
    ``${hydra:...}``); a failing interpolation is a ConfigError naming its key."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    try:
        plain = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    except InterpolationResolutionError as err:
        raise ConfigError(
            str(getattr(err, "full_key", "") or "?"),
            "${...}",
            f"cannot be resolved ({_first_line(err)})",
            "give a plain value, or run through python -m den.train",
        ) from None
    plain.pop("hydra", None)
    return plain


def _typed_sections(plain: dict[str, Any]) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        node = plain.get(section)
        if not isinstance(node, dict):
            raise ConfigError(
                section,
                node,
                "is missing or not a group of settings",
                f"choose one with {section}=<name> (python -m den.train --help lists them)",
            )
        if section in COMPONENT_SECTIONS:
            registry = COMPONENT_SECTIONS[section]
            choice = node.get(registry.key.split(".")[1])
            schema = registry.get(str(choice)).schema
        else:
            schema = FIXED_SECTIONS[section]
        sections[section] = typed(section, node, schema)
    return sections


def _typed_top_level(plain: dict[str, Any]) -> dict[str, Any]:
    top = {k: v for k, v in plain.items() if k not in SECTIONS}
    fields = {f.name for f in dataclasses.fields(RunConfig)} - set(SECTIONS)
    for key in top:
        if key not in fields:
            raise _unknown_key("", key, top[key], sorted(fields), plain)
    schema_node = OmegaConf.structured(RunConfig)
    hints = typing.get_type_hints(RunConfig)
    for key, value in top.items():
        try:
            schema_node[key] = value
        except ValidationError as err:
            raise _type_error(key, value, err, hints.get(key)) from None
    return {key: schema_node[key] for key in fields}


def typed(section: str, node: dict[str, Any], schema: type) -> Any:
    """``node`` as an instance of the dataclass ``schema``: the schema's defaults under the
    values given; an unknown key, a wrong type or a missing value is a ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in node.items():
        if key not in fields:
            raise _unknown_key(section, key, value, sorted(fields))
    base = OmegaConf.structured(schema)
    hints = typing.get_type_hints(schema)
    for key, value in node.items():
        try:
            base[key] = value
        except (ValidationError, ConfigKeyError) as err:
            raise _type_error(f"{section}.{key}", value, err, hints.get(key)) from None
    try:
        return OmegaConf.to_object(base)
    except MissingMandatoryValue as err:
        key = f"{section}.{err.full_key or getattr(err, 'key', '?')}"
        raise ConfigError(key, "???", "has no value", f"set it, e.g. {key}=<value>") from None
    except OmegaConfBaseException as err:
        raise ConfigError(section, node, _first_line(err), "check its settings") from None


def _unknown_key(
    section: str, key: str, value: Any, allowed: list[str], root: dict | None = None
) -> ConfigError:
    dotted = f"{section}.{key}" if section else key
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
    if not close and root is not None:  # a key of a section given at the top level
        everywhere = [
            f"{s}.{k}" for s in SECTIONS if isinstance(root.get(s), dict) for k in root[s]
        ]
        close = difflib.get_close_matches(str(key), everywhere, n=1, cutoff=0.6)
    hint = ""
    if close:
        hint = f"did you mean {close[0] if '.' in close[0] or not section else f'{section}.{close[0]}'}? "
    where = section or "the top level"
    return ConfigError(
        dotted,
        value,
        "no such setting",
        f"{hint}the settings of {where} are {', '.join(allowed)}",
    )


def _type_error(key: str, value: Any, err: Exception, hint: Any = None) -> ConfigError:
    """What a value of the wrong type or an unknown choice is told: the choices (and the
    closest), or the type the setting takes."""
    text = _first_line(err)
    if "Invalid value" in text and "expected one of" in text:
        choices = text.split("expected one of", 1)[1].strip().strip("[]")
        names = [c.strip().strip("'") for c in choices.split(",")]
        return ConfigError(key, value, "not one of the choices", choices_hint(str(value), names))
    kind = describe_type(hint) if hint is not None else "another type"
    return ConfigError(key, value, f"must be {kind}", f"give {key} {kind}")


def describe_type(hint: Any) -> str:
    """``int | None`` -> ``an integer or null``, ``list[int]`` -> ``a list of integers``..."""
    words = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    if typing.get_origin(hint) is list:
        inner = describe_type(args[0]) if args else "values"
        text = "a list of " + inner.removeprefix("an ").removeprefix("a ") + "s"
    elif args and len(args) == 1:
        text = describe_type(args[0])
    elif isinstance(hint, type) and issubclass(hint, Enum):
        text = "one of " + ", ".join(m.value for m in hint)
    else:
        text = words.get(hint, getattr(hint, "__name__", str(hint)))
    return f"{text} or null" if optional else text


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


# ------------------------------------------------------------------------------ values
# Seeds (and seed + 2, the derived generators) must fit every random number generator used.
MAX_SEED = 2**32 - 1


def require(key: str, value: Any, ok: bool, problem: str, fix: str) -> None:
    if not ok:
        raise ConfigError(key, value, problem, fix)


def check_values(run: RunConfig) -> None:
    """Every check a type cannot express, section by section, then the components' own."""
    check_finite(run)
    check_stream(run.stream)
    check_model(run.model)
    check_trainer(run.trainer)
    check_top_level(run)
    for section, registry in COMPONENT_SECTIONS.items():
        cfg = getattr(run, section)
        hook = getattr(
            registry.get(getattr(cfg, registry.key.split(".")[1])).target, "check_config", None
        )
        if hook is not None:  # the component's own checks, e.g. a strategy's hyperparameters
            hook(cfg, run)


def check_finite(run: RunConfig) -> None:
    """NaN or infinity in any float setting fails here, naming the key: NaN compares false
    with every threshold (``strategy.tau=nan`` would silently never expand) and infinity
    makes training diverge mid-run. A field whose ``metadata`` has ``allow_inf`` (a
    quadratic penalty's ``lam=inf``: freeze) accepts +infinity."""
    for section in SECTIONS:
        node = getattr(run, section)
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            values = value if isinstance(value, list) else [value]
            for v in values:
                if not isinstance(v, float) or math.isfinite(v):
                    continue
                if v == math.inf and field.metadata.get("allow_inf"):
                    continue
                default = field.default if field.default is not dataclasses.MISSING else None
                example = f"e.g. {section}.{field.name}={default}" if default is not None else ""
                raise ConfigError(
                    f"{section}.{field.name}",
                    value,
                    "must be a finite number (NaN and infinity are not valid settings)",
                    f"give a number {example}".strip(),
                )


def check_stream(cfg: StreamConfig) -> None:
    require(
        "stream.num_tasks",
        cfg.num_tasks,
        cfg.num_tasks >= 1,
        "a stream needs at least one task",
        "set stream.num_tasks>=1",
    )
    for key in ("samples_per_task", "test_samples_per_task", "classes_per_task"):
        value = getattr(cfg, key)
        require(
            f"stream.{key}",
            value,
            value is None or value >= 1,
            "must be at least 1",
            f"set stream.{key}>=1 or null for all",
        )
    require(
        "stream.val_size",
        cfg.val_size,
        cfg.val_size >= 1,
        "validation data drives early stopping, sweeps and DEN's decisions",
        "hold out at least one example, e.g. stream.val_size=5000",
    )
    require(
        "stream.negatives_per_positive",
        cfg.negatives_per_positive,
        cfg.negatives_per_positive > 0,
        "must be > 0",
        "set it to e.g. 1.0",
    )
    seed = cfg.class_order_seed
    require(
        "stream.class_order_seed",
        seed,
        seed is None or 0 <= seed <= MAX_SEED,
        f"must be in [0, {MAX_SEED}]",
        "use a non-negative integer of at most 32 bits, or null",
    )
    if cfg.source != "imagefolder":  # an image folder brings its own classes
        DATASETS.get(cfg.dataset)


def check_model(cfg: ModelConfig) -> None:
    for key in ("hidden", "conv_channels"):
        sizes = list(getattr(cfg, key))
        require(
            f"model.{key}",
            sizes,
            all(s >= 1 for s in sizes),
            "every layer needs at least one unit",
            "use positive sizes",
        )
    require(
        "model.conv_channels",
        [],
        cfg.arch != "conv" or bool(cfg.conv_channels),
        "a conv model needs at least one conv layer",
        "list its filters, e.g. [20, 50]",
    )
    require(
        "model.hidden",
        [],
        cfg.arch != "mlp" or bool(cfg.hidden),
        "the model has no hidden layer",
        "give at least one layer size",
    )
    for key in ("kernel_size", "pool"):
        value = getattr(cfg, key)
        require(f"model.{key}", value, value >= 1, "must be at least 1", "use e.g. 5 or 2")
    if cfg.pools is not None:
        require(
            "model.pools",
            list(cfg.pools),
            all(p >= 1 for p in cfg.pools),
            "pool sizes must be at least 1",
            "use 1 for no pooling",
        )
        require(
            "model.pools",
            list(cfg.pools),
            cfg.arch != "conv" or len(cfg.pools) == len(cfg.conv_channels),
            f"one pool size per conv layer is needed ({len(cfg.conv_channels)} conv layers)",
            "give as many entries as model.conv_channels, or null to use model.pool",
        )


def check_trainer(cfg: TrainerConfig) -> None:
    for key in ("batch_size", "max_iters", "eval_every", "eval_batch_size", "log_every"):
        value = getattr(cfg, key)
        require(
            f"trainer.{key}",
            value,
            value >= 1,
            "must be at least 1",
            f"set trainer.{key} to a positive integer",
        )
    checks = (
        ("lr", cfg.lr > 0, "the learning rate must be > 0", "use e.g. trainer.lr=1e-3"),
        ("weight_decay", cfg.weight_decay >= 0, "must be >= 0", "use 0 to disable it"),
        ("lr_decay", 0 < cfg.lr_decay <= 1, "must be in (0, 1]", "use 1.0 for no decay"),
        ("patience", cfg.patience >= 0, "must be >= 0", "use 0 to disable early stopping"),
        ("min_delta", cfg.min_delta >= 0, "must be >= 0", "use e.g. 0.0"),
        ("momentum", 0 <= cfg.momentum < 1, "must be in [0, 1)", "use e.g. 0.9"),
    )
    for key, ok, problem, fix in checks:
        require(f"trainer.{key}", getattr(cfg, key), ok, problem, fix)


def check_top_level(run: RunConfig) -> None:
    require(
        "seed",
        run.seed,
        0 <= run.seed <= MAX_SEED,
        f"must be in [0, {MAX_SEED}]",
        "use a non-negative integer of at most 32 bits",
    )
    check_threads(run.threads)
    check_device(str(run.device))


def check_threads(threads: Any) -> None:
    """``auto``, null (PyTorch's default) or a thread count OpenMP can start."""
    if threads is None or threads == "auto":
        return
    fix = "use threads=auto (the CPUs this run was given), a count, or null for PyTorch's default"
    is_count = isinstance(threads, int) and not isinstance(threads, bool)
    require("threads", threads, is_count, "must be auto, an integer or null", fix)
    require("threads", threads, threads >= 1, "must be at least 1", fix)
    cpus = os.cpu_count() or 1
    limit = max(64, 4 * cpus)
    require(
        "threads",
        threads,
        threads <= limit,
        f"more than {limit} threads on a machine with {cpus} CPUs (OpenMP may crash, and "
        "threads beyond the CPUs only slow a run down)",
        f"use at most {cpus}, or threads=auto",
    )


def check_device(device: str) -> None:
    """A device name den knows, and one this machine has."""
    known = device in ("auto", "cpu", "mps", "cuda") or (
        device.startswith("cuda:") and device[5:].isdigit()
    )
    require("device", device, known, "unknown device", "use auto, cpu, cuda, cuda:N or mps")
    import torch

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
