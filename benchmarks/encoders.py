"""Chunked encoding: end-to-end throughput of ``stylize_video`` with 1 and N encoders, the generator costing ~nothing.

The generator is a stand-in that copies its input (a fast GPU's place, where the encoder is the
bound), so the figures are those of the decoder, the colour conversions and libx264 at the
default preset and quality. Each encoder instance runs one thread here (the rule for a CPU
generator, see animevid.video.pipeline); on CUDA each gets cores / N. Also recorded: the file sizes (every
chunk starts with a key frame) and whether the frame count and timestamps of both files agree.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import torch

from .common import interleaved_timings, markdown_table, fmt
from .pipeline import make_clip


@dataclass(frozen=True)
class EncoderSettings:
    size: tuple[int, int]  # (height, width)
    seconds: float
    fps: int
    encoders: tuple[int, ...]
    repeats: int


def default_settings(device: torch.device, quick: bool) -> EncoderSettings:
    if quick:
        return EncoderSettings((144, 256), 1.0, 24, (1, 2), 1)
    return EncoderSettings((720, 1280), 10.0, 24, (1, 2), 3)


def stand_in_stylizer():
    """A Stylizer whose generator costs a copy: the encoders are what is measured."""
    from animevid.models import AnimeGANGenerator
    from animevid.engine.stylizer import Stylizer
    from animevid.options import InferenceOptions

    class PassThrough(Stylizer):
        def frames(self, batch: torch.Tensor) -> torch.Tensor:
            return batch.clone()  # a new tensor: the pipeline reuses the input buffer at once

    return PassThrough(AnimeGANGenerator(), InferenceOptions(device="cpu", engine="torch"))


def timestamps(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(packet.pts for packet in container.demux(stream) if packet.size)


def run(device: torch.device, settings: EncoderSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    from animevid.video.chunked import stylize_video_chunked
    from animevid.options import VideoOptions
    from animevid.video.pipeline import stylize_video

    height, width = settings.size
    with tempfile.TemporaryDirectory(prefix="animevid-bench-") as folder:
        folder = Path(folder)
        source = folder / "clip.mp4"
        frames = make_clip(source, height, width, settings.seconds, settings.fps)
        stylizer = stand_in_stylizer()
        outputs = {n: folder / f"out-{n}.mp4" for n in settings.encoders}

        def job(n: int) -> Callable[[], object]:
            run = stylize_video_chunked if n > 1 else stylize_video
            return lambda: run(stylizer, source, outputs[n], VideoOptions(encoders=n), overwrite=True, progress=False)

        log(f"encoders: {width}x{height}, {frames} frames, encoders {settings.encoders}")
        timings = interleaved_timings({str(n): job(n) for n in settings.encoders}, repeats=settings.repeats, device=device)
        single = timestamps(outputs[settings.encoders[0]])
        results = {
            str(n): {
                **timings[str(n)].as_dict(),
                "fps": frames / timings[str(n)].median,
                "bytes": outputs[n].stat().st_size,
                "same_timestamps_as_first": timestamps(outputs[n]) == single,
            }
            for n in settings.encoders
        }
    base = results[str(settings.encoders[0])]
    for entry in results.values():
        entry["speedup"] = entry["fps"] / base["fps"]
        entry["size_ratio"] = entry["bytes"] / base["bytes"]
    return {
        "status": "ok",
        "clip": {"width": width, "height": height, "frames": frames, "fps": settings.fps},
        "preset": "default (medium), crf default (18)",
        "threads_per_encoder": 1,
        "results": results,
    }


def markdown(result: dict[str, object], device_label: str) -> str:
    clip = result["clip"]
    rows = [
        [n, fmt(r["fps"], 1), fmt(r["speedup"]), fmt(r["size_ratio"], 3), "yes" if r["same_timestamps_as_first"] else "NO"]
        for n, r in result["results"].items()
    ]
    table = markdown_table(["encoders", "frames/s", "speed-up", "file size ratio", "same timestamps"], rows)
    return (
        f"### Chunked encoding ({device_label})\n\n"
        f"{clip['width']}x{clip['height']}, {clip['frames']} frames at {clip['fps']} fps, stand-in generator (a copy), "
        f"libx264 default preset, one thread per encoder; medians of interleaved runs after a warm-up.\n\n{table}\n"
    )
