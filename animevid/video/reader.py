"""Reading videos, one way for every command (``stylize`` and ``extract-frames``).

* :func:`open_video` checks the file (exists, a regular file, not empty), opens it with
  ``with av.open(...)`` and takes the film's stream (:func:`film_stream`): the best real video
  stream, never cover art (an attached picture), whatever the order of the streams.
* :func:`probe_video` decodes that stream's first frame to learn what containers do not always
  say: the frame size and the rotation (display matrix), which :func:`upright` applies to pixels.
* :class:`FrameClock` gives the decoded frames strictly increasing timestamps (counted at the
  nominal rate where the container has none, as raw H.264 has none) and their time from the
  stream's start.
* :func:`decode_frames` streams the film's frames, for readers of the video stream alone.
* Every failure is an :class:`InputError` worded here, once. A file that stops decoding part way
  raises :class:`DamagedVideo`; each command decides what the frames before it are worth.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError

# What a folder job takes for a video, by name: the common containers FFmpeg reads. (A single file
# is tried as a video whatever its name; in a folder, the name is all there is to go by.)
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".asf", ".mpg", ".mpeg", ".ts", ".m2ts",
    ".mts", ".3gp", ".ogv",
)  # fmt: skip
FALLBACK_RATE = Fraction(25)  # frames/s assumed where the container gives no rate (some raw streams)
_FALLBACK_TIME_BASE = Fraction(1, 90000)
# Video streams that are not the film: cover art, and thumbnail tracks.
_NOT_THE_FILM = av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails
# A shortfall against a frame count estimated from the duration (not counted by the container)
# is reported beyond this fraction: durations are rounded, and the last frame's is a guess.
_ESTIMATE_SLACK = 0.1


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learned about a file's film stream."""

    stream_index: int
    codec: str
    width: int  # as stored, before rotation
    height: int
    rotation: int  # degrees counter-clockwise that turn a stored frame upright: 0, 90, 180 or 270
    sample_aspect_ratio: Fraction | None  # of the stored pixels; None: square
    time_base: Fraction
    frame_rate: Fraction | None
    start_pts: int  # the stream's first timestamp, in time_base units
    duration: float | None  # seconds
    frames: int  # frame count announced by the container, 0 when unknown
    missing_frames: int = 0  # frames the container's index places beyond the end of the file (truncated)
    warnings: tuple[str, ...] = ()  # what the reader cannot honour (e.g. a rotation of 45 degrees)

    @property
    def upright_size(self) -> tuple[int, int]:
        """(height, width) of a frame once turned upright."""
        return (self.width, self.height) if self.rotation in (90, 270) else (self.height, self.width)

    @property
    def display_size(self) -> tuple[int, int]:
        """(height, width) of a frame turned upright, non-square pixels (anamorphic video) made square."""
        width = self.width
        if self.sample_aspect_ratio is not None:
            width = max(1, round(self.width * self.sample_aspect_ratio))
        return (width, self.height) if self.rotation in (90, 270) else (self.height, width)

    def stored_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) to scale a stored frame to so that, once upright, it is ``height`` x ``width``."""
        return (width, height) if self.rotation in (90, 270) else (height, width)

    @property
    def nominal_rate(self) -> Fraction:
        return self.frame_rate or FALLBACK_RATE

    @property
    def estimated_frames(self) -> int | None:
        """The container's frame count, or one from the duration; None when neither is known."""
        if self.frames:
            return self.frames
        return round(self.duration * self.nominal_rate) if self.duration else None


@dataclass(frozen=True)
class OpenVideo:
    """An opened file and its film stream, set for threaded decoding."""

    source: Path
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    info: VideoInfo


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # in presentation order, from 0
    pts: int  # in the stream's time base, strictly increasing (FrameClock)
    time: float  # seconds from the stream's start
    frame: av.VideoFrame  # as stored: turn it with upright()


class DamagedVideo(InputError):
    """Decoding stopped part way: the file is damaged or truncated."""

    def __init__(self, source: Path, frames_decoded: int, reason: str) -> None:
        super().__init__(f"{source} is damaged or truncated: decoding stopped after {frames_decoded} frames ({reason})")
        self.frames_decoded = frames_decoded


def check_video_file(source: Path) -> None:
    """:class:`InputError` unless ``source`` is a non-empty regular file."""
    if source.is_dir():
        raise InputError(f"input {source} is a directory, not a video")
    if not source.exists():
        raise InputError(f"input {source} does not exist")
    if not source.is_file():
        raise InputError(f"input {source} is not a regular file")
    if source.stat().st_size == 0:
        raise InputError(f"input {source} is empty")


