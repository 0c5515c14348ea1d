"""One video across several worker processes: segments scheduled, retried, resumed, joined.

The scheduler (:func:`stylize_video_parallel`) owns everything that makes the job safe: the
segment plan, a work folder keyed by the job, retries, one progress bar, the join. It hands
:class:`~animevid.video.segments.PartSpec` s to a *backend*, which only runs them: anything with

* ``slots``: a list of worker names (one per concurrent task, e.g. ``"cuda:1"``);
* ``submit(slot, spec) -> concurrent.futures.Future[PartResult]``: run ``render_part(spec)`` there;
* ``restart(slot)``: replace that slot's worker with a fresh one (after a failure);
* ``drain_progress() -> list[tuple[int, int]]``: (segment index, frames) reported since last asked;
* ``check()``: raise (an :class:`~animevid.errors.AnimevidError`) when the segments in flight can no
  longer finish, e.g. a cluster gone; called between the scheduler's waits, so it must not block;
* ``close()``: stop every worker.

:class:`ProcessBackend` is the local one (spawned processes, CUDA-safe). A Ray backend returns
``ObjectRef.future()`` from ``submit``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import math
import multiprocessing
import os
import queue
import shutil
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from ..errors import Interrupted, OutputError
from ..fileio import atomic_path, file_sha256, hash_file, remove_stale_temporaries
from ..options import InferenceOptions, ParallelOptions, VideoOptions
from ..progress import ProgressReporter
from ..engine.resources import usable_cpus
from ..result import StylizeResult, WorkerLoad, combine_loads
from ..engine.tuning import CUDA as CUDA_TUNING
from ..video.segments import PartResult, PartSpec, Segment, join_parts, plan_segments, render_part

logger = logging.getLogger(__name__)

CPU_WORKERS = 2  # on the CPU without --workers (on GPUs: animevid.engine.tuning.CUDA.workers_per_gpu each)


def resolve_slots(parallel: ParallelOptions) -> list[str]:
    """The device of every worker process."""
    import torch

    names = [name.strip() for name in parallel.devices.split(",")]
    if names == ["all"]:
        count = torch.cuda.device_count()
        if count == 0:
            from ..errors import DeviceError

            raise DeviceError("--devices all: no CUDA device is available (use --devices cpu)")
        names = [f"cuda:{i}" for i in range(count)]
    workers = parallel.workers or (CPU_WORKERS if names == ["cpu"] else len(names) * CUDA_TUNING.workers_per_gpu)
    return [names[i % len(names)] for i in range(workers)]


# -- the local backend ------------------------------------------------------------------------------

_REPORTS: multiprocessing.Queue | None = None


def _init_worker(reports: multiprocessing.Queue, threads: int | None) -> None:
    import signal

    global _REPORTS
    _REPORTS = reports
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C stops
    if threads:
        import torch

        torch.set_num_threads(threads)


def _report(index: int, frames: int) -> None:
    if _REPORTS is not None:
        _REPORTS.put((index, frames))


def run_task(task: Callable[..., PartResult], spec: PartSpec) -> PartResult:
    """In a worker process: ``task(spec, report)``, reporting frame counts to the parent."""
    return task(spec, _report)


class ProcessBackend:
    """One spawned process per slot; ``task`` (a top-level function like render_part) runs there."""

    def __init__(self, slots: list[str], task: Callable[..., PartResult] = render_part) -> None:
        self.slots, self.task = slots, task
        self._context = multiprocessing.get_context("spawn")
        self._reports = self._context.Queue()
        cpu_workers = sum(1 for slot in slots if slot == "cpu")
        self._threads = max(1, usable_cpus() // cpu_workers) if cpu_workers else None
        self._pools: list[concurrent.futures.ProcessPoolExecutor | None] = [None] * len(slots)

    def _pool(self, slot: int) -> concurrent.futures.ProcessPoolExecutor:
        if self._pools[slot] is None:
            threads = self._threads if self.slots[slot] == "cpu" else None
            self._pools[slot] = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=self._context, initializer=_init_worker, initargs=(self._reports, threads)
            )
        return self._pools[slot]

    def submit(self, slot: int, spec: PartSpec) -> concurrent.futures.Future:
        return self._pool(slot).submit(run_task, self.task, spec)

    def restart(self, slot: int) -> None:
        pool, self._pools[slot] = self._pools[slot], None
        if pool is not None:
            _kill(pool)

    def check(self) -> None:
        pass  # a dead worker process fails its future: the scheduler retries it

    def drain_progress(self) -> list[tuple[int, int]]:
        reports = []
        with contextlib.suppress(queue.Empty):
            while True:
                reports.append(self._reports.get_nowait())
        return reports

    def close(self) -> None:
        for slot in range(len(self.slots)):
            self.restart(slot)


def _kill(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    for process in list(getattr(pool, "_processes", {}).values()):  # a worker may be mid-part: stop it now
        with contextlib.suppress(Exception):
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


# -- the work folder ----------------------------------------------------------------------------------


def job_key(source: Path, destination: Path, weights_sha256: str, inference: InferenceOptions, video: VideoOptions,
            parallel: ParallelOptions) -> str:  # fmt: skip
    """SHA-256 of everything the parts depend on: change any of it and no old part is trusted."""
    stat = source.stat()
    identity = {
        "source": [str(source.resolve()), stat.st_size, stat.st_mtime_ns],
        "destination": str(destination.resolve()),
        "weights": weights_sha256,
        "inference": {k: v for k, v in dataclasses.asdict(inference).items() if k != "device"},
        "video": dataclasses.asdict(video),
        "segment_seconds": parallel.segment_seconds,
        "animevid": importlib.metadata.version("animevid"),  # another version may encode differently
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def work_folder(destination: Path, key: str) -> Path:
    return destination.parent / f".{destination.name}.animevid-work-{key[:16]}"


def _manifest(work: Path, segment: Segment) -> Path:
    return work / f"part-{segment.index:05d}.json"


def _part(work: Path, segment: Segment) -> Path:
    return work / f"part-{segment.index:05d}.nut"


def _finished(work: Path, segment: Segment) -> PartResult | None:
    """The part a previous run finished, if its manifest matches the segment and its bytes their hash."""
    try:
        record = json.loads(_manifest(work, segment).read_text())
        if (record["first"], record["end"], record["frames"]) != (str(segment.first), str(segment.end), segment.frames):
            return None
        if file_sha256(_part(work, segment)) != record["sha256"]:
            return None
        durations = tuple(Fraction(d) for d in record["durations"])
        return PartResult(segment.index, record["frames"], record["seconds"], record["sha256"], record["worker"], durations)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _record(work: Path, segment: Segment, result: PartResult) -> None:
    record = {
        "first": str(segment.first), "end": str(segment.end), "frames": result.frames, "sha256": result.sha256,
        "seconds": result.seconds, "worker": result.worker, "durations": [str(d) for d in result.durations],
    }  # fmt: skip
    with atomic_path(_manifest(work, segment)) as tmp:
        tmp.write_text(json.dumps(record))


# -- the scheduler ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Attempts:
    failures: dict[int, list[str]] = dataclasses.field(default_factory=dict)

    def failed(self, index: int, error: BaseException, retries: int) -> None:
        self.failures.setdefault(index, []).append(f"{type(error).__name__}: {error}")
        if len(self.failures[index]) > retries:
            from ..errors import AnimevidError

            raise AnimevidError(
                f"segment {index} failed {len(self.failures[index])} times (last: {self.failures[index][-1]}); "
                "the finished parts are kept: rerun the same command to continue"
            )


def stylize_video_parallel(
    source: str | os.PathLike, destination: str | os.PathLike, weights: str | os.PathLike, inference: InferenceOptions,
    video: VideoOptions, parallel: ParallelOptions, *, overwrite: bool = False, progress: bool = True,
    backend: Callable[[list[str]], object] = ProcessBackend,
) -> StylizeResult:  # fmt: skip
    """Stylize ``source`` into ``destination`` with several worker processes; the file is the one
    :func:`animevid.video.pipeline.stylize_video` writes (frames, timestamps, audio and subtitle packets).

    The video is cut at key frames into segments; each worker loads the weights once and renders
    segments into parts in a work folder beside the destination, keyed by the job (source path,
    size and mtime, destination, options, weights SHA-256). Each part is written atomically with a
    manifest (its SHA-256, frames, durations): a rerun of an interrupted job (Ctrl-C, SIGTERM, kill)
    reuses the parts whose manifest and bytes agree. A failed segment (exception or a crashed
    worker) is retried on a fresh worker, up to ``parallel.retries`` times. The destination
    appears only once complete; the work folder is removed after the join.
    """
    from ..video.pipeline import _plan, _sigterm_raises_keyboard_interrupt

    source, destination, weights = Path(source), Path(destination), Path(weights)
    plan = _plan(source, destination, video, overwrite)  # refuses a bad destination before any work
    for warning in plan.warnings:  # as the single-process job says them (a stream re-encoded or dropped, ...)
        logger.warning(warning)
    slots = resolve_slots(parallel)
    # Decided here, once, before the job's key: every segment, resumed ones too, runs the same precision.
    inference, dtype_label = decide_for_workers(weights, inference, slots)
    duration = plan.info.duration or 0
    count = max(len(slots), math.ceil(duration / parallel.segment_seconds))
    segments = plan_segments(source, video, count)
    key = job_key(source, destination, hash_file(weights), inference, video, parallel)
    work = work_folder(destination, key)
    try:
        work.mkdir(exist_ok=True)
        remove_stale_temporaries(work)
    except OSError as exc:
        raise OutputError(f"cannot use the work folder {work}: {exc.strerror or exc}") from None
    global_header = bool(plan.output_format in _GLOBAL_HEADER_FORMATS)
    results: dict[int, PartResult] = {}
    for segment in segments.segments:
        finished = _finished(work, segment)
        if finished is not None:
            results[segment.index] = finished
    reused = len(results)
    compile_ = inference.compile if inference.compile is not None else False

    def spec(segment: Segment, device: str) -> PartSpec:
        options = dataclasses.replace(inference, device=device, compile=compile_)
        return PartSpec(
            segment.index, str(source), str(weights), options, video, segment.first, segment.end, segments.shift,
            global_header, part=str(_part(work, segment)), warmup_first=segment.warmup_first,
        )  # fmt: skip

    started = time.perf_counter()
    runner = backend(slots)
    try:
        with _sigterm_raises_keyboard_interrupt():
            _schedule(runner, segments.segments, results, spec, work, parallel.retries, segments.frames, progress)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; {len(results)} of {len(segments.segments)} segments are done in {work}: "
            "rerun the same command to continue"
        ) from None
    finally:
        runner.close()
    ordered = [results[segment.index] for segment in segments.segments]
    frames = join_parts(
        source, destination, [_part(work, s) for s in segments.segments], [r.durations for r in ordered], video,
        overwrite=overwrite,
    )  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return StylizeResult(
        "video", frames, time.perf_counter() - started, ",".join(sorted(set(slots))), dtype_label or inference.dtype,
        video.batch_size or 1, workers=_per_worker(ordered), reused=reused, deflicker=video.deflicker_summary(),
    )  # fmt: skip


def decide_for_workers(weights: str | os.PathLike, options: InferenceOptions, devices: list[str]) -> tuple[InferenceOptions, str | None]:
    """``--dtype auto`` decided once in the parent of worker processes on the CPU: the options with the
    chosen dtype made explicit (the workers obey it, and do not measure side by side, each timing
    the other's load) and the summary's label; ``options`` unchanged and None where auto measures nothing."""
    if options.dtype != "auto" or any(not device.startswith("cpu") for device in devices):
        return options, None
    import torch

    from ..engine.precision import auto_precision
    from ..engine.stylizer import resolve_engine
    from ..weights.formats import load_generator

    if resolve_engine(options.engine, torch.device("cpu"), options.compile) != "openvino":
        return options, None
    choice = auto_precision(lambda: load_generator(weights, semantics=options.semantics).eval().requires_grad_(False))
    if choice is None:
        return dataclasses.replace(options, dtype="float32"), None
    return dataclasses.replace(options, dtype=choice.name), choice.label()


_GLOBAL_HEADER_FORMATS = ("mp4", "mov", "matroska", "webm")  # muxers that want parameter sets in the extradata


def _schedule(runner, segments, results, spec, work, retries, total, progress) -> None:
    todo = [segment for segment in segments if segment.index not in results]
    attempts = _Attempts()
    running: dict[concurrent.futures.Future, tuple[int, Segment]] = {}
    reported: dict[int, int] = {}
    done_before = sum(results[s.index].frames for s in segments if s.index in results)
    with ProgressReporter("stylize", total=total, unit="frames", enabled=progress) as bar:
        bar.advance(done_before)
        while todo or running:
            busy = {slot for slot, _ in running.values()}
            for slot in range(len(runner.slots)):
                if slot not in busy and todo:
                    segment = todo.pop(0)
                    running[runner.submit(slot, spec(segment, runner.slots[slot]))] = (slot, segment)
            finished, _ = concurrent.futures.wait(running, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED)
            for index, frames in runner.drain_progress():
                reported[index] = reported.get(index, 0) + frames
                bar.advance(frames)
            runner.check()  # the bound on waiting for a backend whose tasks may never finish
            for future in finished:
                slot, segment = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - a task's failure, or its worker's death: retried
                    runner.restart(slot)
                    bar.set_total(bar.total + reported.pop(segment.index, 0))  # its frames will be counted again
                    attempts.failed(segment.index, exc, retries)
                    todo.insert(0, segment)
                    continue
                if result.data is not None:  # a worker without our disk (Ray) sent the part back
                    with atomic_path(_part(work, segment)) as tmp:
                        tmp.write_bytes(result.data)
                    result = dataclasses.replace(result, data=None)
                _record(work, segment, result)
                results[segment.index] = result


def _per_worker(results: list[PartResult]) -> tuple[WorkerLoad, ...]:
    return combine_loads(WorkerLoad(r.worker, 1, r.frames, r.seconds, unit="segments") for r in results)
