"""Videos: decode → stylize in batches → encode, streaming, with memory bounded whatever the length.

Three stages run at once, joined by bounded queues and fixed pools of reusable frame buffers, so
a slow stage makes the others wait instead of piling frames up in memory:

* a decoder thread demuxes and decodes with PyAV (the file opened, its film stream chosen and
  its frames timed by :mod:`animevid.video.reader`), turns every frame upright (rotation metadata
  is applied to the pixels), pads odd sides to even ones (yuv420p) and fills host buffers
  (pinned on CUDA);
* the calling thread runs the generator (:meth:`Stylizer.run_batches`: on CUDA the upload of
  batch n+1 and the download of batch n overlap the generator on batch n);
* an encoder thread encodes every frame with its source timestamp (libx264, yuv420p by default)
  and writes the audio and subtitle packets through :class:`~animevid.video.side_streams.SideWriter`:
  copied untouched where the container takes them, else re-encoded (decided in the plan).

A failure in any stage stops all of them and is raised once, in the calling thread. The output
is written to a temporary file beside the destination and renamed only on success; with
``keep_partial`` an interrupted job (Ctrl-C, SIGTERM) or a damaged input still ends with a
playable file holding the frames done so far.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from .colour import Yuv420Layout, device_conversion_matches_host, is_full_range, matrix_for
from ..errors import Cancelled, DeviceError, InputError, Interrupted, OutputError, UsageError
from ..fileio import atomic_path, check_destination
from ..options import DEFAULT_PRESET, VideoOptions
from ..progress import JobHooks, ProgressReporter
from ..result import StylizeResult
from ..engine.tuning import CUDA as CUDA_TUNING
from ..engine.stylizer import FrameBatch, HostBufferPool, PipelineCancelled, StylizedBatch, Stylizer
from .reader import DamagedVideo, FrameClock, VideoInfo, damage_reason, missing_frames_reason, open_video, reason, shortfall_warning, upright
from .side_streams import SideStream, SideWriter, plan_side_streams
from .temporal import Blender, Motion, MotionEstimator
from .temporal_torch import TorchBlender

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
QUEUE_BATCHES = 2  # batches waiting between two stages; with the buffer pools this bounds memory
_POLL_SECONDS = 0.05  # how often a blocked stage checks whether another one has stopped the job


def check_video_job(
    source: str | os.PathLike, destination: str | os.PathLike, options: VideoOptions | None = None, *, overwrite: bool = False
) -> int | None:
    """Refuse everything that can be refused before any work (and before loading weights).

    Returns the number of frames the job will stylize, or None when the container does not say.
    """
    return _plan(Path(source), Path(destination), options or VideoOptions(), overwrite).expected_frames


def stylize_video(
    stylizer: Stylizer,
    source: str | os.PathLike,
    destination: str | os.PathLike,
    options: VideoOptions | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    bar: ProgressReporter | None = None,
    hooks: JobHooks | None = None,
) -> StylizeResult:
    """Stylize every frame of ``source`` into the video file ``destination``.

    Frames keep their source timestamps (variable frame rate included); audio and subtitle
    streams are copied packet for packet where the output container takes them, else re-encoded
    to its usual codec with a warning (subtitles that cannot be are dropped with a warning; see
    :mod:`animevid.video.side_streams`); rotation metadata is applied to the pixels, so the output is
    upright without metadata; odd sides are padded to even by repeating the last row or column.
    The destination is never overwritten unless ``overwrite``, is refused if it is the source,
    and never receives a half-written file unless ``options.keep_partial``. ``bar``: count the
    frames on this (open) progress bar, e.g. a folder job's, instead of one of the video's own. ``hooks``:
    progress reported to a callback, and a cancel asked between batches (:class:`Cancelled`, nothing
    written unless ``options.keep_partial``). One encoder:
    ``options.encoders`` > 1 is :func:`animevid.video.chunked.stylize_video_chunked` (UsageError here).
    """
    options = options or VideoOptions()
    if options.encoders > 1:
        raise UsageError("stylize_video runs one encoder: animevid.video.chunked.stylize_video_chunked runs several")
    return run_video_job(
        stylizer, source, destination, options, overwrite,
        lambda plan, batch_size: _VideoJob(stylizer, plan, options, batch_size, progress, bar=bar, hooks=hooks).run(),
    )  # fmt: skip


def run_video_job(
    stylizer: Stylizer, source: str | os.PathLike, destination: str | os.PathLike, options: VideoOptions, overwrite: bool,
    run: Callable[[_Plan, int], int],
) -> StylizeResult:  # fmt: skip
    """Plan the job (refusing what can be refused), then ``run(plan, batch_size)`` -> frames, Ctrl-C and SIGTERM made :class:`Interrupted`."""
    source, destination = Path(source), Path(destination)
    plan = _plan(source, destination, options, overwrite)
    for warning in plan.warnings:
        logger.warning(warning)
    height, width = plan.frame_size
    batch_size = options.batch_size or stylizer.default_batch_size(height, width)
    stylizer.memory_plan(height, width, batch_size)  # refuses a frame size that cannot fit, before any work
    started = time.perf_counter()
    try:
        with _sigterm_raises_keyboard_interrupt():
            frames = run(plan, batch_size)
    except _Terminated:
        raise Interrupted(f"terminated (SIGTERM); nothing was written to {destination}") from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; nothing was written to {destination}") from None
    return StylizeResult(
        "video", frames, time.perf_counter() - started, str(stylizer.device), stylizer.dtype_label, batch_size,
        engine=stylizer.engine_for(height, width, batch_size), deflicker=options.deflicker_summary(),
    )


# -- planning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    source: Path
    destination: Path
    output_format: str
    info: VideoInfo
    side: tuple[SideStream, ...]  # the audio and subtitle streams written: copied or re-encoded
    pixel_format: str
    frame_size: tuple[int, int]  # (height, width) written: upright, padded to what the pixel format needs
    warnings: tuple[str, ...]
    expected_frames: int | None
    window: Window | None = None  # set for a segment's part (animevid.video.segments): which frames, how shifted


@dataclass(frozen=True)
class Window:
    """The frames of one segment, on the stream's own clock (pts × time base, exact), and where its part goes.

    Replaces --start/--end for the decoder: the frames kept are those timed ``first <= t < end``,
    written at ``t - shift``; only the film's stream is read. ``global_header``: whether the part's
    encoder puts its parameter sets in the extradata (as the final container needs) or in-band.
    """

    first: Fraction
    end: Fraction | None
    shift: Fraction
    global_header: bool
    rotation: int | None = None  # the source's, where the input is a cut (cut_source) that could not keep it
    # A cut begins at the segment's key frame, so it is read from its start: NUT cannot seek in a
    # cut whose first decoding times were negative (B-frames; they read back as unknown).
    seek: bool = True
    # With deflicker: frames from here to ``first`` are decoded and stylized to warm the temporal
    # state up as the single process has it there, and not written (no seam at the join).
    warmup_first: Fraction | None = None

    @property
    def decode_from(self) -> Fraction:
        return self.first if self.warmup_first is None else self.warmup_first


def _plan(source: Path, destination: Path, options: VideoOptions, overwrite: bool) -> _Plan:
    if destination.is_dir():
        raise OutputError(f"output {destination} is a directory")
    output_format = OUTPUT_FORMATS.get(destination.suffix.lower())
    if output_format is None:
        raise UsageError(f"output {destination} must be a video file ({', '.join(OUTPUT_FORMATS)})")
    output_codecs = _supported_codecs(output_format)
    with open_video(source) as video:
        info = video.info
        warnings = list(info.warnings)
        check_destination(destination, overwrite, source)
        if options.codec not in output_codecs:
            raise UsageError(f"{destination.suffix} files cannot hold {options.codec} video; choose another --codec or container")
        side = plan_side_streams(video.container, video.stream.index, output_format, destination.suffix)
        warnings += side.warnings
    if options.start is not None and info.duration is not None and options.start >= info.duration:
        raise UsageError(f"--start {options.start:g} s is not before the end of the video ({info.duration:.2f} s)")
    pixel_format, frame_size = _frame_layout(info, options.codec, warnings)
    return _Plan(
        source, destination, output_format, info, side.streams, pixel_format, frame_size, tuple(warnings),
        _expected_frames(info, options),
    )  # fmt: skip


def _frame_layout(info: VideoInfo, codec: str, warnings: list[str]) -> tuple[str, tuple[int, int]]:
    """The pixel format written and the (height, width) of the frames: upright, padded as it needs."""
    pixel_format = _pixel_format(codec)
    height, width = info.upright_size
    pad_h, pad_w = _chroma_alignment(pixel_format)
    frame_size = (height + (-height % pad_h), width + (-width % pad_w))
    if frame_size != (height, width):
        warnings.append(
            f"{pixel_format} needs even sides: the {width}x{height} frames are written as "
            f"{frame_size[1]}x{frame_size[0]} (last row/column repeated)"
        )
    return pixel_format, frame_size


PART_FORMAT = "nut"  # parts keep any time base exactly (matroska rounds to ms)
PART_OPTIONS = {"avoid_negative_ts": "disabled"}  # timestamps as given: never shifted to make a decoding time >= 0


def stylize_part(
    stylizer: Stylizer, source: str | os.PathLike, part: str | os.PathLike, options: VideoOptions, window: Window,
    *, report: Callable[[int], None] | None = None,
) -> PartFrames:  # fmt: skip
    """Stylize the frames of ``window`` into ``part``, a video-only NUT file written atomically.

    Returns the frame count and the packets' durations, which NUT does not store.

    Frames are encoded exactly as :func:`stylize_video` encodes them (codec, options, pixel
    format, upright, padded), each with its timestamp shifted by ``window.shift``; the part's first
    frame is a key frame. ``report`` is called with frame counts as they are encoded.
    """
    source, part = Path(source), Path(part)
    with open_video(source) as video:
        info = video.info
    if window.rotation is not None:
        info = dataclasses.replace(info, rotation=window.rotation)
    warnings: list[str] = []
    pixel_format, frame_size = _frame_layout(info, options.codec, warnings)
    plan = _Plan(source, part, PART_FORMAT, info, (), pixel_format, frame_size, (), None, window)
    options = dataclasses.replace(options, keep_partial=False, start=None, end=None)
    batch_size = options.batch_size or stylizer.default_batch_size(*frame_size)
    stylizer.memory_plan(*frame_size, batch_size)
    job = _VideoJob(stylizer, plan, options, batch_size, False, report=report)
    frames = job.run()
    return PartFrames(frames, tuple(d * info.time_base for d in job.encoder.muxed_durations))


@dataclass(frozen=True)
class PartFrames:
    frames: int
    durations: tuple[Fraction, ...]  # seconds, of each video packet of the part in file order


_SUPPORTED_CODECS: dict[str, set[str]] = {}


def _supported_codecs(output_format: str) -> set[str]:
    if output_format not in _SUPPORTED_CODECS:
        with av.open(io.BytesIO(), "w", format=output_format) as probe:
            _SUPPORTED_CODECS[output_format] = set(probe.supported_codecs)
    return _SUPPORTED_CODECS[output_format]


def _pixel_format(codec_name: str) -> str:
    formats = [f.name for f in av.Codec(codec_name, "w").video_formats or ()]
    return "yuv420p" if "yuv420p" in formats or not formats else formats[0]


def _chroma_alignment(pixel_format: str) -> tuple[int, int]:
    """(rows, columns) a frame's sides must be multiples of, from the chroma subsampling."""
    probe = av.VideoFormat(pixel_format, 4, 4)
    chroma = probe.components[1] if len(probe.components) > 2 else probe.components[0]
    return 4 // chroma.height, 4 // chroma.width


