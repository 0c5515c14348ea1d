"""Dataset building speed: ``extract-frames`` frames/s and edge smoothing images/s.

extract-frames runs :func:`animevid.train.frames.extract_frames` on a synthetic film (hard cuts between
"shapes" scenes, from :mod:`animevid.train.synthetic_film`) written for the benchmark, into a fresh folder
each time; frames/s counts every decoded frame (decode, shot detection, sampling, crops, quality
filters, smoothing and writing the kept images).

Edge smoothing compares :func:`animevid.train.smooth.edge_smooth` (one separable OpenCV filter) with
:func:`animevid.train.smooth.edge_smooth_reference` (the official script's per-pixel loop) on the same
synthetic cel-like images; their outputs are checked to be equal before anything is timed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .common import fmt, interleaved_timings, markdown_table, not_available


SMOOTH_TARGET = 50  # issue #6: the vectorized smoothing must be at least this much faster


@dataclass(frozen=True)
class DatasetSettings:
    film_size: tuple[int, int] = (720, 1280)  # (height, width)
    film_seconds: float = 30.0
    film_fps: int = 24
    extract_repeats: int = 3
    smooth_size: int = 256
    smooth_images: int = 4  # images per timed sample
    smooth_repeats: int = 3


def default_settings(device: torch.device, quick: bool) -> DatasetSettings:
    """Dataset building runs on the CPU whatever the device; the sizes are the same everywhere."""
    if quick:
        return DatasetSettings(film_size=(144, 256), film_seconds=2.0, film_fps=12, extract_repeats=1,
                               smooth_size=64, smooth_images=2, smooth_repeats=1)  # fmt: skip
    return DatasetSettings()


def _scenes(seconds: float):
    from animevid.train.synthetic_film import Scene

    # Shots of 2-4 s, as in films; each gets a different seed, so each is a new picture.
    lengths = [2.0, 3.0, 4.0]
    scenes, total, index = [], 0.0, 0
    while total < seconds - 1e-9:
        length = min(lengths[index % len(lengths)], seconds - total)
        scenes.append(Scene("shapes", length, seed=index + 1))
        total += length
        index += 1
    return scenes


def bench_extract(settings: DatasetSettings, workdir: Path, log: Callable[[str], None]) -> dict[str, object]:
    try:
        from animevid.train.frames import ExtractOptions, extract_frames
        from animevid.train.synthetic_film import write_synthetic_film
    except ImportError as exc:
        return not_available(f"animevid.train.frames.extract_frames cannot be imported ({exc})")
    height, width = settings.film_size
    film = workdir / "film.mp4"
    cuts = write_synthetic_film(film, _scenes(settings.film_seconds), width=width, height=height, fps=settings.film_fps)
    log(f"datasets: extract-frames on a {width}x{height} {settings.film_seconds:g} s film ({len(cuts)} shots), {settings.extract_repeats} run(s)")
    options = ExtractOptions()
    out_dirs = iter(workdir / f"out{index}" for index in range(10**6))
    last: dict[str, object] = {}

    def extract() -> object:
        # A new folder every time: a re-run into the same one would resume instead of extracting.
        result = extract_frames(film, next(out_dirs), options)
        last.update(frames=result.frames_decoded, images=result.images, shots=len(result.shots))
        return result

    timing = interleaved_timings({"extract": extract}, repeats=settings.extract_repeats, device=torch.device("cpu"), warmup=1)["extract"]
    frames = int(last["frames"])
    return {
        "status": "ok",
        "film": {"width": width, "height": height, "seconds": settings.film_seconds, "fps": settings.film_fps, "shots": len(cuts)},
        "frames_decoded": frames,
        "images_written": last["images"],
        "shots_detected": last["shots"],
        "seconds": timing.median,
        "frames_per_s": frames / timing.median,
        "timing": timing.as_dict(),
    }


def bench_smooth(settings: DatasetSettings, log: Callable[[str], None]) -> dict[str, object]:
    try:
        import cv2

        from animevid.train.smooth import edge_mask, edge_smooth, edge_smooth_reference
        from animevid.train.synthetic_film import Scene, render_frame
    except ImportError as exc:
        return not_available(f"animevid.train.smooth cannot be imported ({exc})")
    size = settings.smooth_size
    images = [
        cv2.cvtColor(render_frame(Scene("shapes", 1.0, seed=seed), 0, size, size), cv2.COLOR_RGB2BGR)
        for seed in range(1, settings.smooth_images + 1)
    ]
    for image in images:
        if not np.array_equal(edge_smooth(image, None), edge_smooth_reference(image, None)):
            raise AssertionError("edge_smooth and edge_smooth_reference disagree; timing them would be meaningless")
    edge_fraction = float(np.mean([edge_mask(cv2.cvtColor(i, cv2.COLOR_BGR2GRAY)).mean() for i in images]))
    log(f"datasets: edge smoothing {len(images)} images of {size}x{size} ({100 * edge_fraction:.0f} % edge pixels), {settings.smooth_repeats} run(s)")
    timings = interleaved_timings(
        {
            "vectorized": lambda: [edge_smooth(image, None) for image in images],
            "reference": lambda: [edge_smooth_reference(image, None) for image in images],
        },
        repeats=settings.smooth_repeats,
        device=torch.device("cpu"),
        warmup=1,
    )
    fast, slow = timings["vectorized"], timings["reference"]
    return {
        "status": "ok",
        "size": size,
        "images_per_sample": len(images),
        "edge_pixel_fraction": edge_fraction,
        "vectorized_images_per_s": len(images) / fast.median,
        "reference_images_per_s": len(images) / slow.median,
        "speedup": slow.median / fast.median,
        "target_speedup": SMOOTH_TARGET,
        "outputs_equal": True,
        "timing_vectorized": fast.as_dict(),
        "timing_reference": slow.as_dict(),
    }


def run(device: torch.device, settings: DatasetSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="animevid-bench-datasets-"))
    try:
        extract = bench_extract(settings, workdir, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    smooth = bench_smooth(settings, log)
    return {"status": "ok", "extract_frames": extract, "edge_smooth": smooth}


def markdown(result: dict[str, object], device_label: str) -> str:
    extract, smooth = result["extract_frames"], result["edge_smooth"]
    parts = ["### Datasets (CPU work whatever the device)", ""]
    if extract.get("status") == "ok":
        film = extract["film"]
        parts += [
            markdown_table(
                ["extract-frames", "frames", "images kept", "seconds", "frames/s"],
                [[f"synthetic {film['width']}×{film['height']} film, {film['seconds']:g} s at {film['fps']} fps, {film['shots']} shots",
                  extract["frames_decoded"], extract["images_written"], fmt(extract["seconds"], 2), fmt(extract["frames_per_s"], 1)]],
            ),  # fmt: skip
            "",
        ]
    else:
        parts += [f"extract-frames: not available: {extract['reason']}", ""]
    if smooth.get("status") == "ok":
        parts += [
            markdown_table(
                [f"edge smoothing, {smooth['size']}×{smooth['size']}", "images/s", "speed-up"],
                [
                    ["per-pixel loop (official script)", fmt(smooth["reference_images_per_s"], 2), "1×"],
                    ["vectorized (`edge_smooth`), identical output", fmt(smooth["vectorized_images_per_s"], 1), f"{smooth['speedup']:,.0f}×"],
                ],
            ),
            "",
            f"Speed-up {smooth['speedup']:,.0f}× ({'meets' if smooth['speedup'] >= SMOOTH_TARGET else 'misses'} the target of "
            f"≥ {SMOOTH_TARGET}×).",
            "",
            f"{100 * smooth['edge_pixel_fraction']:.0f} % of the pixels are in the edge mask (synthetic cel-like images).",
            "",
        ]
    else:
        parts += [f"edge smoothing: not available: {smooth['reason']}", ""]
    return "\n".join(parts)
