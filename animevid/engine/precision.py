"""``--dtype auto`` on the CPU: the fastest precision whose output is indistinguishable from fp32,
measured per weights file and per CPU model, not assumed.

The first time a generator (its OpenVINO conversion key: the weights and everything else that defines
the function) runs on a CPU model, :func:`choose_cpu_precision` runs a few built-in calibration
frames (:func:`calibration_frames`) in fp32 and in each faster candidate the CPU offers, and keeps the
fastest candidate whose uint8 output stays within :data:`BOUND` of fp32's; fp32 otherwise. The
decision and its figures are cached as JSON beside the converted model, under a key that covers
everything that defines the decision (:func:`decision_key`), so a later run decides nothing.

Candidates: bf16 where OpenVINO's CPU plugin computes it natively (AVX512-BF16, AMX); elsewhere there
is nothing faster to measure and auto is fp32 without running anything. INT8 (NNCF post-training
quantization) was measured and failed the bound on our test weights (``benchmarks/int8.py`` and the
README): it is not a candidate. On CUDA auto stays fp16 autocast (its default before this module);
with ``--engine torch`` or ``--compile`` on the CPU it stays fp32 (the measurement is OpenVINO's, the
CPU's default engine).
An explicit ``--dtype`` is always obeyed and measures nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bound:
    """How far (uint8 levels) a faster precision's output may be from fp32's and still count as the same picture.

    8 levels at most on any pixel and a PSNR of at least 45 dB (an RMS difference of at most 1.4 levels):
    below what the eye sees on anime's flat colours, and below what the default video encode itself
    changes (x264 at crf 18 is typically 40-45 dB from its input); a JPEG at quality 95 differs more.
    The max guards against a few wrong pixels that a mean would hide (a norm that cancels
    catastrophically in bf16 shows up as a blotch, not as noise).
    """

    max_lsb: float = 8.0
    min_psnr_db: float = 45.0

    def passes(self, max_lsb: float, psnr_db: float) -> bool:
        return max_lsb <= self.max_lsb and psnr_db >= self.min_psnr_db


BOUND = Bound()
CALIBRATION_SIZE = (192, 256)  # (height, width): every kind of content below, small enough to measure in seconds
CALIBRATION_COUNT = 3
TIMED_ROUNDS = 2  # per candidate, after one warm-up frame: medians of interleaved rounds
CANDIDATE_DTYPES = {"bfloat16": torch.bfloat16}
clock = time.perf_counter  # what the measurement times with (tests drive a clock of their own)

# A runner builds the generator's forward for one precision: (B, 3, H, W) float32 in [-1, 1] -> same.
Runner = Callable[[nn.Module, torch.dtype], Callable[[torch.Tensor], torch.Tensor]]


@dataclass(frozen=True)
class Measurement:
    """One candidate against fp32 on the calibration frames (uint8 levels)."""

    dtype: str
    max_lsb: float
    mean_lsb: float
    psnr_db: float
    ms_per_frame: float
    fp32_ms_per_frame: float

    @property
    def speedup(self) -> float:
        return self.fp32_ms_per_frame / self.ms_per_frame if self.ms_per_frame > 0 else 0.0


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``--dtype auto`` chose on the CPU, and why: the figures when it measured."""

    dtype: torch.dtype
    reason: str  # "measured", or why nothing was measured
    measurements: tuple[Measurement, ...] = ()

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def label(self) -> str:
        """For the run summary: ``bfloat16 (measured: 0.4 LSB mean, 3 max vs fp32)``, ``float32 (auto: why)``
        when a faster precision was measured and refused, plain ``float32`` when there was none to measure."""
        chosen = next((m for m in self.measurements if m.dtype == self.name), None)
        if chosen is not None:
            return f"{self.name} (measured: {chosen.mean_lsb:.1f} LSB mean, {chosen.max_lsb:.0f} max vs fp32)"
        if self.measurements:
            return f"{self.name} (auto: " + "; ".join(_refusal(m) for m in self.measurements) + ")"
        return self.name  # nothing faster on this CPU: nothing to say


