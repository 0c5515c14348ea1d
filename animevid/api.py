"""``animevid.stylize``: one call for a photo, a video, or a folder of photos and videos."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, Interrupted, OutputError, UsageError
from .fileio import remove_stale_temporaries
from .imageio import is_image_path, read_image, write_image
from .jobs import FolderItem, check_existing_policy, check_image_job, default_video_options, plan_folder_job
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


def stylize_image(stylizer: Stylizer, source: Path, destination: Path, *, overwrite: bool = False) -> StylizeResult:
    """Stylize one photo into ``destination`` (format from its extension)."""
    check_image_job(source, destination, overwrite)
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
    video_options: VideoOptions | None = None,
) -> StylizeResult:
    """Stylize every photo and video under ``source`` (:func:`plan_folder_job`) into the same
    relative paths under ``destination``, videos through :func:`animevid.video.stylize_video`
    with ``video_options``, into the same container.

    Existing outputs are refused up front (before any work) unless ``overwrite`` (redo them) or
    ``skip_existing`` (keep them and do the rest: every output is written atomically, so one
    under its final name is complete). Temporaries that a killed run left in ``destination``
    are removed first. Unreadable photos, and videos that turn out damaged part way, are skipped;
    the job then ends with an error saying how many (the others are written). Ctrl-C stops with
    :class:`Interrupted`, leaving the files finished so far and nothing half-made.
    """
    video_options = video_options or default_video_options()
    plan = plan_folder_job(source, destination, overwrite=overwrite, skip_existing=skip_existing, video_options=video_options)
    try:
        remove_stale_temporaries(destination, recursive=True)
    except OSError as exc:
        raise OutputError(f"cannot clean up {destination}: {exc.strerror or exc}") from None
    start = time.perf_counter()
    failures: list[str] = []
    videos: list[StylizeResult] = []
    images = 0
    # Photos alone: the bar counts them, as it always has; with videos it counts frames (a photo is one).
    total, unit = (len(plan.todo), "images") if not plan.has_videos else (plan.frames_to_do, "frames")
    try:
        with ProgressReporter("stylize", total=total, unit=unit, enabled=progress) as bar:
            for item in plan.todo:
                item.destination.parent.mkdir(parents=True, exist_ok=True)
                try:
                    if item.kind == "video":
                        videos.append(_folder_video(stylizer, item, video_options, overwrite, bar))
                        continue
                    image = read_image(item.source)
                except InputError as exc:
                    failures.append(str(exc))
                    bar.advance(1 if item.kind == "image" else 0)
                    continue
                write_image(item.destination, stylizer.image(image))
                images += 1
                bar.advance()
    except (KeyboardInterrupt, Interrupted):
        raise Interrupted(
            f"interrupted after {images + len(videos)} of {len(plan.todo)} {plan.noun}; "
            "rerun with --skip-existing to do the rest"
        ) from None
    if failures:
        raise InputError(
            f"{len(failures)} of {len(plan.todo)} {plan.noun} could not be read (first: {failures[0]}); the others were written"
        )
    return StylizeResult(
        "folder", images, time.perf_counter() - start, str(stylizer.device), stylizer.dtype_name,
        batch_size=max((video.batch_size for video in videos), default=1), skipped=plan.skipped,
        engine=stylizer.engine, videos=len(videos), frames=sum(video.count for video in videos),
    )  # fmt: skip


def _folder_video(
    stylizer: Stylizer, item: FolderItem, video_options: VideoOptions, overwrite: bool, bar: ProgressReporter
) -> StylizeResult:
    from .video import stylize_video

    return stylize_video(stylizer, item.source, item.destination, video_options, overwrite=overwrite, bar=bar)


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
    ray: bool | str = False,
) -> StylizeResult:
    """Stylize a photo, a video, or a folder of photos and videos, choosing by what ``source`` is.

    Exactly one of ``style`` (an installed or fetchable style name) and ``weights`` (a weights
    file in any supported format) selects the generator. The destination is never overwritten
    unless ``overwrite``, and nothing half-written is ever left at it. ``skip_existing`` (folders
    only) keeps the outputs a previous, interrupted run finished and does the rest.
    ``video_options`` (codec, quality, segment, batch size, ``keep_partial``) apply to videos only.
    ``parallel`` (videos only): several worker processes, devices, retries; an interrupted job
    continues when rerun (:func:`animevid.parallel.stylize_video_parallel`).
    ``ray``: run each file as a Ray task (:func:`animevid.ray_jobs.stylize_on_ray`): ``True``
    starts or joins a cluster as ``ray.init()`` does, a string is the address of one (``auto``,
    ``host:port``, ``ray://...``).
    """
    source, destination = Path(source), Path(destination)
    check_existing_policy(overwrite, skip_existing)
    options = options or InferenceOptions()
    if ray is not False:
        from .ray_jobs import stylize_on_ray

        return stylize_on_ray(
            source, destination, address=None if ray is True else ray, style=style, weights=weights, options=options,
            video_options=video_options, overwrite=overwrite, skip_existing=skip_existing, progress=progress, mirror=mirror,
            parallel=parallel,
        )  # fmt: skip
    if not source.exists():
        raise InputError(f"input {source} does not exist")
    # Check the destination before building the stylizer: loading (or fetching) weights is slow.
    if source.is_dir():
        plan_folder_job(source, destination, overwrite=overwrite, skip_existing=skip_existing, video_options=video_options)
        stylizer = make_stylizer(style, weights, options, mirror, progress)
        return stylize_folder(
            stylizer, source, destination, overwrite=overwrite, skip_existing=skip_existing, progress=progress,
            video_options=video_options,
        )  # fmt: skip
    if skip_existing:
        raise UsageError("--skip-existing applies to folders, not to a single photo or video")
    if is_image_path(source):
        check_image_job(source, destination, overwrite)
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
    from .styles import weights_source

    if (style is None) == (weights is None):  # refused before the other options, as without --devices
        raise UsageError("give exactly one of --style NAME or --weights FILE")
    if video_options.keep_partial:
        raise UsageError("--keep-partial applies to one process; with --devices/--workers an interrupted job keeps its finished segments")
    if video_options.encoders > 1:
        raise UsageError("--encoders applies to one process; with --devices/--workers every worker encodes its own segments")
    weights = weights_source(style, weights, mirror=mirror, progress=progress)
    remove_stale_temporaries(destination.parent)
    return stylize_video_parallel(
        source, destination, weights, options, video_options, parallel, overwrite=overwrite, progress=progress
    )