@contextlib.contextmanager
def open_container(source: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    """``source`` opened by FFmpeg (closed on leaving); :class:`InputError` if it is no readable video."""
    source = Path(source)
    check_video_file(source)
    try:
        container = av.open(str(source), metadata_errors="replace")
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{source} is not a readable video ({reason(exc)})") from None
    with container:
        yield container


def film_stream(container: av.container.InputContainer, source: Path) -> av.video.stream.VideoStream:
    """The film's stream: of the video streams that are not cover art or thumbnails, the one
    marked default, then the one with the most pixels, then the highest bit rate, then the first."""
    candidates = [stream for stream in container.streams.video if not stream.disposition & _NOT_THE_FILM]
    if not candidates:
        only_pictures = " (only cover art)" if container.streams.video else ""
        raise InputError(f"{source} has no video stream{only_pictures}")

    def preference(stream: av.video.stream.VideoStream) -> tuple[bool, int, int, int]:
        is_default = bool(stream.disposition & av.stream.Disposition.default)
        return is_default, (stream.width or 0) * (stream.height or 0), stream.bit_rate or 0, -stream.index

    return max(candidates, key=preference)


def probe_video(source: str | os.PathLike) -> VideoInfo:
    """Open ``source``, take its film stream and decode its first frame; :class:`InputError` if any fails."""
    source = Path(source)
    with open_container(source) as container:
        return _probe(container, film_stream(container, source), source)


@contextlib.contextmanager
def open_video(source: str | os.PathLike) -> Iterator[OpenVideo]:
    """``source`` probed (:func:`probe_video`), then opened afresh at its start for decoding."""
    source = Path(source)
    info = probe_video(source)
    with open_container(source) as container:
        stream = container.streams[info.stream_index]
        stream.thread_type = "AUTO"  # frame and slice threads, as the codec allows
        yield OpenVideo(source, container, stream, info)


def upright(pixels: np.ndarray, rotation: int) -> np.ndarray:
    """A stored (h, w, ...) frame turned upright: a view, rotated ``rotation`` degrees counter-clockwise.

    PyAV's ``VideoFrame.rotation`` counts counter-clockwise, as ``np.rot90`` turns.
    """
    return np.rot90(pixels, rotation // 90) if rotation else pixels


class FrameClock:
    """Timestamps of one video stream's frames, in decoding order (= presentation order)."""

    def __init__(self, info: VideoInfo) -> None:
        self.info = info
        self._step = max(1, round(1 / (info.nominal_rate * info.time_base)))  # one frame at the nominal rate
        self._last: int | None = None

    def pts(self, frame: av.VideoFrame) -> int:
        """The frame's timestamp in the stream's time base, made strictly increasing (encoders need it)."""
        pts = frame.pts
        if pts is None:  # e.g. raw H.264: count frames at the nominal rate
            pts = self.info.start_pts if self._last is None else self._last + self._step
        if self._last is not None and pts <= self._last:
            pts = self._last + 1
        self._last = pts
        return pts

    def seconds(self, pts: int, time_base: Fraction | None = None) -> Fraction:
        """``pts`` (in ``time_base``, by default the video's) as seconds from the video stream's start."""
        return pts * (time_base or self.info.time_base) - self.info.start_pts * self.info.time_base


def decode_frames(video: OpenVideo) -> Iterator[DecodedFrame]:
    """Every frame of the film stream in presentation order; :class:`DamagedVideo` where the file
    stops decoding, or ends before frames its index announces (a cut-off download)."""
    clock = FrameClock(video.info)
    index = 0
    try:
        for packet in video.container.demux(video.stream):
            for frame in packet.decode():
                pts = clock.pts(frame)
                yield DecodedFrame(index, pts, float(max(Fraction(0), clock.seconds(pts))), frame)
                index += 1
    except (av.FFmpegError, OSError) as exc:
        raise DamagedVideo(video.source, index, damage_reason(video.info, exc)) from None
    missing = missing_frames_reason(video.info)
    if missing is not None:
        raise DamagedVideo(video.source, index, missing)


def read_frames_at(source: str | os.PathLike, times: Sequence[float]) -> list[tuple[float, np.ndarray]]:
    """The frame on screen at each of ``times`` (seconds from the video's start), upright RGB uint8.

    Returns ``(time of that frame, frame)`` pairs in the order of ``times``. Each frame is found by
    seeking to the keyframe before its time and decoding forward, so a few frames of a long video
    cost a few seeks, not a decode of the whole file.
    """
    with open_video(source) as video:
        try:
            return [_frame_at(video, time) for time in times]
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"{video.source} is damaged: a frame cannot be decoded ({reason(exc)})") from None


def _frame_at(video: OpenVideo, seconds: float) -> tuple[float, np.ndarray]:
    info = video.info
    video.container.seek(info.start_pts + math.floor(seconds / info.time_base), stream=video.stream)  # keyframe at or before
    shown: tuple[float, av.VideoFrame] | None = None
    frames = video.container.decode(video.stream)
    try:
        for frame in frames:
            frame_seconds = float((frame.pts - info.start_pts) * info.time_base) if frame.pts is not None else seconds
            if shown is not None and frame_seconds > seconds:
                break  # the previous frame is the one on screen at `seconds`
            shown = (frame_seconds, frame)
            if frame_seconds >= seconds:
                break
    finally:
        frames.close()
    if shown is None:
        raise InputError(f"{video.source}: no video frame at {seconds:.2f} s")
    frame_seconds, frame = shown
    rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)  # (h, w, 3) as stored
    return frame_seconds, np.ascontiguousarray(upright(rgb, info.rotation))


