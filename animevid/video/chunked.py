"""Chunked encoding: several encoder instances in one process, for a generator faster than one encoder.

With a GPU generator one libx264 instance may be the bound. :func:`stylize_chunked` runs the
pipeline of :mod:`animevid.video.pipeline` (decoder thread, generator in the calling thread) and hands
the stylized batches, in chunks of about ``VideoOptions.chunk_seconds``, to ``encoders`` threads
round-robin: chunk c goes to thread c mod N. Each chunk is encoded by a fresh encoder (so it
starts with a key frame) exactly as :class:`animevid.video.pipeline._Encoder` encodes, into a video-only
part (NUT, exact timestamps) beside the destination. PyAV releases the GIL while it encodes and
converts colours, so the threads run at once. The parts are then joined by the lossless
stream-copy :func:`animevid.video.segments.join_parts`, which writes the audio and subtitle
streams once from the source, as the single encoder writes them (copied or re-encoded): the
file holds the same frames, timestamps and side packets as the single encoder's, only more key
frames.

Memory is bounded: each thread's queue holds at most one chunk (the generator waits when the
queues are full), and the job is refused before any work when that cannot fit. The parts are
temporaries of :mod:`animevid.fileio` (removed on success, error and Ctrl-C; a killed job's are
removed by the next job's clean-up), and the destination appears only once joined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import torch

from ..errors import DeviceError, OutputError
from ..fileio import new_temporary
from ..engine.memory import GIB, available_bytes
from ..options import CRF_CODECS, VideoOptions
from ..progress import JobHooks
from ..engine.resources import usable_cpus
from ..result import StylizeResult
from .segments import join_parts
from ..engine.tuning import CUDA as CUDA_TUNING
from ..engine.stylizer import StylizedBatch, Stylizer
from .pipeline import _END, PART_FORMAT, PART_OPTIONS, QUEUE_BATCHES, _Encoder, _join, _Plan, _Stages, _VideoJob, add_video_stream, run_video_job
from .reader import open_video, reason
from .side_streams import SideWriter

# Frames one libx264 instance holds inside itself (medium: rc-lookahead 40, B-frames, frame
# threads), as yuv420p: an over-estimate for the memory check.
ENCODER_FRAMES_HELD = 64
MEMORY_FRACTION = 0.5  # of the available memory, for the frames waiting for encoders (the rest: the generator)


def chunk_batches(plan: _Plan, options: VideoOptions, batch_size: int) -> int:
    """Batches per chunk: about ``options.chunk_seconds`` of frames at the nominal rate, at least one batch."""
    frames = max(1, round(options.chunk_seconds * float(plan.info.nominal_rate)))
    return max(1, math.ceil(frames / batch_size))


def held_bytes(plan: _Plan, encoders: int, batches_per_chunk: int, batch_size: int) -> int:
    """Host memory the frames between the generator and the encoders may take at most."""
    height, width = plan.frame_size
    batch = batch_size * height * width * 3
    waiting = (encoders * (batches_per_chunk + 1) + QUEUE_BATCHES + 2) * batch
    return waiting + encoders * ENCODER_FRAMES_HELD * height * width * 3 // 2


def stylize_video_chunked(
    stylizer: Stylizer,
    source: str | os.PathLike,
    destination: str | os.PathLike,
    options: VideoOptions,
    *,
    overwrite: bool = False,
    progress: bool = True,
    hooks: JobHooks | None = None,
) -> StylizeResult:
    """:func:`animevid.video.pipeline.stylize_video` with ``options.encoders`` encoders on consecutive chunks.

    Every guarantee of the one-encoder path holds (see :func:`stylize_chunked`); ``keep_partial``
    is refused with several encoders (by :class:`VideoOptions`).
    """
    return run_video_job(
        stylizer, source, destination, options, overwrite,
        lambda plan, batch_size: stylize_chunked(stylizer, plan, options, batch_size, progress=progress, overwrite=overwrite, hooks=hooks),
    )  # fmt: skip


def stylize_chunked(
    stylizer: Stylizer, plan: _Plan, options: VideoOptions, batch_size: int, *, progress: bool, overwrite: bool,
    hooks: JobHooks | None = None,
) -> int:
    """Stylize ``plan``'s video with ``options.encoders`` encoders on consecutive chunks; return the frame count.

    The destination (``plan.destination``) is written as :func:`animevid.video.pipeline.stylize_video`
    writes it (atomically, never overwritten unless ``overwrite``), with the same frames,
    timestamps, durations and side packets. Raises :class:`DeviceError` before any work when the
    frames the encoders' queues may hold do not fit in memory.
    """
    if stylizer.uses_cuda and options.preset is None and options.codec in CRF_CODECS:
        options = dataclasses.replace(options, preset=CUDA_TUNING.preset)  # the preset the single path takes on CUDA
    per_chunk = chunk_batches(plan, options, batch_size)
    _check_memory(plan, options, per_chunk, batch_size)
    # The decoder reads the film only: join_parts copies the side packets from the source.
    job = _VideoJob(stylizer, dataclasses.replace(plan, side=()), options, batch_size, progress, hooks=hooks)
    threads = max(1, usable_cpus() // options.encoders) if stylizer.uses_cuda else 1
    global_header = bool(av.format.ContainerFormat(plan.output_format).flags & av.format.Flags.global_header.value)
    encoder = _ChunkedEncoder(plan, options, options.encoders, per_chunk, global_header, threads)
    try:
        with open_video(plan.source) as video:
            outcome = job._run_stages(video.container, encoder, held=options.encoders * (per_chunk + 1))
        if outcome.error is not None:  # keep_partial is refused with several encoders: never a partial file
            raise outcome.error
        parts = encoder.parts()
        # join_parts checks every part's packets against the durations its encoder recorded.
        return join_parts(plan.source, plan.destination, [p.path for p in parts], [p.durations for p in parts], options,
                          overwrite=overwrite)  # fmt: skip
    finally:
        encoder.remove_parts()


def _check_memory(plan: _Plan, options: VideoOptions, per_chunk: int, batch_size: int) -> None:
    need = held_bytes(plan, options.encoders, per_chunk, batch_size)
    available = available_bytes(torch.device("cpu"))
    if available is not None and need > MEMORY_FRACTION * available:
        height, width = plan.frame_size
        raise DeviceError(
            f"--encoders {options.encoders} with --chunk-seconds {options.chunk_seconds:g} holds up to "
            f"{need / GIB:.1f} GB of {width}x{height} frames, {available / GIB:.1f} GB are available: "
            "use fewer --encoders or a shorter --chunk-seconds"
        )


@dataclasses.dataclass
class _Part:
    index: int
    path: Path
    durations: tuple[Fraction, ...] = ()  # seconds, of each packet (NUT does not store them)
    frames: int = 0


class _ChunkedEncoder:
    """The encoder stage of :class:`animevid.video.pipeline._VideoJob` with chunks dealt to ``count`` encoder threads.

    ``run`` is what the job's encoder thread runs: it deals the batches out and waits for the
    encoder threads, which report their failures to the job's stages like any stage.
    """

    def __init__(self, plan: _Plan, options: VideoOptions, count: int, per_chunk: int, global_header: bool, threads: int) -> None:
        self.plan, self.options, self.count, self.per_chunk = plan, options, count, per_chunk
        self.global_header, self.threads = global_header, threads
        self._parts: dict[int, _Part] = {}
        self._lock = threading.Lock()  # guards _parts and the progress bar, shared by the encoder threads

    @property
    def frames_written(self) -> int:
        return sum(part.frames for part in self._parts.values())

    def run(self, channel: queue.Queue, stages: _Stages, bar) -> None:
        # One chunk may wait per thread, beside the one it encodes; the end-of-chunk mark takes a slot.
        queues = [queue.Queue(maxsize=self.per_chunk + 1) for _ in range(self.count)]
        workers = [stages.spawn(lambda q=q: self._encode(q, stages, bar), f"animevid-encode-{k}") for k, q in enumerate(queues)]
        try:
            chunk, in_chunk = 0, 0
            while (item := stages.get(channel)) is not _END:
                if item.count == 0:  # only side packets, which the join copies from the source
                    item.release()
                    continue
                stages.put(queues[chunk % self.count], (chunk, item))
                in_chunk += 1
                if in_chunk == self.per_chunk:
                    stages.put(queues[chunk % self.count], (chunk, None))
                    chunk, in_chunk = chunk + 1, 0
            if in_chunk:
                stages.put(queues[chunk % self.count], (chunk, None))
            for channel_k in queues:
                stages.put(channel_k, _END)
        finally:
            _join(workers, stages)

    def _encode(self, channel: queue.Queue, stages: _Stages, bar) -> None:
        writer: _ChunkWriter | None = None
        with open_video(self.plan.source) as template, contextlib.ExitStack() as cleanup:
            video_in = template.stream  # its own container: the decoder thread uses the job's
            while (item := stages.get(channel)) is not _END:
                index, batch = item
                try:
                    if batch is None:
                        writer.finish()
                        cleanup.pop_all()
                        writer = None
                        continue
                    if writer is None:
                        writer = _ChunkWriter(self._new_part(index), self.plan, self.options, video_in, self.global_header, self.threads)
                        cleanup.callback(writer.abandon)
                    writer.write(batch)
                except (av.FFmpegError, OSError) as exc:
                    raise OutputError(f"cannot write {self.plan.destination}: {reason(exc)}") from None
                finally:
                    if batch is not None:
                        batch.release()
                with self._lock:
                    bar.advance(batch.count)

    def _new_part(self, index: int) -> _Part:
        part = _Part(index, new_temporary(self.plan.destination, "." + PART_FORMAT))
        with self._lock:
            self._parts[index] = part
        return part

    def parts(self) -> list[_Part]:
        """Every chunk's part, in order; OutputError if one is missing (it cannot be when the stages succeeded)."""
        indexes = sorted(self._parts)
        if indexes != list(range(len(indexes))):
            raise OutputError(f"cannot write {self.plan.destination}: chunks {indexes} were encoded")
        return [self._parts[index] for index in indexes]

    def remove_parts(self) -> None:
        for part in self._parts.values():
            with contextlib.suppress(FileNotFoundError):
                part.path.unlink()