def _expected_frames(info: VideoInfo, options: VideoOptions) -> int | None:
    if options.start is None and options.end is None and info.frames:
        return info.frames
    if info.duration is None or not info.frame_rate:
        return None
    end = info.duration if options.end is None else min(options.end, info.duration)
    return max(0, round((end - (options.start or 0)) * info.frame_rate))


# -- the pipeline ----------------------------------------------------------------------------------


def container_options(plan: _Plan) -> dict[str, str]:
    if plan.output_format == PART_FORMAT:
        return dict(PART_OPTIONS)
    # The index up front lets players start before the whole file has arrived.
    return {"movflags": "+faststart"} if plan.output_format in ("mp4", "mov") else {}


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same clean stop as Ctrl-C."""


@contextlib.contextmanager
def _sigterm_raises_keyboard_interrupt() -> Iterator[None]:
    """While the job runs, SIGTERM stops it like Ctrl-C; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be installed from the main thread; the caller owns signals there
        return

    def on_sigterm(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stages:
    """Shared stop flag and first error of a pipeline's stages; bounded, cancellable queue ops."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:  # the first failure is the one reported; the rest follow from it
                self.error = error
        self.stop.set()

    def put(self, channel: queue.Queue, item: object) -> None:
        while True:
            if self.stop.is_set():
                raise PipelineCancelled
            try:
                channel.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def get(self, channel: queue.Queue) -> object:
        while True:
            if self.stop.is_set():
                raise PipelineCancelled
            try:
                return channel.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue

    def spawn(self, target: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except PipelineCancelled:
                pass
            except BaseException as exc:  # re-raised in the calling thread by the job
                self.fail(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread


_END = object()  # end of stream, after the last batch


@dataclass
class _BatchContext:
    """What travels with a batch of frames from the decoder to the encoder."""

    pts: list[int]  # output timestamps of the frames, in the video time base
    durations: list[int]  # frame durations from the source (0: unknown), same time base
    side_packets: list[av.Packet]  # audio/subtitle packets demuxed up to these frames, already shifted
    motions: list[Motion] | None = None  # with deflicker: each frame's motion from the previous source frame
    warmup: bool = False  # frames that only warm the deflicker state up: blended, never written


@dataclass
class _Outcome:
    frames: int
    error: BaseException | None
    finalize: bool  # write the trailer and move the file to the destination


def add_video_stream(
    plan: _Plan, options: VideoOptions, video_in: av.video.stream.VideoStream, output: av.container.OutputContainer,
    global_header: bool | None, threads: int | None, default_preset: str = DEFAULT_PRESET,
) -> av.video.stream.VideoStream:  # fmt: skip
    """The output's video stream as every encoder of a job sets it up: codec, options, size, time base, colours.

    ``global_header``: parameter sets in the extradata (True), in-band (False), or as the muxer
    asks (None). ``threads``: the encoder's threads; None or 0: FFmpeg's choice. ``default_preset``:
    the preset when the options give none (on CUDA, animevid.engine.tuning's).
    """
    info = plan.info
    try:
        video_out = output.add_stream(options.codec, rate=info.nominal_rate, options=options.encoder_options(default_preset))
    except (av.FFmpegError, ValueError) as exc:
        raise OutputError(f"cannot set up the {options.codec} encoder: {reason(exc)}") from None
    video_out.height, video_out.width = plan.frame_size
    video_out.pix_fmt = plan.pixel_format
    # Timestamps are copied from the source frames: the output counts in the source's units.
    video_out.time_base = info.time_base
    video_out.codec_context.time_base = info.time_base
    if global_header is not None:  # a part: parameter sets where the final container wants them
        flags = video_out.codec_context.flags
        flag = av.codec.context.Flags.global_header
        video_out.codec_context.flags = flags | flag if global_header else flags & ~flag
    if threads:
        video_out.codec_context.thread_count = threads
    context_in, context_out = video_in.codec_context, video_out.codec_context
    sar = context_in.sample_aspect_ratio
    if sar:
        context_out.sample_aspect_ratio = 1 / sar if info.rotation in (90, 270) else sar
    for attribute in ("colorspace", "color_primaries", "color_trc"):
        with contextlib.suppress(AttributeError, ValueError, TypeError):
            setattr(context_out, attribute, getattr(context_in, attribute))
    return video_out


class _VideoJob:
    def __init__(
        self, stylizer: Stylizer, plan: _Plan, options: VideoOptions, batch_size: int, progress: bool,
        report: Callable[[int], None] | None = None, bar: ProgressReporter | None = None, hooks: JobHooks | None = None,
    ) -> None:  # fmt: skip
        self.stylizer = stylizer
        self.plan = plan
        self.options = options
        self.batch_size = batch_size
        self.progress = progress
        self.report = report  # called with each batch's frame count once encoded (a segment worker's parent bar)
        self.bar = bar  # the caller's open bar (a folder job's), instead of one of our own
        self.hooks = hooks or JobHooks()

    def run(self) -> int:
        plan = self.plan
        with atomic_path(plan.destination) as tmp, open_video(plan.source) as video:
            source = video.container
            try:
                output = av.open(str(tmp), "w", format=plan.output_format, container_options=container_options(plan))
            except (av.FFmpegError, OSError) as exc:
                raise OutputError(f"cannot write {plan.destination}: {reason(exc)}") from None
            closed = False
            try:
                video_out, side = self._add_streams(source, output)
                layout = self._colour_layout(source.streams[plan.info.stream_index], video_out)
                encoder = self.encoder = _Encoder(plan, output, video_out, side, layout)
                outcome = self._run_stages(source, encoder, layout)
                if not outcome.finalize:
                    raise outcome.error
                try:
                    encoder.mux_video(video_out.encode(None))  # flush the encoder's delayed frames
                    output.mux(side.flush())  # and the re-encoded side streams' codecs
                    closed = True
                    output.close()  # writes the trailer (and moves the index up front for mp4/mov)
                except (av.FFmpegError, OSError) as exc:
                    raise OutputError(f"cannot write {plan.destination}: {reason(exc)}") from None
            finally:
                if not closed:
                    with contextlib.suppress(Exception):  # the error being raised says more
                        output.close()
        if outcome.error is not None:  # a partial file was kept on purpose: report why it is partial
            raise outcome.error
        return outcome.frames

    def _colour_layout(self, video_in: av.video.stream.VideoStream, video_out: av.video.stream.VideoStream) -> Yuv420Layout | None:
        """The planes layout when colours are converted on the device; None: swscale on the host."""
        wanted = self.options.colour_on_device
        if wanted is None:
            wanted = self.stylizer.uses_cuda and CUDA_TUNING.colour_on_device
        if not wanted:
            return None
        info, context = self.plan.info, video_in.codec_context
        pixel_format = context.pix_fmt or ""
        if self.plan.pixel_format != "yuv420p" or not device_conversion_matches_host(pixel_format, info.height):
            # Not 8-bit 4:2:0 of even height in, or not yuv420p out: the device would not give swscale's colours.
            logger.info("colours are converted on the host: %s %dx%d source, %s output", pixel_format, info.width, info.height, self.plan.pixel_format)
            return None
        return Yuv420Layout(
            info.height, info.width, info.rotation, *self.plan.frame_size,
            source_matrix=matrix_for(context.colorspace), source_full_range=is_full_range(context.color_range, pixel_format),
            output_matrix=matrix_for(video_out.codec_context.colorspace),
        )  # fmt: skip

    def _default_preset(self) -> str:
        return CUDA_TUNING.preset if self.stylizer.uses_cuda else DEFAULT_PRESET

    def _add_streams(self, source: av.container.InputContainer, output: av.container.OutputContainer):
        plan = self.plan
        global_header = plan.window.global_header if plan.window is not None else None
        # The CPU generator is ~1000x slower than encoding; extra encoder threads would only
        # compete with its OpenMP threads, which degrade badly when they do not get a core.
        threads = None if self.stylizer.uses_cuda else 1
        video_out = add_video_stream(plan, self.options, source.streams[plan.info.stream_index], output, global_header, threads, self._default_preset())
        return video_out, SideWriter(output, plan.side, source.streams)

    def _run_stages(
        self, source: av.container.InputContainer, encoder: _Encoder, layout: Yuv420Layout | None = None, held: int = 0,
    ) -> _Outcome:  # fmt: skip
        """Run the three stages; ``held``: batches the encoder stage holds beyond one (several encoders' queues)."""
        stages = _Stages()
        height, width = self.plan.frame_size
        cuda = self.stylizer.uses_cuda
        # Buffers in use at most: one being filled, QUEUE_BATCHES waiting, two held by the
        # generator stage (one uploaded ahead); downloads: one being filled, the queue, one encoding.
        deflicker = _deflickers(self.options)
        if deflicker:
            held += QUEUE_BATCHES + 1  # the deflicker stage's queue, and the batch it blends
        if layout is None:
            inputs = self.stylizer.buffer_pool(QUEUE_BATCHES + 3, self.batch_size, height, width)
            outputs = self.stylizer.buffer_pool(QUEUE_BATCHES + 2 + held, self.batch_size, height, width) if cuda else None
        else:  # packed YUV planes: half the bytes of RGB each way
            inputs = HostBufferPool(QUEUE_BATCHES + 3, (self.batch_size, layout.input_bytes), pin_memory=cuda)
            outputs = HostBufferPool(QUEUE_BATCHES + 2 + held, (self.batch_size, layout.output_bytes), pin_memory=True) if cuda else None
        decoded: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
        stylized: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES)
        # With deflicker the decoder thread also computes each frame's motion (it depends on the
        # source frames only, so it runs ahead, overlapping the generator); only the blend is sequential,
        # in a stage of its own between the generator and the encoder.
        # With colours converted on the device the blend runs there too, between the generator and the
        # conversion back (temporal_torch); the decoder then converts each frame to RGB for the motion
        # alone (swscale, as the host path), so both paths see the same motion.
        on_device = deflicker and layout is not None
        motion = MotionEstimator() if deflicker else None
        decoder = _Decoder(self.plan, self.options, source, self.batch_size, inputs, decoded, stages, layout, motion)
        decoder_threads = 0 if cuda else 1  # 0: FFmpeg's choice; on the CPU the cores belong to the generator
        to_encoder: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES) if deflicker else stylized
        with self._progress_bar() as bar:
            threads = [
                stages.spawn(lambda: decoder.run(decoder_threads), "animevid-decode"),
                stages.spawn(lambda: encoder.run(to_encoder, stages, _Reported(bar, self.report)), "animevid-encode"),
            ]
            after = None
            if on_device:
                after = _device_blend(TorchBlender(self.options.deflicker_strength))
            if deflicker:
                blender = None if on_device else Blender(self.options.deflicker_strength)
                threads.append(stages.spawn(lambda: _deflicker_stage(stylized, to_encoder, stages, blender), "animevid-deflicker"))
            try:
                batches = _drain(decoded, stages)
                for batch in self.stylizer.run_batches(batches, output_pool=outputs, stop=stages.stop, colour=layout, after=after):
                    self.hooks.check_cancelled()
                    stages.put(stylized, batch)
                stages.put(stylized, _END)
            except PipelineCancelled:
                pass  # another stage failed; its error is in stages.error
            except BaseException as exc:  # Ctrl-C, SIGTERM, or a failure of the generator
                stages.fail(exc)
            _join(threads, stages)
        return self._outcome(stages.error, decoder, encoder)

    def _progress_bar(self) -> contextlib.AbstractContextManager[ProgressReporter]:
        if self.bar is not None:  # the caller's, already open: it is theirs to close
            return contextlib.nullcontext(self.bar)
        return ProgressReporter("stylize", total=self.plan.expected_frames, unit="frames", enabled=self.progress, hooks=self.hooks)

    def _outcome(self, error: BaseException | None, decoder: _Decoder, encoder: _Encoder) -> _Outcome:
        written, destination, keep = encoder.frames_written, self.plan.destination, self.options.keep_partial
        if error is None and decoder.damage is not None:  # with keep_partial, the frames before it were all written
            return _Outcome(written, InputError(f"{decoder.damage}; the {written} frames before it were written to {destination}"), True)
        if error is None:
            if written == 0:
                return _Outcome(0, InputError(f"{self.plan.source} has no video frames in the requested range"), False)
            shortfall = shortfall_warning(self.plan.source, written, self.plan.info)
            if shortfall and self.options.start is None and self.options.end is None and self.plan.window is None:
                logger.warning(shortfall)
            return _Outcome(written, None, True)
        if isinstance(error, (KeyboardInterrupt, Cancelled)):
            what = "terminated (SIGTERM)" if isinstance(error, _Terminated) else "cancelled" if isinstance(error, Cancelled) else "interrupted"
            kind = Cancelled if isinstance(error, Cancelled) else Interrupted
            total = f" of {self.plan.expected_frames}" if self.plan.expected_frames else ""
            if keep and written:
                return _Outcome(written, kind(f"{what} after {written}{total} frames; they were written to {destination}"), True)
            return _Outcome(written, kind(f"{what} after {written}{total} frames; nothing was written to {destination}"), False)
        if isinstance(error, torch.cuda.OutOfMemoryError):
            return _Outcome(written, DeviceError(
                f"the {self.stylizer.device} device ran out of memory at batch size {self.batch_size}; "
                "try a smaller --batch-size or --max-side"
            ), False)  # fmt: skip
        return _Outcome(written, error, False)


class _Reported:
    """A progress bar that also tells ``report`` how many frames were encoded."""

    def __init__(self, bar: ProgressReporter, report: Callable[[int], None] | None) -> None:
        self.bar, self.report = bar, report

    def advance(self, count: int = 1) -> None:
        self.bar.advance(count)
        if self.report is not None:
            self.report(count)


def _deflickers(options: VideoOptions) -> bool:
    return options.deflicker and options.deflicker_strength > 0


def _deflicker_stage(inbox: queue.Queue, outbox: queue.Queue, stages: _Stages, blender: Blender | None) -> None:
    """Blend every stylized frame in place with the previous output (animevid.video.temporal); drop warm-up batches.

    ``blender`` None: the frames were blended on the device (:func:`_device_blend`).
    """
    while (item := stages.get(inbox)) is not _END:
        if item.count and blender is not None:
            frames = item.frames().numpy()  # waits for the download on CUDA
            for index, motion in enumerate(item.context.motions):
                frames[index] = blender(frames[index], motion)
        if item.context.warmup:
            item.release()
            continue
        stages.put(outbox, item)
    stages.put(outbox, _END)


def _device_blend(blender: TorchBlender) -> Callable[[torch.Tensor, _BatchContext], torch.Tensor]:
    """The blend as Stylizer.run_batches' ``after``: on the (count, H, W, 3) RGB frames on the device, in batch order."""

    def blend(frames: torch.Tensor, context: _BatchContext) -> torch.Tensor:
        for index, motion in enumerate(context.motions):
            frames[index] = blender(frames[index], motion)
        return frames

    return blend


def _join(threads: list[threading.Thread], stages: _Stages) -> None:
    """Wait for the worker threads, even through another Ctrl-C: they use the files being cleaned up."""
    for thread in threads:
        while thread.is_alive():
            try:
                thread.join()
            except KeyboardInterrupt as exc:
                stages.fail(exc)


def _drain(channel: queue.Queue, stages: _Stages) -> Iterator[FrameBatch[_BatchContext]]:
    while True:
        item = stages.get(channel)
        if item is _END:
            return
        yield item


class _Decoder:
    """Demuxes the source; decodes, turns upright and pads video frames into pooled buffers."""

    def __init__(
        self, plan: _Plan, options: VideoOptions, source: av.container.InputContainer, batch_size: int,
        pool: HostBufferPool, channel: queue.Queue, stages: _Stages, layout: Yuv420Layout | None = None,
        motion: MotionEstimator | None = None,
    ) -> None:  # fmt: skip
        self.plan, self.options, self.source = plan, options, source
        self.batch_size, self.pool, self.channel, self.stages = batch_size, pool, channel, stages
        self.layout = layout  # None: RGB frames (swscale here); else packed planes, converted on the device
        self.motion = motion  # with deflicker: estimates each frame's motion as it is decoded
        self._motions: list[Motion] = []
        self._warming = False  # the batch being filled holds warm-up frames (Window.warmup_first)
        self._motion_rgb: torch.Tensor | None = None  # with device colour: the frame in RGB, for the motion alone
        self.video = source.streams[plan.info.stream_index]
        self.time_base = plan.info.time_base
        self.clock = FrameClock(plan.info)  # its seconds are the clock of --start and --end
        self.frames_decoded = 0
        self.damage: DamagedVideo | None = None  # set instead of failing when keep_partial
        self._pixels: torch.Tensor | None = None  # the buffer being filled
        self._pts: list[int] = []
        self._durations: list[int] = []
        self._side: list[av.Packet] = []
        self._held: list[av.Packet] = []  # side packets seen before the first kept frame of a segment
        self._shift: Fraction | None = None if options.start is not None else Fraction(0)  # seconds
        self.window = plan.window
        self._resized_warned = False

    def run(self, threads: int) -> None:
        self.video.codec_context.thread_count = threads  # thread_type is AUTO (open_video)
        side = [self.source.streams[planned.index] for planned in self.plan.side]
        streams = [self.video, *side]
        side_open = {stream.index for stream in side}  # side streams that may still have packets before --end
        video_open = True
        try:
            if self.window is not None and self.window.seek:
                self.source.seek(math.floor(self.window.decode_from / self.time_base), stream=self.video)
            elif self.options.start:
                offset = self.plan.info.start_pts + math.floor(self.options.start / self.time_base)
                self.source.seek(offset, stream=self.video)  # to the keyframe at or before --start
            for packet in self.source.demux(streams):
                if self.stages.stop.is_set():
                    raise PipelineCancelled
                if packet.stream.index == self.plan.info.stream_index:
                    if video_open:
                        video_open = self._decode(packet)
                elif packet.size:
                    if not self._side_packet(packet):
                        side_open.discard(packet.stream.index)
                if not video_open and not side_open:
                    break
            missing = missing_frames_reason(self.plan.info)
            if video_open and missing:  # the demuxer ran out of file, not of video
                self._damaged(missing)
        except (av.FFmpegError, OSError) as exc:
            self._damaged(damage_reason(self.plan.info, exc))
        self._side.extend(self._held_in_segment())
        self._emit()
        self.stages.put(self.channel, _END)

    def _damaged(self, why: str) -> None:
        damage = DamagedVideo(self.plan.source, self.frames_decoded, why)
        if not self.options.keep_partial:
            raise InputError(f"{damage}; nothing was written (--keep-partial keeps the frames before the damage)")
        self.damage = damage  # the frames before it are still written; the job reports it at the end

    def _decode(self, packet: av.Packet) -> bool:
        """Decode one packet's frames into the batch; False once past --end."""
        for frame in packet.decode():
            pts = self.clock.pts(frame)
            if self.window is not None:
                if not self._in_window(pts):
                    if self.window.end is not None and pts * self.time_base >= self.window.end:
                        return False
                    continue
                warmup = pts * self.time_base < self.window.first
                if warmup and self.motion is None:
                    continue  # nothing to warm up
                self._add_frame(frame, pts - round(self.window.shift / self.time_base), warmup)
                continue
            seconds = self.clock.seconds(pts)
            if self.options.start is not None and seconds < self.options.start:
                continue
            if self.options.end is not None and seconds >= self.options.end:
                return False
            if self._shift is None:  # the first frame of a segment starts the output at 0
                self._shift = pts * self.time_base
                self._side.extend(self._held_in_segment())
            self._add_frame(frame, pts - round(self._shift / self.time_base))
        return True

    def _in_window(self, pts: int) -> bool:
        time = pts * self.time_base
        return time >= self.window.decode_from and (self.window.end is None or time < self.window.end)

    def _add_frame(self, frame: av.VideoFrame, pts: int, warmup: bool = False) -> None:
        if self._pts and warmup != self._warming:
            self._emit()  # warm-up frames travel in batches of their own, which are never written
        self._warming = warmup
        if self._pixels is None:
            self._pixels = self.pool.acquire(self.stages.stop)
        info = self.plan.info
        resized = (frame.width, frame.height) != (info.width, info.height)  # keep the first frame's size throughout
        if resized and not self._resized_warned:
            self._resized_warned = True
            logger.warning("%s: the frame size changes mid-stream; frames are scaled to %dx%d", self.plan.source, info.width, info.height)
        slot = self._pixels[len(self._pts)]
        if self.layout is not None:
            _place_planes(slot, frame, self.layout)
            if self.motion is not None:  # RGB for the motion only, placed as the host path places it: the frames stay planes
                if self._motion_rgb is None:
                    self._motion_rgb = torch.empty((*self.plan.frame_size, 3), dtype=torch.uint8)
                rgb = frame.to_ndarray(format="rgb24", width=info.width, height=info.height, src_color_range=frame.color_range)
                _place_upright(self._motion_rgb, rgb, info.rotation)
                self._motions.append(self.motion(self._motion_rgb.numpy()))
        else:
            reformat: dict[str, object] = {"format": "rgb24", "src_color_range": frame.color_range}
            if resized:
                reformat.update(width=info.width, height=info.height)
            _place_upright(slot, frame.to_ndarray(**reformat), info.rotation)  # (h, w, 3) as stored
            if self.motion is not None:
                self._motions.append(self.motion(slot.numpy()))
        self._pts.append(pts)
        self._durations.append(frame.duration or 0)
        self.frames_decoded += 1
        if len(self._pts) == self.batch_size:
            self._emit()

    def _side_packet(self, packet: av.Packet) -> bool:
        """Queue an audio/subtitle packet for the output; False once its stream is past --end."""
        if packet.pts is None and packet.dts is None:
            return True  # nothing to place it by
        seconds = self.clock.seconds(packet.pts if packet.pts is not None else packet.dts, packet.time_base)
        if self.options.end is not None and seconds >= self.options.end:
            return False
        if self._shift is None:
            self._held.append(packet)
        elif self._keep_side(packet):
            self._side.append(_shifted(packet, self._shift))
        return True

    def _keep_side(self, packet: av.Packet) -> bool:
        # Cut at packet boundaries: keep packets that start within the segment's first frame and --end.
        if self.options.start is None:
            return True
        start = packet.pts if packet.pts is not None else packet.dts
        return start * packet.time_base >= self._shift

    def _held_in_segment(self) -> list[av.Packet]:
        if self._shift is None:
            return []
        held, self._held = self._held, []
        return [_shifted(packet, self._shift) for packet in held if self._keep_side(packet)]

    def _emit(self) -> None:
        count = len(self._pts)
        if count == 0 and not self._side:
            return
        pixels = self._pixels if self._pixels is not None else torch.empty(0, dtype=torch.uint8)
        motions = self._motions if self.motion is not None else None
        context = _BatchContext(self._pts, self._durations, self._side, motions, self._warming and count > 0)
        batch = FrameBatch(pixels, count, context, self.pool if count else None)
        self._pixels, self._pts, self._durations, self._side, self._motions = None, [], [], [], []
        self.stages.put(self.channel, batch)


def _shifted(packet: av.Packet, shift_seconds: Fraction) -> av.Packet:
    if shift_seconds:
        ticks = round(shift_seconds / packet.time_base)
        if packet.pts is not None:
            packet.pts -= ticks
        if packet.dts is not None:
            packet.dts -= ticks
    return packet


def _place_upright(slot: torch.Tensor, rgb: np.ndarray, rotation: int) -> None:
    """Write a stored (h, w, 3) frame into ``slot`` (H, W, 3) upright, repeating the last row/column into any padding."""
    rgb = upright(rgb, rotation)  # a view: the one copy is into the slot
    height, width = rgb.shape[0], rgb.shape[1]
    slot.numpy()[:height, :width] = rgb
    if slot.shape[0] > height:
        slot[height:, :width] = slot[height - 1 : height, :width]
    if slot.shape[1] > width:
        slot[:, width:] = slot[:, width - 1 : width]


def _place_planes(slot: torch.Tensor, frame: av.VideoFrame, layout: Yuv420Layout) -> None:
    """Copy a decoded frame's Y, U, V planes as stored into ``slot`` (layout.input_bytes): no colour conversion here.

    A frame that does not fit the layout (the size or pixel format changed mid-stream) is
    first converted to it by swscale, keeping its own matrix.
    """
    pixel_format = "yuvj420p" if layout.source_full_range else "yuv420p"
    if frame.format.name != pixel_format or (frame.height, frame.width) != (layout.stored_height, layout.stored_width):
        frame = frame.reformat(
            width=layout.stored_width, height=layout.stored_height, format=pixel_format,
            src_color_range=frame.color_range, dst_color_range="JPEG" if layout.source_full_range else "MPEG",
        )  # fmt: skip
    for target, plane in zip(layout.input_planes(slot), frame.planes):
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)  # line_size: rows are padded
        target.numpy()[:] = rows[:, : plane.width]


