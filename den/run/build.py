"""The one config-to-object path: a validated RunConfig becomes a device, a stream, a
strategy and a logger. Nothing here checks the config again (den.config.validate did)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from den.config.registry import LOGGERS, STRATEGIES
from den.config.schema import RunConfig
from den.loggers.base import Logger
from den.strategies.base import Strategy


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when present, else Apple's MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def setup_torch(run: RunConfig, device: torch.device) -> None:
    """Threads, the initialisation seed and deterministic kernels, before anything is built."""
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed)  # network initialisation
    if run.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")


def build_strategy(run: RunConfig, input_shape: Sequence[int], device: torch.device) -> Strategy:
    """The strategy ``run.strategy`` names, on ``device``, its network seeded by ``run.seed``."""
    cls = STRATEGIES.get(run.strategy.name).target
    return cls(run.strategy, run.model, run.trainer, input_shape, device, run.seed)


def build_logger(
    run: RunConfig, output_dir: str | Path, meta: dict[str, Any], job: dict[str, Any]
) -> Logger:
    """The logger ``run.logger`` names, writing beside the run in ``output_dir``."""
    return LOGGERS.get(run.logger.name).target(run.logger, output_dir, meta, job)
