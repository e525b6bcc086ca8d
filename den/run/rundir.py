"""One run per run directory.

A run claims its directory before it writes anything there: it takes an exclusive ``flock`` on
``<dir>/.den.lock`` (held until the process ends, released by the OS even on SIGKILL) and
writes who holds it into the same file. A second process that wants the directory while the
first runs is refused, naming the holder. A directory that already holds a run's files
(``checkpoint.pt``, ``results.json``, ``metrics.jsonl``) is reused only to continue that run
(``resume=``); a fresh run is refused with the two ways out (resume it, or write elsewhere).

Under the lock no other den process writes in the directory, so temporary files found there
were left by a killed writer and are deleted (a full disk is not kept full by leftovers).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from den.errors import DenError
from den.utils.files import WriteError, remove_stale_temporaries

LOCK_FILE = ".den.lock"
RUN_FILES = ("checkpoint.pt", "results.json", "metrics.jsonl")

# directory (resolved) -> open file descriptor holding its lock, for this process
_held: dict[Path, int] = {}


class RunDirError(DenError):
    """The run directory belongs to another run."""


def run_files(folder: Path) -> list[str]:
    """The run files present in ``folder`` (what makes it a run's directory)."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def describe_run(folder: Path) -> str:
    """A short description of the run whose files are in ``folder``."""
    try:
        results = json.loads((folder / "results.json").read_text())
        return f"a {results.get('status', '?')} run ({results.get('tasks_done', '?')} tasks done)"
    except (OSError, ValueError, AttributeError):
        return f"a run ({', '.join(run_files(folder))})"


def holds(folder: str | Path) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return Path(folder).resolve() in _held


def claim(folder: str | Path, resuming: bool, hint: str = "") -> bool:
    """Take ``folder`` for this process; return False if it already held it.

    ``resuming``: this run continues the run in ``folder`` (``resume=``), so its files are
    expected; otherwise a folder with run files is refused. ``hint``: the command-line
    override that chose the folder (for the message). Raises :class:`RunDirError` or
    :class:`~den.utils.files.WriteError` (folder not writable)."""
    folder = Path(folder).resolve()
    if folder in _held:
        return False
    lock_path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise WriteError(lock_path, err) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = _read_holder(fd)
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise WriteError(lock_path, err) from err
        raise RunDirError(
            f"The run directory {folder} is in use by another run ({holder}). Two runs in one "
            "directory would overwrite each other's results. Fix: give this run its own "
            f"directory (hydra.run.dir=<new dir>{hint}), or wait for the other run to end and "
            f"continue it with resume={folder}"
        ) from None
    present = run_files(folder)
    if present and not resuming:
        os.close(fd)  # releases the lock
        raise RunDirError(
            f"The run directory {folder} already holds {describe_run(folder)}; a new run there "
            f"would overwrite its {', '.join(present)}. Fix: continue that run with "
            f"resume={folder} (or resume=true), or start the new run in another directory "
            "(hydra.run.dir=<new dir>, or leave hydra.run.dir unset for a fresh timestamped one)"
        )
    try:
        os.ftruncate(fd, 0)
        os.write(fd, _holder_text().encode())
        os.fsync(fd)
    except OSError as err:
        os.close(fd)
        raise WriteError(lock_path, err) from err
    _held[folder] = fd
    remove_stale_temporaries(folder)
    return True


def release(folder: str | Path) -> None:
    """Give the folder up (the lock file stays; it is only a record of the last holder)."""
    fd = _held.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)


def _holder_text() -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv[1:])[:2000],
        }
    )


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
