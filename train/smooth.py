"""Edge-smoothed style images: the S_data(e) set of AnimeGAN (§3.2), as CartoonGAN defines it.

The discriminator learns that sharp anime edges are "real" by also seeing the style images with
their edges blurred, labelled fake. For each style image, resized to the training size:

1. Canny(100, 200) on the grayscale image, dilated with a 5x5 square: the edge neighbourhood.
2. Inside that mask each pixel, channel by channel, becomes the 5x5 Gaussian-weighted sum of the
   image padded by reflection (numpy ``'reflect'``, i.e. ``dcb|abcd|cba``), with weights the outer
   product of ``cv2.getGaussianKernel(5, 0)``; the float sum is truncated to uint8.
3. Pixels outside the mask are unchanged.

:func:`edge_smooth_reference` is that definition written pixel by pixel, as the official AnimeGAN
``edge_smooth.py`` does it. :func:`edge_smooth` computes the same thing with one separable
OpenCV filter and is equal to the reference pixel for pixel: the kernel is
``[1, 4, 6, 4, 1] / 16`` in each direction, so every weight is a multiple of 1/256 and every
product and partial sum (pixel x weight, at most 255) is exactly representable in floating point;
the reference's float64 sum is therefore exactly ``integer_sum / 256`` whatever the summation
order, and truncating it equals ``integer_sum // 256``, which is what :func:`edge_smooth` computes.

The grayscale image is the one the file decodes to (``cv2.imread(path, 0)``), like the official
script, which for PNG differs by one level from ``cvtColor`` of the colour image in many pixels;
callers holding only an array get ``cv2.cvtColor(image, COLOR_BGR2GRAY)`` unless they pass ``gray``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from animevid.errors import InputError, OutputError, UsageError
from animevid.fileio import file_sha256, read_bytes, remove_stale_temporaries, write_bytes_atomic
from animevid.imageio import JPEG_QUALITY, decode_image, encode_image, list_images
from animevid.progress import ProgressReporter

KERNEL_SIZE = 5
CANNY_LOW = 100
CANNY_HIGH = 200
STYLE_FOLDER = "style"
SMOOTH_FOLDER = "smooth"


def gaussian_weights() -> np.ndarray:
    """The 5x5 smoothing weights: outer product of ``cv2.getGaussianKernel(5, 0)`` (float64)."""
    taps = cv2.getGaussianKernel(KERNEL_SIZE, 0)
    return taps * taps.T


def _integer_taps() -> np.ndarray:
    # The exactness argument in the module docstring needs taps that are multiples of 1/16;
    # OpenCV documents fixed binomial taps for small kernels with sigma <= 0, checked here.
    scaled = cv2.getGaussianKernel(KERNEL_SIZE, 0).ravel() * 16
    if not np.array_equal(scaled, np.round(scaled)):
        raise RuntimeError(f"cv2.getGaussianKernel(5, 0) is no longer the binomial kernel: {scaled / 16}")
    return scaled.astype(np.float32)


def _prepare(image: np.ndarray, size: int | None, gray: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("edge smoothing expects a uint8 BGR image of shape (height, width, 3)")
    if gray is None:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif gray.dtype != np.uint8 or gray.shape != image.shape[:2]:
        raise ValueError("gray must be a uint8 image of the same height and width as image")
    if size is not None:
        image = cv2.resize(image, (size, size))
        gray = cv2.resize(gray, (size, size))
    return image, gray


def edge_mask(gray: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels to smooth: Canny(100, 200) edges dilated by a 5x5 square."""
    edges = cv2.Canny(gray, CANNY_LOW, CANNY_HIGH)
    return cv2.dilate(edges, np.ones((KERNEL_SIZE, KERNEL_SIZE), np.uint8)) != 0


def edge_smooth(image: np.ndarray, size: int | None = 256, *, gray: np.ndarray | None = None) -> np.ndarray:
    """Edge-smoothed copy of a uint8 BGR ``image``, resized to ``size`` x ``size`` first (None: as is).

    ``gray`` is the grayscale the edges are found on (resized along with the image); by default
    ``cvtColor(image, BGR2GRAY)``. Equal, pixel for pixel, to :func:`edge_smooth_reference`.
    """
    image, gray = _prepare(image, size, gray)
    mask = edge_mask(gray)
    taps = _integer_taps()
    weighted_sums = cv2.sepFilter2D(image, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REFLECT_101)
    # weighted_sums holds integers up to 255 * 256 (exact in float32); / 256 is exact and astype truncates.
    blurred = (weighted_sums * np.float32(1 / 256)).astype(np.uint8)
    smoothed = image.copy()
    smoothed[mask] = blurred[mask]
    return smoothed


