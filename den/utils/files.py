"""The one way den writes (and reads) a file: inside its folder, atomically, cleaning up.

:func:`write_atomic` writes to a hidden temporary file beside the target, syncs it and
renames it over the target, so a reader (or a resumed run) sees the old file or the new one,
never half of one. When the write fails, the temporary file is deleted (a full disk is not
made fuller by every retry) and the OS error becomes a :class:`WriteError` naming the file,
the cause (no space left, permission denied, read-only file system) and the fix.

No write follows a symbolic link: every file is opened with ``O_NOFOLLOW`` (and the target
of a rename is checked first), so a link planted in a run folder or a report folder (a
received one, say) cannot aim a write at a file elsewhere; it is refused with an
:class:`UnsafePathError` naming the link. Named pipes and other special files are refused
the same way instead of blocking the writer. :func:`read_bounded` is the reading side for
files den did not write itself: regular files only, never more than a limit.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import math
import os
import re
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from den.errors import DenError

TMP_MARK = ".tmp"
# .<name>.tmp<pid>: the temporary files of write_atomic (and of older den versions)
_TMP_NAME = re.compile(r"^\..+\.tmp\d+$")
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

log = logging.getLogger("den")


class WriteError(DenError):
    """A file of the run could not be written (disk full, no permission, ...)."""

    def __init__(self, path: str | Path, err: OSError) -> None:
        self.path = str(path)
        self.errno = err.errno
        cause = os.strerror(err.errno) if err.errno else str(err)
        folder = existing_parent(Path(path))
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = (
                f"free space on the disk holding {folder} (df -h shows it), then run again; "
                "a run that finished tasks continues after the last one with resume=<run dir>"
            )
        elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = (
                f"make {folder} writable by this user, or write the run elsewhere "
                "with hydra.run.dir=<a writable folder>"
            )
        elif err.errno == errno.ENAMETOOLONG:
            fix = "use a shorter path: a file system allows at most 255 bytes per name"
        elif err.errno in (errno.ENOTDIR, errno.EEXIST):
            fix = f"a part of the path is a file, not a folder: remove it or use another path than {path}"
        else:
            fix = f"check the file system holding {folder}"
        super().__init__(f"Could not write {path}: {cause}. Fix: {fix}")


class UnsafePathError(DenError):
    """A file den would write is a symbolic link or not a regular file: den does not write
    through it (a planted link could aim the write at any file this user may change)."""

    def __init__(self, path: str | Path, what: str, fix: str | None = None) -> None:
        self.path = str(path)
        fix = fix or "write to a fresh folder"
        super().__init__(
            f"Refusing to write {path}: it is {what}, and den writes only regular files of "
            "its own folder (a link there could send the write to a file elsewhere). "
            f"Fix: remove it (rm -r '{path}'; a link's target is kept), or {fix}"
        )


def existing_parent(path: Path) -> Path:
    """The nearest folder of ``path`` (itself included) that exists; never raises."""
    folder = path.parent
    while folder != folder.parent:
        try:
            if folder.exists():
                break
        except OSError:  # a name too long, a loop of links
            pass
        folder = folder.parent
    return folder


def unsafe_kind(path: str | Path, folder_ok: bool = False) -> str | None:
    """What makes ``path`` unfit to write (a symbolic link, a folder, a named pipe, a
    device), or None for a regular file or nothing at all."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno in (errno.ENOTDIR, errno.ENAMETOOLONG):
            return None  # the write itself reports it, with WriteError's advice
        raise WriteError(path, err) from err
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"a symbolic link (to {target})"
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


def refuse_unsafe(path: str | Path, fix: str | None = None, folder_ok: bool = False) -> None:
    """Raise :class:`UnsafePathError` if ``path`` exists and is not a regular file (or, with
    ``folder_ok``, a folder)."""
    what = unsafe_kind(path, folder_ok)
    if what:
        raise UnsafePathError(path, what, fix)


