"""Progress bars for training phases (rich), silent when the output is not a terminal.

In a terminal each phase gets a live bar with its step count, loss and best validation loss.
In logs (SLURM, CI) the bar is skipped and :func:`den.engine.training.train_phase` writes one summary
line per phase instead, so log files stay readable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress = progress
        self._task = task

    def update(self, step: int, loss: float, val: float | None) -> None:
        if self._progress is None:
            return
        stats = f"loss {loss:.4f}" + (
            f"  val {val:.4f}" if val is not None and val != float("inf") else ""
        )
        self._progress.update(self._task, completed=step, stats=stats)


@contextmanager
def phase_progress(description: str, total: int, enabled: bool = True) -> Iterator[_Bar]:
    """A bar for one training phase of ``total`` steps; a no-op unless stderr is a terminal."""
    if not (enabled and sys.stderr.isatty()):
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total, stats="")
        yield _Bar(progress, task)
