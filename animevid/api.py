"""``animevid.stylize``: one call for a photo, a folder of photos or a video."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, Interrupted, OutputError, UsageError
from .fileio import check_destination, remove_stale_temporaries
from .imageio import IMAGE_SUFFIXES, is_image_path, list_images, read_image, write_image
from .options import InferenceOptions
from .progress import ProgressReporter
from .result import StylizeResult
from .stylizer import Stylizer, resolve_device, resolve_dtype, resolve_engine, should_compile

if TYPE_CHECKING:
    from .options import ParallelOptions, VideoOptions


def make_stylizer(
    style: str | None,
    weights: str | os.PathLike | None,
    options: InferenceOptions,
    mirror: str | None = None,
    progress: bool = False,
) -> Stylizer:
    """Build a :class:`Stylizer` from exactly one of a style name or a weights file."""
    if (style is None) == (weights is None):
        raise UsageError("give exactly one of --style NAME or --weights FILE")
    if weights is not None:
        return Stylizer.from_weights(weights, options)
    return Stylizer.from_style(style, options, mirror=mirror, progress=progress)


def _folder_jobs(source: Path, destination: Path) -> list[tuple[Path, Path]]:
    jobs = []
    for path in list_images(source, recursive=True):
        if destination == path or destination in path.parents:
            continue  # outputs written inside the input folder on an earlier run
        jobs.append((path, destination / path.relative_to(source)))
    return jobs


def _check_image_job(source: Path, destination: Path, overwrite: bool) -> None:
    if not is_image_path(destination):
        raise UsageError(f"output {destination} must be an image file ({', '.join(IMAGE_SUFFIXES)})")
    check_destination(destination, overwrite, source)


def _check_existing_policy(overwrite: bool, skip_existing: bool) -> None:
    if overwrite and skip_existing:
        raise UsageError("--skip-existing and --overwrite contradict each other: keep existing outputs, or replace them")


def _plan_folder_jobs(source: Path, destination: Path, overwrite: bool, skip_existing: bool) -> list[tuple[Path, Path]]:
    """Every (image, output) pair of the folder job; outputs that exist are refused unless a flag says what to do."""
    _check_existing_policy(overwrite, skip_existing)
    if destination.exists() and not destination.is_dir():
        raise OutputError(f"output {destination} exists and is not a folder")
    if destination.resolve() == source.resolve():
        raise OutputError("the output folder is the input folder; choose another destination")
    jobs = _folder_jobs(source, destination)
    if not jobs:
        raise InputError(f"no images found in {source} ({', '.join(IMAGE_SUFFIXES)})")
    existing = [dst for _, dst in jobs if dst.exists()]
    folders = [dst for dst in existing if dst.is_dir()]
    if folders:
        raise OutputError(f"output {folders[0]} is a directory")
    if existing and not overwrite and not skip_existing:
        raise OutputError(
            f"{len(existing)} output image(s) already exist, e.g. {existing[0]} "
            "(use --skip-existing to do the rest, or --overwrite to redo them all)"
        )
    return jobs


def stylize_image(stylizer: Stylizer, source: Path, destination: Path, *, overwrite: bool = False) -> StylizeResult:
    """Stylize one photo into ``destination`` (format from its extension)."""
    _check_image_job(source, destination, overwrite)
    start = time.perf_counter()
    image = read_image(source)
    write_image(destination, stylizer.image(image))
    engine = stylizer.engine_for(*image.shape[:2])
    return StylizeResult("image", 1, time.perf_counter() - start, str(stylizer.device), stylizer.dtype_name, engine=engine)


def stylize_folder(
    stylizer: Stylizer,
    source: Path,
    destination: Path,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    progress: bool = True,
) -> StylizeResult:
    """Stylize every image under ``source`` (:func:`animevid.imageio.list_images`) into the same
    relative paths under ``destination``.

    Existing outputs are refused up front (before any work) unless ``overwrite`` (redo them) or
    ``skip_existing`` (keep them and do the rest: every output is written atomically, so one
    under its final name is complete). Temporaries that a killed run left in ``destination``
    are removed first. Unreadable images are skipped; the job then ends with an error saying how
    many (the others are written). Ctrl-C stops between two images with :class:`Interrupted`.
    """
    jobs = _plan_folder_jobs(source, destination, overwrite, skip_existing)
    try:
        remove_stale_temporaries(destination, recursive=True)
    except OSError as exc:
        raise OutputError(f"cannot clean up {destination}: {exc.strerror or exc}") from None
    todo = [(src, dst) for src, dst in jobs if not (skip_existing and dst.exists())]
    start = time.perf_counter()
    failures: list[str] = []
    written = 0
    try:
        with ProgressReporter("stylize", total=len(todo), unit="images", enabled=progress) as bar:
            for src, dst in todo:
                try:
                    image = read_image(src)
                except InputError as exc:
                    failures.append(str(exc))
                    bar.advance()
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                write_image(dst, stylizer.image(image))
                written += 1
                bar.advance()
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after {written} of {len(todo)} images; rerun with --skip-existing to do the rest"
        ) from None
    if failures:
        raise InputError(f"{len(failures)} of {len(todo)} images could not be read (first: {failures[0]}); the others were written")
    return StylizeResult(
        "folder", written, time.perf_counter() - start, str(stylizer.device), stylizer.dtype_name,
        skipped=len(jobs) - len(todo), engine=stylizer.engine,
    )  # fmt: skip


def stylize(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    style: str | None = None,
    weights: str | os.PathLike | None = None,
    options: InferenceOptions | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    progress: bool = True,
    mirror: str | None = None,
    video_options: VideoOptions | None = None,
    parallel: ParallelOptions | None = None,
) -> StylizeResult:
    """Stylize a photo, a folder of photos, or a video, choosing by what ``source`` is.

    Exactly one of ``style`` (an installed or fetchable style name) and ``weights`` (a weights
    file in any supported format) selects the generator. The destination is never overwritten
    unless ``overwrite``, and nothing half-written is ever left at it. ``skip_existing`` (folders
    only) keeps the outputs a previous, interrupted run finished and does the rest.
    ``video_options`` (codec, quality, segment, batch size, ``keep_partial``) apply to videos only.
    ``parallel`` (videos only): several worker processes, devices, retries; an interrupted job
    continues when rerun (:func:`animevid.parallel.stylize_video_parallel`).
    """
    source, destination = Path(source), Path(destination)
    _check_existing_policy(overwrite, skip_existing)
    if not source.exists():
        raise InputError(f"input {source} does not exist")
    options = options or InferenceOptions()
    # Check the destination before building the stylizer: loading (or fetching) weights is slow.
    if source.is_dir():
        _plan_folder_jobs(source, destination, overwrite, skip_existing)
        stylizer = make_stylizer(style, weights, options, mirror, progress)
        return stylize_folder(
            stylizer, source, destination, overwrite=overwrite, skip_existing=skip_existing, progress=progress
        )
    if skip_existing:
        raise UsageError("--skip-existing applies to folders of photos, not to a single photo or video")
    if is_image_path(source):
        _check_image_job(source, destination, overwrite)
        remove_stale_temporaries(destination.parent)
        return stylize_image(make_stylizer(style, weights, options, mirror, progress), source, destination, overwrite=overwrite)
    from .options import VideoOptions
    from .video import check_video_job, stylize_video

    video_options = video_options or VideoOptions()
    frames = check_video_job(source, destination, video_options, overwrite=overwrite)
    if parallel is not None:
        return _stylize_video_parallel(source, destination, style, weights, options, video_options, parallel, overwrite, progress, mirror)
    remove_stale_temporaries(destination.parent)  # e.g. half a video from a killed job
    device = resolve_device(options.device)
    if options.compile is None and resolve_engine(options.engine, device, None, resolve_dtype(options.dtype, device)) == "torch":
        options = dataclasses.replace(options, compile=should_compile(device, frames))
    stylizer = make_stylizer(style, weights, options, mirror, progress)
    run = stylize_video
    if video_options.encoders > 1:
        from .chunked import stylize_video_chunked as run  # the same call, with several encoders
    return run(stylizer, source, destination, video_options, overwrite=overwrite, progress=progress)


def _stylize_video_parallel(
    source: Path, destination: Path, style: str | None, weights: str | os.PathLike | None, options: InferenceOptions,
    video_options: VideoOptions, parallel: ParallelOptions, overwrite: bool, progress: bool, mirror: str | None,
) -> StylizeResult:  # fmt: skip
    from .parallel import stylize_video_parallel

    if (style is None) == (weights is None):
        raise UsageError("give exactly one of --style NAME or --weights FILE")
    if video_options.keep_partial:
        raise UsageError("--keep-partial applies to one process; with --devices/--workers an interrupted job keeps its finished segments")
    if video_options.encoders > 1:
        raise UsageError("--encoders applies to one process; with --devices/--workers every worker encodes its own segments")
    if weights is None:
        from .styles import resolve_style

        weights = resolve_style(style, mirror=mirror, progress=progress)
    remove_stale_temporaries(destination.parent)
    return stylize_video_parallel(
        source, destination, weights, options, video_options, parallel, overwrite=overwrite, progress=progress
    )
