"""Photos and folders in this process, and the plan of a job before any work.

The plan (:func:`plan_folder_job`) says which files, where their outputs go, and refuses up front
everything the job could not finish; it is shared by the local jobs here and the Ray jobs
(:mod:`animevid.jobs.ray`). :func:`stylize_image` and :func:`stylize_folder` run a plan with one
:class:`~animevid.engine.stylizer.Stylizer` in this process.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, Interrupted, OutputError, UsageError
from ..fileio import check_destination, list_files, remove_stale_temporaries
from ..imageio import IMAGE_SUFFIXES, is_image_path, read_image, write_image
from ..progress import ProgressReporter
from ..result import StylizeResult
from ..video.reader import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from ..engine.stylizer import Stylizer
    from ..options import VideoOptions


@dataclass(frozen=True)
class FolderItem:
    """One file of a folder job: a photo or a video, and where its output goes."""

    source: Path
    destination: Path
    kind: str  # "image" or "video"
    frames: int | None = None  # videos: the frames the job will stylize, when the container says


@dataclass(frozen=True)
class FolderPlan:
    """Every file of a folder job (path order) and those left to do (all but the kept outputs)."""

    items: tuple[FolderItem, ...]
    todo: tuple[FolderItem, ...]

    @property
    def skipped(self) -> int:
        return len(self.items) - len(self.todo)

    @property
    def has_videos(self) -> bool:
        return any(item.kind == "video" for item in self.items)

    @property
    def noun(self) -> str:
        """What the job's files are called in messages: "images" for photos alone, else "files"."""
        return "files" if self.has_videos else "images"

    @property
    def frames_to_do(self) -> int | None:
        """Frames of the files to do (a photo is one); None if a video does not say."""
        counts = [1 if item.kind == "image" else item.frames for item in self.todo]
        return None if None in counts else sum(counts)


def _folder_items(source: Path, destination: Path) -> list[FolderItem]:
    items = []
    for path in list_files(source, IMAGE_SUFFIXES + VIDEO_SUFFIXES, recursive=True):
        if destination == path or destination in path.parents:
            continue  # outputs written inside the input folder on an earlier run
        kind = "image" if is_image_path(path) else "video"
        items.append(FolderItem(path, destination / path.relative_to(source), kind))
    return items


def check_image_job(source: Path, destination: Path, overwrite: bool) -> None:
    if not is_image_path(destination):
        raise UsageError(f"output {destination} must be an image file ({', '.join(IMAGE_SUFFIXES)})")
    check_destination(destination, overwrite, source)


def check_existing_policy(overwrite: bool, skip_existing: bool) -> None:
    if overwrite and skip_existing:
        raise UsageError("--skip-existing and --overwrite contradict each other: keep existing outputs, or replace them")


def _planned_video(item: FolderItem, video_options: VideoOptions) -> FolderItem:
    """``item`` with its frame count; a video the job cannot finish is refused (:class:`UsageError`, :class:`InputError`)."""
    from ..video.pipeline import OUTPUT_FORMATS, check_video_job

    suffix = item.source.suffix
    if suffix.lower() not in OUTPUT_FORMATS:
        raise UsageError(
            f"{item.source}: {suffix} videos are read but cannot be written, and a folder job keeps each "
            f"file's container ({', '.join(OUTPUT_FORMATS)}); convert it or move it out of the folder"
        )
    # The checks of a single video job, on a stand-in destination in an empty folder: the folder
    # job has checked the real destination (existence, policy); its subfolders are made later.
    with tempfile.TemporaryDirectory(prefix="animevid-plan-") as folder:
        stand_in = Path(folder) / item.destination.name
        try:
            frames = check_video_job(item.source, stand_in, video_options)
        except UsageError as exc:
            raise UsageError(f"{item.source}: {str(exc).replace(str(stand_in), str(item.destination))}") from None
    return dataclasses.replace(item, frames=frames)


def plan_folder_job(
    source: Path, destination: Path, *, overwrite: bool = False, skip_existing: bool = False,
    video_options: VideoOptions | None = None,
) -> FolderPlan:  # fmt: skip
    """Every photo and video of a folder job and its output (:class:`FolderPlan`), refusing up front
    whatever the job could not finish: outputs that exist (unless ``overwrite`` or ``skip_existing``
    says what to do), a video whose container cannot be written or cannot hold the codec, audio
    that can be neither copied into its container nor re-encoded, an unreadable video, ``keep_partial`` (a partial video would pass for a finished one)."""
    check_existing_policy(overwrite, skip_existing)
    video_options = video_options or default_video_options()
    if destination.exists() and not destination.is_dir():
        raise OutputError(f"output {destination} exists and is not a folder")
    if destination.resolve() == source.resolve():
        raise OutputError("the output folder is the input folder; choose another destination")
    items = _folder_items(source, destination)
    if not items:
        raise InputError(
            f"no images or videos found in {source} (images: {' '.join(IMAGE_SUFFIXES)}; videos: {' '.join(VIDEO_SUFFIXES)})"
        )
    existing = [item.destination for item in items if item.destination.exists()]
    folders = [dst for dst in existing if dst.is_dir()]
    if folders:
        raise OutputError(f"output {folders[0]} is a directory")
    noun = "files" if any(item.kind == "video" for item in items) else "images"
    if existing and not overwrite and not skip_existing:
        raise OutputError(
            f"{len(existing)} output {noun} already exist, e.g. {existing[0]} "
            "(use --skip-existing to do the rest, or --overwrite to redo them all)"
        )
    todo = [item for item in items if not (skip_existing and item.destination.exists())]
    if video_options.keep_partial and any(item.kind == "video" for item in todo):
        raise UsageError(
            "--keep-partial applies to a single video: in a folder, a partial video would pass for a "
            "finished one (--skip-existing keeps it)"
        )
    todo = [_planned_video(item, video_options) if item.kind == "video" else item for item in todo]
    return FolderPlan(tuple(items), tuple(todo))


def default_video_options() -> VideoOptions:
    from ..options import VideoOptions

    return VideoOptions()


def stylize_image(stylizer: Stylizer, source: Path, destination: Path, *, overwrite: bool = False) -> StylizeResult:
    """Stylize one photo into ``destination`` (format from its extension)."""
    check_image_job(source, destination, overwrite)
    start = time.perf_counter()
    image = read_image(source)
    write_image(destination, stylizer.image(image))
    engine = stylizer.engine_for(*image.shape[:2])
    return StylizeResult("image", 1, time.perf_counter() - start, str(stylizer.device), stylizer.dtype_label, engine=engine)


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
    relative paths under ``destination``, videos through :func:`animevid.video.pipeline.stylize_video`
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
        "folder", images, time.perf_counter() - start, str(stylizer.device), stylizer.dtype_label,
        batch_size=max((video.batch_size for video in videos), default=1), skipped=plan.skipped,
        engine=stylizer.engine, videos=len(videos), frames=sum(video.count for video in videos),
        deflicker=video_options.deflicker_summary() if videos else "",
    )  # fmt: skip


def _folder_video(
    stylizer: Stylizer, item: FolderItem, video_options: VideoOptions, overwrite: bool, bar: ProgressReporter
) -> StylizeResult:
    from ..video.pipeline import stylize_video

    return stylize_video(stylizer, item.source, item.destination, video_options, overwrite=overwrite, bar=bar)