def missing_frames_reason(info: VideoInfo) -> str | None:
    """Why a demuxer that ran out of file ran out of it early, from the container's index; None if it did not."""
    if not info.missing_frames:
        return None
    return f"{info.missing_frames} of {info.frames} frames lie beyond the end of the file"


def damage_reason(info: VideoInfo, exc: BaseException) -> str:
    """Why decoding failed: a cut-off file if the index says so (the decoder then fails, or not,
    on the last partial packet depending on its threads), else the error itself."""
    return missing_frames_reason(info) or reason(exc)


def shortfall_warning(source: Path, frames_decoded: int, info: VideoInfo) -> str | None:
    """A warning when the whole file gave fewer frames than the container announces (truncated?)."""
    if info.frames:
        if frames_decoded < info.frames:
            return f"{source}: decoded {frames_decoded} frames where the container announces {info.frames}; the file may be truncated"
    elif info.estimated_frames and frames_decoded < (1 - _ESTIMATE_SLACK) * info.estimated_frames:
        return (
            f"{source}: decoded {frames_decoded} frames where the container's duration announces about "
            f"{info.estimated_frames}; the file may be truncated"
        )
    return None


def reason(exc: BaseException) -> str:
    """An FFmpeg or OS error in a few words."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _probe(container: av.container.InputContainer, stream: av.video.stream.VideoStream, source: Path) -> VideoInfo:
    frames = container.decode(stream)
    try:
        first = next(frames, None)
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{source} is damaged: its first video frame cannot be decoded ({reason(exc)})") from None
    finally:
        frames.close()  # before the container closes: the generator holds its demuxer
    if first is None:
        raise InputError(f"{source} has no video frames")
    warnings = []
    rotation = first.rotation
    quarter_turns = round(rotation / 90) * 90 % 360
    if abs(((rotation - quarter_turns) + 180) % 360 - 180) > 1:
        warnings.append(f"the rotation of {rotation} degrees is not a multiple of 90 and is ignored")
        quarter_turns = 0
    time_base = stream.time_base or _FALLBACK_TIME_BASE
    duration = None
    if stream.duration is not None:
        duration = float(stream.duration * time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return VideoInfo(
        stream_index=stream.index,
        codec=stream.codec_context.name,
        width=first.width,
        height=first.height,
        rotation=quarter_turns,
        sample_aspect_ratio=Fraction(sar) if sar and sar > 0 and sar != 1 else None,
        time_base=time_base,
        frame_rate=stream.average_rate or stream.guessed_rate or stream.base_rate,
        start_pts=stream.start_time if stream.start_time is not None else (first.pts or 0),
        duration=duration,
        frames=stream.frames or 0,
        missing_frames=_frames_beyond_end_of_file(stream, source),
        warnings=tuple(warnings),
    )


def _frames_beyond_end_of_file(stream: av.video.stream.VideoStream, source: Path) -> int:
    """Frames whose data the index (mp4/mov: every sample) places past the end of the file.

    A truncated file often just ends: the demuxer stops without an error, so the index is what
    tells a cut-off download from a short video.
    """
    size = source.stat().st_size
    entries = stream.index_entries
    return sum(1 for i in range(len(entries)) if entries[i].size and entries[i].pos + entries[i].size > size)
