"""The one way den writes a file of a run: atomically, cleaning up after itself.

:func:`write_atomic` writes to a hidden temporary file beside the target, syncs it and
renames it over the target, so a reader (or a resumed run) sees the old file or the new one,
never half of one. When the write fails, the temporary file is deleted (a full disk is not
made fuller by every retry) and the OS error becomes a :class:`WriteError` naming the file,
the cause (no space left, permission denied, read-only file system) and the fix.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from den.errors import DenError

TMP_MARK = ".tmp"


class WriteError(DenError):
    """A file of the run could not be written (disk full, no permission, ...)."""

    def __init__(self, path: str | Path, err: OSError) -> None:
        self.path = str(path)
        self.errno = err.errno
        cause = os.strerror(err.errno) if err.errno else str(err)
        folder = Path(path).parent
        while not folder.exists() and folder != folder.parent:  # name the folder that exists
            folder = folder.parent
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = (
                f"free space on the disk holding {folder} (df -h shows it), then "
                "rerun with resume=<run dir>: every finished task is kept"
            )
        elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = (
                f"make {folder} writable by this user, or write the run elsewhere "
                "with hydra.run.dir=<a writable folder>"
            )
        else:
            fix = f"check the file system holding {folder}"
        super().__init__(f"Could not write {path}: {cause}. Fix: {fix}")


def temporary_path(path: Path) -> Path:
    """The hidden file beside ``path`` that a write goes through (one per process)."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Replace ``path`` by ``data`` all at once; raise :class:`WriteError` on failure."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise WriteError(path, err) from err
    return path


def write_json_atomic(data: Any, path: str | Path) -> Path:
    """JSON (indented, non-JSON values as ``str``) through :func:`write_atomic`."""
    return write_atomic(path, json.dumps(data, indent=1, default=str))


def append_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Append text lines to ``path`` (one write); raise :class:`WriteError` on failure.

    Not atomic: a crash can leave a partial last line. Only ``metrics.jsonl`` is appended to,
    and a resumed run rewrites it from the checkpoint (:func:`den.run.record.write_metrics`).
    """
    path = Path(path)
    text = "".join(line + "\n" for line in lines)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _write_all(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise WriteError(path, err) from err


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by a process that was killed mid-write.

    Only call this while holding the folder's run lock (:mod:`den.run.rundir`): then no other
    process of this run can be writing one."""
    removed = []
    for p in Path(folder).glob(f".*{TMP_MARK}*"):
        if p.is_file():
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
