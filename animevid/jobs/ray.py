"""Stylize jobs on a Ray cluster: each photo and each video of a job is a Ray task.

The one module that imports Ray, and only when a job asks for it (``animevid[ray]`` is an
optional extra; without it :func:`import_ray` is a one-line :class:`UsageError`).

* :class:`RayBackend` is the executor seam (joining or starting its cluster and watching it, every
  wait bounded, is :mod:`animevid.jobs.ray_cluster`'s): ``submit(fn, *args) -> concurrent.futures.Future``
  runs any picklable top-level function as a Ray task with the job's resources (one GPU each
  where the job runs on CUDA, else ``cpus_per_task`` CPUs) and Ray's retries: a worker that dies
  (a crash, a preempted node) is retried up to ``max_retries`` times, and so is a task that
  raises one of :data:`TRANSIENT_ERRORS`; any other error (a bad input) fails the task at once.
* No file system is assumed to be shared between the driver and the workers: a task receives its
  input file's bytes and returns its output's bytes through Ray's object store, and the driver
  writes each output atomically at its destination as it arrives. The generator's weights are
  put in the object store once per job (:class:`WeightsHandle`), and each worker process builds
  its :class:`Stylizer` once and keeps it for the job's next tasks.
* A single video, and each video of a folder job longer than ``ParallelOptions.segment_seconds``,
  is cut into segments at its key frames, and each segment is a task: the segment scheduler of
  :mod:`animevid.jobs.parallel` (work folder, resume, retries, the join) runs on the driver with
  :class:`RaySegments` as its backend. The driver stream-copies each segment's packets
  (:func:`animevid.video.segments.cut_source`) into the object store; the task returns its part's bytes,
  which the scheduler writes into its work folder and joins there.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import pickle
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AnimevidError, ClusterError, DeviceError, InputError, Interrupted, OutputError, UsageError, WeightsError
from ..fileio import remove_stale_temporaries, write_bytes_atomic
from ..progress import ProgressReporter
from ..result import StylizeResult, WorkerLoad, combine_loads
from . import ray_cluster
from .ray_cluster import ClusterWatch, Joined, RayWaits, join_or_start

if TYPE_CHECKING:
    from .folder import FolderItem
    from ..options import InferenceOptions, ParallelOptions, VideoOptions
    from ..video.segments import PartResult, PartSpec
    from ..engine.stylizer import Stylizer
    from ..weights.formats import GeneratorWeights

INSTALL_HINT = "pip install 'animevid[ray]'"
# Errors of a task that another attempt may not meet: the worker's scratch disk (full, gone) and
# memory that other work on a shared node held. Our own errors (a bad input, a bad option) are
# not among them: they would fail the same way on every attempt.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError)
DEFAULT_MAX_RETRIES = 3
IN_FLIGHT_PER_SLOT = 2  # tasks submitted per task the cluster can run at once: the next input is already moving


def import_ray() -> Any:
    """The ``ray`` module; :class:`UsageError` saying how to install it when it is not there."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


# -- the executor seam -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskResources:
    """What one task asks the cluster for (``custom``: resources a node was started with, ``--resources``)."""

    num_cpus: float = 1
    num_gpus: float = 0
    custom: tuple[tuple[str, float], ...] = ()

    def demand(self) -> dict[str, float]:
        """As Ray names them in a node's resources."""
        return {"CPU": self.num_cpus, "GPU": self.num_gpus, **dict(self.custom)}


