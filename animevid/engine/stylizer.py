"""The generator wrapped for inference: device, precision, memory layout, batching, overlap.

:class:`Stylizer` turns batches of RGB uint8 frames into stylized RGB uint8 frames. Images,
folders and videos all go through :meth:`Stylizer.frames`. Long sequences (videos, frame
iterators) go through :meth:`Stylizer.run_batches`, which on CUDA overlaps the upload of batch
n+1 (pinned host buffers, a side stream) and the download of batch n with the generator, and
through :meth:`Stylizer.stream` for frames held in memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .memory import MemoryPlan, plan_frame
from ..options import AUTO_COMPILE_MIN_FRAMES, ENGINES, InferenceOptions
from .tuning import CUDA as CUDA_TUNING
from ..models.animegan import AnimeGANGenerator
from ..models.animegan_bands import BandedAnimeGAN
from ..models.animegan_v2 import AnimeGANv2Generator
from ..models.animegan_v2_bands import BandedAnimeGANv2
from ..weights.formats import load_generator

if TYPE_CHECKING:
    from .openvino import OpenVINOGenerator
    from .precision import PrecisionChoice

logger = logging.getLogger(__name__)

_CXX_COMPILERS = ("g++", "c++", "clang++")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# CUDA batch sizes: see animevid.engine.tuning (every CUDA default lives there).
CUDA_PIXELS_PER_BATCH = CUDA_TUNING.pixels_per_batch
MAX_BATCH_SIZE = CUDA_TUNING.max_batch_size
# On the CPU the generator saturates every core with one frame; batching adds latency and
# memory for no throughput (measured, see the README's performance notes).
CPU_BATCH_SIZE = 1

T = TypeVar("T")


class DeviceColour(Protocol):
    """A conversion of packed frames to RGB and back that runs on the generator's device.

    The video pipeline's :class:`animevid.video.colour.Yuv420Layout` is one (YUV 4:2:0 planes, as
    decoders and encoders hold them); the engine only calls it, so it never depends on the video layer.
    """

    def to_rgb(self, packed: torch.Tensor) -> torch.Tensor:
        """(B, N) packed uint8 frames on the device -> (B, H, W, 3) uint8 RGB."""
        ...

    def from_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB on the device -> (B, M) packed uint8 frames."""
        ...


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} asked for, but CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif resolved.type != "cpu":
        raise UsageError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 autocast on CUDA (its default, kept), fp32 on the CPU before measuring.
    Half precision is refused on the CPU.

    On the CPU's OpenVINO engine the Stylizer then measures whether bf16 is indistinguishable from
    fp32 for these weights on this CPU and takes it when it is (:mod:`animevid.engine.precision`).
    An explicit dtype is always obeyed.
    """
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r} (use auto, {', '.join(DTYPES)})")
    if dtype == "float16" and device.type != "cuda":
        raise UsageError("float16 (--half) needs a CUDA device; on the CPU use bfloat16 or float32")
    return DTYPES[dtype]


def resolve_engine(engine: str, device: torch.device, compile: bool | None = None, dtype: torch.dtype = torch.float32) -> str:
    """``torch`` or ``openvino``: what runs the generator for ``engine`` on ``device``.

    ``auto`` is OpenVINO on the CPU when the package is installed (faster than torch at the same
    precision, see :mod:`animevid.engine.openvino`), torch otherwise and on CUDA. Asking for
    torch.compile (``compile=True``) asks for torch, and so does bfloat16 on a CPU without native
    bf16 (torch emulates it; OpenVINO does not).
    """
    from .openvino import cpu_has_native_bf16, import_openvino, openvino_available

    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r} (use {', '.join(ENGINES)})")
    if engine == "openvino":
        if device.type != "cpu":
            raise UsageError(f"the openvino engine runs on the CPU, not {device}: use --device cpu or --engine torch")
        if compile:
            raise UsageError("--compile is torch.compile, for --engine torch; the openvino engine compiles its own way")
        import_openvino()
        return "openvino"
    if engine == "auto" and device.type == "cpu" and not compile and openvino_available():
        if dtype != torch.bfloat16 or cpu_has_native_bf16():
            return "openvino"
    return "torch"


def should_compile(device: torch.device, frames: int | None) -> bool:
    """The ``compile=None`` (auto) policy for a job of ``frames`` frames on ``device``.

    On the CPU, compile when the job is long enough to repay the compilation and a C++ compiler
    (which inductor's CPU backend needs) is installed; for unknown lengths, don't. On CUDA,
    :data:`animevid.engine.tuning.CUDA` decides (for jobs long enough to repay a compilation).
    """
    if frames is None or frames < AUTO_COMPILE_MIN_FRAMES:
        return False
    if device.type == "cuda":
        return CUDA_TUNING.compile
    if device.type != "cpu":
        return False
    return any(shutil.which(compiler) for compiler in _CXX_COMPILERS)


@contextlib.contextmanager
def cudnn_autotuning(device: torch.device) -> Iterator[None]:
    """cuDNN autotuning (``cudnn.benchmark``) while a job of one frame size runs on ``device``.

    The setting is process-wide, so it is switched on for the job only and restored after:
    images of changing sizes (a folder of photos) would autotune again at every new size.
    Does nothing off CUDA.
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def is_compile_failure(error: BaseException) -> bool:
    """True for an error of torch.compile itself (tracing, lowering, a missing toolchain).

    Out of memory is never one, even when it happens while inductor benchmarks its kernels (it
    then arrives wrapped in a compile error): it would recur in the eager generator, and the
    user needs to hear it as what it is. Neither is any other error the compiled code raises.
    """
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor import exc as inductor_exc

    names = ("CppCompileError", "CUDACompileError", "LoweringException")  # not every torch version has each
    compile_errors = (TorchDynamoException, *(getattr(inductor_exc, name) for name in names if hasattr(inductor_exc, name)))
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:  # the chain an error was raised from, and inside
        seen.add(id(cause))
        if isinstance(cause, torch.OutOfMemoryError):
            return False
        cause = cause.__cause__ or cause.__context__ or getattr(cause, "inner_exception", None)
    return isinstance(error, compile_errors)


class PipelineCancelled(Exception):
    """Raised in a waiting stage when another stage of the same pipeline has stopped it."""


class HostBufferPool:
    """A fixed set of reusable (B, H, W, 3) uint8 host buffers: bounded memory and backpressure.

    On CUDA the buffers are pinned, so that copies between them and the GPU run asynchronously.
    A buffer given back with an event is handed out again only after that event has completed,
    i.e. once the GPU has finished reading it (upload) or writing it (download).
    """

    def __init__(self, count: int, shape: tuple[int, int, int, int], *, pin_memory: bool = False) -> None:
        if count < 1:
            raise ValueError("a buffer pool needs at least one buffer")
        self.shape = shape
        self._free: queue.Queue[tuple[torch.Tensor, torch.cuda.Event | None]] = queue.Queue()
        for _ in range(count):
            self._free.put((torch.empty(shape, dtype=torch.uint8, pin_memory=pin_memory), None))

    def acquire(self, stop: threading.Event | None = None) -> torch.Tensor:
        """A free buffer; blocks until one is given back. Raises PipelineCancelled once ``stop`` is set."""
        while True:
            try:
                buffer, pending = self._free.get(timeout=0.05)
            except queue.Empty:
                if stop is not None and stop.is_set():
                    raise PipelineCancelled from None
                continue
            if pending is not None:
                pending.synchronize()
            return buffer

    def release(self, buffer: torch.Tensor, after: torch.cuda.Event | None = None) -> None:
        """Give ``buffer`` back; it is reused only once ``after`` (if any) has completed."""
        self._free.put((buffer, after))


@dataclass
class FrameBatch(Generic[T]):
    """Frames waiting for the generator, with the caller's data for them (timestamps, ...)."""

    pixels: torch.Tensor  # (B, H, W, 3) uint8 on the host (or (B, N) packed planes, see run_batches); frames [0, count) are valid
    count: int
    context: T
    pool: HostBufferPool | None = None  # where ``pixels`` goes back once the generator no longer needs it


@dataclass
class StylizedBatch(Generic[T]):
    """Stylized frames on the host, possibly still being downloaded: read them with :meth:`frames`."""

    pixels: torch.Tensor  # (B, H, W, 3) uint8 on the host (or (B, N) packed planes); frames [0, count) are valid
    count: int
    context: T
    ready: torch.cuda.Event | None = None  # completes when the download has landed in ``pixels``
    pool: HostBufferPool | None = None

    def frames(self) -> torch.Tensor:
        """The (count, H, W, 3) uint8 stylized frames (or (count, N) planes); waits for their download."""
        if self.ready is not None:
            self.ready.synchronize()
        return self.pixels[: self.count]

    def release(self) -> None:
        """Hand the host buffer back to its pool (call when done with :meth:`frames`)."""
        if self.pool is not None:
            self.pool.release(self.pixels)
            self.pool = None


@dataclass
class _Uploaded(Generic[T]):
    batch: FrameBatch[T]
    pixels: torch.Tensor  # (B, H, W, 3) uint8 on the device (the host tensor itself on the CPU)
    done: torch.cuda.Event | None


class Stylizer:
    """An AnimeGAN generator (v1 or v2) ready for inference on one device.

    >>> stylizer = Stylizer.from_weights("hayao.safetensors", InferenceOptions(device="cpu"))
    >>> anime = stylizer.image(photo)  # (H, W, 3) uint8 RGB in, same shape out
    >>> for anime in stylizer.stream(frames): ...  # any iterable of equally sized frames
    """

    def __init__(self, generator: nn.Module, options: InferenceOptions | None = None) -> None:
        self.options = options or InferenceOptions()
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.dtype, self.device)
        generator = generator.eval().requires_grad_(False)
        # On CUDA: animevid.engine.tuning decides (frames arrive as (B, H, W, 3), channels_last once
        # permuted). On the CPU, oneDNN runs this generator faster in NCHW: channels_last
        # measured 25-35 % slower there, in fp32 and bf16 alike.
        cuda_nhwc = self.device.type == "cuda" and CUDA_TUNING.channels_last
        self.memory_format = torch.channels_last if cuda_nhwc else torch.contiguous_format
        self.generator = generator.to(self.device, memory_format=self.memory_format)
        self.engine = resolve_engine(self.options.engine, self.device, self.options.compile, self.dtype)
        self.precision = self._auto_precision()  # what --dtype auto measured on the CPU, if it did
        self._openvino = self._openvino_generator() if self.engine == "openvino" else None
        self._compiled = torch.compile(self.generator, dynamic=False) if self.options.compile else None
        self._plans: dict[tuple[int, int, int], MemoryPlan] = {}
        self._bands: Callable[[torch.Tensor], torch.Tensor] | None = None  # made on the first size that needs it
        self._copy_stream: torch.cuda.Stream | None = None
        if self.device.type == "cuda":  # cuDNN autotuning: per job, in run_batches (cudnn_autotuning)
            self._copy_stream = torch.cuda.Stream(self.device)

    def _auto_precision(self) -> PrecisionChoice | None:
        """``--dtype auto`` on the OpenVINO engine: the precision measured for these weights on this CPU (sets self.dtype)."""
        if self.options.dtype != "auto" or self.engine != "openvino":
            return None
        from .precision import auto_precision

        choice = auto_precision(lambda: self.generator)
        if choice is not None:
            self.dtype = choice.dtype
        return choice

    def _openvino_generator(self) -> OpenVINOGenerator | None:
        from .openvino import OpenVINOGenerator

        try:
            return OpenVINOGenerator(self.generator, self.dtype)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - an export or conversion failure must not cost the job
            if self.options.engine == "openvino":
                raise
            # auto: torch computes the same function, only slower.
            logger.warning("the openvino engine failed to start (%s); running the generator with torch", str(exc).splitlines()[0][:200])
            self.engine = "torch"
            return None

    @classmethod
    def from_weights(cls, weights: str | os.PathLike, options: InferenceOptions | None = None) -> "Stylizer":
        options = options or InferenceOptions()
        return cls(load_generator(weights, semantics=options.semantics), options)

    @classmethod
    def from_style(
        cls, style: str, options: InferenceOptions | None = None, *, mirror: str | None = None, progress: bool = False
    ) -> "Stylizer":
        """The generator of an installed style; official styles are fetched on first use (``progress``: with a bar)."""
        from ..weights.styles import resolve_style

        options = options or InferenceOptions()
        path = resolve_style(style, mirror=mirror, progress=progress)
        return cls(load_generator(path, semantics=options.semantics), options)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def dtype_label(self) -> str:
        """The precision for the run summary, with what ``--dtype auto`` measured when it did."""
        return self.precision.label() if self.precision is not None else self.dtype_name

    @property
    def uses_cuda(self) -> bool:
        return self.device.type == "cuda"

    def default_batch_size(self, height: int, width: int) -> int:
        """Frames per generator call for ``height`` × ``width`` frames on this device."""
        if not self.uses_cuda:
            return CPU_BATCH_SIZE
        return max(1, min(MAX_BATCH_SIZE, CUDA_PIXELS_PER_BATCH // max(1, height * width)))

    def buffer_pool(self, count: int, batch_size: int, height: int, width: int) -> HostBufferPool:
        """``count`` host buffers of (batch_size, height, width, 3), pinned when the device is CUDA."""
        return HostBufferPool(count, (batch_size, height, width, 3), pin_memory=self.uses_cuda)

    def memory_plan(self, height: int, width: int, batch_size: int = 1) -> MemoryPlan:
        """How frames of ``height`` × ``width`` will run: whole-image forward, or bands if that does not fit.

        Decided once per size, before its first frame, from the memory available then; raises
        :class:`~animevid.errors.DeviceError` (one line: the largest size that fits, the
        ``--max-side`` to use) when even bands do not fit.
        """
        height, width = self._inference_size(height, width)
        key = (height, width, batch_size)
        # A video's last, partial batch keeps the plan of its full batches: memory the engine
        # kept from them must not count against it.
        larger = [plan for (h, w, b), plan in self._plans.items() if (h, w) == (height, width) and b >= batch_size]
        if larger:
            return larger[0]
        if key not in self._plans:
            bands = isinstance(self.generator, (AnimeGANGenerator, AnimeGANv2Generator))
            self._plans[key] = plan_frame(self.engine, self.dtype, self.device, height, width, batch_size, bands=bands)
            if self._plans[key].executor != "whole":
                logger.info("%dx%d frames do not fit in memory whole: running the generator band by band", width, height)
        return self._plans[key]

    def engine_for(self, height: int, width: int, batch_size: int = 1) -> str:
        """What runs frames of this size, for the summary: the engine, whole or band by band."""
        executor = self.memory_plan(height, width, batch_size).executor
        if executor == "bands":
            return f"{'openvino' if self._openvino is not None else 'torch'} (band by band)"
        return "torch (band by band)" if executor == "torch-bands" else self.engine

    def _inference_size(self, height: int, width: int) -> tuple[int, int]:
        max_side = self.options.max_side
        if max_side is None or max(height, width) <= max_side:
            return height, width
        scale = max_side / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    @torch.inference_mode()
    def frames(self, batch: torch.Tensor) -> torch.Tensor:
        """Stylize (B, H, W, 3) uint8 RGB frames; returns (B, H, W, 3) uint8 on the same device.

        ``batch`` may live on the CPU or on the stylizer's device; the result lives on the device,
        so a caller can overlap the download with the next batch.
        """
        if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) uint8 frames, got {tuple(batch.shape)} {batch.dtype}")
        height, width = batch.shape[1], batch.shape[2]
        # BHWC -> BCHW view (channels_last strides); the float conversion is the one copy, made
        # straight into the generator's memory format.
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        x = x.to(torch.float32, memory_format=self.memory_format).div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
        size = self._inference_size(height, width)
        plan = self.memory_plan(height, width, batch.shape[0])
        if size != (height, width):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        if plan.executor == "bands":
            y = self._banded()(x)
        elif plan.executor == "torch-bands":
            y = self._torch_banded()(x)  # exact, fp32
        elif self.dtype == torch.float32 or self._openvino is not None:  # OpenVINO has its own precision setting
            y = self._generate(x)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                y = self._generate(x)
        y = y.float()
        if size != (height, width):
            y = F.interpolate(y, size=(height, width), mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)
        y = y.add_(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
        return y.permute(0, 2, 3, 1).contiguous()  # (B, H, W, 3)

    def _banded(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The engine's band-by-band forward: OpenVINO's at the engine's precision, or torch's (fp32)."""
        if self._bands is None:
            if self._openvino is not None:
                from .openvino_bands import OpenVINOBands

                self._bands = OpenVINOBands(self.generator, self.dtype, threads=self._openvino.threads)
            else:
                self._bands = self._torch_banded()
        return self._bands

    def _torch_banded(self) -> Callable[[torch.Tensor], torch.Tensor]:
        banded = BandedAnimeGANv2 if isinstance(self.generator, AnimeGANv2Generator) else BandedAnimeGAN
        return banded(self.generator)

    def _generate(self, x: torch.Tensor) -> torch.Tensor:
        if self._openvino is not None:
            return self._openvino(x)
        if self._compiled is not None:
            try:
                return self._compiled(x)
            except Exception as exc:
                if not is_compile_failure(exc):
                    raise
                # A missing or broken compiler toolchain must not cost the user the job: the eager
                # generator computes the same function.
                logger.warning("torch.compile failed (%s); running the generator uncompiled", str(exc).splitlines()[0][:200])
                self._compiled = None
        return self.generator(x)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def fixed_batch_shape(self) -> bool:
        """Whether run_batches feeds the generator whole buffers, the last partial batch included."""
        return self.compiled or self.uses_cuda

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """Stylize one (H, W, 3) uint8 RGB image."""
        batch = torch.from_numpy(np.ascontiguousarray(rgb))[None]
        return self.frames(batch)[0].cpu().numpy()

    # -- sequences ---------------------------------------------------------------------------------

    def run_batches(
        self,
        batches: Iterable[FrameBatch[T]],
        *,
        output_pool: HostBufferPool | None = None,
        stop: threading.Event | None = None,
        colour: DeviceColour | None = None,
        after: Callable[[torch.Tensor, T], torch.Tensor] | None = None,
    ) -> Iterator[StylizedBatch[T]]:
        """Stylize ``batches`` in order, yielding each as a :class:`StylizedBatch` with its context.

        On CUDA, batch n+1 is uploaded on a side stream before the generator runs on batch n,
        and batch n is downloaded into a buffer of ``output_pool`` (pinned, same shape as the
        input buffers) without waiting: the caller waits in :meth:`StylizedBatch.frames`, ideally
        on another thread. Without ``output_pool`` each download gets a fresh pinned buffer.
        Input buffers go back to their pool as soon as the device no longer needs them.
        A batch with ``count == 0`` passes through with its context (e.g. trailing audio).

        With ``colour``, batches hold frames as packed YUV 4:2:0 planes ((B, colour.input_bytes))
        and come back as planes ((B, colour.output_bytes)): the conversions to and from RGB
        (rotation and padding included) run on the device, around the generator. ``after(rgb, context)``,
        with ``colour``: applied in batch order to the (count, H, W, 3) uint8 RGB frames on the device
        before they are converted back (e.g. the video's temporal stage).
        """
        with cudnn_autotuning(self.device):  # one frame size throughout
            pending: _Uploaded[T] | None = None
            for batch in batches:
                uploaded = self._upload(batch)
                if pending is not None:
                    yield self._stylize(pending, output_pool, stop, colour, after)
                pending = uploaded
            if pending is not None:
                yield self._stylize(pending, output_pool, stop, colour, after)

    def _upload(self, batch: FrameBatch[T]) -> _Uploaded[T]:
        if batch.count == 0 or self._copy_stream is None:
            return _Uploaded(batch, batch.pixels, None)
        with torch.cuda.stream(self._copy_stream):
            # non_blocking is safe: the pinned buffer goes back to its pool with `done`, and the
            # pool hands it out again (to be refilled) only after `done` has completed.
            pixels = batch.pixels.to(self.device, non_blocking=True)
            done = torch.cuda.Event(blocking=True)  # host threads wait on it asleep, not spinning
            done.record(self._copy_stream)
        if batch.pool is not None:
            batch.pool.release(batch.pixels, done)
        return _Uploaded(batch, pixels, done)

    def _stylize(
        self, uploaded: _Uploaded[T], output_pool: HostBufferPool | None, stop: threading.Event | None,
        colour: DeviceColour | None = None, after: Callable[[torch.Tensor, T], torch.Tensor] | None = None,
    ) -> StylizedBatch[T]:  # fmt: skip
        batch = uploaded.batch
        if batch.count == 0:
            if batch.pool is not None:
                batch.pool.release(batch.pixels)
            return StylizedBatch(batch.pixels, 0, batch.context)
        # A compiled generator, and any generator on CUDA, is fed whole buffers: the last, partial
        # batch of a video then has the same shape and triggers neither a recompilation nor a
        # new round of cuDNN autotuning (the stale tail is computed and discarded).
        pixels = uploaded.pixels if self.fixed_batch_shape else uploaded.pixels[: batch.count]
        if not self.uses_cuda:
            stylized = self._converted_frames(pixels, colour, after, batch)[: batch.count]
            if batch.pool is not None:
                batch.pool.release(batch.pixels)  # `frames` returned a new tensor: the input is free
            return StylizedBatch(stylized, batch.count, batch.context)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(uploaded.done)  # GPU-side wait: the host thread does not block here
        # The tensor was allocated on the copy stream; tell the caching allocator that the
        # compute stream uses it too, or its memory could be reused before the generator ran.
        uploaded.pixels.record_stream(compute)
        stylized = self._converted_frames(pixels, colour, after, batch)[: batch.count]
        if output_pool is not None:
            host = output_pool.acquire(stop)
        else:
            host = torch.empty((batch.pixels.shape[0], *stylized.shape[1:]), dtype=torch.uint8, pin_memory=True)
        # Asynchronous into pinned memory; readers wait on `ready` (StylizedBatch.frames). The
        # device tensor may be freed right away: the allocator only reuses it for work queued
        # later on the same stream, i.e. after this copy.
        host[: batch.count].copy_(stylized, non_blocking=True)
        ready = torch.cuda.Event(blocking=True)
        ready.record(compute)
        return StylizedBatch(host, batch.count, batch.context, ready, output_pool)

    @torch.inference_mode()
    def _converted_frames(
        self, pixels: torch.Tensor, colour: DeviceColour | None, after: Callable | None = None, batch: FrameBatch | None = None
    ) -> torch.Tensor:  # fmt: skip
        """:meth:`frames`, with YUV planes in and out when ``colour`` is given (converted on the device)."""
        if colour is None:
            return self.frames(pixels)
        rgb = colour.to_rgb(pixels.to(self.device, non_blocking=True))  # (B, H, W, 3), upright and padded
        stylized = self.frames(rgb)
        if after is not None:
            stylized[: batch.count] = after(stylized[: batch.count], batch.context)
        return colour.from_rgb(stylized)  # (B, output_bytes)

    def stream(self, frames: Iterable[np.ndarray], batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Stylize (H, W, 3) uint8 RGB frames lazily and in order; all frames must share one size.

        Memory stays bounded (a few batches) however long ``frames`` is, so this suits frames
        decoded on the fly as well as lists. ``batch_size`` defaults to
        :meth:`default_batch_size`. Each yielded array is a fresh copy the caller owns.
        """
        iterator = iter(frames)
        first = next(iterator, None)
        if first is None:
            return
        first = _check_frame(first, None)
        height, width = first.shape[:2]
        batch_size = batch_size or self.default_batch_size(height, width)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        # Three input buffers: one being filled, one uploaded ahead, one in the generator.
        inputs = self.buffer_pool(3, batch_size, height, width)
        outputs = self.buffer_pool(2, batch_size, height, width) if self.uses_cuda else None

        def batches() -> Iterator[FrameBatch[None]]:
            pixels, count = inputs.acquire(), 0
            for frame in _chain_first(first, iterator):
                pixels[count].copy_(torch.from_numpy(_check_frame(frame, (height, width))))
                count += 1
                if count == batch_size:
                    yield FrameBatch(pixels, count, None, inputs)
                    pixels, count = inputs.acquire(), 0
            yield FrameBatch(pixels, count, None, inputs)

        for stylized in self.run_batches(batches(), output_pool=outputs):
            try:
                for frame in stylized.frames():
                    yield frame.numpy().copy()
            finally:
                stylized.release()


def _chain_first(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _check_frame(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB frames, got {frame.shape} {frame.dtype}")
    if size is not None and frame.shape[:2] != size:
        raise ValueError(f"all frames must have the first frame's size {size}, got {frame.shape[:2]}")
    return frame