def open_nofollow(path: str | Path, flags: int, fix: str | None = None) -> int:
    """``os.open`` that never follows a symbolic link at ``path`` and never blocks on a named
    pipe; anything but a regular file is refused (:class:`UnsafePathError`), other OS errors
    become a :class:`WriteError`."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError as err:
        what = unsafe_kind(path) if err.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR) else None
        if what:
            raise UnsafePathError(path, what, fix) from None
        raise WriteError(path, err) from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(path, unsafe_kind(path) or "not a regular file", fix)
    return fd


def temporary_path(path: Path) -> Path:
    """The hidden file beside ``path`` that a write goes through (one per process)."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: str | Path, data: bytes | str, fix: str | None = None) -> Path:
    """Replace ``path`` by ``data`` all at once; raise :class:`WriteError` on failure and
    :class:`UnsafePathError` (``fix``: the advice) when ``path`` is a link or special file."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    refuse_unsafe(path, fix)
    tmp = temporary_path(path)
    _remove_entry(tmp)  # a leftover of an earlier process with this pid, whatever it is
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fix)
    try:
        try:
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        refuse_unsafe(path, fix)  # rename replaces a link rather than following it; refuse anyway
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise WriteError(path, err) from err
    except DenError:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_figure(fig: Any, path: str | Path, fix: str | None = None, **kwargs: Any) -> Path:
    """A matplotlib figure as a PNG file, through :func:`write_atomic` (never through a
    link); ``kwargs`` go to ``savefig``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **kwargs)
    return write_atomic(path, buffer.getvalue(), fix)


def finite_json(data: Any, name: str = "JSON", indent: int | None = 1) -> str:
    """``data`` as strict JSON: a NaN or infinite number, which JSON cannot hold, is written
    as null, with a warning naming where it was."""
    found: list[str] = []

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            found.append(f"{where} ({value})")
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = clean(data, "")
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        log.warning("%s: not a finite number, written as null: %s", name, shown)
    return json.dumps(cleaned, indent=indent, default=str, allow_nan=False)


def write_json_atomic(data: Any, path: str | Path, fix: str | None = None) -> Path:
    """JSON (indented, non-JSON values as ``str``, NaN as null) through :func:`write_atomic`."""
    return write_atomic(path, finite_json(data, str(path)), fix)


def append_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Append text lines to ``path`` (one write); raise :class:`WriteError` on failure.

    Not atomic: a crash can leave a partial last line. Only ``metrics.jsonl`` is appended to,
    and a resumed run rewrites it from the checkpoint (:func:`den.run.record.write_metrics`).
    """
    path = Path(path)
    text = "".join(line + "\n" for line in lines)
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        _write_all(fd, text.encode())
    except OSError as err:
        raise WriteError(path, err) from err
    finally:
        os.close(fd)


def open_append(path: str | Path) -> IO[str]:
    """``path`` opened for appending text (created if missing), never through a link."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", newline="")


def _remove_entry(path: Path) -> bool:
    """Delete ``path`` if it exists, never following a link (a link is removed, not its
    target; a folder with everything in it); True if something was removed."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    try:
        if stat.S_ISDIR(mode):
            shutil.rmtree(path)  # does not follow links inside
        else:
            os.unlink(path)
    except OSError:
        return False
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by a process that was killed mid-write:
    whatever they are (file, link, pipe, folder), without following a link.

    Only call this while holding the folder's run lock (:mod:`den.run.rundir`): then no other
    process of this run can be writing one."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _TMP_NAME.match(entry.name) and _remove_entry(Path(entry.path)):
            removed.append(Path(entry.path))
    return removed


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``ValueError``
    saying why not (a folder, a named pipe, a device, larger than ``limit``, unreadable).
    Never blocks on a pipe and never reads a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as err:
        raise ValueError(f"cannot be read ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device"
            raise ValueError(f"is {kind}, not a regular file")
        if info.st_size > limit:
            raise ValueError(f"is {info.st_size:,} bytes, more than the {limit:,} expected")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ValueError(f"grew past the {limit:,} bytes expected while being read")
        return b"".join(chunks)
    except OSError as err:
        raise ValueError(f"cannot be read ({err.strerror or err})") from None
    finally:
        os.close(fd)
