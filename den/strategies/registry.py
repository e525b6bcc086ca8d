"""Strategy names -> (class, config schema): the one place a strategy config becomes an object."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from den.config import ModelConfig, TrainerConfig
from den.errors import ConfigError
from den.strategies.base import Strategy, as_dataclass
from den.strategies.den import DENConfig, DENStrategy
from den.strategies.finetune import FinetuneConfig, FinetuneStrategy
from den.strategies.stl import STLConfig, STLStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    "finetune": FinetuneStrategy,
    "den": DENStrategy,
    "stl": STLStrategy,
}
STRATEGY_SCHEMAS: dict[str, type] = {
    "finetune": FinetuneConfig,
    "den": DENConfig,
    "stl": STLConfig,
}


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
