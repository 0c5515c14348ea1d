"""The plan of a job before any work: which files, where their outputs go, and every refusal up front.

Shared by the local jobs (:mod:`animevid.api`) and the Ray jobs (:mod:`animevid.ray_jobs`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError, OutputError, UsageError
from .fileio import check_destination, list_files
from .imageio import IMAGE_SUFFIXES, is_image_path
from .video_input import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from .options import VideoOptions


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
    from .video import OUTPUT_FORMATS, check_video_job

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
    says what to do), a video whose container cannot be written or cannot hold its audio or the
    codec, an unreadable video, ``keep_partial`` (a partial video would pass for a finished one)."""
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
    from .options import VideoOptions

    return VideoOptions()
