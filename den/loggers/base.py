"""The logger protocol, and ``logger=none`` (the run directory's own files only).

The run calls a logger's hooks; strategies never see it. A logger is a class registered in
:data:`den.config.registry.LOGGERS` with its settings' schema and built as
``cls(cfg, output_dir, meta, job)``: its settings, the run directory, the run record's
metadata (``config``, ``method``, ``versions``...) and the job's identity (``group``,
``job_type``, ``name``, ``tags``, ``device``; see :func:`den.run.provenance.job_info`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from den.config.registry import LOGGERS
from den.config.schema import LoggerConfig


@dataclass
class NoLoggerConfig(LoggerConfig):
    name: str = "none"


@LOGGERS.register("none", NoLoggerConfig)
class Logger:
    """No-op base: every hook is optional; ``logger=none`` is this class itself."""

    def __init__(
        self,
        cfg: Any = None,
        output_dir: str | Path = ".",
        meta: dict[str, Any] | None = None,
        job: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.output_dir = Path(output_dir)

    def start(self) -> None:
        """Called once, after :meth:`load_state_dict` and before the first task."""

    def log_training(self, event: dict[str, Any]) -> None:
        """Training progress every ``trainer.log_every`` steps: task, phase, step, loss, lr."""

    def log_evaluation(self, row: dict[str, Any]) -> None:
        """One evaluation: after learning task ``row['after_task']``, task ``row['task']``."""

    def log_task(self, task_index: int, metrics: dict[str, Any]) -> None:
        """Summary metrics after learning task ``task_index`` (0-based), and under
        ``report`` what the strategy reported about the task (DEN: selected, kept, split...)."""

    def log_final(self, results: dict[str, Any]) -> None:
        """The finished run's results.json content."""

    def close(self, failed: bool = False) -> None:
        """Always called, also when the run fails."""

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint (e.g. a W&B run id, so a resumed run continues it)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called before the first task of a resumed run with what :meth:`state_dict` saved."""
