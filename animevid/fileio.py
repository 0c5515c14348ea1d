"""Safe file writing: nothing half-written ever appears where the user expects a good file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError


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
        fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=".part" + suffix, dir=destination.parent or ".")
    except OSError as exc:
        raise OutputError(f"cannot write to {destination.parent or '.'}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(destination: str | os.PathLike, data: bytes) -> None:
    with atomic_path(destination) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {destination}: {exc.strerror or exc}") from exc
