"""Several worker processes on one video (``--devices/--workers``): speed-up against one worker.

Runs :func:`animevid.jobs.parallel.stylize_video_parallel` on a generated clip with seeded random
weights (the real generator), for each worker count, timed interleaved after a warm-up; records
frames/s, the speed-up against the first count, and whether every count wrote the same frames
with the same timestamps (the work is cut at the same key frames whatever the count, so the
files must agree). On CUDA the counts are numbers of GPUs (``--devices all``, one worker each);
on the CPU they are worker processes sharing the cores, which says little on a small machine:
there the part checks correctness, and its ratio is no claim of a speed-up elsewhere.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .common import fmt, interleaved_timings, markdown_table
from .encoders import timestamps
from .pipeline import make_clip


@dataclass(frozen=True)
class WorkerSettings:
    size: tuple[int, int]  # (height, width)
    seconds: float
    fps: int
    workers: tuple[int, ...]
    segment_seconds: float
    repeats: int


def default_settings(device: torch.device, quick: bool) -> WorkerSettings:
    if device.type == "cuda":
        gpus = tuple(range(1, torch.cuda.device_count() + 1))
        return WorkerSettings((720, 1280), 20.0, 24, gpus, 2.0, 1 if quick else 3)
    if quick:
        return WorkerSettings((48, 64), 1.0, 12, (1, 2), 0.5, 1)
    return WorkerSettings((144, 256), 4.0, 12, (1, 2), 1.0, 3)


def run(device: torch.device, settings: WorkerSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    from animevid.options import InferenceOptions, ParallelOptions, VideoOptions
    from animevid.jobs.parallel import stylize_video_parallel
    from animevid.weights.formats import random_weights, save_weights

    height, width = settings.size
    devices = "all" if device.type == "cuda" else "cpu"
    with tempfile.TemporaryDirectory(prefix="animevid-bench-") as folder:
        folder = Path(folder)
        source = folder / "clip.mp4"
        frames = make_clip(source, height, width, settings.seconds, settings.fps, keyframe_seconds=settings.segment_seconds)
        weights = save_weights(random_weights(), folder / "weights.safetensors")
        inference = InferenceOptions(device="cuda" if device.type == "cuda" else "cpu", engine="torch")
        outputs = {n: folder / f"out-{n}.mp4" for n in settings.workers}

        def job(n: int) -> Callable[[], object]:
            parallel = ParallelOptions(devices=devices, workers=n, segment_seconds=settings.segment_seconds)
            return lambda: stylize_video_parallel(
                source, outputs[n], weights, inference, VideoOptions(), parallel, overwrite=True, progress=False
            )

        log(f"workers: {width}x{height}, {frames} frames, worker counts {settings.workers} on {devices}")
        timings = interleaved_timings({str(n): job(n) for n in settings.workers}, repeats=settings.repeats, device=device)
        first = timestamps(outputs[settings.workers[0]])
        results = {
            str(n): {
                **timings[str(n)].as_dict(),
                "fps": frames / timings[str(n)].median,
                "same_timestamps_as_first": timestamps(outputs[n]) == first,
            }
            for n in settings.workers
        }
    base = results[str(settings.workers[0])]
    for entry in results.values():
        entry["speedup"] = entry["fps"] / base["fps"]
    return {
        "status": "ok",
        "clip": {"width": width, "height": height, "frames": frames, "fps": settings.fps},
        "devices": devices,
        "segment_seconds": settings.segment_seconds,
        "results": results,
    }


def markdown(result: dict[str, object], device_label: str) -> str:
    clip = result["clip"]
    rows = [
        [n, fmt(r["fps"], 2), fmt(r["speedup"]), "yes" if r["same_timestamps_as_first"] else "NO"]
        for n, r in result["results"].items()
    ]
    table = markdown_table(["workers", "frames/s", "speed-up", "same timestamps"], rows)
    return (
        f"### Worker processes on one video ({device_label}, --devices {result['devices']})\n\n"
        f"{clip['width']}x{clip['height']}, {clip['frames']} frames at {clip['fps']} fps, segments of "
        f"{result['segment_seconds']} s, random weights; medians of interleaved runs after a warm-up, each run "
        f"including its workers' start-up and the join.\n\n{table}\n"
    )
