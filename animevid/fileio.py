"""Safe file writing: nothing half-written ever appears where the user expects a good file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

# Read once at import (still single-threaded): os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# Temporary files are named ".<destination name>.pid<writer's pid>.<8 random chars>.part<destination suffix>";
# names without the pid come from versions before it was recorded.
_TEMPORARY_NAME = re.compile(r"^\..+?(?:\.pid(?P<pid>\d+))?\.[A-Za-z0-9_]{8}\.part(\.[^.]*)?$")
# A temporary whose writer still runs is stale once nothing has written it for this long (its pid
# may have been reused by another process); a live writer touches its file far more often.
STALE_AFTER_SECONDS = 24 * 3600


def check_destination(path: Path, overwrite: bool, source: Path | None = None) -> None:
    """Refuse an existing destination (unless ``overwrite``), the source itself, or a missing folder."""
    if source is not None and path.exists() and source.exists() and path.resolve() == source.resolve():
        raise OutputError(f"output {path} is the input file; choose another destination")
    if path.is_dir():
        raise OutputError(f"output {path} is a directory")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists (use --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable")


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it onto ``destination`` on success.

    On any exception (Ctrl-C included) the temporary file is removed and ``destination`` is left
    as it was. The temporary name keeps the destination's extension (``suffix``) so that writers
    that pick a format from the name (OpenCV, FFmpeg muxers) still do.
    """
    destination = Path(destination)
    suffix = destination.suffix if suffix is None else suffix
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{destination.name}.pid{os.getpid()}.", suffix=".part" + suffix, dir=destination.parent
        )
    except OSError as exc:
        raise OutputError(f"cannot write to {destination.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            # mkstemp (and some writers, e.g. safetensors, which recreate the file) leave it 0600;
            # give the result the mode any new file of the user would have.
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, destination)
        except OSError as exc:
            raise OutputError(f"cannot write {destination}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(destination: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``destination`` through a temporary file beside it."""
    with atomic_path(destination) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {destination}: {exc.strerror or exc}") from exc


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is one of :func:`atomic_path`'s temporary file names."""
    return _TEMPORARY_NAME.match(name) is not None


def process_is_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine (always True where that cannot be asked)."""
    if os.name != "posix":
        return True  # Windows' os.kill(pid, 0) would send CTRL_C_EVENT, not probe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def is_stale(path: Path, pid: int | None, *, now: float | None = None) -> bool:
    """A leftover temporary: its writer (``pid``; None when not recorded) is gone, or it is untouched for a day."""
    if pid is None or not process_is_running(pid):
        return True
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return False  # already gone
    return (time.time() if now is None else now) - modified > STALE_AFTER_SECONDS


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` leaves behind when a process is killed.

    Only stale ones: a temporary that another running process is still writing is kept. Returns
    the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMPORARY_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match["pid"]) if match["pid"] else None
        if is_stale(path, pid):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