def _refusal(measurement: Measurement, bound: Bound = BOUND) -> str:
    if not bound.passes(measurement.max_lsb, measurement.psnr_db):
        return f"{measurement.dtype} measured {measurement.max_lsb:.0f} LSB max, {measurement.psnr_db:.1f} dB vs fp32, over the bound"
    return f"{measurement.dtype} measured no faster than fp32 ({measurement.speedup:.2f}x)"


def calibration_frames(size: tuple[int, int] = CALIBRATION_SIZE, count: int = CALIBRATION_COUNT) -> np.ndarray:
    """(count, H, W, 3) uint8 RGB: deterministic images with what photos hold — smooth gradients (sky),
    saturated flat areas with hard edges, fine texture (foliage, fabric) and dark and bright extremes."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / max(1, width - 1), y / max(1, height - 1)
    rng = np.random.default_rng(20261205)
    frames = []
    for index in range(count):
        phase = index * 2.1
        gradient = np.stack([u, v, 1 - 0.5 * (u + v)], axis=-1)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (x * (0.05 + 0.04 * index) + y * 0.03) + phase)[..., None]
        blocks = ((x // (24 + 8 * index) + y // 32) % 3)[..., None] / 2.0 * np.array([0.9, 0.3, 0.6], np.float32)
        grain = rng.normal(0.0, 0.06, (height, width, 3)).astype(np.float32)
        image = 0.45 * gradient + 0.25 * stripes * np.array([1.0, 0.7, 0.4], np.float32) + 0.3 * blocks + grain
        image[: height // 8] = 0.02 + 0.02 * u[: height // 8, :, None]  # a near-black band
        image[-height // 8 :] = 0.97  # a blown-out one
        frames.append(np.clip(image * 255.0, 0, 255).round().astype(np.uint8))
    return np.stack(frames)


def to_model_input(frames: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1], as the stylizer feeds the generator."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def to_levels(output: torch.Tensor) -> torch.Tensor:
    """The generator's output on the uint8 scale the product writes (rounded, clamped), as float."""
    return output.float().add(1.0).mul(127.5).round().clamp(0, 255)


def compare(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float, float]:
    """max and mean |Δ| (uint8 levels) and PSNR (dB, peak 255) of ``output`` against ``reference``."""
    difference = to_levels(output) - to_levels(reference)
    mse = difference.pow(2).mean().item()
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return difference.abs().max().item(), difference.abs().mean().item(), psnr


def candidates() -> tuple[str, ...]:
    """The precisions faster than fp32 worth measuring on this CPU."""
    from .openvino import cpu_has_native_bf16

    return ("bfloat16",) if cpu_has_native_bf16() else ()


