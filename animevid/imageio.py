"""Reading and writing photos (RGB uint8 arrays), safely."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, OutputError, UsageError
from .fileio import write_bytes_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to an (H, W, 3) RGB uint8 array (alpha dropped, EXIF orientation applied)."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails silently on odd paths
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_image(rgb: np.ndarray, suffix: str) -> bytes:
    if suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"cannot write images as {suffix or 'files without extension'}; use one of {', '.join(IMAGE_SUFFIXES)}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"OpenCV could not encode a {suffix} image")
    return encoded.tobytes()


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Encode by the file's extension and write atomically (never a half-written file)."""
    path = Path(path)
    write_bytes_atomic(path, encode_image(rgb, path.suffix))
