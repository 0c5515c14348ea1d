"""Segments of a video: cut at key frames, rendered separately into parts, joined losslessly.

* :func:`plan_segments` reads the film stream's packets only (no decoding) and cuts the frames of
  the job (--start/--end honoured) at source key frames: a segment is [key frame, next cut).
* :func:`render_part` is the unit of work: a plain, picklable, top-level call (``PartSpec`` in,
  ``PartResult`` out) that any execution backend can run (a local process, a Ray task). The
  source and the part may be paths or bytes (:func:`cut_source` makes the bytes a segment needs).
* :func:`join_parts` stream-copies the parts' packets in order into the destination, with the
  audio and subtitle streams written once from the source through the single-process path's
  :class:`~animevid.video.side_streams.SideWriter`: the same packets, copied or re-encoded alike.
  Every part starts with a key frame of the output, so there is no seam.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import io
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ..errors import InputError, OutputError, UsageError
from ..fileio import atomic_path, hash_file, sha256_hex
from ..options import InferenceOptions, VideoOptions
from .reader import open_container, open_video, reason
from .side_streams import SideWriter

Source = str | bytes  # a path, or the bytes of a container (cut_source)


@dataclass(frozen=True)
class Segment:
    """Frames timed ``first <= t < end`` (seconds on the film stream's clock: pts × time base)."""

    index: int
    first: Fraction
    end: Fraction | None  # None: to the end of the video
    frames: int
    warmup_first: Fraction | None = None  # with deflicker: the frames from here to ``first`` warm its state up


@dataclass(frozen=True)
class SegmentPlan:
    shift: Fraction  # seconds subtracted from every timestamp (the first frame's time with --start, else 0)
    time_base: Fraction  # of the film stream, and of the output's video stream
    segments: tuple[Segment, ...]

    @property
    def frames(self) -> int:
        return sum(segment.frames for segment in self.segments)


def plan_segments(source: str | os.PathLike, options: VideoOptions, count: int) -> SegmentPlan:
    """At most ``count`` segments of about equal frame counts, each starting on a source key frame.

    Fewer when the video has fewer key frames. :class:`UsageError` when the film stream's packets
    carry no timestamps (raw streams): such a video cannot be cut, only stylized in one piece.
    """
    with open_video(source) as video:
        info = video.info
        try:
            packets = [(packet.pts, packet.is_keyframe) for packet in video.container.demux(video.stream) if packet.size]
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"{source} is damaged: its packets cannot be read ({reason(exc)})") from None
    if any(pts is None for pts, _ in packets):
        raise UsageError(f"{source} has video packets without timestamps: it cannot be cut into segments")
    tb = info.time_base
    origin = info.start_pts * tb
    lowest = origin + Fraction(options.start or 0)
    end = None if options.end is None else origin + Fraction(options.end)
    times = sorted(pts for pts, _ in packets)  # presentation order
    kept = [pts for pts in times if pts * tb >= lowest and (end is None or pts * tb < end)]
    if not kept:
        raise InputError(f"{source} has no video frames in the requested range")
    keys = sorted({pts for pts, key in packets if key and kept[0] < pts <= kept[-1]})
    positions = [bisect.bisect_left(kept, pts) for pts in keys]  # index of each key frame among the kept frames
    cuts = [0]
    for part in range(1, count):
        target = part * len(kept) / count
        at = bisect.bisect_left(positions, target)
        near = [i for i in (at - 1, at) if 0 <= i < len(positions)]
        if not near:
            continue
        best = positions[min(near, key=lambda i: abs(positions[i] - target))]
        if best > cuts[-1]:
            cuts.append(best)
    bounds = [*cuts, len(kept)]
    warmup = 0
    if options.deflicker:
        from .temporal import warmup_frames

        warmup = warmup_frames(options.deflicker_strength)
    segments = tuple(
        Segment(
            i, kept[a] * tb, kept[b] * tb if b < len(kept) else end, b - a,
            kept[max(0, a - warmup)] * tb if a > 0 and warmup else None,
        )
        for i, (a, b) in enumerate(zip(bounds, bounds[1:]))
    )  # fmt: skip
    shift = kept[0] * tb if options.start is not None else Fraction(0)
    return SegmentPlan(shift, tb, segments)


# -- rendering one part: the unit of work of every backend ------------------------------------------


