"""The run record: accuracy/AUROC matrices, timings, sizes; written to the run directory.

``results.json`` is rewritten (atomically, :mod:`den.utils.files`) after every task with
``"status": "running"`` and once more at the end with ``"status": "complete"``, so a run that
dies keeps every finished task and never leaves a file that claims success.
``metrics.jsonl`` gets one line per evaluation (task j after learning task i, val and test).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from den.engine import metrics
from den.utils.files import append_lines, finite_json, write_atomic

SPLITS = ("val", "test")


@dataclass
class RunRecord:
    """Everything measured during a run; ``matrices[split][metric][i][j]`` for j <= i."""

    num_tasks: int
    base_params: int
    meta: dict[str, Any] = field(default_factory=dict)
    matrices: dict[str, dict[str, list[list[float | None]]]] = field(default_factory=dict)
    params: list[int] = field(default_factory=list)
    nonzero_params: list[int] = field(default_factory=list)  # empty in records before 2026-11
    learn_time_s: list[float] = field(default_factory=list)
    eval_time_s: list[float] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0
    peak_rss_mib: float = 0.0  # the largest over every process of the run (resumes)

    def __post_init__(self) -> None:
        if not self.matrices:
            self.matrices = {s: {"acc": [], "auroc": []} for s in SPLITS}

    @property
    def tasks_done(self) -> int:
        return len(self.params)

    def add_row(self, split: str, metric: str, row: list[float]) -> None:
        padded = list(row) + [None] * (self.num_tasks - len(row))
        self.matrices[split][metric].append(padded)

    def add_task(
        self,
        rows: dict[str, dict[str, list[float]]],
        strategy: Any,
        learn_s: float,
        eval_s: float,
    ) -> None:
        """The evaluation ``rows[split][metric]`` after a task, the strategy's size, timings."""
        for split in SPLITS:
            for metric in ("acc", "auroc"):
                self.add_row(split, metric, rows[split][metric])
        self.params.append(strategy.num_parameters())
        self.nonzero_params.append(strategy.num_nonzero_parameters())
        self.learn_time_s.append(round(learn_s, 3))
        self.eval_time_s.append(round(eval_s, 3))

    def square(self, split: str, metric: str) -> list[list[float | None]]:
        return self.matrices[split][metric]

    def final(self) -> dict[str, float]:
        return metrics.summarise(
            self.square("test", "acc"),
            self.square("test", "auroc"),
            self.params[-1],
            self.base_params,
            self.nonzero_params[-1] if self.nonzero_params else None,
        )

    def to_json(self, status: str) -> dict[str, Any]:
        acc, auroc = self.square("test", "acc"), self.square("test", "auroc")
        out: dict[str, Any] = {"status": status, **self.meta}
        out["tasks_done"] = self.tasks_done
        out["acc_matrix"] = acc
        out["auroc_matrix"] = auroc
        out["val_acc_matrix"] = self.square("val", "acc")
        out["val_auroc_matrix"] = self.square("val", "auroc")
        if self.tasks_done:
            out["final"] = self.final()
            out["val_final"] = {
                "avg_acc": metrics.average_final(self.square("val", "acc")),
                "avg_auroc": metrics.average_final(self.square("val", "auroc")),
            }
            out["avg_acc_curve"] = metrics.average_accuracy_curve(acc)
        out["params_per_task"] = self.params
        out["capacity_per_task"] = [p / self.base_params for p in self.params]
        out["nonzero_params_per_task"] = self.nonzero_params
        out["nonzero_capacity_per_task"] = [p / self.base_params for p in self.nonzero_params]
        out["base_params"] = self.base_params
        out["learn_time_s"] = self.learn_time_s
        out["eval_time_s"] = self.eval_time_s
        out["wall_time_s"] = self.wall_time_s
        out["peak_rss_mib"] = round(self.peak_rss_mib, 1)
        out["tasks"] = self.tasks
        return out


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB, macOS bytes;
    0 where the ``resource`` module does not exist, i.e. Windows)."""
    try:
        import resource
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def metrics_lines(record: RunRecord, i: int) -> list[dict[str, Any]]:
    """The ``metrics.jsonl`` rows of task ``i`` (0-based): every task seen so far, val and
    test. Derived from the record, so the file can always be rebuilt from the checkpoint."""
    return [
        {
            "after_task": i,
            "task": j,
            "split": split,
            "acc": record.matrices[split]["acc"][i][j],
            "auroc": record.matrices[split]["auroc"][i][j],
        }
        for j in range(i + 1)
        for split in SPLITS
    ]


def append_metrics(record: RunRecord, i: int, path: str | Path) -> None:
    """Append task ``i``'s rows to ``metrics.jsonl``."""
    rows = metrics_lines(record, i)
    append_lines(path, (finite_json(row, f"{path} (task {i + 1})", None) for row in rows))


def write_metrics(record: RunRecord, path: str | Path) -> None:
    """Rewrite ``metrics.jsonl`` (atomically) to hold exactly the rows of the record's
    finished tasks: on resume, rows of a task the checkpoint lacks are dropped and rows the
    checkpoint has but the file lost are restored, so no row is ever duplicated or missing."""
    rows = [row for i in range(record.tasks_done) for row in metrics_lines(record, i)]
    write_atomic(path, "".join(finite_json(row, str(path), None) + "\n" for row in rows))
