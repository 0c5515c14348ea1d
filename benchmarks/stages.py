"""Each stage of the video pipeline alone, to say where the bound is: frames/s per stage.

On a generated clip (:func:`benchmarks.pipeline.make_clip`, H.264), at each size:

* decode only: PyAV decoding with FFmpeg's threads (as the pipeline's decoder on CUDA), frames
  dropped; and decode + the host colour conversion (``to_ndarray(format="rgb24")``, swscale);
* colour conversion: swscale on the host, yuv420p → rgb24 and rgb24 → yuv420p, one frame at a
  time (as the pipeline's threads do it), against :class:`animevid.video.colour.Yuv420Layout` on the
  device, both ways, a batch at a time, device synchronized;
* encode only: libx264 from ready yuv420p frames at each preset with FFmpeg's choice of threads
  (all cores), and at the default preset also with 1 thread, packets dropped;
* generator only: :meth:`animevid.engine.stylizer.Stylizer.frames` on uint8 frames already on the device,
  at the product's default batch size and precision.

Timings are medians of ``repeats`` runs after one warm-up, stages interleaved round by round.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .common import fmt, interleaved_timings, markdown_table, size_name
from .pipeline import make_clip


@dataclass(frozen=True)
class StageSettings:
    sizes: tuple[tuple[int, int], ...] = ((720, 1280), (1080, 1920))
    seconds: float = 2.0
    fps: int = 24
    presets: tuple[str, ...] = ("veryfast", "faster", "medium")  # each with all threads; the default one also with 1
    repeats: int = 2


def default_settings(device: torch.device, quick: bool) -> StageSettings:
    """CUDA: 2 s (48 frames) of 720p and 1080p, three presets, 2 runs after a warm-up. CPU: 1 s of 64x48 and 128x96 (quick: 64x48)."""
    if quick:
        return StageSettings(((48, 64),), 0.5, 12, ("veryfast",), repeats=1)
    if device.type != "cuda":
        return StageSettings(((48, 64), (96, 128)), 1.0, 12, ("veryfast", "medium"), repeats=2)
    return StageSettings()


def _planes(frame: av.VideoFrame) -> np.ndarray:
    return np.concatenate([np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].ravel() for p in frame.planes])


def decode_only(path: Path, rgb: bool) -> Callable[[], int]:
    def run() -> int:
        count = 0
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = 0
            for frame in container.decode(stream):
                if rgb:
                    frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)
                count += 1
        return count

    return run


def encode_only(frames: list[av.VideoFrame], preset: str, threads: int, rate: int) -> Callable[[], int]:
    height, width = frames[0].height, frames[0].width

    def run() -> int:
        context = av.CodecContext.create("libx264", "w")
        context.width, context.height, context.pix_fmt = width, height, "yuv420p"
        context.time_base = Fraction(1, rate)
        context.framerate = rate
        context.thread_count = threads
        context.options = {"preset": preset, "crf": "18"}
        packets = 0
        for index, frame in enumerate(frames):
            frame.pts = index
            packets += len(context.encode(frame))
        packets += len(context.encode(None))
        return packets

    return run


def run(device: torch.device, settings: StageSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    from animevid.video.colour import Yuv420Layout
    from animevid.options import DEFAULT_PRESET, InferenceOptions
    from animevid.engine.stylizer import Stylizer, cudnn_autotuning
    from animevid.engine.tuning import CUDA

    from .engines import seeded_generator

    workdir = Path(tempfile.mkdtemp(prefix="animevid-bench-stages-"))
    results: dict[str, object] = {}
    default_preset = DEFAULT_PRESET
    try:
        stylizer = Stylizer(seeded_generator(), InferenceOptions(device=str(device), compile=False, engine="torch"))
        for height, width in settings.sizes:
            name = size_name(height, width)
            clip = workdir / f"{name}.mp4"
            count = make_clip(clip, height, width, settings.seconds, settings.fps)
            with av.open(str(clip)) as container:
                decoded = [frame for frame in container.decode(video=0)]
            yuv = [frame.reformat(format="yuv420p") for frame in decoded]
            rgb = [frame.to_ndarray(format="rgb24") for frame in decoded]
            batch = stylizer.default_batch_size(height, width)
            layout = Yuv420Layout(height, width, 0, height, width)
            packed = torch.from_numpy(np.stack([_planes(frame) for frame in yuv[:batch]])).to(device)
            rgb_batch = torch.from_numpy(np.stack(rgb[:batch])).to(device)
            generator_input = torch.from_numpy(np.stack([rgb[i % count] for i in range(batch)])).to(device)

            def host_to_rgb() -> None:
                for frame in yuv:
                    frame.to_ndarray(format="rgb24")

            def host_from_rgb() -> None:
                for array in rgb:
                    av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")

            def batches(fn: Callable[[], object]) -> Callable[[], None]:
                def run_all() -> None:  # as many frames as the host candidates convert
                    for _ in range(0, count, batch):
                        fn()

                return run_all

            candidates: dict[str, Callable[[], object]] = {
                "decode": decode_only(clip, rgb=False),
                "decode+rgb24 (host)": decode_only(clip, rgb=True),
                "yuv→rgb host (swscale)": host_to_rgb,
                "rgb→yuv host (swscale)": host_from_rgb,
                "yuv→rgb device": batches(lambda: layout.to_rgb(packed)),
                "rgb→yuv device": batches(lambda: layout.from_rgb(rgb_batch)),
                "generator": batches(lambda: stylizer.frames(generator_input)),
            }
            default_preset = CUDA.preset if device.type == "cuda" else DEFAULT_PRESET
            for preset in dict.fromkeys((*settings.presets, default_preset)):
                for threads in (1, 0) if preset == default_preset else (0,):  # one thread is slow: the default preset only
                    candidates[f"encode {preset}, {'1 thread' if threads == 1 else 'auto threads'}"] = encode_only(yuv, preset, threads, settings.fps)
            log(f"stages: {name}, {count} frames, batch {batch}: {len(candidates)} stages, {settings.repeats} runs after 1 warm-up")
            with cudnn_autotuning(device):
                timings = interleaved_timings(candidates, repeats=settings.repeats, device=device, warmup=1)
            batched_frames = batch * math.ceil(count / batch)  # device stages run whole batches
            frames_per_call = {stage: batched_frames if stage.endswith("device") or stage == "generator" else count for stage in candidates}
            results[name] = {
                "frames": count,
                "batch_size": batch,
                "stages": {
                    stage: {"fps": frames_per_call[stage] / timing.median, "timing": timing.as_dict()} for stage, timing in timings.items()
                },
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"status": "ok", "device": str(device), "dtype": stylizer.dtype_name, "default_preset": default_preset, "sizes": results}


def markdown(result: dict[str, object], device_label: str) -> str:
    sizes = list(result["sizes"])
    stages = list(result["sizes"][sizes[0]]["stages"]) if sizes else []
    rows = [[stage, *(fmt(result["sizes"][size]["stages"][stage]["fps"], 1) for size in sizes)] for stage in stages]
    return "\n".join([
        f"### Pipeline stages alone ({device_label}; frames/s, median; generator {result['dtype']})",
        "",
        markdown_table(["stage", *sizes], rows),
        "",
    ])  # fmt: skip
