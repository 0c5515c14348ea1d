"""``animevid.stylize``: one call for a photo, a video, or a folder of photos and videos."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, UsageError
from .fileio import remove_stale_temporaries
from .imageio import is_image_path
from .jobs.folder import check_existing_policy, check_image_job, plan_folder_job, stylize_folder, stylize_image
from .options import InferenceOptions
from .result import StylizeResult
from .engine.stylizer import Stylizer, resolve_device, resolve_dtype, resolve_engine, should_compile

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
    continues when rerun (:func:`animevid.jobs.parallel.stylize_video_parallel`).
    ``ray``: run each file as a Ray task (:func:`animevid.jobs.ray.stylize_on_ray`): ``True``
    starts or joins a cluster as ``ray.init()`` does, a string is the address of one (``auto``,
    ``host:port``, ``ray://...``).
    """
    source, destination = Path(source), Path(destination)
    check_existing_policy(overwrite, skip_existing)
    options = options or InferenceOptions()
    if ray is not False:
        from .jobs.ray import stylize_on_ray

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
    from .video.pipeline import check_video_job, stylize_video

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
        from .video.chunked import stylize_video_chunked as run  # the same call, with several encoders
    return run(stylizer, source, destination, video_options, overwrite=overwrite, progress=progress)


def _stylize_video_parallel(
    source: Path, destination: Path, style: str | None, weights: str | os.PathLike | None, options: InferenceOptions,
    video_options: VideoOptions, parallel: ParallelOptions, overwrite: bool, progress: bool, mirror: str | None,
) -> StylizeResult:  # fmt: skip
    from .jobs.parallel import stylize_video_parallel
    from .weights.styles import weights_source

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
