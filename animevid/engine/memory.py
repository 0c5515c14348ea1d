"""Memory a frame needs, per engine, precision and way of running, and the check made before any work.

A photo too large for the machine used to be OOM-killed minutes into the job, with no message and
nothing written. Now, before a photo or a video's first frame of a size runs, the need is compared
with what the process may still allocate (:func:`animevid.engine.resources.available_memory`, or the
free CUDA memory): the whole-image forward when it fits, otherwise the band-by-band execution
(:mod:`animevid.models.animegan_bands`, exact, bounded), otherwise a one-line refusal naming the
largest size that fits and the ``--max-side`` that gets there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import DeviceError
from .resources import available_memory

MIB = 2**20
GIB = 2**30
# Kept free beside a frame's need: decoded and encoded images, the video pipeline's buffers, the
# allocator's slack, other programs' growth while the frame runs.
RESERVE_BYTES = 512 * MIB
RESERVE_FRACTION = 0.05
# The whole-image forward runs only where its need leaves a quarter of the available memory free:
# a frame runs for minutes on a CPU, and the rest of the machine may grow meanwhile. Bands need a
# fraction of it for about 13 % more arithmetic.
WHOLE_FRACTION = 0.75


@dataclass(frozen=True)
class Footprint:
    """Peak memory growth while one frame runs: ``fixed + per_pixel * pixels`` bytes."""

    fixed: float
    per_pixel: float

    def bytes(self, pixels: int) -> float:
        return self.fixed + self.per_pixel * pixels

    def largest_pixels(self, available: float) -> int:
        return max(0, int((available - self.fixed) / self.per_pixel))


# Peak RSS growth of one AnimeGAN frame on the CPU: `python -m benchmarks --only engines` on a 2-core
# AMD EPYC (benchmarks/results/cpu-2026-12-01-211717.json), VmHWM of a fresh process minus its RSS
# before the frame, fitted through 960x540 and 1920x1080. torch's whole-image forward holds oneDNN's
# reordered copies of the 64/128-channel full-resolution tensors besides the tensors themselves;
# OpenVINO plans its buffers but still holds several.
CPU_FOOTPRINTS: dict[tuple[str, torch.dtype], Footprint] = {
    ("torch", torch.float32): Footprint(271 * MIB, 2522.0),
    ("torch", torch.bfloat16): Footprint(409 * MIB, 1397.0),
    ("openvino", torch.float32): Footprint(8 * MIB, 1753.0),
    ("openvino", torch.bfloat16): Footprint(7 * MIB, 886.0),
}
# Band by band (fp32), v1 and v2 alike (both hold at most 384 bytes per pixel, HELD_BYTES_PER_PIXEL,
# and their widest bands are the same 512-channel quarter-resolution ones): the tensors held whole,
# the 3-channel input and output copies, and the bands' temporaries, which stop growing once an
# image is larger than a band. Fitted through the two points that bound it from above: 1,933 MiB
# added at 1920x1080 (python -m benchmarks --only engines, v1) and the whole process's peak RSS at
# 4032x3024 (6.64 GiB for v1 then, tests/models/test_animegan_bands.py; since the statistics make no
# copies and bands are capped at BAND_BYTES, 5.13 GiB for v1 and 5.33 GiB for v2,
# tests/models/test_animegan_v2_bands.py), so it over-estimates small images (960x540:
# 1.16 GiB against 896 MiB measured) and fits a 12 MP photo in 8 GB.
BANDS_FOOTPRINT = Footprint(938 * MIB, 504.0)
# Band by band on OpenVINO (animevid.engine.openvino_bands), the engine's precision: the same fixed
# part, and per pixel what the whole process's peak RSS at 4032x3024 leaves after it, the larger of
# v1 and v2 (/usr/bin/time -v, AMD EPYC, 2026-12-06): fp32 7.00 GiB (v1; v2 6.60 before the freed
# heap was returned after each layer), bf16 5.44 GiB (v1; v2 4.66; both before that too, so upper
# bounds). In fp32 the plan is the torch bands', plus the current layer's request buffers.
OPENVINO_BANDS_FOOTPRINTS: dict[torch.dtype, Footprint] = {
    torch.float32: Footprint(938 * MIB, 536.0),
    torch.bfloat16: Footprint(938 * MIB, 399.0),
}


def bands_footprint(engine: str, dtype: torch.dtype, device: torch.device) -> Footprint:
    """What the band-by-band execution of ``engine`` at ``dtype`` adds to the peak: OpenVINO's own on
    the CPU, torch's (fp32) otherwise."""
    if device.type == "cpu" and engine == "openvino" and dtype in OPENVINO_BANDS_FOOTPRINTS:
        return OPENVINO_BANDS_FOOTPRINTS[dtype]
    return BANDS_FOOTPRINT


