"""Contact sheets: a few frames of a video (or a photo) in rows, the source and each style in columns.

A sheet is made at a bounded resolution (each cell at most ``max_side`` pixels on a side, the
generator run at that size), so that a user can compare styles in seconds before a long job.

Layout: a header band names the columns (``source``, then the styles in the order given); for
videos a band on the left gives each row's frame time. Cells touch, with no gaps, so that every
cell is exactly the source frame (resized) or its stylized version.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, StyleNotFoundError, UsageError
from .fileio import check_destination, remove_stale_temporaries
from .imageio import is_image_path, read_image, write_image
from .progress import JobHooks, ProgressReporter
from .options import InferenceOptions
from .engine.stylizer import Stylizer

SOURCE_LABEL = "source"
_BAND_COLOUR = (24, 24, 24)
_TEXT_COLOUR = (240, 240, 240)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class PreviewOptions:
    """What a contact sheet shows. Validated on creation (:class:`UsageError`)."""

    styles: tuple[str, ...] = ()  # columns after the source; empty: every installed style
    frames: int = 3  # rows for a video, at the middles of equal parts of it (a photo is one row)
    max_side: int = 512  # each cell at most this many pixels on a side (sources are never enlarged)
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    start: float | None = None  # a video's rows spread over [start, end) seconds instead of all of it
    end: float | None = None

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise UsageError(f"--frames must be at least 1, got {self.frames}")
        if self.max_side < 16:
            raise UsageError(f"--max-side must be at least 16 for a preview, got {self.max_side}")
        if len(set(self.styles)) != len(self.styles):
            raise UsageError("a style is named twice")
        if self.start is not None and not (math.isfinite(self.start) and self.start >= 0):
            raise UsageError(f"--start must be a number of seconds >= 0, got {self.start}")
        if self.end is not None and not (math.isfinite(self.end) and self.end > (self.start or 0)):
            raise UsageError(f"--end must be after --start (seconds), got {self.end}")


def default_preview_path(source: str | os.PathLike) -> Path:
    """``clip.mp4`` → ``clip.preview.png`` beside it."""
    source = Path(source)
    return source.with_name(source.name.rsplit(".", 1)[0] + ".preview.png")


def sheet_styles(options: PreviewOptions) -> list[str]:
    """The styles a sheet shows, every one checked to be installed or fetchable (before any work)."""
    from .weights.styles import check_available, installed_styles

    names = list(options.styles) or installed_styles()
    if not names:
        raise StyleNotFoundError(
            "no styles are installed: name some with --style (official ones are fetched), "
            "or install one ('animevid styles' lists them)"
        )
    check_available(names)
    return names


def source_rows(
    source: str | os.PathLike, frames: int, start: float | None = None, end: float | None = None
) -> list[tuple[float | None, np.ndarray]]:
    """``(time in seconds or None for a photo, RGB frame)`` for each row of the sheet.

    A video's rows are the middles of ``frames`` equal parts of ``[start, end)`` (default: all of it).
    """
    source = Path(source)
    if is_image_path(source):
        if start is not None or end is not None:
            raise UsageError("--start and --end apply to videos, not to a photo")
        return [(None, read_image(source))]
    from .video.reader import probe_video, read_frames_at

    info = probe_video(source)
    first = start or 0.0
    if info.duration is not None and first >= info.duration:
        raise UsageError(f"--start {first:g} s is not before the end of the video ({info.duration:.2f} s)")
    last = end if info.duration is None else min(end or info.duration, info.duration)
    if last is None or last <= first:
        times = [first]  # nothing tells where the rest of the video is
    else:
        times = [first + (index + 0.5) * (last - first) / frames for index in range(frames)]
    return list(read_frames_at(source, times))


def fit_within(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """``rgb`` scaled down (area averaging) so that its longer side is at most ``max_side``."""
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def contact_sheet(
    source: str | os.PathLike, options: PreviewOptions | None = None, *, mirror: str | None = None, progress: bool = False,
    hooks: JobHooks | None = None,
) -> np.ndarray:  # fmt: skip
    """The contact sheet of ``source`` as an (H, W, 3) RGB uint8 array.

    Styles that are not installed but can be fetched are fetched (with a progress bar when
    ``progress``); a style that can be had neither way is refused before any work. ``hooks``:
    progress in cells, and a cancel asked between styles.
    """
    from .weights.styles import resolve_style
    from .weights.formats import load_generator

    options = options or PreviewOptions()
    names = sheet_styles(options)
    rows = [(time, fit_within(rgb, options.max_side)) for time, rgb in source_rows(source, options.frames, options.start, options.end)]
    cells = [cell for _, cell in rows]
    columns = [cells]
    weights = [resolve_style(name, mirror=mirror, progress=progress) for name in names]  # fetch before the long part
    hooks = hooks or JobHooks()
    with ProgressReporter("preview", total=len(names) * len(cells), unit="cells", enabled=progress, hooks=hooks) as bar:
        for path in weights:
            hooks.check_cancelled("preview cancelled")
            stylizer = Stylizer(load_generator(path), options.inference)
            columns.append([stylizer.image(cell) for cell in cells])
            bar.advance(len(cells))
    return compose_sheet(columns, [SOURCE_LABEL, *names], [time for time, _ in rows])


def compose_sheet(columns: Sequence[Sequence[np.ndarray]], labels: Sequence[str], times: Sequence[float | None]) -> np.ndarray:
    """Lay out ``columns`` of equally sized cells under a header of ``labels``, with row times on the left."""
    cell_height, cell_width = columns[0][0].shape[:2]
    scale, thickness = _font_for(cell_height, cell_width)
    (_, text_height), baseline = cv2.getTextSize("Ag", _FONT, scale, thickness)
    padding = max(3, text_height // 2)
    band_height = text_height + baseline + 2 * padding
    time_labels = [_format_time(time) for time in times] if any(time is not None for time in times) else []
    text_widths = [cv2.getTextSize(text, _FONT, scale, thickness)[0][0] for text in time_labels]
    band_width = max(text_widths) + 2 * padding if time_labels else 0
    sheet = np.empty((band_height + len(times) * cell_height, band_width + len(columns) * cell_width, 3), np.uint8)
    sheet[:] = _BAND_COLOUR
    for column, (cells, label) in enumerate(zip(columns, labels)):
        left = band_width + column * cell_width
        _put_text(sheet, label, (left, 0, cell_width, band_height), scale, thickness)
        for row, cell in enumerate(cells):
            top = band_height + row * cell_height
            sheet[top : top + cell_height, left : left + cell_width] = cell
    for row, text in enumerate(time_labels):
        _put_text(sheet, text, (0, band_height + row * cell_height, band_width, cell_height), scale, thickness)
    return sheet


def _font_for(cell_height: int, cell_width: int) -> tuple[float, int]:
    """Hershey font scale and stroke for labels that suit the cells (readable, not dominating)."""
    scale = min(1.0, max(0.4, min(cell_height, cell_width) / 300))
    return scale, 1 if scale < 0.7 else 2


def _put_text(sheet: np.ndarray, text: str, box: tuple[int, int, int, int], scale: float, thickness: int) -> None:
    """Centre ``text`` in ``box`` (left, top, width, height), shrunk or cut to fit its width."""
    left, top, width, height = box
    (text_width, text_height), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    if text_width > width - 4:
        scale *= max(0.3, (width - 4) / text_width)
        while len(text) > 1 and cv2.getTextSize(text, _FONT, scale, thickness)[0][0] > width - 4:
            text = text[:-2] + "~"  # cut, marking the cut
        (text_width, text_height), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    origin = (left + max(0, (width - text_width) // 2), top + (height + text_height) // 2)
    band = sheet[top : top + height, left : left + width]  # drawing is clipped to the band
    cv2.putText(band, text, (origin[0] - left, origin[1] - top), _FONT, scale, _TEXT_COLOUR, thickness, cv2.LINE_AA)


def _format_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def write_preview(
    source: str | os.PathLike,
    destination: str | os.PathLike | None = None,
    options: PreviewOptions | None = None,
    *,
    overwrite: bool = False,
    mirror: str | None = None,
    progress: bool = True,
) -> Path:
    """Make the contact sheet of ``source`` and write it to ``destination`` (an image file), atomically.

    ``destination`` defaults to :func:`default_preview_path`. An existing file is refused before
    any work unless ``overwrite``.
    """
    source = Path(source)
    destination = Path(destination) if destination is not None else default_preview_path(source)
    if not source.exists():
        raise InputError(f"input {source} does not exist")
    if not is_image_path(destination):
        raise UsageError(f"output {destination} must be an image file (.png, .jpg, ...)")
    check_destination(destination, overwrite, source)
    remove_stale_temporaries(destination.parent)
    write_image(destination, contact_sheet(source, options, mirror=mirror, progress=progress))
    return destination