class _Encoder:
    """Encodes stylized frames with their timestamps and muxes them with the audio and subtitle packets."""

    def __init__(
        self, plan: _Plan, output: av.container.OutputContainer, video_out: av.video.stream.VideoStream,
        side: SideWriter, layout: Yuv420Layout | None = None,
    ) -> None:  # fmt: skip
        self.plan, self.output, self.video_out, self.side = plan, output, video_out, side
        self.layout = layout  # None: RGB frames in (swscale converts them); else yuv420p planes
        self.frames_written = 0
        self._colorspace = video_out.codec_context.colorspace
        info = plan.info
        self._nominal_duration = max(1, round(1 / (info.nominal_rate * info.time_base)))
        self._durations: dict[int, int] = {}  # pts -> duration of frames inside the encoder (its delay bounds it)
        self.muxed_durations: list[int] = []  # of every video packet muxed, in order (parts: NUT does not store them)

    def run(self, channel: queue.Queue, stages: _Stages, bar: ProgressReporter) -> None:
        while True:
            item = stages.get(channel)
            if item is _END:
                return
            try:
                self._write(item)
                bar.advance(item.count)
            except (av.FFmpegError, OSError) as exc:
                raise OutputError(f"cannot write {self.plan.destination}: {reason(exc)}") from None
            finally:
                item.release()

    def _write(self, batch: StylizedBatch[_BatchContext]) -> None:
        for packet in batch.context.side_packets:
            self.output.mux(self.side.packets(packet))
        if batch.count == 0:
            return
        frames = batch.frames().numpy()  # (count, H, W, 3) or (count, planes), waits for the download on CUDA
        time_base = self.plan.info.time_base
        for pixels, pts, duration in zip(frames, batch.context.pts, batch.context.durations):
            frame = self._frame(pixels)
            frame.pts, frame.time_base = pts, time_base
            frame.colorspace = self._colorspace  # the matrix used for RGB -> YUV, as decoded
            self._durations[pts] = duration or self._nominal_duration
            self.mux_video(self.video_out.encode(frame))
            self.frames_written += 1

    def _frame(self, pixels: np.ndarray) -> av.VideoFrame:
        if self.layout is None:
            return av.VideoFrame.from_ndarray(pixels, format="rgb24")
        rows = pixels.reshape(self.layout.height * 3 // 2, self.layout.width)  # PyAV's yuv420p array: Y, then U, then V rows
        return av.VideoFrame.from_ndarray(rows, format="yuv420p")

    def mux_video(self, packets: list[av.Packet]) -> None:
        """Mux encoded packets with their source frame's duration.

        Encoders such as libx264 leave packet durations at 0, and a muxer then guesses the last
        frame's, which changes the length of the video; the source's durations are exact.
        """
        for packet in packets:
            duration = self._durations.pop(packet.pts, 0) if packet.pts is not None else 0
            if not packet.duration and duration:
                packet.duration = duration
            self.muxed_durations.append(packet.duration or 0)
            self.output.mux(packet)
