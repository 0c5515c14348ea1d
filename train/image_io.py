"""Reading and encoding the image files of a style dataset.

Files are read the way OpenCV's ``cv2.imread`` reads them (colour as 3-channel BGR, or 8-bit
grayscale decoded by the codec itself), but through ``np.fromfile`` + ``cv2.imdecode`` so that any
path works. Writing is :func:`animevid.fileio.write_bytes_atomic`'s job: an interrupted run leaves
either the old file, the new file, or a stray hidden temporary (cleaned up by
:func:`animevid.fileio.remove_stale_temporaries`), never half an image under a real name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from animevid.errors import InputError
from animevid.imageio import IMAGE_SUFFIXES


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
