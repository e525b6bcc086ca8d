"""Checkpoints after every task: resume a run that died, losing at most the task in progress.

``checkpoint.pt`` in the run directory holds the strategy's state (the network with DEN's
grown layers and unit timestamps, and whatever the method keeps), the run record (matrices,
timings, reports), the global and batch-order RNG states, and the logger's state (so a
resumed run can continue the same experiment-tracker run). It is written atomically
(temporary file + rename), so a crash while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from den.errors import DataError
from den.results import RunRecord
from den.strategies.base import Strategy

CHECKPOINT = "checkpoint.pt"
FORMAT_VERSION = 1


def save_checkpoint(
    output_dir: str | Path, strategy: Strategy, record: RunRecord, logger_state: dict | None = None
) -> Path:
    path = Path(output_dir) / CHECKPOINT
    state = {
        "format": FORMAT_VERSION,
        "strategy": strategy.state_dict(),
        "record": dataclasses.asdict(record),
        "torch_rng": torch.get_rng_state(),
        "logger": logger_state or {},
    }
    tmp = path.with_name(f".{CHECKPOINT}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(output_dir: str | Path, strategy: Strategy) -> tuple[RunRecord, dict]:
    """Restore ``strategy`` and the global RNG from ``output_dir``; return the run record and
    the logger's saved state."""
    path = Path(output_dir) / CHECKPOINT
    if not path.is_file():
        raise DataError(
            path,
            "no checkpoint to resume from (the run finished no task, or this is not a run directory)",
            "pass the run directory that holds checkpoint.pt as resume=<dir>, or start a new run without resume",
        )
    try:
        state: dict[str, Any] = torch.load(path, map_location=strategy.device, weights_only=False)
    except Exception as err:
        raise DataError(
            path, f"unreadable checkpoint ({type(err).__name__}: {err})", "start a new run"
        ) from err
    if state.get("format") != FORMAT_VERSION:
        raise DataError(
            path,
            f"checkpoint format {state.get('format')} is not {FORMAT_VERSION}",
            "start a new run",
        )
    strategy.load_state_dict(state["strategy"])
    torch.set_rng_state(state["torch_rng"].cpu())
    return RunRecord(**state["record"]), state.get("logger", {})
