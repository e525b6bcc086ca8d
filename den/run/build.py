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
from den.utils.threads import available_cpus, joblib_jobs, resolve_threads


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when present, else Apple's MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def setup_torch(run: RunConfig, device: torch.device, resumed_threads: int | None = None) -> str:
    """Threads, the initialisation seed and deterministic kernels, before anything is built.
    ``resumed_threads``: the thread count of the run being resumed. Returns how the thread
    count was chosen (for the log and results.json)."""
    threads, why = resolve_threads(run.threads, launcher_jobs(), resumed=resumed_threads)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(run.seed)  # network initialisation
    if run.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    return why


def launcher_jobs() -> int:
    """Jobs the Hydra launcher of this multirun job runs at once on this machine: joblib's
    ``n_jobs`` (as joblib counts it); 1 for a single run, the basic launcher, SLURM (whose
    jobs get CPUs of their own) and a call outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return 1
    hydra_cfg = HydraConfig.get()
    launcher = hydra_cfg.launcher
    if hydra_cfg.mode != RunMode.MULTIRUN or not str(launcher.get("_target_", "")).endswith(
        "JoblibLauncher"
    ):
        return 1
    return joblib_jobs(int(launcher.get("n_jobs", -1)), available_cpus())


def build_strategy(run: RunConfig, input_shape: Sequence[int], device: torch.device) -> Strategy:
    """The strategy ``run.strategy`` names, on ``device``, its network seeded by ``run.seed``."""
    cls = STRATEGIES.get(run.strategy.name).target
    return cls(run.strategy, run.model, run.trainer, input_shape, device, run.seed)


def build_logger(
    run: RunConfig, output_dir: str | Path, meta: dict[str, Any], job: dict[str, Any]
) -> Logger:
    """The logger ``run.logger`` names, writing beside the run in ``output_dir``."""
    return LOGGERS.get(run.logger.name).target(run.logger, output_dir, meta, job)
