"""What a stylization job did: the type every job returns (:func:`animevid.stylize` and the jobs under it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerLoad:
    """What one worker process of a job spread over processes or machines did.

    ``name`` says where it ran (device and pid; with Ray, host, node and pid); its tasks were
    ``tasks`` files (a folder job) or segments of a video (``unit``).
    """

    name: str
    tasks: int
    frames: int  # video frames, and one per photo
    seconds: float  # spent in its tasks, reading and writing their files included
    unit: str = "files"  # what a task was: "files" or "segments"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def combine_loads(loads: Iterable[WorkerLoad]) -> tuple[WorkerLoad, ...]:
    """One load per worker name (sorted), summing tasks, frames and seconds; mixed units are "tasks"."""
    by_name: dict[str, list[WorkerLoad]] = {}
    for load in loads:
        by_name.setdefault(load.name, []).append(load)
    return tuple(
        WorkerLoad(
            name, sum(load.tasks for load in done), sum(load.frames for load in done), sum(load.seconds for load in done),
            unit=done[0].unit if len({load.unit for load in done}) == 1 else "tasks",
        )
        for name, done in sorted(by_name.items())
    )  # fmt: skip


@dataclass
class StylizeResult:
    """What a job did, for the summary line."""

    kind: str  # "image", "folder" or "video"
    count: int  # images or frames written (folders: images)
    seconds: float
    device: str
    dtype: str
    batch_size: int = 1
    skipped: int = 0  # folder jobs with skip_existing: outputs already there, left as they were
    engine: str = "torch"  # what ran the generator: torch or openvino
    videos: int = 0  # folder jobs: videos written
    frames: int = 0  # folder jobs: the frames of those videos
    workers: tuple[WorkerLoad, ...] = ()  # jobs over several processes (--workers, --ray): one per worker
    reused: int = 0  # segments of a video that an interrupted run had finished
    deflicker: str = ""  # jobs with videos: "deflicker: on (strength 0.2)" or "deflicker: off" (VideoOptions.deflicker_summary)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line (and, for distributed jobs, one more per worker)."""
        kept = f"; {self.skipped} existing outputs kept" if self.skipped else ""
        setup = f"on {self.device}, {self.dtype}, batch size {self.batch_size}, {self.engine} engine{kept}"
        if self.videos:  # a folder with videos: photos count as one frame each in the rate
            done = self.count + self.frames
            rate = done / self.seconds if self.seconds > 0 else 0.0
            what = f"{self.count} images and {self.videos} videos ({self.frames} frames)"
            line = f"{what} in {self.seconds:.1f} s ({rate:.2f} frames/s) {setup}"
        else:
            unit = "frames" if self.kind == "video" else "images"
            line = f"{self.count} {unit} in {self.seconds:.1f} s ({self.rate:.2f} {unit}/s) {setup}"
        if self.deflicker:
            line += f"; {self.deflicker}"
        workers = [
            f"  {worker.name}: {worker.tasks} {worker.unit}, {worker.frames} frames in {worker.seconds:.1f} s ({worker.fps:.2f} fps)"
            for worker in self.workers
        ]
        if self.reused:
            workers.append(f"  {self.reused} segments reused from an interrupted run")
        return "\n".join([line, *workers])