@dataclass(frozen=True)
class PartSpec:
    """Everything one part needs, picklable: a worker without the driver's disk can run it given bytes."""

    index: int
    source: Source  # the video's path, or a container's bytes (cut_source) holding the segment
    weights: Source  # generator weights: a path, or the file's bytes
    inference: InferenceOptions  # device included
    video: VideoOptions
    first: Fraction
    end: Fraction | None
    shift: Fraction
    global_header: bool  # whether the destination container wants parameter sets in the extradata
    part: str | None = None  # write the part here (atomically); None: return its bytes
    rotation: int | None = None  # the source's rotation, when ``source`` is a cut (NUT keeps none)
    warmup_first: Fraction | None = None  # Segment.warmup_first: decoded and stylized from here, written from ``first``

    @property
    def decode_from(self) -> Fraction:
        return self.first if self.warmup_first is None else self.warmup_first


@dataclass(frozen=True)
class PartResult:
    index: int
    frames: int
    seconds: float
    sha256: str  # of the part file
    worker: str  # e.g. "cpu pid 1234" or "cuda:1 pid 1234"
    durations: tuple[Fraction, ...]  # seconds, of each packet in the part (join_parts needs them)
    data: bytes | None = None  # the part, when the spec gave no path


_STYLIZERS: dict[tuple, object] = {}  # per worker process: weights are loaded once, whatever the number of parts


def render_part(spec: PartSpec, report: Callable[[int, int], None] | None = None) -> PartResult:
    """Stylize one segment into a part (see :func:`animevid.video.pipeline.stylize_part`).

    ``report(index, frames)`` is called as frames are encoded. The generator is built once per
    process and weights, then reused by every later part.
    """
    from ..engine.stylizer import Stylizer
    from .pipeline import Window, stylize_part

    started = time.perf_counter()
    with _as_path(spec.weights, ".safetensors") as weights, _as_path(spec.source, ".nut") as source:
        key = (str(weights) if isinstance(spec.weights, str) else sha256_hex(spec.weights), spec.inference)
        if key not in _STYLIZERS:
            _STYLIZERS.clear()
            _STYLIZERS[key] = Stylizer.from_weights(weights, spec.inference)
        stylizer = _STYLIZERS[key]
        cut = not isinstance(spec.source, (str, os.PathLike))
        window = Window(spec.first, spec.end, spec.shift, spec.global_header, spec.rotation, seek=not cut, warmup_first=spec.warmup_first)
        callback = (lambda count: report(spec.index, count)) if report is not None else None
        with _part_path(spec.part) as part:
            rendered = stylize_part(stylizer, source, part, spec.video, window, report=callback)
            digest = hash_file(part)
            data = None if spec.part is not None else part.read_bytes()
    worker = f"{stylizer.device} pid {os.getpid()}"
    seconds = time.perf_counter() - started
    return PartResult(spec.index, rendered.frames, seconds, digest, worker, rendered.durations, data)


@contextlib.contextmanager
def _as_path(source: Source, suffix: str) -> Iterator[Path]:
    if isinstance(source, (str, os.PathLike)):
        yield Path(source)
        return
    with tempfile.TemporaryDirectory(prefix="animevid-") as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(source)
        yield path


@contextlib.contextmanager
def _part_path(part: str | None) -> Iterator[Path]:
    if part is not None:
        yield Path(part)
        return
    with tempfile.TemporaryDirectory(prefix="animevid-") as folder:
        yield Path(folder) / "part.nut"


def cut_source(source: str | os.PathLike, first: Fraction, end: Fraction | None) -> bytes:
    """The film stream's packets a segment needs, stream-copied into an in-memory NUT container.

    NUT keeps no rotation: give the worker the source's (``PartSpec.rotation``).
    From the key frame at or before ``first`` up to the first key frame at or after ``end``
    (decoding order), and the packets after it that are shown before ``end`` (open GOPs). Packet
    timestamps are kept (NUT's time base is a multiple of the source's: exact), so the segment's
    bounds mean the same in the cut.
    """
    from .pipeline import PART_FORMAT, PART_OPTIONS

    buffer = io.BytesIO()
    with open_video(source) as video, av.open(buffer, "w", format=PART_FORMAT, container_options=dict(PART_OPTIONS)) as output:
        stream, tb = video.stream, video.info.time_base
        out = output.add_stream_from_template(stream)
        video.container.seek(math.floor(first / tb), stream=stream)
        past_end = False
        for packet in video.container.demux(stream):
            if not packet.size or packet.pts is None:
                continue
            if past_end:
                if packet.pts * tb >= end:
                    break
            elif end is not None and packet.is_keyframe and packet.pts * tb >= end:
                past_end = True  # kept: the frames shown before it may be decoded from it
            packet.stream = out
            output.mux(packet)
    return buffer.getvalue()


