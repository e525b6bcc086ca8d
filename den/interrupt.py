"""Clean stops on SIGINT / SIGTERM (what SLURM sends before it preempts a job).

The first signal sets a flag; the training loop checks it after every step and raises
:class:`RunInterrupted`, so the current step finishes, the checkpoint of the last finished
task stays as it is, the loggers are closed, and the process exits non-zero with a message
that says how to resume. A second SIGINT stops at once (the default behaviour).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from den.errors import DenError

_stop = threading.Event()
_signal_name = ""


class RunInterrupted(DenError):
    def __init__(self, output_dir: Path | str | None = None) -> None:
        self.exit_code = 128 + (signal.SIGTERM if _signal_name == "SIGTERM" else signal.SIGINT)
        where = f"resume={output_dir}" if output_dir else "resume=<run dir>"
        super().__init__(
            f"Stopped by {_signal_name or 'a signal'}; every finished task is saved in the run "
            f"directory's checkpoint.pt and results.json. Fix: rerun the same command with {where}."
        )


def stop_requested() -> bool:
    return _stop.is_set()


def _handler(signum: int, frame: object) -> None:
    global _signal_name
    if _stop.is_set() and signum == signal.SIGINT:
        raise KeyboardInterrupt
    _signal_name = signal.Signals(signum).name
    _stop.set()


def install_handlers() -> None:
    """Route SIGINT and SIGTERM to the flag (main thread only; a no-op elsewhere)."""
    _stop.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