def cuda_footprint(dtype: torch.dtype) -> Footprint:
    """Not measured on CUDA yet: the CPU torch figure scaled to the element size, an over-estimate
    (no oneDNN copies on CUDA), so that the guard errs towards bands, never towards running out."""
    cpu = CPU_FOOTPRINTS[("torch", torch.float32)]
    return Footprint(cpu.fixed, cpu.per_pixel * torch.tensor([], dtype=dtype).element_size() / 4)


@dataclass(frozen=True)
class MemoryPlan:
    """How a frame size runs: ``whole`` (the engine's own forward) or ``bands`` (bounded)."""

    executor: str  # "whole", "bands" (the engine's own band-by-band execution) or "torch-bands"
    need_bytes: float
    available_bytes: float | None


def available_bytes(device: torch.device) -> float | None:
    """What the process may still allocate on ``device``, less the reserve; None if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # Memory torch's caching allocator holds but does not use is free for this process too.
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    else:
        free = available_memory()
        if free is None:
            return None
    return max(0.0, free * (1 - RESERVE_FRACTION) - RESERVE_BYTES)


def plan_frame(
    engine: str, dtype: torch.dtype, device: torch.device, height: int, width: int, batch: int = 1, *, bands: bool = True
) -> MemoryPlan:
    """Choose how ``batch`` frames of ``height`` × ``width`` (the generator's input size) run.

    ``bands``: whether the band-by-band execution is available (AnimeGAN's generator): OpenVINO's
    for the OpenVINO engine (:mod:`animevid.engine.openvino_bands`), torch's otherwise. Raises
    :class:`DeviceError` when neither way fits, before any work.
    """
    pixels = height * width * batch
    whole = cuda_footprint(dtype) if device.type == "cuda" else CPU_FOOTPRINTS.get((engine, dtype), CPU_FOOTPRINTS[("torch", torch.float32)])
    available = available_bytes(device)
    if available is None or whole.bytes(pixels) <= WHOLE_FRACTION * available or (not bands and whole.bytes(pixels) <= available):
        return MemoryPlan("whole", whole.bytes(pixels), available)
    if not bands:
        largest = whole.largest_pixels(available) // batch
        raise DeviceError(_refusal(height, width, batch, whole.bytes(pixels), available, largest, device))
    # The engine's own bands (one frame at a time), else torch's: OpenVINO's fp32 bands hold more than
    # torch's (their requests' buffers), and where only torch's fit they run, slower but not refused.
    ways = {"bands": bands_footprint(engine, dtype, device), "torch-bands": BANDS_FOOTPRINT}
    for executor, footprint in ways.items():
        if footprint.bytes(height * width) <= available:
            return MemoryPlan(executor, footprint.bytes(height * width), available)
    smallest = min(ways.values(), key=lambda footprint: footprint.bytes(height * width))
    largest = smallest.largest_pixels(available)
    raise DeviceError(_refusal(height, width, batch, smallest.bytes(height * width), available, largest, device))


def _refusal(height: int, width: int, batch: int, need: float, available: float, largest_pixels: int, device: torch.device) -> str:
    frames = f"{batch} frames of {width}x{height}" if batch > 1 else f"a {width}x{height} image"
    where = "free on the GPU" if device.type == "cuda" else "available"
    message = f"{frames} needs about {need / GIB:.1f} GB of memory, {available / GIB:.1f} GB are {where}"
    if largest_pixels < 64:
        return message + ": free some memory first"
    max_side = math.floor(max(height, width) * math.sqrt(largest_pixels / (height * width)))
    return f"{message}: the largest image that fits is about {largest_pixels / 1e6:.1f} MP (--max-side {max_side} for this one)"