# -- the join ---------------------------------------------------------------------------------------


def join_parts(
    source: str | os.PathLike, destination: str | os.PathLike, parts: Sequence[str | os.PathLike | bytes],
    durations: Sequence[Sequence[Fraction]], options: VideoOptions, *, overwrite: bool = False,
) -> int:  # fmt: skip
    """Stream-copy ``parts`` (in order) into ``destination`` with the source's audio and subtitles; return the frame count.

    ``durations``: per part, its packets' durations in seconds (``PartResult.durations``).
    The video packets are copied untouched (timestamps rescaled exactly to the source's time
    base; decoding timestamps recomputed to be monotonic across the joins); the audio and
    subtitles are written as :func:`animevid.video.pipeline.stylize_video` writes them for the
    same ``options`` (the same packets cut and shifted, through the same
    :class:`~animevid.video.side_streams.SideWriter`). The destination is
    written atomically and never overwritten unless ``overwrite``.
    """
    from .pipeline import _plan, container_options

    source, destination = Path(source), Path(destination)
    plan = _plan(source, destination, options, overwrite)
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(_open_part(part)) for part in parts]
        _check_parts(opened)
        tmp = stack.enter_context(atomic_path(destination))
        src = stack.enter_context(open_container(source))
        try:
            output = stack.enter_context(av.open(str(tmp), "w", format=plan.output_format, container_options=container_options(plan)))
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {destination}: {reason(exc)}") from None
        video_out = output.add_stream_from_template(opened[0].streams.video[0])
        video_out.time_base = plan.info.time_base
        writer = SideWriter(output, plan.side, src.streams)
        orders = [_presentation_order(part, index, video_out.time_base) for index, part in enumerate(parts)]
        video = _video_packets(opened, orders, durations, video_out)
        side = _side_packets(src, plan, options, writer)
        frames = 0
        try:
            for _, _, packet in heapq.merge(video, side, key=lambda item: (item[0], item[1])):
                frames += packet.stream is video_out
                output.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {destination}: {reason(exc)}") from None
    return frames


@contextlib.contextmanager
def _open_part(part: str | os.PathLike | bytes) -> Iterator[av.container.InputContainer]:
    try:
        container = av.open(io.BytesIO(part) if isinstance(part, bytes) else str(part))
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"part {'(bytes)' if isinstance(part, bytes) else part} cannot be read ({reason(exc)})") from None
    with container:
        yield container


def _check_parts(parts: list[av.container.InputContainer]) -> None:
    first = parts[0].streams.video[0].codec_context
    for index, part in enumerate(parts):
        context = part.streams.video[0].codec_context
        if (context.name, context.width, context.height, context.extradata) != (first.name, first.width, first.height, first.extradata):
            raise OutputError(f"part {index} was encoded differently from part 0; they cannot be joined")


