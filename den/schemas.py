"""Register every config schema (den.config's and each strategy's) in Hydra's ConfigStore.

The one call an entry point (or a test composing configs) makes; kept out of den.config so
that den.config imports no strategy (den.strategies import den.config, never the reverse).
"""

from __future__ import annotations

from den import config
from den.strategies import registry


def register_configs() -> None:
    """Idempotent: every schema of every config group, and the ``den_short`` resolver."""
    config.register_configs()
    registry.register_strategy_schemas()
