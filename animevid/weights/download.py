"""Downloading one file over HTTP(S): resumable, locked, never a half-written file under its name.

The bytes go to ``<destination>.part`` first; an interrupted download (Ctrl-C, a lost connection,
a killed process) leaves that file, and the next call for the same destination continues it with
an HTTP ``Range`` request (servers that ignore ranges get the file again from the start). Only
complete files are renamed onto ``destination``. While a process downloads, it holds an exclusive
lock on the ``.part`` file, so a second process downloading the same file fails at once instead of
interleaving its bytes. Resuming assumes the URL always serves the same bytes (a URL pinned to a
commit does); callers verify what they got either way.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import DownloadError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent downloads of one file are not detected
    fcntl = None

PARTIAL_SUFFIX = ".part"
# Downloads nobody resumed or installed for this long are deleted by remove_abandoned_downloads.
ABANDONED_AFTER_SECONDS = 7 * 24 * 3600
_CHUNK = 1 << 16
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def partial_path(destination: Path) -> Path:
    return destination.with_name(destination.name + PARTIAL_SUFFIX)


@contextlib.contextmanager
def _locked_partial(partial: Path) -> Iterator[BinaryIO]:
    """The ``.part`` file opened for appending, exclusively locked for this process."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    handle = partial.open("ab")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DownloadError(
                    f"another process is downloading {partial.name.removesuffix(PARTIAL_SUFFIX)} "
                    f"(into {partial}); wait for it to finish"
                ) from None
        yield handle
    finally:
        handle.close()  # releases the lock


def _http_failure(url: str, exc: BaseException) -> DownloadError:
    if isinstance(exc, urllib.error.HTTPError):
        return DownloadError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}")
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
    return DownloadError(f"downloading {url} failed: {reason}")


def _announced_size(response, offset: int, url: str) -> int | None:
    """The whole file's size announced by the server, checking that a 206 resumes at ``offset``."""
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            raise DownloadError(f"downloading {url} failed: the server resumed at the wrong byte")
        return int(match[3]) if match[3] != "*" else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    expected_size: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``destination`` (resuming a ``.part`` left by an earlier attempt).

    ``on_bytes`` is called with the number of bytes of each chunk received, and once at the start
    with the bytes already on disk from an earlier attempt. Raises :class:`DownloadError` on HTTP
    and network errors, and when the size is not ``expected_size`` (or the size the server
    announced): a file of the wrong size is deleted, an interrupted one kept for the next attempt.
    """
    destination = Path(destination)
    partial = partial_path(destination)
    try:
        with _locked_partial(partial) as out:
            received = _receive(url, out, expected_size, on_bytes, timeout)
            if received.announced is not None and received.size < received.announced:  # kept for resuming
                raise DownloadError(
                    f"downloading {url} failed: the connection closed after {received.size} of "
                    f"{received.announced} bytes; run it again to resume"
                )
            wanted = expected_size if expected_size is not None else received.announced
            if wanted is not None and received.size != wanted:
                out.truncate(0)
                raise DownloadError(f"{destination.name} from {url}: got {received.size} bytes, expected {wanted}")
            os.replace(partial, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if partial.stat().st_size == 0:
                partial.unlink()  # nothing worth resuming
    return destination


@dataclass(frozen=True)
class _Received:
    size: int  # bytes in the .part file now
    announced: int | None  # the whole file's size according to the server


def _receive(
    url: str, out: BinaryIO, expected_size: int | None, on_bytes: Callable[[int], None] | None, timeout: float
) -> _Received:
    """Append the rest of ``url`` to ``out`` (after the bytes it holds, when the server resumes)."""
    offset = out.seek(0, os.SEEK_END)
    if expected_size is not None and offset > expected_size:
        out.truncate(0)
        offset = out.seek(0)
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status != 206:  # the server ignores ranges: the whole file again
                out.truncate(0)
                offset = out.seek(0)
            announced = _announced_size(response, offset, url)
            if on_bytes is not None and offset:
                on_bytes(offset)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            out.flush()
            return _Received(out.tell(), announced)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial is as long as the file or longer: not resumable
            out.truncate(0)
            raise DownloadError(f"downloading {url} failed: the partial download did not fit the file; try again") from None
        raise _http_failure(url, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _http_failure(url, exc) from None
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the connection closed early
        raise DownloadError(f"downloading {url} failed: {type(exc).__name__} after {out.tell()} bytes; run it again to resume") from None


def remove_abandoned_downloads(folder: str | os.PathLike, *, now: float | None = None) -> list[Path]:
    """Delete the files under a downloads ``folder`` that nothing has touched for a week, and empty folders.

    Partial downloads wait there to be resumed, and complete ones to be verified and installed,
    by a later call; a week unused, they are abandoned.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for path in sorted(folder.rglob("*")):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and now - path.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                path.unlink()
                removed.append(path)
    for path in sorted(folder.rglob("*"), reverse=True):  # deepest first
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds when empty
    return removed
