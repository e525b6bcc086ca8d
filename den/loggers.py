"""Experiment loggers. The runner calls them; strategies never do.

``logger=none`` logs nothing beyond the run directory's own files (results.json and
metrics.jsonl are always written by :mod:`den.results`); ``logger=csv`` adds
``metrics.csv``, one row per evaluation.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class Logger:
    """No-op base: every hook is optional."""

    def log_evaluation(self, row: dict[str, Any]) -> None:
        """One evaluation: after learning task ``row['after_task']``, task ``row['task']``."""

    def log_task(self, task_index: int, metrics: dict[str, Any]) -> None:
        """Summary metrics after learning task ``task_index`` (0-based)."""

    def log_final(self, results: dict[str, Any]) -> None:
        """The finished run's results.json content."""

    def close(self, failed: bool = False) -> None:
        """Always called, also when the run fails."""

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint (e.g. a W&B run id, so a resumed run continues it)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called before the first task of a resumed run with what :meth:`state_dict` saved."""


class CSVLogger(Logger):
    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / "metrics.csv"
        self._file = self.path.open("a", newline="")
        self._writer: csv.DictWriter | None = None

    def log_evaluation(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row))
            if self._file.tell() == 0:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def close(self, failed: bool = False) -> None:
        self._file.close()


def build_logger(cfg: Any, output_dir: str | Path) -> Logger:
    from den.errors import ConfigError

    if cfg.name == "none":
        return Logger()
    if cfg.name == "csv":
        return CSVLogger(output_dir)
    raise ConfigError("logger.name", cfg.name, "unknown logger", "use logger=none or logger=csv")
