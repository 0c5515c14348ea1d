"""The generator on CUDA: the figures that :data:`animevid.engine.tuning.CUDA` is to be set from.

* throughput: frames/s of the generator alone (float input already on the device, autocast as
  the product runs it) at 720p and 1080p for each batch size, in NCHW and channels_last, eager;
  and, at one size and batch, compiled (``torch.compile(dynamic=False)``) in both layouts:
  each compilation costs tens of seconds, so only the one that decides the default is paid
  (``--cuda-compile without|only`` splits eager and compiled into two runs, so that a slow
  compilation cannot cost the eager figures);
* precision: the fp16 output against fp32 (same weights, same input) on the uint8 scale the
  product writes: mean and max difference in levels (LSB), at each size.

Every candidate of a size is timed in the same process, interleaved, median after warm-up (the
warm-up is where cuDNN autotunes: ``cudnn_autotuning`` is on, as in a video job). On the CPU
(the dry run of ``benchmarks/gpu_check.sh``) the same code runs at toy sizes in fp32, bf16 in
place of fp16 for the precision figure (first size only: emulated bf16 is slow); its figures say
nothing about a GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .common import fmt, interleaved_timings, markdown_table, size_name
from .engines import seeded_generator
from .table1 import _quiet_dynamo, lsb_difference, synthetic_input

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
COMPILE_MODES = ("with", "without", "only")


@dataclass(frozen=True)
class CudaSettings:
    sizes: tuple[tuple[int, int], ...] = ((720, 1280), (1080, 1920))  # (height, width)
    batch_sizes: tuple[tuple[int, ...], ...] = ((1, 2, 4, 8, 16), (1, 2, 4, 8))  # per size
    compile_size: tuple[int, int] | None = (720, 1280)  # None: no compiled candidates
    compile_batch: int = 8
    repeats: int = 5
    warmup: int = 2
    compile_mode: str = "with"  # with: eager and compiled; without: eager only; only: the compiled candidates only


def default_settings(device: torch.device, quick: bool) -> CudaSettings:
    """CUDA: 720p at batches 1-16, 1080p at 1-8, compiled at 720p batch 8. CPU: toy sizes (with
    --quick, not compiled: a compilation alone takes about 20 s on 2 cores)."""
    if quick:
        return CudaSettings(((32, 48),), ((1, 2),), None, 2, repeats=1, warmup=1)
    if device.type != "cuda":
        return CudaSettings(((32, 48), (48, 64)), ((1, 2), (1, 2)), (32, 48), 2, repeats=2, warmup=1)
    return CudaSettings()


def run_dtype(device: torch.device) -> torch.dtype:
    """What the product runs the generator in: fp16 autocast on CUDA, fp32 on the CPU."""
    return torch.float16 if device.type == "cuda" else torch.float32


def half_dtype(device: torch.device) -> torch.dtype:
    """The half precision compared with fp32: fp16 on CUDA; bf16 elsewhere (no fp16 autocast there)."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def make_forward(
    model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype, layout: str, compiled: bool
) -> Callable[[], torch.Tensor]:
    """One generator forward of ``x`` as the stylizer runs it: inference mode, autocast unless fp32."""
    memory_format = LAYOUTS[layout]
    model = model.to(x.device, memory_format=memory_format)
    x = x.contiguous(memory_format=memory_format)
    forward = torch.compile(model, dynamic=False) if compiled else model

    def run() -> torch.Tensor:
        autocast = torch.autocast(x.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
        with torch.inference_mode(), autocast:
            return forward(x)

    return run


def run(device: torch.device, settings: CudaSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    from animevid.engine.stylizer import cudnn_autotuning
    from animevid.engine.tuning import CUDA

    dtype, half = run_dtype(device), half_dtype(device)
    throughput: dict[str, dict[str, object]] = {}
    precision: dict[str, object] = {}
    if settings.compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, not {settings.compile_mode!r}")
    with cudnn_autotuning(device), _quiet_dynamo():
        for (height, width), batch_sizes in zip(settings.sizes, settings.batch_sizes):
            compiled_here = settings.compile_mode != "without" and settings.compile_size == (height, width)
            if settings.compile_mode == "only" and not compiled_here:
                continue
            name = size_name(height, width)
            image = synthetic_input(height, width, device)  # (1, 3, H, W) in [-1, 1]
            if settings.compile_mode != "only" and (device.type == "cuda" or not precision):  # CPU: bf16 is emulated, slow: one size
                model = seeded_generator()
                reference = make_forward(model, image, torch.float32, "nchw", False)().float().cpu()
                halved = make_forward(model, image, half, "nchw", False)().float().cpu()
                precision[name] = {"dtype": str(half).removeprefix("torch."), **lsb_difference(halved, reference)}
            candidates: dict[str, Callable[[], torch.Tensor]] = {}
            for batch in batch_sizes if settings.compile_mode != "only" else ():
                x = image.expand(batch, -1, -1, -1).clone()
                for layout in LAYOUTS:
                    candidates[f"{layout}/eager/b{batch}"] = make_forward(seeded_generator(), x, dtype, layout, False)
            if compiled_here:
                x = image.expand(settings.compile_batch, -1, -1, -1).clone()
                for layout in LAYOUTS:
                    candidates[f"{layout}/compile/b{settings.compile_batch}"] = make_forward(seeded_generator(), x, dtype, layout, True)
            log(f"cuda: {name}: {len(candidates)} candidates, {settings.repeats} timed runs after {settings.warmup} warm-up")
            first_call: dict[str, float] = {}

            def on_warmup(candidate: str, index: int, seconds: float, result: object) -> None:
                if index == 0:
                    first_call[candidate] = seconds
                    log(f"  {name} {candidate}: first call {seconds:.2f} s")

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            timings = interleaved_timings(candidates, repeats=settings.repeats, device=device, warmup=settings.warmup, on_warmup=on_warmup)
            per_size: dict[str, object] = {}
            for candidate, timing in timings.items():
                layout, mode, batch = candidate.split("/")
                frames = int(batch[1:])
                per_size[candidate] = {
                    "layout": layout, "mode": mode, "batch_size": frames, "fps": frames / timing.median,
                    "first_call_s": first_call[candidate], "timing": timing.as_dict(),
                }  # fmt: skip
            if device.type == "cuda":
                per_size["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            throughput[name] = per_size
    return {
        "status": "ok",
        "dtype": str(dtype).removeprefix("torch."),
        "current_defaults": {"channels_last": CUDA.channels_last, "compile": CUDA.compile, "pixels_per_batch": CUDA.pixels_per_batch},
        "throughput": throughput,
        "precision_vs_fp32": precision,
        "best": _best(throughput),
    }


def _best(throughput: dict[str, dict[str, object]]) -> dict[str, object]:
    """Per size: the fastest candidate overall and per layout (what the defaults are to be read from)."""
    best: dict[str, object] = {}
    for size, per_size in throughput.items():
        entries = {name: entry for name, entry in per_size.items() if isinstance(entry, dict)}
        if not entries:
            continue
        fastest = max(entries, key=lambda name: entries[name]["fps"])
        per_layout = {
            layout: max((n for n in entries if n.startswith(layout + "/eager/")), key=lambda n: entries[n]["fps"], default=None)
            for layout in LAYOUTS
        }
        best[size] = {"fastest": fastest, "fastest_fps": entries[fastest]["fps"], "fastest_eager_per_layout": per_layout}
    return best


def markdown(result: dict[str, object], device_label: str) -> str:
    parts = [f"### The generator on {device_label} ({result['dtype']} autocast, frames/s, median after warm-up)", ""]
    for size, per_size in result["throughput"].items():
        entries = {name: entry for name, entry in per_size.items() if isinstance(entry, dict)}
        batches = sorted({entry["batch_size"] for entry in entries.values()})
        rows = []
        for layout in LAYOUTS:
            for mode in ("eager", "compile"):
                cells = [entries.get(f"{layout}/{mode}/b{b}") for b in batches]
                if any(cells):
                    rows.append([f"{layout}, {mode}", *(fmt(c["fps"], 1) if c else "—" for c in cells)])
        if size not in result["best"]:
            continue
        precision = result["precision_vs_fp32"].get(size)
        compared = (
            f"{precision['dtype']} vs fp32 at batch 1: max {precision['max_lsb']:.0f} LSB, mean {precision['mean_lsb']:.3f} LSB. "
            if precision else ""
        )  # fmt: skip
        parts += [
            f"#### {size}",
            "",
            markdown_table(["", *(f"batch {b}" for b in batches)], rows),
            "",
            f"{compared}Fastest: {result['best'][size]['fastest']}.",
            "",
        ]
    return "\n".join(parts)