def edge_smooth_reference(image: np.ndarray, size: int | None = 256, *, gray: np.ndarray | None = None) -> np.ndarray:
    """The per-pixel definition (slow; for tests and benchmarks): same arguments as :func:`edge_smooth`.

    For every pixel in :func:`edge_mask` and every channel: the sum of the 5x5 window of the
    reflect-padded image times :func:`gaussian_weights`, in float64, stored into uint8 (truncation).
    """
    image, gray = _prepare(image, size, gray)
    mask = edge_mask(gray)
    weights = gaussian_weights()
    half = KERNEL_SIZE // 2
    padded = np.pad(image, ((half, half), (half, half), (0, 0)), mode="reflect")
    smoothed = image.copy()
    for y, x in zip(*np.nonzero(mask)):
        for channel in range(image.shape[2]):
            window = padded[y : y + KERNEL_SIZE, x : x + KERNEL_SIZE, channel]
            smoothed[y, x, channel] = np.sum(np.multiply(window, weights))
    return smoothed


def smooth_image_bytes(data: bytes, suffix: str, size: int = 256, jpeg_quality: int = JPEG_QUALITY) -> bytes | None:
    """Smooth an encoded style image file and encode the result the same way (None: undecodable).

    The image is decoded as ``cv2.imread`` would (colour, and grayscale by the codec), so the
    result is what the official script produces from the same file.
    """
    image = decode_image(data, order="bgr")
    gray = decode_image(data, order="gray")
    if image is None or gray is None:
        return None
    return encode_image(edge_smooth(image, size, gray=gray), suffix, order="bgr", jpeg_quality=jpeg_quality)


@dataclass(frozen=True)
class SmoothResult:
    """What :func:`smooth_folder` did."""

    style_dir: Path
    smooth_dir: Path
    written: int
    skipped: int
    elapsed_s: float


def smooth_folder(
    dataset_dir: str | Path,
    *,
    size: int = 256,
    overwrite: bool = False,
    jpeg_quality: int = JPEG_QUALITY,
    show_progress: bool = False,
) -> SmoothResult:
    """Build ``dataset_dir/smooth/NAME`` from every image ``dataset_dir/style/NAME``.

    Each output is the edge-smoothed image at ``size`` x ``size``, in the format of its file
    extension (JPEG at ``jpeg_quality``). Outputs that already exist are kept (an interrupted run
    resumes; writes are atomic, so an existing file is complete) unless ``overwrite``. Raises
    :class:`InputError` when the folder, its ``style`` folder or any image is missing or unreadable,
    :class:`OutputError` when ``smooth`` cannot be written.
    """
    start = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    style_dir = dataset_dir / STYLE_FOLDER
    smooth_dir = dataset_dir / SMOOTH_FOLDER
    if size < 8:
        raise UsageError(f"size must be at least 8 pixels, got {size}")
    if not dataset_dir.exists():
        raise InputError(f"{dataset_dir}: no such folder")
    if not dataset_dir.is_dir():
        raise InputError(f"{dataset_dir}: is not a folder (expected a dataset folder holding style/)")
    if not style_dir.is_dir():
        raise InputError(f"{style_dir}: no such folder (the style images go in DIR/style, the result in DIR/smooth)")
    try:
        sources = list_images(style_dir)
    except OSError as exc:
        raise InputError(f"{style_dir}: cannot be listed ({exc.strerror or exc})") from None
    if not sources:
        raise InputError(f"{style_dir}: holds no images (.png, .jpg, ...)")
    try:
        smooth_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{smooth_dir}: cannot be created ({exc.strerror or exc})") from None
    if not smooth_dir.is_dir():
        raise OutputError(f"{smooth_dir}: exists and is not a folder")
    remove_stale_temporaries(smooth_dir)

    written = skipped = 0
    with ProgressReporter("smoothing", total=len(sources), unit="images", enabled=show_progress) as progress:
        for source in sources:
            target = smooth_dir / source.name
            if not overwrite and file_sha256(target) is not None:
                skipped += 1
            else:
                smoothed = smooth_image_bytes(read_bytes(source), source.suffix, size, jpeg_quality)
                if smoothed is None:
                    raise InputError(f"{source}: cannot be decoded as an image")
                write_bytes_atomic(target, smoothed)
                written += 1
            progress.advance()
    return SmoothResult(style_dir, smooth_dir, written, skipped, time.perf_counter() - start)
