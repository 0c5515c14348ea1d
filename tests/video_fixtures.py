"""Short test clips, readers for what a clip holds (plain PyAV: independent of the code under test), and test doubles of the Stylizer."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from animevid.models import AnimeGANGenerator
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.train.synthetic_film import AAC_FRAME, AUDIO_RATE, write_clip


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


def make_clip(path: Path, *, width: int = 64, height: int = 48, frames: int = 20, fps: int = 24, **options) -> Path:
    """An H.264 clip of :func:`clip_frame` s, with B-frames (decode order != display order), written
    by the project's clip writer; ``options`` go to :func:`animevid.train.synthetic_film.write_clip`
    (``durations_ms``, ``audio``, ``rotation``, ``subtitles``, ``cover``, ``faststart``, ...)."""
    options.setdefault("encoder_options", {"preset": "fast"})
    write_clip(path, (clip_frame(index, height, width) for index in range(frames)), fps=fps, **options)
    return path


def make_audio_only(path: Path) -> Path:
    write_clip(path, [], audio="mono", audio_seconds=AAC_FRAME / AUDIO_RATE)
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


# -- damaged and wrong files: each maker writes into ``folder`` and returns the path ------------------


def make_empty(folder: Path) -> Path:
    (folder / "empty.mp4").write_bytes(b"")
    return folder / "empty.mp4"


def make_text(folder: Path) -> Path:
    (folder / "notes.mp4").write_text("not a video\n" * 20)
    return folder / "notes.mp4"


def make_truncated(folder: Path) -> Path:
    """60 frames with the index first (faststart), cut at 60 %: a download that stopped."""
    path = make_clip(folder / "truncated.mp4", frames=60, faststart=True)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    return path


def make_headers_only(folder: Path) -> Path:
    path = make_clip(folder / "clip.mp4", frames=30)
    path.write_bytes(path.read_bytes()[:600])
    return path


def make_garbled(folder: Path) -> Path:
    """Valid headers and index, but the frames' bytes overwritten: nothing decodes."""
    path = make_clip(folder / "garbled.mp4", frames=30)
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    for offset in range(start, start + (len(data) - start) // 2):
        data[offset] = (offset * 37) % 256
    path.write_bytes(bytes(data))
    return path


def put_cover_art_first(path: Path) -> Path:
    """Rewrite an mp4 so that its cover art (moov/udta) comes before its tracks.

    FFmpeg then lists the attached picture as stream 0 and the film as stream 1, as in files
    some taggers write. Only the order of moov's children changes: every box keeps its size, so
    the sample offsets into mdat stay valid.
    """
    data = path.read_bytes()
    rewritten = []
    for box in _boxes(data):
        if box[4:8] == b"moov":
            children = sorted(_boxes(box, 8), key=lambda child: {b"mvhd": 0, b"udta": 1}.get(child[4:8], 2))
            box = box[:8] + b"".join(children)
        rewritten.append(box)
    path.write_bytes(b"".join(rewritten))
    return path


def _boxes(data: bytes, start: int = 0) -> list[bytes]:
    """The ISO-BMFF boxes of ``data`` from ``start``: each a 32-bit big-endian size, a 4-byte type, a body."""
    boxes = []
    while start < len(data):
        size = int.from_bytes(data[start : start + 4], "big")
        boxes.append(data[start : start + size])
        start += size
    return boxes


def decodable_frames(path: Path) -> int:
    """How many frames plain PyAV decodes from the first video stream before the file gives out."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                count += 1
        except av.FFmpegError:
            pass
    return count
