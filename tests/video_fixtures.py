"""Short test clips written with PyAV, readers for what a clip holds, and test doubles of the Stylizer."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from animevid.models import AnimeGANGenerator
from animevid.stylizer import InferenceOptions, Stylizer

AUDIO_RATE = 48000
AUDIO_FRAME = 1024  # AAC samples per packet


def clip_frame(index: int, height: int, width: int) -> np.ndarray:
    """A frame whose content moves with ``index`` and whose corners differ (to check orientation)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack(
        [
            127 + 100 * np.sin(xs / 6 + index / 3),
            127 + 100 * np.cos(ys / 5 - index / 4),
            np.full_like(xs, (40 + 9 * index) % 256),
        ],
        axis=-1,
    )
    frame[: height // 3, : width // 3] = (250, 250, 250)  # a bright top-left corner
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 20,
    fps: int = 24,
    durations_ms: list[int] | None = None,
    audio: bool = False,
    rotation: int | None = None,
    faststart: bool = False,
    subtitles: str | None = None,
    pixel_format: str = "yuv420p",
) -> Path:
    """Write an H.264 test clip. ``durations_ms`` (cycled) gives a variable frame rate in a 1/1000 time base."""
    container_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=container_options) as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "fast"})  # with B-frames: decode order != display order
        video.width, video.height, video.pix_fmt = width, height, pixel_format
        time_base = Fraction(1, 1000) if durations_ms else Fraction(1, fps)
        video.codec_context.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        text = out.add_mux_stream(subtitles, time_base=Fraction(1, 1000)) if subtitles else None
        pts = 0
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(clip_frame(index, height, width), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            out.mux(video.encode(frame))
            if text is not None and index % 5 == 0:
                packet = av.Packet(f"line {index}".encode())
                packet.stream, packet.time_base = text, Fraction(1, 1000)
                packet.pts = packet.dts = round(pts * time_base * 1000)
                packet.duration = 100
                out.mux(packet)
            pts += durations_ms[index % len(durations_ms)] if durations_ms else 1
        out.mux(video.encode())
        if sound is not None:
            samples = int(pts * time_base * AUDIO_RATE)
            for start in range(0, samples, AUDIO_FRAME):
                t = np.arange(start, min(start + AUDIO_FRAME, samples)) / AUDIO_RATE
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # (1 channel, samples)
                audio_frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                audio_frame.sample_rate, audio_frame.pts = AUDIO_RATE, start
                out.mux(sound.encode(audio_frame))
            out.mux(sound.encode())
    return path


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, AUDIO_FRAME), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode())
    return path


@dataclass
class ClipContents:
    frames: list[np.ndarray]  # upright RGB as stored (rotation metadata not applied)
    times: list[Fraction]  # presentation times in seconds
    rotation: int
    duration: Fraction | None  # of the video stream, seconds
    streams: list[tuple[str, str]]  # (type, codec) per stream


def read_clip(path: Path) -> ClipContents:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        duration = stream.duration * stream.time_base if stream.duration is not None else None
        streams = [(s.type, s.codec_context.name if s.codec_context is not None else "") for s in container.streams]
    return ClipContents(
        frames=[frame.to_ndarray(format="rgb24") for frame in decoded],
        times=[frame.pts * frame.time_base for frame in decoded],
        rotation=decoded[0].rotation if decoded else 0,
        duration=duration,
        streams=streams,
    )


def side_packets(path: Path, kind: str) -> list[tuple[Fraction, Fraction, bytes]]:
    """(pts seconds, dts seconds, payload) of every packet of the first ``kind`` stream."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [
            (packet.pts * packet.time_base, packet.dts * packet.time_base, bytes(packet))
            for packet in container.demux(stream)
            if packet.size
        ]


class IdentityStylizer(Stylizer):
    """A Stylizer whose "style" returns the frames unchanged: output pixels ≈ input pixels (codec loss aside)."""

    def __init__(self) -> None:
        super().__init__(AnimeGANGenerator(), InferenceOptions(device="cpu", engine="torch"))

    def frames(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device).clone()


class _StylizerRaisingAfter(IdentityStylizer):
    """Raises ``make_error()`` once ``after`` frames have been stylized."""

    def __init__(self, after: int, make_error) -> None:
        super().__init__()
        self.after = after
        self.make_error = make_error
        self.stylized = 0

    def frames(self, batch: torch.Tensor) -> torch.Tensor:
        if self.stylized >= self.after:
            raise self.make_error()
        self.stylized += batch.shape[0]
        return super().frames(batch)


class InterruptingStylizer(_StylizerRaisingAfter):
    """Raises KeyboardInterrupt (as Ctrl-C would) once ``after`` frames have been stylized."""

    def __init__(self, after: int) -> None:
        super().__init__(after, KeyboardInterrupt)


class FailingStylizer(_StylizerRaisingAfter):
    """Fails like a bug in the generator would, after ``after`` frames."""

    def __init__(self, after: int) -> None:
        super().__init__(after, lambda: RuntimeError("generator exploded"))