class RayBackend:
    """Runs picklable top-level functions as Ray tasks, returning :class:`concurrent.futures.Future` s.

    ``address``: None starts or joins a cluster as ``ray.init()`` does; ``"auto"`` or an address
    joins an existing one (see :func:`animevid.jobs.ray_cluster.join_or_start`: an address that
    does not answer is refused in bounded time). A cluster the backend started is shut down by
    :meth:`close` (a context manager closes it too); one it joined is left running. A future's
    exception is the task's own error (unwrapped from Ray's), or Ray's error when the task could
    not finish (its worker died more than ``max_retries`` times, or it was cancelled). Whoever
    waits on the futures calls :meth:`check` between waits: it raises :class:`ClusterError` when
    they can no longer finish.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        resources: TaskResources = TaskResources(),
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_exceptions: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
        init_options: dict[str, Any] | None = None,
        waits: RayWaits | None = None,
    ) -> None:
        self.ray = import_ray()
        self.resources = resources
        self.max_retries = max_retries
        self.retry_exceptions = retry_exceptions
        self.waits = waits = waits or ray_cluster.RAY_WAITS
        self._started = False
        if self.ray.is_initialized():  # this process joined a cluster already: that one
            joined = Joined(self.ray.get_runtime_context().gcs_address, "this process's cluster")
        else:
            joined = join_or_start(self.ray, address, init_options or {}, waits)
            self._started = True
        self.address = joined.address
        self._watch = ClusterWatch(self.ray, joined, waits)
        self._remote: dict[Callable[..., Any], Any] = {}
        self._refs: dict[concurrent.futures.Future, Any] = {}

    def __enter__(self) -> "RayBackend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._watch.close()
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def check(self, *, waiting: bool) -> None:
        """Raise :class:`ClusterError` when this backend's tasks can no longer finish (see
        :meth:`ClusterWatch.check`); ``waiting``: some are in flight. Never blocks."""
        self._watch.check(self.resources.demand(), waiting=waiting)

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def largest_node(self) -> dict[str, float]:
        """The resources of the cluster's biggest live node (what one task can get at most)."""
        nodes = [node.get("Resources", {}) for node in self.ray.nodes() if node.get("Alive")]
        return max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})

    def slots(self) -> int:
        """How many tasks of this backend's resources the cluster runs at once (at least 1)."""
        total = self.cluster_resources()
        if self.resources.num_gpus:
            return max(1, int(total.get("GPU", 0) // self.resources.num_gpus))
        return max(1, int(total.get("CPU", 0) // max(self.resources.num_cpus, 1e-9)))

    def put(self, value: object) -> Any:
        """``value`` in the object store, once: pass the reference to as many tasks as need it."""
        return self.ray.put(value)

    def submit(self, fn: Callable[..., Any], *args: object) -> concurrent.futures.Future:
        """Run ``fn(*args)`` as a Ray task; object references among ``args`` arrive as their values."""
        remote = self._remote.get(fn)
        if remote is None:
            remote = self.ray.remote(fn).options(
                num_cpus=self.resources.num_cpus, num_gpus=self.resources.num_gpus, resources=dict(self.resources.custom),
                max_retries=self.max_retries, retry_exceptions=list(self.retry_exceptions),
            )  # fmt: skip
            self._remote[fn] = remote
        ref = remote.remote(*args)
        future = _unwrapping_future(ref.future(), self.ray)
        self._refs[future] = ref
        future.add_done_callback(lambda done: self._refs.pop(done, None))
        return future

    def cancel(self, futures: Iterable[concurrent.futures.Future]) -> None:
        """Stop the tasks of ``futures`` that have not finished (those running are killed)."""
        for future in futures:
            ref = self._refs.pop(future, None)
            if ref is not None and not future.done():
                with contextlib.suppress(Exception):  # already finished, or the cluster is gone
                    self.ray.cancel(ref, force=True)


def _unwrapping_future(future: concurrent.futures.Future, ray: Any) -> concurrent.futures.Future:
    """A future with the task's own exception in place of Ray's wrapper of it."""
    unwrapped: concurrent.futures.Future = concurrent.futures.Future()

    def settle(done: concurrent.futures.Future) -> None:
        if done.cancelled():
            unwrapped.cancel()
            return
        error = done.exception()
        if error is None:
            unwrapped.set_result(done.result())
            return
        if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
            error = error.cause
        unwrapped.set_exception(error)

    future.add_done_callback(settle)
    return unwrapped


# -- what the workers run --------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsHandle:
    """The job's generator weights in the object store: the reference is nested in a list so that
    Ray hands it to a task as a reference, fetched only by a worker that has no stylizer yet."""

    key: str  # unique per job: which stylizer a worker keeps
    ref: list[Any]


@dataclass(frozen=True)
class FileTask:
    """One photo or video of a job, as a worker needs it."""

    kind: str  # "image" or "video"
    name: str  # the input as the driver names it, for messages
    source_suffix: str
    destination_suffix: str
    options: InferenceOptions
    video_options: VideoOptions | None
    cpus: int  # torch threads: the CPUs the task holds


@dataclass(frozen=True)
class FileOutput:
    """A task's output file and what making it took."""

    data: bytes
    frames: int  # a photo is one
    seconds: float
    worker: str  # host, node and pid
    device: str
    dtype: str
    engine: str
    batch_size: int


_stylizers: dict[tuple[str, Any], Stylizer] = {}  # per worker process: the stylizers of its latest job


def worker_stylizer(weights: WeightsHandle, options: InferenceOptions) -> Stylizer:
    """The stylizer of ``weights`` in this worker process, built on its first task of the job."""
    from ..engine.stylizer import Stylizer

    key = (weights.key, options)
    if key not in _stylizers:
        ray = import_ray()
        loaded: GeneratorWeights = ray.get(weights.ref[0])
        generator = loaded.generator()
        if not any(job == weights.key for job, _ in _stylizers):
            _stylizers.clear()  # another job's: a long-lived worker does not pile them up
        _stylizers[key] = Stylizer(generator, options)
    return _stylizers[key]


def worker_name() -> str:
    """This worker as the summary names it: host, Ray node and process id."""
    node = ""
    with contextlib.suppress(Exception):
        node = f" node {import_ray().get_runtime_context().get_node_id()[:8]}"
    return f"{socket.gethostname()}{node} pid {os.getpid()}"


def stylize_file_task(weights: WeightsHandle, task: FileTask, data: bytes) -> FileOutput:
    """Stylize one photo or video given as bytes; return the output file's bytes (a Ray task).

    Runs in a worker: the input and output exist only in a scratch folder of the worker's, removed
    after. Errors name the input as the driver does; each is one that pickles (Ray carries it back).
    """
    import torch

    torch.set_num_threads(max(1, task.cpus))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="animevid-task-") as scratch:
        source = Path(scratch) / f"input{task.source_suffix}"
        destination = Path(scratch) / f"output{task.destination_suffix}"
        source.write_bytes(data)
        try:
            stylizer = worker_stylizer(weights, task.options)
            if task.kind == "image":
                frames, batch_size = _image_task(stylizer, source, destination), 1
                engine = stylizer.engine
            else:
                result = _video_task(stylizer, source, destination, task.video_options)
                frames, batch_size, engine = result.count, result.batch_size, result.engine
            output = destination.read_bytes()
        except AnimevidError as exc:
            raise _portable(exc, {str(source): task.name}) from None
    return FileOutput(
        output, frames, time.perf_counter() - started, worker_name(), str(stylizer.device), stylizer.dtype_label, engine,
        batch_size,
    )  # fmt: skip


def _image_task(stylizer: Stylizer, source: Path, destination: Path) -> int:
    from ..imageio import read_image, write_image

    write_image(destination, stylizer.image(read_image(source)))
    return 1


def _video_task(stylizer: Stylizer, source: Path, destination: Path, video_options: VideoOptions | None) -> StylizeResult:
    from ..video.pipeline import stylize_video

    return stylize_video(stylizer, source, destination, video_options, progress=False)


_PORTABLE_ERRORS = (InputError, OutputError, UsageError, DeviceError, WeightsError, AnimevidError)


def _portable(error: AnimevidError, names: dict[str, str]) -> AnimevidError:
    """``error`` worded with the driver's names for the worker's scratch files, as a type that
    pickles (some subclasses take other arguments than a message)."""
    message = str(error)
    for scratch, name in names.items():
        message = message.replace(scratch, name)
    kind = next(base for base in _PORTABLE_ERRORS if isinstance(error, base))
    if type(error).__init__ is AnimevidError.__init__ and message == str(error):
        with contextlib.suppress(Exception):
            pickle.loads(pickle.dumps(error))
            return error
    return kind(message)


# -- segments of a long video ----------------------------------------------------------------------


def render_segment_task(spec: PartSpec, source: bytes, weights: bytes, cpus: int) -> PartResult:
    """Render one segment given its packets and the weights as bytes; return the part's bytes (a Ray task)."""
    import torch

    from ..video.segments import render_part

    torch.set_num_threads(max(1, cpus))
    result = render_part(dataclasses.replace(spec, source=source, weights=weights, part=None))
    return dataclasses.replace(result, worker=worker_name())


class RaySegments:
    """The segment scheduler's backend (see :mod:`animevid.jobs.parallel`) on a Ray cluster.

    One slot per task the cluster runs at once. No disk is shared: :meth:`submit` stream-copies
    the segment's packets on the driver and puts them in the object store, the weights (as a
    safetensors file's bytes) are put there once, and the part comes back as bytes. Ray retries a
    task whose worker died; :meth:`restart` has nothing to replace.
    """

    def __init__(self, backend: RayBackend, weights: bytes, rotation: int, cpus_per_task: int) -> None:
        device = "cuda" if backend.resources.num_gpus else "cpu"  # Ray picks the GPU
        self.backend, self.rotation, self.cpus = backend, rotation, cpus_per_task
        self.slots = [device] * backend.slots()
        self._weights = backend.put(weights)
        self._finished: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._running: set[concurrent.futures.Future] = set()

    def submit(self, slot: int, spec: PartSpec) -> concurrent.futures.Future:
        from ..video.segments import cut_source

        packets = self.backend.put(cut_source(spec.source, spec.decode_from, spec.end))  # the warm-up frames too
        light = dataclasses.replace(spec, source=b"", weights=b"", part=None, rotation=self.rotation)
        future = self.backend.submit(render_segment_task, light, packets, self._weights, self.cpus)
        self._running.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: concurrent.futures.Future) -> None:
        self._running.discard(future)
        if not future.cancelled() and future.exception() is None:
            result: PartResult = future.result()
            with self._lock:  # Ray's callbacks run on its threads
                self._finished.append((result.index, result.frames))

    def restart(self, slot: int) -> None:
        pass  # Ray replaces dead workers and retries their tasks itself

    def check(self) -> None:
        """:class:`ClusterError` when the segments in flight can no longer finish (see :meth:`RayBackend.check`)."""
        self.backend.check(waiting=bool(self._running))

    def drain_progress(self) -> list[tuple[int, int]]:
        """(segment, frames) of the parts finished since asked: a task reports once, when done."""
        with self._lock:
            finished, self._finished = self._finished, []
        return finished

    def close(self) -> None:
        self.backend.cancel(list(self._running))


def _stylize_video_in_segments(
    backend: RayBackend, item: FolderItem, weights: GeneratorWeights, options: InferenceOptions,
    video_options: VideoOptions, parallel: ParallelOptions, overwrite: bool, progress: bool, cpus_per_task: int, rerun: str,
) -> StylizeResult:  # fmt: skip
    """One video's segments as Ray tasks, scheduled, resumed and joined by :mod:`animevid.jobs.parallel` on the driver;
    ``rerun``: how the user continues a job the cluster could not finish."""
    from .parallel import stylize_video_parallel
    from ..video.reader import probe_video
    from ..weights.formats import save_weights

    rotation = probe_video(item.source).rotation
    with tempfile.TemporaryDirectory(prefix="animevid-ray-") as scratch:
        weights_file = save_weights(weights, Path(scratch) / "weights.safetensors")
        runner = RaySegments(backend, weights_file.read_bytes(), rotation, cpus_per_task)
        device = runner.slots[0]
        parallel = dataclasses.replace(parallel, devices=device, workers=len(runner.slots))
        try:
            return stylize_video_parallel(
                item.source, item.destination, weights_file, dataclasses.replace(options, device=device), video_options,
                parallel, overwrite=overwrite, progress=progress, backend=lambda slots: runner,
            )  # fmt: skip
        except ClusterError as exc:
            raise ClusterError(f"{exc}; the finished segments of {item.source} are kept: {rerun}") from None


# -- the driver ------------------------------------------------------------------------------------


def stylize_on_ray(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    address: str | None = None,
    style: str | None = None,
    weights: str | os.PathLike | None = None,
    options: InferenceOptions | None = None,
    video_options: VideoOptions | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    progress: bool = True,
    mirror: str | None = None,
    parallel: ParallelOptions | None = None,
    cpus_per_task: int = 1,
    max_retries: int = DEFAULT_MAX_RETRIES,
    init_options: dict[str, Any] | None = None,
) -> StylizeResult:
    """Stylize a photo, a video or a folder of both on a Ray cluster (see the module doc).

    A photo is a task. A single video, and each video of a folder longer than
    ``parallel.segment_seconds``, is cut into segments, each a task, scheduled as
    :func:`animevid.jobs.parallel.stylize_video_parallel` does (``parallel.retries``, the work folder:
    an interrupted video continues from its finished segments when the command is rerun); the
    other videos are a task each.

    Guarantees those of :func:`animevid.stylize` (everything refusable refused before any work,
    nothing half-made at a destination, existing outputs kept unless ``overwrite``; a folder job
    stopped by Ctrl-C or killed outright continues from its finished outputs with
    ``skip_existing``), and: no file system shared with the workers is needed; each output is
    written by this process, atomically, as its task finishes; failed or preempted tasks are
    retried (``max_retries``). Tasks ask for one GPU each when the job's device is CUDA (``auto``:
    when the cluster has GPUs), else ``cpus_per_task`` CPUs. The result's ``workers`` say what
    each worker process did.
    """
    from .folder import plan_folder_job
    from ..options import InferenceOptions, ParallelOptions, VideoOptions

    import_ray()  # first: the cheapest refusal
    source, destination = Path(source), Path(destination)
    options = options or InferenceOptions()
    video_options = video_options or VideoOptions()
    parallel = parallel or ParallelOptions()
    if video_options.keep_partial:
        raise UsageError("--keep-partial applies to a video stylized here, not on Ray: a task returns a finished file or none")
    if not source.exists():
        raise InputError(f"input {source} does not exist")
    if source.is_dir():
        plan = plan_folder_job(source, destination, overwrite=overwrite, skip_existing=skip_existing, video_options=video_options)
        items, skipped, noun = plan.todo, plan.skipped, plan.noun
    else:
        items, skipped, noun = (_single_file(source, destination, video_options, overwrite, skip_existing),), 0, "files"
    loaded = _load_weights(style, weights, options, mirror, progress)
    long_videos = tuple(item for item in items if _in_segments(item, parallel, folder=source.is_dir()))
    rerun = "rerun with --skip-existing to do the rest" if source.is_dir() else "rerun the same command"
    with RayBackend(address, init_options=init_options, max_retries=max_retries) as backend:
        backend.resources = _task_resources(backend, options, cpus_per_task)
        _remove_temporaries(destination if source.is_dir() else destination.parent, source.is_dir())
        if not source.is_dir() and long_videos:
            return _stylize_video_in_segments(
                backend, long_videos[0], loaded, options, video_options, parallel, overwrite, progress, cpus_per_task, rerun
            )  # fmt: skip
        job = _RayJob(backend, loaded, options, video_options, overwrite, progress, noun, cpus_per_task, rerun)
        result = job.run(tuple(item for item in items if item not in long_videos))
        segmented = [
            _stylize_video_in_segments(
                backend, item, loaded, options, video_options, parallel, overwrite, progress, cpus_per_task, rerun
            )  # fmt: skip
            for item in long_videos  # one after another: each one's segments spread over the whole cluster
        ]
    if source.is_dir():
        return _with_segmented(dataclasses.replace(result, skipped=skipped), segmented)
    return dataclasses.replace(result, kind="image")


def _in_segments(item: FolderItem, parallel: ParallelOptions, *, folder: bool) -> bool:
    """Whether a video runs as segment tasks: a single video always; a folder's when it is long."""
    from ..video.reader import probe_video

    if item.kind != "video":
        return False
    if not folder:
        return True
    duration = probe_video(item.source).duration
    return duration is not None and duration > parallel.segment_seconds


def _with_segmented(result: StylizeResult, segmented: list[StylizeResult]) -> StylizeResult:
    """A folder job's result with its segmented videos' added: counts, time and workers."""
    if not segmented:
        return result
    workers = combine_loads((*result.workers, *(w for r in segmented for w in r.workers)))
    return dataclasses.replace(
        result, seconds=result.seconds + sum(r.seconds for r in segmented), videos=result.videos + len(segmented),
        frames=result.frames + sum(r.count for r in segmented), workers=workers,
    )  # fmt: skip


def _single_file(source: Path, destination: Path, video_options: VideoOptions, overwrite: bool, skip_existing: bool) -> FolderItem:
    from .folder import FolderItem, check_image_job
    from ..imageio import is_image_path
    from ..video.pipeline import check_video_job

    if skip_existing:
        raise UsageError("--skip-existing applies to folders, not to a single photo or video")
    if is_image_path(source):
        check_image_job(source, destination, overwrite)
        return FolderItem(source, destination, "image")
    return FolderItem(source, destination, "video", check_video_job(source, destination, video_options, overwrite=overwrite))


def _load_weights(style: str | None, weights: str | os.PathLike | None, options: InferenceOptions, mirror: str | None, progress: bool) -> GeneratorWeights:
    from ..weights.styles import weights_source
    from ..weights.formats import load_weights

    return load_weights(weights_source(style, weights, mirror=mirror, progress=progress), semantics=options.semantics)


def _task_resources(backend: RayBackend, options: InferenceOptions, cpus_per_task: int) -> TaskResources:
    """One GPU per task where the job runs on CUDA (``auto``: where the cluster has GPUs), else CPUs;
    refused when no node of the cluster could ever run such a task (it would wait forever)."""
    node = backend.largest_node()
    wants_gpu = options.device.startswith("cuda") or (options.device == "auto" and node.get("GPU", 0) >= 1)
    if wants_gpu and node.get("GPU", 0) < 1:
        raise UsageError(f"--device {options.device}: the Ray cluster has no GPU (use --device cpu)")
    if node.get("CPU", 0) < cpus_per_task:
        raise UsageError(f"a task needs {cpus_per_task} CPUs, and no node of the Ray cluster has that many")
    return TaskResources(num_cpus=cpus_per_task if not wants_gpu else 1, num_gpus=1 if wants_gpu else 0)


def _remove_temporaries(folder: Path, recursive: bool) -> None:
    try:
        remove_stale_temporaries(folder, recursive=recursive)
    except OSError as exc:
        raise OutputError(f"cannot clean up {folder}: {exc.strerror or exc}") from None


class _RayJob:
    """Submits a job's files a window at a time and writes each output as it comes back."""

    def __init__(
        self, backend: RayBackend, weights: GeneratorWeights, options: InferenceOptions, video_options: VideoOptions,
        overwrite: bool, progress: bool, noun: str, cpus_per_task: int, rerun: str,
    ) -> None:  # fmt: skip
        self.backend, self.options, self.video_options = backend, options, video_options
        self.overwrite, self.progress, self.noun, self.cpus, self.rerun = overwrite, progress, noun, cpus_per_task, rerun
        self.gpu = backend.resources.num_gpus > 0
        # Put once: every task of the job gets this reference, each worker fetches it once.
        self.weights = WeightsHandle(f"{os.getpid()}-{time.time_ns()}", [backend.put(weights)])
        self.outputs: list[tuple[FolderItem, FileOutput]] = []
        self.failures: list[AnimevidError] = []

    def run(self, items: tuple[FolderItem, ...]) -> StylizeResult:
        started = time.perf_counter()
        pending: dict[concurrent.futures.Future, FolderItem] = {}
        queue = list(items)
        window = IN_FLIGHT_PER_SLOT * self.backend.slots()
        try:
            with ProgressReporter("stylize", total=len(items), unit=self.noun, enabled=self.progress) as bar:
                while queue or pending:
                    while queue and len(pending) < window:
                        item = queue.pop(0)
                        pending[self._submit(item)] = item
                    done, _ = concurrent.futures.wait(
                        pending, timeout=self.backend.waits.check_every, return_when=concurrent.futures.FIRST_COMPLETED
                    )  # fmt: skip
                    for future in done:
                        self._finish(pending.pop(future), future)
                        bar.advance()
                    self.backend.check(waiting=bool(pending))
        except KeyboardInterrupt:
            self.backend.cancel(pending)
            raise Interrupted(f"interrupted after {len(self.outputs)} of {len(items)} {self.noun}; {self.rerun}") from None
        except ClusterError as exc:
            self.backend.cancel(pending)
            raise ClusterError(f"{exc}; {len(self.outputs)} of {len(items)} {self.noun} were written: {self.rerun}") from None
        except BaseException:
            self.backend.cancel(pending)
            raise
        if len(items) == 1 and self.failures:
            raise self.failures[0]
        if self.failures:
            raise InputError(
                f"{len(self.failures)} of {len(items)} {self.noun} failed (first: {self.failures[0]}); the others were written"
            )
        return self._result(time.perf_counter() - started)

    def _submit(self, item: FolderItem) -> concurrent.futures.Future:
        import torch

        from ..fileio import read_bytes
        from ..engine.stylizer import should_compile

        options = dataclasses.replace(self.options, device="cuda" if self.gpu else "cpu")  # Ray picks the GPU
        if options.compile is None:  # as a local job decides: long videos on the CPU; photos never
            options = dataclasses.replace(options, compile=item.kind == "video" and not self.gpu and should_compile(torch.device("cpu"), item.frames))
        task = FileTask(
            item.kind, str(item.source), item.source.suffix, item.destination.suffix, options,
            self.video_options if item.kind == "video" else None, self.cpus,
        )  # fmt: skip
        data = self.backend.put(read_bytes(item.source))  # the input travels through the object store
        return self.backend.submit(stylize_file_task, self.weights, task, data)

    def _finish(self, item: FolderItem, future: concurrent.futures.Future) -> None:
        error = future.exception()
        if isinstance(error, AnimevidError) and not isinstance(error, (UsageError, DeviceError)):
            self.failures.append(error)  # this input: the others go on
            return
        if isinstance(error, self.backend.ray.exceptions.RayError):  # its worker died on every attempt
            self.failures.append(OutputError(
                f"{item.source}: its task did not finish in {self.backend.max_retries + 1} attempts ({type(error).__name__})"
            ))  # fmt: skip
            return
        if error is not None:
            raise error  # a wrong option or a bug: it would fail the same way for every file
        output: FileOutput = future.result()
        item.destination.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(item.destination, output.data)
        self.outputs.append((item, dataclasses.replace(output, data=b"")))  # the bytes are written: let them go

    def _result(self, seconds: float) -> StylizeResult:
        outputs = [output for _, output in self.outputs]
        videos = [output for item, output in self.outputs if item.kind == "video"]
        workers = combine_loads(WorkerLoad(o.worker, 1, o.frames, o.seconds) for o in outputs)
        first = outputs[0] if outputs else None
        devices = sorted({output.device for output in outputs}) or ["cuda" if self.gpu else "cpu"]
        return StylizeResult(
            "folder", len(outputs) - len(videos), seconds, f"Ray ({len(workers)} workers, {', '.join(devices)})",
            first.dtype if first else self.options.dtype, max((o.batch_size for o in outputs), default=1),
            engine=first.engine if first else self.options.engine, videos=len(videos), frames=sum(o.frames for o in videos),
            workers=workers, deflicker=self.video_options.deflicker_summary() if videos and self.video_options else "",
        )  # fmt: skip


