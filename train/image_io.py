"""Reading, encoding and atomically writing the image files of a style dataset.

Files are read the way OpenCV's ``cv2.imread`` reads them (colour as 3-channel BGR, or 8-bit
grayscale decoded by the codec itself), but through ``np.fromfile`` + ``cv2.imdecode`` so that any
path works. Writes go to a hidden temporary file in the destination folder, then ``os.replace``:
an interrupted run leaves either the old file, the new file, or a stray ``.*.tmp`` (cleaned up by
:func:`remove_temporary_files`), never half an image under a real name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from animevid.errors import InputError, OutputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_TEMP_SUFFIX = ".tmp"


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def encode_image(bgr: np.ndarray, suffix: str, jpeg_quality: int = 95) -> bytes:
    """Encode a BGR (or grayscale) uint8 image for a file ending in ``suffix`` (".png", ".jpg", ...)."""
    import cv2

    params: list[int] = []
    if suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, buffer = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {bgr.shape} as {suffix}")
    return buffer.tobytes()


def decode_image(data: bytes, *, grayscale: bool = False) -> np.ndarray | None:
    """Decode file bytes like ``cv2.imread(path)`` (BGR) or ``cv2.imread(path, 0)``; None if undecodable."""
    import cv2

    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None if it cannot be read (missing, a folder, unreadable)."""
    try:
        return sha256_hex(path.read_bytes())
    except OSError:
        return None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    try:
        handle = tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, delete=False
        )
    except OSError as exc:
        raise OutputError(f"{path.parent}: cannot write there ({exc.strerror or exc})") from None
    temporary = Path(handle.name)
    try:
        with handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_temporary_files(folder: Path) -> None:
    """Delete the ``.NAME.*.tmp`` files that :func:`write_bytes_atomic` leaves if killed mid-write."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name.startswith(".") and path.name.endswith(_TEMP_SUFFIX) and path.is_file():
            path.unlink(missing_ok=True)
