"""Clean stops on SIGINT / SIGTERM (what SLURM sends before it preempts a job).

The first signal sets a flag; the training loop checks it after every step and raises
:class:`RunInterrupted`, so the current step finishes, the checkpoint of the last finished
task stays as it is, the loggers are closed, and the process exits non-zero with a message
that says how to resume. A second SIGINT stops at once, with one line (no traceback): every
file of the run is written atomically or rebuilt from the checkpoint on resume, so stopping
anywhere loses at most the task in progress.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from den.errors import DenError

_stop = threading.Event()
_signal_name = ""


class RunInterrupted(DenError):
    def __init__(self, output_dir: Path | str | None = None, tasks_done: int | None = None) -> None:
        self.exit_code = 128 + (signal.SIGTERM if _signal_name == "SIGTERM" else signal.SIGINT)
        where = f"resume={output_dir}" if output_dir else "resume=<run dir>"
        by = _signal_name or "a signal"
        if tasks_done == 0:
            message = (
                f"Stopped by {by} before the first task finished: there is no checkpoint yet, "
                "so there is nothing to resume. Fix: rerun the same command without resume= "
                "to start the run again."
            )
        else:
            done = f"{tasks_done} finished tasks are" if tasks_done else "every finished task is"
            message = (
                f"Stopped by {by}; {done} saved in the run directory's checkpoint.pt and "
                f"results.json. Fix: rerun the same command with {where}."
            )
        super().__init__(message)


def stop_requested() -> bool:
    return _stop.is_set()


def _handler(signum: int, frame: object) -> None:
    global _signal_name
    if _stop.is_set() and signum == signal.SIGINT:
        # A KeyboardInterrupt raised here could land in a finaliser or a library's cleanup and
        # print an "Exception ignored" traceback; files are safe to abandon at any point.
        sys.stderr.write(
            "\nStopped at once by a second SIGINT; the checkpoint of the last finished task "
            "is kept. Fix: rerun the same command with resume=<run dir> (resume=true for "
            "this one).\n"
        )
        sys.stderr.flush()
        os._exit(128 + signal.SIGINT)
    _signal_name = signal.Signals(signum).name
    _stop.set()


def install_handlers() -> None:
    """Route SIGINT and SIGTERM to the flag (main thread only; a no-op elsewhere)."""
    _stop.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
