"""Image files, one way for the whole project: which files are images, decoding, encoding, writing.

Arrays are RGB uint8 (H, W, 3) unless ``order="bgr"`` (OpenCV's order, which the style-dataset
code keeps because the official edge smoothing is defined on it) or ``order="gray"`` (H, W).
Files are read as bytes and decoded with ``cv2.imdecode``, not ``cv2.imread``, which fails
silently on some paths; they are written atomically (:func:`animevid.fileio.write_bytes_atomic`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .errors import InputError, OutputError, UsageError
from .fileio import list_files, write_bytes_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
JPEG_QUALITY = 95  # WebP is written lossless (OpenCV's default), PNG at OpenCV's default compression

Order = Literal["rgb", "bgr", "gray"]


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether the name says image: one of :data:`IMAGE_SUFFIXES`, in any case."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and below it, if ``recursive``), sorted by relative path.

    An image is a regular file (or a link to one) whose name has an image suffix
    (:func:`is_image_path`). Hidden names are skipped (:func:`animevid.fileio.list_files`).
    """
    return list_files(folder, IMAGE_SUFFIXES, recursive=recursive)


def decode_image(data: bytes, *, order: Order = "rgb") -> np.ndarray | None:
    """Decode an image file's bytes as ``cv2.imread`` reads the file (colour: EXIF orientation
    applied, alpha dropped; gray: as the codec decodes it); None if it is not a readable image."""
    flag = cv2.IMREAD_GRAYSCALE if order == "gray" else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag) if data else None
    if image is None or order != "rgb":
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike, *, order: Order = "rgb") -> np.ndarray:
    """Decode an image file (see :func:`decode_image`); :class:`InputError` if it cannot be read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    image = decode_image(data, order=order)
    if image is None:
        raise InputError(f"{path} is not a readable image")
    return image


def encode_image(image: np.ndarray, suffix: str, *, order: Order = "rgb", jpeg_quality: int = JPEG_QUALITY) -> bytes:
    """The bytes of an image file ending in ``suffix`` (".png", ".jpg", ".webp", ...)."""
    if suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"cannot write images as {suffix or 'files without extension'}; use one of {', '.join(IMAGE_SUFFIXES)}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if suffix.lower() in (".jpg", ".jpeg") else []
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if order == "rgb" else image
    ok, encoded = cv2.imencode(suffix, pixels, params)
    if not ok:
        raise OutputError(f"OpenCV could not encode an image of shape {image.shape} as {suffix}")
    return encoded.tobytes()


def write_image(path: str | os.PathLike, image: np.ndarray, *, order: Order = "rgb", jpeg_quality: int = JPEG_QUALITY) -> None:
    """Encode by the file's extension (:func:`encode_image`) and write atomically (never a half-written file)."""
    path = Path(path)
    write_bytes_atomic(path, encode_image(image, path.suffix, order=order, jpeg_quality=jpeg_quality))
