"""``logger=csv``: ``metrics.csv`` in the run directory, one row per evaluation."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

from den.config.registry import LOGGERS
from den.config.schema import LoggerConfig
from den.loggers.base import Logger
from den.utils.files import open_append, write_atomic


@dataclass
class CSVLoggerConfig(LoggerConfig):
    name: str = "csv"


@LOGGERS.register("csv", CSVLoggerConfig)
class CSVLogger(Logger):
    """``metrics.csv``, one row per evaluation. The checkpoint records how many rows belong
    to its finished tasks; a resumed run cuts the file back to them (no duplicated rows)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = self.output_dir / "metrics.csv"
        self._file = None
        self._writer: csv.DictWriter | None = None
        self.rows = 0

    def log_evaluation(self, row: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open_append(self.path)  # never through a link
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row))
            if self._file.tell() == 0:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()
        self.rows += 1

    def close(self, failed: bool = False) -> None:
        if self._file is not None:
            self._file.close()

    def state_dict(self) -> dict[str, Any]:
        return {"csv_rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "csv_rows" not in state:  # a run that has not checkpointed rows: leave the file
            return
        self.rows = int(state["csv_rows"])
        if self.path.is_file():
            lines = self.path.read_text().splitlines(keepends=True)
            write_atomic(self.path, "".join(lines[: 1 + self.rows] if self.rows else []))
