"""``animevid.stylize``: one call for a photo, a folder of photos or a video."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, OutputError, UsageError
from .fileio import check_destination
from .imageio import IMAGE_SUFFIXES, is_image_path, read_image, write_image
from .progress import ProgressReporter
from .stylizer import InferenceOptions, Stylizer, resolve_device, resolve_dtype, resolve_engine, should_compile

if TYPE_CHECKING:
    from .video import VideoOptions


@dataclass
class StylizeResult:
    """What a job did, for the summary line."""

    kind: str  # "image", "folder" or "video"
    count: int  # images or frames written
    seconds: float
    device: str
    dtype: str
    batch_size: int = 1
    engine: str = "torch"

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        unit = "frames" if self.kind == "video" else "images"
        return (
            f"{self.count} {unit} in {self.seconds:.1f} s ({self.rate:.2f} {unit}/s) "
            f"on {self.device}, {self.dtype}, batch size {self.batch_size}, {self.engine} engine"
        )


def make_stylizer(
    style: str | None, weights: str | os.PathLike | None, options: InferenceOptions, mirror: str | None = None
) -> Stylizer:
    """Build a :class:`Stylizer` from exactly one of a style name or a weights file."""
    from .styles import weights_source

    return Stylizer.from_weights(weights_source(style, weights, mirror=mirror), options)


def _folder_jobs(source: Path, destination: Path) -> list[tuple[Path, Path]]:
    jobs = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file() or not is_image_path(path):
            continue
        if destination == path or destination in path.parents:
            continue  # outputs written inside the input folder on an earlier run
        jobs.append((path, destination / relative))
    return jobs


def _check_image_job(source: Path, destination: Path, overwrite: bool) -> None:
    if not is_image_path(destination):
        raise UsageError(f"output {destination} must be an image file ({', '.join(IMAGE_SUFFIXES)})")
    check_destination(destination, overwrite, source)


def _plan_folder_jobs(source: Path, destination: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    if destination.exists() and not destination.is_dir():
        raise OutputError(f"output {destination} exists and is not a folder")
    if destination.resolve() == source.resolve():
        raise OutputError("the output folder is the input folder; choose another destination")
    jobs = _folder_jobs(source, destination)
    if not jobs:
        raise InputError(f"no images found in {source} ({', '.join(IMAGE_SUFFIXES)})")
    existing = [dst for _, dst in jobs if dst.exists()]
    if existing and not overwrite:
        raise OutputError(f"{len(existing)} output image(s) already exist, e.g. {existing[0]} (use --overwrite)")
    return jobs


def stylize_image(stylizer: Stylizer, source: Path, destination: Path, *, overwrite: bool = False) -> StylizeResult:
    """Stylize one photo into ``destination`` (format from its extension)."""
    _check_image_job(source, destination, overwrite)
    start = time.perf_counter()
    write_image(destination, stylizer.image(read_image(source)))
    return StylizeResult("image", 1, time.perf_counter() - start, str(stylizer.device), stylizer.dtype_name, engine=stylizer.engine)


def stylize_folder(
    stylizer: Stylizer, source: Path, destination: Path, *, overwrite: bool = False, progress: bool = True
) -> StylizeResult:
    """Stylize every image under ``source`` into the same relative paths under ``destination``.

    Existing outputs are refused up front (before any work) unless ``overwrite``. Unreadable
    images are skipped; the job then ends with an error saying how many (the others are written).
    """
    jobs = _plan_folder_jobs(source, destination, overwrite)
    start = time.perf_counter()
    failures: list[str] = []
    with ProgressReporter("stylize", total=len(jobs), unit="images", enabled=progress) as bar:
        for src, dst in jobs:
            try:
                image = read_image(src)
            except InputError as exc:
                failures.append(str(exc))
                bar.advance()
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_image(dst, stylizer.image(image))
            bar.advance()
    if failures:
        raise InputError(f"{len(failures)} of {len(jobs)} images could not be read (first: {failures[0]}); the others were written")
    return StylizeResult(
        "folder", len(jobs), time.perf_counter() - start, str(stylizer.device), stylizer.dtype_name, engine=stylizer.engine
    )


def stylize(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    style: str | None = None,
    weights: str | os.PathLike | None = None,
    options: InferenceOptions | None = None,
    overwrite: bool = False,
    progress: bool = True,
    mirror: str | None = None,
    video_options: VideoOptions | None = None,
) -> StylizeResult:
    """Stylize a photo, a folder of photos, or a video, choosing by what ``source`` is.

    Exactly one of ``style`` (an installed or fetchable style name) and ``weights`` (a weights
    file in any supported format) selects the generator. The destination is never overwritten
    unless ``overwrite``, and nothing half-written is ever left at it. ``video_options`` (codec,
    quality, segment, batch size, ``keep_partial``) apply to videos only.
    """
    source, destination = Path(source), Path(destination)
    if not source.exists():
        raise InputError(f"input {source} does not exist")
    options = options or InferenceOptions()
    # Check the destination before building the stylizer: loading (or fetching) weights is slow.
    if source.is_dir():
        _plan_folder_jobs(source, destination, overwrite)
        stylizer = make_stylizer(style, weights, options, mirror)
        return stylize_folder(stylizer, source, destination, overwrite=overwrite, progress=progress)
    if is_image_path(source):
        _check_image_job(source, destination, overwrite)
        return stylize_image(make_stylizer(style, weights, options, mirror), source, destination, overwrite=overwrite)
    from .video import VideoOptions, check_video_job, stylize_video

    video_options = video_options or VideoOptions()
    frames = check_video_job(source, destination, video_options, overwrite=overwrite)
    device = resolve_device(options.device)
    if options.compile is None and resolve_engine(options.engine, device, None, resolve_dtype(options.dtype, device)) == "torch":
        options = dataclasses.replace(options, compile=should_compile(device, frames))
    stylizer = make_stylizer(style, weights, options, mirror)
    return stylize_video(stylizer, source, destination, video_options, overwrite=overwrite, progress=progress)
