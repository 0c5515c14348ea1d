"""Safe file writing: nothing half-written ever appears where the user expects a good file."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

# Read once at import (still single-threaded): os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# Temporary files are named ".<destination name>.<8 random chars>.part<destination suffix>".
_TEMPORARY_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part(\.[^.]*)?$")


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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part" + suffix, dir=destination.parent)
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


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Delete the temporary files that :func:`atomic_path` leaves behind when a process is killed."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _TEMPORARY_NAME.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
