"""Training speed: full G+D steps per second (all losses) at batch 4, 256×256.

One step is what the trainer does per batch in the GAN phase: D on real, smoothed and generated
images, then G with the adversarial, content, style (Gram), and colour losses through VGG19, both
optimizers stepping. The step comes from :func:`animevid.train.loop.make_benchmark_step` (random data,
random VGG weights: speed does not depend on them) with the trainer's own defaults for the device
(mixed precision on CUDA, fp32 on the CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .common import fmt, interleaved_timings, markdown_table, not_available


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int = 4
    image_size: int = 256
    steps: int = 5  # timed steps
    warmup: int = 2  # the first steps allocate, pick kernels and warm the optimizers' state


def default_settings(device: torch.device, quick: bool) -> TrainSettings:
    """CPU: one step at batch 4, 256² takes about 40 s on 2 cores, so 3 timed steps after 1 warm-up."""
    if quick:
        return TrainSettings(batch_size=1, image_size=32, steps=1, warmup=1)
    return TrainSettings(steps=20, warmup=3) if device.type == "cuda" else TrainSettings(steps=3, warmup=1)


def run(device: torch.device, settings: TrainSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    try:
        from animevid.train.loop import make_benchmark_step
    except ImportError as exc:
        return not_available(f"animevid.train.loop.make_benchmark_step cannot be imported ({exc})")
    log(f"train: G+D step, batch {settings.batch_size}, {settings.image_size}², {settings.steps} timed after {settings.warmup} warm-up")
    step = make_benchmark_step(device, settings.batch_size, settings.image_size)
    losses: dict[str, float] = {}

    def on_warmup(_name: str, _index: int, _seconds: float, result: object) -> None:
        losses.update({name: float(value) for name, value in result.items()})  # type: ignore[union-attr]

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timing = interleaved_timings({"step": step}, repeats=settings.steps, device=device, warmup=settings.warmup, on_warmup=on_warmup)["step"]
    result: dict[str, object] = {
        "status": "ok",
        "batch_size": settings.batch_size,
        "image_size": settings.image_size,
        "step_s": timing.median,
        "steps_per_s": 1.0 / timing.median,
        "images_per_s": settings.batch_size / timing.median,
        "timing": timing.as_dict(),
        "warmup_losses": losses,
    }
    if device.type == "cuda":
        result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def markdown(result: dict[str, object], device_label: str) -> str:
    rows = [
        [
            f"G+D step, batch {result['batch_size']}, {result['image_size']}×{result['image_size']}",
            fmt(result["step_s"] * 1e3, 0),
            fmt(result["steps_per_s"], 3),
            fmt(result["images_per_s"], 2),
        ]
    ]
    text = [
        f"### Training ({device_label}; median of {result['timing']['runs']} steps after warm-up)",
        "",
        markdown_table(["", "ms/step", "steps/s", "images/s"], rows),
        "",
    ]
    if "cuda_max_memory_allocated_mib" in result:
        text += [f"Peak CUDA memory allocated: {result['cuda_max_memory_allocated_mib']:.0f} MiB.", ""]
    return "\n".join(text)
