"""Where the square training images are cut from a frame.

A frame is first scaled (keeping its display aspect ratio) to a *working image* whose short side is
``size`` (for ``center`` and ``random``) or ``grid * size`` (for ``grid``); squares of exactly
``size`` pixels are then cut from it, so every crop mode sees the picture at one known scale and no
image is resampled twice.

* ``center``: the middle square of the working image.
* ``random``: one square at a random position, drawn from a generator seeded by ``(seed, frame)``
  so that a frame always gives the same crop, whatever else the run does.
* ``grid``: non-overlapping squares, ``grid`` across the short side and as many as fit along the
  long side, centred; numbered row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CROP_MODES = ("center", "grid", "random")


@dataclass(frozen=True)
class CropBox:
    """A ``size`` x ``size`` square at (``x``, ``y``) of the working image; ``tile`` numbers it in its frame."""

    tile: int
    x: int
    y: int
    size: int


def working_size(display_width: int, display_height: int, short_side: int) -> tuple[int, int]:
    """(width, height) of a frame scaled so that its short side is ``short_side``."""
    if display_width >= display_height:
        return max(short_side, round(display_width * short_side / display_height)), short_side
    return short_side, max(short_side, round(display_height * short_side / display_width))


def working_short_side(crop: str, size: int, grid: int) -> int:
    return size * grid if crop == "grid" else size


def crop_boxes(crop: str, width: int, height: int, size: int, *, seed: int = 0, frame_index: int = 0) -> list[CropBox]:
    """The squares to cut from a ``width`` x ``height`` working image, for crop mode ``crop``."""
    if crop == "center":
        return [CropBox(0, (width - size) // 2, (height - size) // 2, size)]
    if crop == "random":
        rng = np.random.default_rng([seed, frame_index])
        return [CropBox(0, int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1)), size)]
    if crop == "grid":
        columns, rows = width // size, height // size
        left, top = (width - columns * size) // 2, (height - rows * size) // 2
        return [
            CropBox(row * columns + column, left + column * size, top + row * size, size)
            for row in range(rows)
            for column in range(columns)
        ]
    raise ValueError(f"unknown crop mode {crop!r}; expected one of {CROP_MODES}")


def cut(image: np.ndarray, box: CropBox) -> np.ndarray:
    """The pixels of ``box`` (a contiguous copy)."""
    return np.ascontiguousarray(image[box.y : box.y + box.size, box.x : box.x + box.size])
