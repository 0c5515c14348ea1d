"""Safe file writing: nothing half-written ever appears where the user expects a good file.

Also where animevid keeps its own files (:func:`animevid_home`).

Every file is written to a hidden temporary beside its destination and renamed onto it when
complete (:func:`atomic_path`). A process killed outright (``kill -9``, a power cut) cannot clean
up, so the temporary names say who made them: ``.<destination name>.<pid>-<host>.<8 random
chars>.part<destination suffix>``, ``host`` being a short hash of the machine's name.
:func:`remove_stale_temporaries` deletes only names of that form, and only those whose process is
gone (same machine, no such process) or that nobody has written to for :data:`STALE_AFTER_SECONDS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import platformdirs

from .errors import InputError, OutputError

# Read once at import (still single-threaded): os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# This machine, in temporary names: a process id means something only on the machine it runs on
# (a folder may be shared between machines).
HOST_TAG = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
# A temporary whose owner cannot be checked from here (another machine) or may still run (its pid
# is taken, perhaps by another process since) is stale once nothing has written to it for this long.
STALE_AFTER_SECONDS = 24 * 3600

# tempfile.mkstemp draws its 8 random characters from [a-z0-9_].
_TEMPORARY_NAME = re.compile(r"^\..+\.(?P<pid>\d+)-(?P<host>[0-9a-f]{6})\.[a-z0-9_]{8}\.part(\.[^.]*)?$")


def animevid_home() -> Path:
    """The folder holding animevid's data: ``$ANIMEVID_HOME`` or the platform's user data folder."""
    override = os.environ.get("ANIMEVID_HOME")
    return Path(override) if override else Path(platformdirs.user_data_dir("animevid", appauthor=False))


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
    tmp = new_temporary(destination, suffix)
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


def new_temporary(destination: str | os.PathLike, suffix: str | None = None) -> Path:
    """Create an empty temporary file beside ``destination``, named as :func:`remove_stale_temporaries` expects.

    The caller removes it; if the process is killed first, a later job's cleanup does.
    """
    destination = Path(destination)
    suffix = destination.suffix if suffix is None else suffix
    owner = f"{os.getpid()}-{HOST_TAG}"  # read now: a forked child has another pid
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.{owner}.", suffix=".part" + suffix, dir=destination.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {destination.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    return Path(tmp_name)


def write_bytes_atomic(destination: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``destination`` through a temporary file beside it."""
    with atomic_path(destination) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"cannot write {destination}: {exc.strerror or exc}") from exc


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary of :func:`atomic_path` that no running process will finish."""
    match = _TEMPORARY_NAME.match(path.name)
    if match is None or not path.is_file() or path.is_symlink():
        return False
    if match["host"] == HOST_TAG and not _process_exists(int(match["pid"])):
        return True
    # The owner runs (or its pid was reused), or it cannot be checked from here: only time tells.
    return (now if now is not None else time.time()) - path.stat().st_mtime > STALE_AFTER_SECONDS


def remove_stale_temporaries(folder: str | os.PathLike, *, recursive: bool = False) -> int:
    """Delete the temporaries of :func:`atomic_path` that killed processes left in ``folder``.

    Only names of our own form are touched, and of those only the stale ones
    (:func:`is_stale_temporary`): a job still writing beside this one keeps its file.
    ``recursive`` also looks in every folder below. Returns how many files were deleted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    folders = (Path(root) for root, _, _ in os.walk(folder)) if recursive else iter([folder])
    now = time.time()
    removed = 0
    for directory in folders:
        for path in directory.iterdir():
            if is_stale_temporary(path, now):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to someone else
    except OSError:
        return True  # cannot tell (e.g. a platform without signals): assume it runs
    return True


def list_files(folder: str | os.PathLike, suffixes: tuple[str, ...], *, recursive: bool = False) -> list[Path]:
    """The regular files (or links to one) in ``folder`` (and below it, if ``recursive``) whose
    names end in one of ``suffixes`` (lower case; matched in any case), sorted by relative path.

    Hidden names (starting with ".") are skipped, folders included: they hold our own temporary
    files and other tools' caches.
    """
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in candidates:
        relative = path.relative_to(folder)
        if path.suffix.lower() in suffixes and not any(part.startswith(".") for part in relative.parts) and path.is_file():
            found.append(path)
    return sorted(found, key=lambda path: path.relative_to(folder).parts)


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``; :class:`InputError` if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str | os.PathLike, digest: Any = None) -> str:
    """Hex digest of a file's bytes, read a MiB at a time: ``digest`` (already fed a prefix, if any), else SHA-256.

    Raises OSError when the file cannot be read.
    """
    digest = digest if digest is not None else hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file's bytes, or None if it cannot be read (missing, a folder, unreadable)."""
    try:
        return hash_file(path)
    except OSError:
        return None