def cpu_identity() -> dict[str, object]:
    """The CPU as OpenVINO sees it: model name and optimization capabilities (what the decision depends on)."""
    from .openvino import openvino_core

    core = openvino_core()
    return {
        "cpu_model": str(core.get_property("CPU", "FULL_DEVICE_NAME")),
        "capabilities": sorted(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
    }


def decision_key(conversion: str, cpu: dict[str, object], offered: tuple[str, ...], bound: Bound, frames: np.ndarray) -> str:
    """Everything that defines a decision, by construction: the function (its conversion key), the CPU
    model and capabilities, the candidates, the bound, the calibration frames and the rounds."""
    parts = {
        "conversion": conversion,
        **cpu,
        "candidates": list(offered),
        "bound": asdict(bound),
        "frames": hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest(),
        "frames_shape": list(frames.shape),
        "rounds": TIMED_ROUNDS,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def openvino_runner(generator: nn.Module, dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    from .openvino import OpenVINOGenerator

    return OpenVINOGenerator(generator, dtype)


def measure(
    generator: nn.Module, offered: tuple[str, ...], frames: np.ndarray, runner: Runner = openvino_runner
) -> tuple[Measurement, ...]:
    """Each candidate against fp32 on ``frames``: differences over all frames, medians of per-frame times
    over interleaved rounds (each engine warmed up on the first frame before any timing)."""
    inputs = [to_model_input(frames[i : i + 1]) for i in range(len(frames))]
    names = ("float32", *offered)
    forwards = {name: runner(generator, torch.float32 if name == "float32" else CANDIDATE_DTYPES[name]) for name in names}
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for forward in forwards.values():
        forward(inputs[0])  # compilation, first-touch allocations
    for round_index in range(TIMED_ROUNDS):
        for x in inputs:
            for name, forward in forwards.items():
                started = clock()
                y = forward(x)
                times[name].append(clock() - started)
                if round_index == 0:
                    outputs[name].append(y.detach().float().clone())
    reference = torch.cat(outputs["float32"])
    fp32_ms = float(np.median(times["float32"])) * 1e3
    results = []
    for name in offered:
        max_lsb, mean_lsb, psnr = compare(torch.cat(outputs[name]), reference)
        results.append(Measurement(name, max_lsb, mean_lsb, psnr, float(np.median(times[name])) * 1e3, fp32_ms))
    return tuple(results)


def decide(measurements: tuple[Measurement, ...], bound: Bound = BOUND) -> PrecisionChoice:
    """The fastest candidate within ``bound`` that is faster than fp32; fp32 when none is."""
    passing = [m for m in measurements if bound.passes(m.max_lsb, m.psnr_db) and m.speedup > 1.0]
    if not passing:
        return PrecisionChoice(torch.float32, "measured", measurements)
    best = max(passing, key=lambda m: m.speedup)
    return PrecisionChoice(CANDIDATE_DTYPES[best.dtype], "measured", measurements)


def decision_path(conversion: str, key: str) -> Path:
    """Beside the converted model it was measured with."""
    from .openvino import cache_dir

    return cache_dir() / f"{conversion}.precision-{key}.json"


def choose_cpu_precision(generator: nn.Module, *, runner: Runner | None = None, bound: Bound = BOUND) -> PrecisionChoice:
    """``--dtype auto`` for ``generator`` on this CPU with OpenVINO: cached, else measured now (seconds, once)."""
    from .openvino import conversion_key, import_openvino

    offered = candidates()
    if not offered:
        return PrecisionChoice(torch.float32, "no native bf16 on this CPU")
    frames = calibration_frames()
    conversion = conversion_key(generator, import_openvino().__version__)
    path = decision_path(conversion, decision_key(conversion, cpu_identity(), offered, bound, frames))
    cached = _read_decision(path)
    if cached is not None:
        return cached
    logger.info("measuring %s against float32 on this CPU for these weights (once)", ", ".join(offered))
    choice = decide(measure(generator, offered, frames, runner or openvino_runner), bound)
    _write_decision(path, choice, bound)
    return choice


def auto_precision(generator: Callable[[], nn.Module]) -> PrecisionChoice | None:
    """:func:`choose_cpu_precision`, or None where the measurement failed (logged: fp32 is always right,
    and a failed measurement must not cost the job). ``generator`` is called only where there is
    something to measure, so a caller without the network at hand loads it only then."""
    from ..errors import UsageError

    if not candidates():
        return PrecisionChoice(torch.float32, "no native bf16 on this CPU")
    try:
        return choose_cpu_precision(generator())
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001
        logger.warning("could not measure the faster precisions (%s); running float32", str(exc).splitlines()[0][:200])
        return None


def _read_decision(path: Path) -> PrecisionChoice | None:
    try:
        record = json.loads(path.read_text())
        measurements = tuple(Measurement(**m) for m in record["measurements"])
        return PrecisionChoice(getattr(torch, record["dtype"]), record["reason"], measurements)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # damaged: measure again
        logger.warning("ignoring the cached precision decision %s (%s)", path, exc)
        return None


def _write_decision(path: Path, choice: PrecisionChoice, bound: Bound) -> None:
    record = {
        "dtype": choice.name,
        "reason": choice.reason,
        "label": choice.label(),
        "bound": asdict(bound),
        "measurements": [asdict(m) for m in choice.measurements],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        staged.write_text(json.dumps(record, indent=2))
        os.replace(staged, path)  # atomic: a reader sees no decision or a whole one
    except OSError as exc:  # a read-only cache costs a measurement next time, not the job
        logger.warning("cannot cache the precision decision in %s (%s)", path.parent, exc)
        staged.unlink(missing_ok=True)

