"""Opening a film with PyAV and streaming its decoded frames, with user-facing errors.

Frames come out one at a time, numbered from 0 in presentation order, with their time in seconds
from the first frame (containers such as MPEG-TS do not start at 0). Nothing is accumulated, so a
two-hour film needs no more memory than a two-second clip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from animevid.errors import InputError

# Containers without a usable frame rate (rare: some raw streams) are read as if at this rate;
# it only scales frame counts derived from seconds.
_FALLBACK_FPS = Fraction(25)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the film's video stream."""

    path: Path
    width: int
    height: int
    display_width: int  # width once non-square pixels (anamorphic DVDs) are stretched
    display_height: int
    fps: Fraction
    duration_s: float | None
    frame_count: int | None  # from the container, or estimated from duration x fps
    codec: str


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    time: float
    frame: av.VideoFrame


def check_video_path(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is an existing regular file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file")


def _probe(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> VideoInfo:
    context = stream.codec_context
    width, height = context.width, context.height
    if not width or not height:
        raise InputError(f"{path}: the video stream has no frame size")
    sar = stream.sample_aspect_ratio or context.sample_aspect_ratio
    display_width = round(width * sar) if sar and sar > 0 else width
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate or _FALLBACK_FPS
    fps = Fraction(fps)
    duration_s = None
    if stream.duration is not None and stream.time_base is not None:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration_s = container.duration / av.time_base
    frame_count = stream.frames or (round(duration_s * fps) if duration_s else None)
    return VideoInfo(path, width, height, display_width, height, fps, duration_s, frame_count, context.name)


@contextlib.contextmanager
def open_video(path: Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream, VideoInfo]]:
    """Open ``path`` and its first video stream for threaded decoding; :class:`InputError` if unusable."""
    check_video_path(path)
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise InputError(f"{path}: not a video file FFmpeg can read ({exc.strerror or exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream, _probe(path, container, stream)


def format_timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


class FrameDecoder:
    """Iterates over every decodable frame of ``stream`` in presentation order.

    Packets the decoder rejects (a damaged file) are skipped and counted in ``damaged_packets``;
    a container that cannot be read any further raises :class:`InputError` naming the position.
    """

    def __init__(
        self, path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream, fps: Fraction
    ) -> None:
        self.path = path
        self.container = container
        self.stream = stream
        self.fps = fps
        self.damaged_packets = 0

    def __iter__(self) -> Iterator[DecodedFrame]:
        index = 0
        origin: float | None = None
        last_time = 0.0
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                raise InputError(
                    f"{self.path}: unreadable after {format_timecode(last_time)} ({exc.strerror or exc})"
                ) from None
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self.damaged_packets += 1
                continue
            for frame in frames:
                if frame.time is None:
                    time = index / float(self.fps)
                else:
                    if origin is None:
                        origin = frame.time
                    time = max(0.0, frame.time - origin)
                last_time = time
                yield DecodedFrame(index, time, frame)
                index += 1