def _video_packets(
    parts: list[av.container.InputContainer], orders: list[list[int]], durations: Sequence[Sequence[Fraction]],
    video_out: av.stream.Stream,
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    """Every part's packets with pts and durations in the output's time base.

    Decoding timestamps are recomputed as one libx264 instance sets them over the whole video:
    the i-th smallest pts less the delay of the first frames (the ones of the first ``depth``
    frames, ``depth`` the reordering depth): monotonic across the joins, B-frames included.
    """
    tb = video_out.time_base
    depth = max(max(_reorder_depth(order), part.streams.video[0].codec_context.reorder_depth) for order, part in zip(orders, parts))
    first = sorted(orders[0])
    delay = first[min(depth, len(first) - 1)] - first[0]
    held: list[av.Packet] = []  # read ahead: the i-th smallest pts is known once depth more packets are
    smallest: list[int] = []
    for index, (part, part_durations) in enumerate(zip(parts, durations, strict=True)):
        packets = [packet for packet in part.demux(part.streams.video[0]) if packet.size]
        if len(packets) != len(part_durations):
            raise OutputError(f"part {index} holds {len(packets)} packets where {len(part_durations)} were written")
        for packet, duration in zip(packets, part_durations):
            packet.pts = _exact(packet.pts, packet.time_base, tb)
            packet.duration = round(duration / tb)  # as the single-process muxer would round them
            packet.time_base = tb
            packet.stream = video_out
            heapq.heappush(smallest, packet.pts)
            held.append(packet)
            if len(held) > depth:
                yield _with_dts(held.pop(0), heapq.heappop(smallest) - delay, tb)
    for packet in held:
        yield _with_dts(packet, heapq.heappop(smallest) - delay, tb)


def _with_dts(packet: av.Packet, dts: int, tb: Fraction) -> tuple[Fraction, int, av.Packet]:
    packet.dts = dts
    return dts * tb, 0, packet


def _presentation_order(part: str | os.PathLike | bytes, index: int, tb: Fraction) -> list[int]:
    """The part's pts in decoding order (output time base); checks that it starts with a key frame.

    Read from a container of its own: NUT cannot seek back in a part whose first decoding times
    are negative (B-frames), so the part is opened again rather than rewound.
    """
    with _open_part(part) as container:
        stream = container.streams.video[0]
        packets = [(packet.pts, packet.is_keyframe, packet.time_base) for packet in container.demux(stream) if packet.size]
    if not packets or not packets[0][1]:
        raise OutputError(f"part {index} does not start with a key frame")
    return [_exact(pts, time_base, tb) for pts, _, time_base in packets]


def _reorder_depth(order: list[int]) -> int:
    """The least d such that the i-th packet's pts is at least the (i - d)-th smallest."""
    ranks = {pts: rank for rank, pts in enumerate(sorted(order))}
    return max([0, *(i - ranks[pts] for i, pts in enumerate(order))])


def _exact(value: int, time_base: Fraction, target: Fraction) -> int:
    scaled = value * time_base / target
    if scaled.denominator != 1:
        raise OutputError(f"a timestamp of {value} x {time_base} s is not a whole number of {target} s")
    return int(scaled)


def _side_packets(
    source: av.container.InputContainer, plan, options: VideoOptions, writer: SideWriter
) -> Iterator[tuple[Fraction, int, av.Packet]]:
    """The audio and subtitle packets the single-process path writes (animevid.video.pipeline._Decoder): the
    same source packets, shifted as it shifts them, through ``writer``; then what its codecs held."""
    if not plan.side:
        return
    info = plan.info
    origin = info.start_pts * info.time_base
    shift: Fraction | None = Fraction(0)
    if options.start is not None:
        shift = plan_segments_shift(source, info, options)
        source.seek(info.start_pts + math.floor(options.start / info.time_base), stream=source.streams[info.stream_index])
    closed: set[int] = set()
    for packet in source.demux([source.streams[side.index] for side in plan.side]):
        index = packet.stream.index
        if not packet.size or index in closed or (packet.pts is None and packet.dts is None):
            continue
        start = packet.pts if packet.pts is not None else packet.dts
        if options.end is not None and start * packet.time_base - origin >= options.end:
            closed.add(index)
            continue
        if options.start is not None and start * packet.time_base < shift:
            continue
        ticks = round(shift / packet.time_base)
        if packet.pts is not None:
            packet.pts -= ticks
        if packet.dts is not None:
            packet.dts -= ticks
        yield from _timed(writer.packets(packet))
    yield from _timed(writer.flush())


def _timed(packets: list[av.Packet]) -> Iterator[tuple[Fraction, int, av.Packet]]:
    for packet in packets:
        timing = packet.dts if packet.dts is not None else packet.pts
        yield timing * packet.time_base, 1, packet


def plan_segments_shift(source: av.container.InputContainer, info, options: VideoOptions) -> Fraction:
    """The time of the first video frame at or after --start, from the packets' timestamps (no decoding)."""
    stream = source.streams[info.stream_index]
    lowest = info.start_pts * info.time_base + Fraction(options.start or 0)
    end = None if options.end is None else info.start_pts * info.time_base + Fraction(options.end)
    times = [p.pts * info.time_base for p in source.demux(stream) if p.size and p.pts is not None]
    source.seek(0)
    kept = [t for t in times if t >= lowest and (end is None or t < end)]
    if not kept:
        raise InputError("no video frames in the requested range")
    return min(kept)