class _ChunkWriter:
    """One chunk: a fresh encoder set up as the single path's, writing one part."""

    def __init__(
        self, part: _Part, plan: _Plan, options: VideoOptions, video_in: av.video.stream.VideoStream, global_header: bool, threads: int
    ) -> None:
        self.part = part
        part_plan = dataclasses.replace(plan, output_format=PART_FORMAT, side=())
        self.output = av.open(str(part.path), "w", format=PART_FORMAT, container_options=dict(PART_OPTIONS))
        try:
            self.video_out = add_video_stream(part_plan, options, video_in, self.output, global_header, threads)
        except BaseException:
            self.abandon()
            raise
        self.encoder = _Encoder(part_plan, self.output, self.video_out, SideWriter(self.output, ()))

    def write(self, batch: StylizedBatch) -> None:
        self.encoder._write(batch)

    def finish(self) -> None:
        self.encoder.mux_video(self.video_out.encode(None))  # the encoder's delayed frames
        self.output.close()
        time_base = self.encoder.plan.info.time_base
        self.part.durations = tuple(d * time_base for d in self.encoder.muxed_durations)
        self.part.frames = self.encoder.frames_written

    def abandon(self) -> None:
        with contextlib.suppress(Exception):  # the error being raised says more
            self.output.close()

