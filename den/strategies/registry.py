"""Strategy names -> (class, config schema): the one place a strategy config becomes an object."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from den.config import ModelConfig, TrainerConfig
from den.errors import ConfigError
from den.strategies.base import Strategy, as_dataclass
from den.strategies.den import DENConfig, DENStrategy
from den.strategies.er import ERConfig, ERStrategy
from den.strategies.ewc import EWCConfig, EWCStrategy
from den.strategies.finetune import FinetuneConfig, FinetuneStrategy
from den.strategies.joint import JointConfig, JointStrategy
from den.strategies.l2 import L2Config, L2Strategy
from den.strategies.lwf import LwFConfig, LwFStrategy
from den.strategies.packnet import PackNetConfig, PackNetStrategy
from den.strategies.pnn import PNNConfig, PNNStrategy
from den.strategies.si import SIConfig, SIStrategy
from den.strategies.stl import STLConfig, STLStrategy

# name -> (strategy class, config schema); the schema's defaults match conf/strategy/<name>.yaml
_REGISTRY: dict[str, tuple[type[Strategy], type]] = {
    "den": (DENStrategy, DENConfig),
    "finetune": (FinetuneStrategy, FinetuneConfig),
    "stl": (STLStrategy, STLConfig),
    "joint": (JointStrategy, JointConfig),
    "l2": (L2Strategy, L2Config),
    "ewc": (EWCStrategy, EWCConfig),
    "si": (SIStrategy, SIConfig),
    "lwf": (LwFStrategy, LwFConfig),
    "pnn": (PNNStrategy, PNNConfig),
    "packnet": (PackNetStrategy, PackNetConfig),
    "er": (ERStrategy, ERConfig),
}
STRATEGIES: dict[str, type[Strategy]] = {name: cls for name, (cls, _) in _REGISTRY.items()}
STRATEGY_SCHEMAS: dict[str, type] = {name: schema for name, (_, schema) in _REGISTRY.items()}


def build_strategy(
    cfg,
    model_cfg: ModelConfig,
    trainer_cfg: TrainerConfig,
    input_shape: Sequence[int],
    device: torch.device,
    seed: int,
) -> Strategy:
    """Instantiate the strategy named ``cfg.name``."""
    if cfg.name not in STRATEGIES:
        raise ConfigError(
            "strategy.name", cfg.name, "unknown strategy", f"use one of {sorted(STRATEGIES)}"
        )
    cfg = as_dataclass(cfg, STRATEGY_SCHEMAS[cfg.name])
    return STRATEGIES[cfg.name](cfg, model_cfg, trainer_cfg, input_shape, device, seed)


def validate_strategy_config(cfg) -> None:
    """Unknown names fail here; each strategy class may add its own ``check_config``."""
    if cfg.name not in STRATEGIES:
        raise ConfigError(
            "strategy.name", cfg.name, "unknown strategy", f"use one of {sorted(STRATEGIES)}"
        )
    STRATEGIES[cfg.name].check_config(cfg)


def register_strategy_schemas() -> None:
    """Put every strategy's schema into Hydra's ConfigStore as ``strategy/<name>_schema``
    (what each ``conf/strategy/<name>.yaml`` lists first). Lives here, not in den.config, so
    that den.config imports no strategy (no import cycle)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in STRATEGY_SCHEMAS.items():
        cs.store(group="strategy", name=f"{name}_schema", node=schema)
