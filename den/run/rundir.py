"""One run per run directory.

A run claims its directory before it writes anything there: it takes an exclusive ``flock`` on
``<dir>/.den.lock`` (held until the process ends, released by the OS even on SIGKILL) and
writes who holds it into the same file. A second process that wants the directory while the
first runs is refused, naming the holder. A directory that already holds a run's files
(``checkpoint.pt``, ``results.json``, ``metrics.jsonl``) is reused only to continue that run
(``resume=``); a fresh run is refused with the two ways out (resume it, or write elsewhere).

Under the lock no other den process writes in the directory, so temporary files found there
were left by a killed writer and are deleted (a full disk is not kept full by leftovers).

Nothing is written through a link: the lock file is opened without following one, and a
directory where any file den or Hydra writes (or ``.hydra/``) is a symbolic link or a special
file is refused, naming it, before anything is written there. A job of a sweep that fails
leaves ``failed.json`` (the error) in its folder; the next attempt in the folder removes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from den.errors import DenError
from den.utils.files import (
    WriteError,
    open_nofollow,
    read_bounded,
    refuse_unsafe,
    remove_stale_temporaries,
    write_json_atomic,
)

LOCK_FILE = ".den.lock"
RUN_FILES = ("checkpoint.pt", "results.json", "metrics.jsonl")
FAILED_FILE = "failed.json"  # why the last attempt of a sweep's job failed (not a run file)
# Every other file den or Hydra writes in a run directory (Hydra's log file is named after the
# job, train.log for den.train; the callback passes another name when the config sets one).
HYDRA_DIR = ".hydra"
WRITTEN_FILES = (
    *RUN_FILES,
    FAILED_FILE,
    "metrics.csv",
    "train.log",
    f"{HYDRA_DIR}/config.yaml",
    f"{HYDRA_DIR}/hydra.yaml",
    f"{HYDRA_DIR}/overrides.yaml",
)
LINK_FIX = "start the run in a fresh folder (hydra.run.dir=<new dir>)"
NAME_MAX = 255

# directory (resolved) -> open file descriptor holding its lock, for this process
_held: dict[Path, int] = {}


class RunDirError(DenError):
    """The run directory belongs to another run."""


def run_files(folder: Path) -> list[str]:
    """The run files present in ``folder`` (what makes it a run's directory)."""
    return [name for name in RUN_FILES if os.path.lexists(folder / name)]


def describe_run(folder: Path) -> str:
    """A short description of the run whose files are in ``folder``."""
    try:
        results = json.loads(read_bounded(folder / "results.json", 1 << 26))
        return f"a {results.get('status', '?')} run ({results.get('tasks_done', '?')} tasks done)"
    except (ValueError, AttributeError):
        return f"a run ({', '.join(run_files(folder))})"


def check_names(folder: str | Path, names: Iterable[str] = (), fix: str = LINK_FIX) -> None:
    """Refuse a run directory where a file den or Hydra writes (:data:`WRITTEN_FILES`,
    ``names``) or the ``.hydra`` folder is a symbolic link or a special file: the write
    would land wherever the link points (:class:`~den.utils.files.UnsafePathError`)."""
    folder = Path(folder)
    refuse_unsafe(folder / HYDRA_DIR, fix, folder_ok=True)
    for name in (LOCK_FILE, *WRITTEN_FILES, *names):
        refuse_unsafe(folder / name, fix)


def make_folder(folder: Path, hint: str = "") -> None:
    """Create the run directory ``folder`` (and its parents); a path that cannot be one is
    refused naming the part at fault."""
    fix = f"choose another run directory (hydra.run.dir=<new dir>{hint})"
    long_parts = [p for p in folder.parts if len(os.fsencode(p)) > NAME_MAX]
    if long_parts:
        name = long_parts[0]
        raise RunDirError(
            f"The run directory {str(folder)[:80]}... has a name of {len(os.fsencode(name))} "
            f"bytes ({name[:40]}...); file systems allow at most {NAME_MAX} bytes per name. "
            f"Fix: {fix} with shorter names"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [*reversed(folder.parents), folder] if p.is_file()), folder)
        raise RunDirError(
            f"The run directory {folder} cannot be created: {blocker} is a file, not a "
            f"folder. Fix: {fix}, or move the file {blocker} away"
        ) from None
    except OSError as err:
        raise WriteError(folder, err) from err


def holds(folder: str | Path) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return Path(folder).resolve() in _held


def claim(folder: str | Path, resuming: bool, hint: str = "", names: Iterable[str] = ()) -> bool:
    """Take ``folder`` for this process; return False if it already held it.

    ``resuming``: this run continues the run in ``folder`` (``resume=``), so its files are
    expected; otherwise a folder with run files is refused. ``hint``: the command-line
    override that chose the folder (for the message). ``names``: files Hydra writes there
    beyond :data:`WRITTEN_FILES`, checked alike. Raises :class:`RunDirError`,
    :class:`~den.utils.files.UnsafePathError` (a planted link) or
    :class:`~den.utils.files.WriteError` (folder not writable)."""
    make_folder(Path(folder).absolute(), hint)
    folder = Path(folder).resolve()
    if folder in _held:
        return False
    fd = _lock(folder, hint)
    try:
        check_names(folder, names)
        present = run_files(folder)
        if present and not resuming:
            raise RunDirError(
                f"The run directory {folder} already holds {describe_run(folder)}; a new run "
                f"there would overwrite its {', '.join(present)}. Fix: continue that run with "
                f"resume={folder} (or resume=true), or start the new run in another directory "
                "(hydra.run.dir=<new dir>, or leave hydra.run.dir unset for a fresh timestamped "
                "one)"
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode(), 0)
            os.fsync(fd)
        except OSError as err:
            raise WriteError(folder / LOCK_FILE, err) from err
    except DenError:
        os.close(fd)  # releases the lock
        raise
    _held[folder] = fd
    remove_stale_temporaries(folder)
    clear_failure(folder)
    return True


def _lock(folder: Path, hint: str) -> int:
    """The open lock file of ``folder``, locked by this process; refused while another
    process holds it, or when it is a link or a special file."""
    fd = open_nofollow(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, LINK_FIX)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = _read_holder(fd)
        os.close(fd)
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise WriteError(folder / LOCK_FILE, err) from err
        raise RunDirError(
            f"The run directory {folder} is in use by another run ({holder}). Two runs in one "
            "directory would overwrite each other's results. Fix: give this run its own "
            f"directory (hydra.run.dir=<new dir>{hint}), or wait for the other run to end and "
            f"continue it with resume={folder}"
        ) from None
    return fd


def record_failure(folder: str | Path, record: dict) -> Path | None:
    """Write ``record`` (why a sweep's job failed) as ``failed.json`` in ``folder``, if this
    process holds the folder or can take it for a moment; None when another run holds it
    (its folder is not this job's to mark) or the folder cannot take the file."""
    folder = Path(folder)
    path = folder / FAILED_FILE
    taken = None
    try:
        if not holds(folder):
            if not folder.is_dir():
                return None
            taken = _lock(folder.resolve(), "")
        return write_json_atomic(record, path, LINK_FIX)
    except DenError:
        return None
    finally:
        if taken is not None:
            os.close(taken)


def clear_failure(folder: str | Path) -> None:
    """Remove the ``failed.json`` of an earlier attempt (this process holds ``folder``)."""
    path = Path(folder) / FAILED_FILE
    if os.path.lexists(path):
        with contextlib.suppress(OSError):
            path.unlink()


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
