"""Shared benchmark machinery: clocks, interleaved medians, machine description, tables, JSON.

Every timing in these benchmarks follows the same rules:

* warm-up runs first (oneDNN/cuDNN pick their kernels, torch.compile compiles, caches fill);
* candidates that are compared with each other are timed in the same process, interleaved round by
  round (a slow minute on a shared machine then hits all of them, not one), and the order rotates
  every round so that no candidate always runs right after the same neighbour;
* the reported figure is the median of the timed runs;
* on CUDA the device is synchronized before every clock read, because kernels are queued
  asynchronously: without it the clock would measure how fast work is queued, not done.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def synchronize(device: torch.device) -> None:
    """Wait for queued device work; a no-op on the CPU, where every op runs synchronously."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Wall-clock samples of one candidate, in seconds, and the process CPU time of each.

    The wall clock is the figure reported. The CPU time (all threads of this process) is kept
    beside it because it hardly moves when other programs compete for the cores, while the wall
    clock then grows: the two together tell a slow candidate from a busy machine.
    """

    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    def as_dict(self) -> dict[str, object]:
        return {
            "median_s": self.median,
            "min_s": self.minimum,
            "runs": len(self.samples),
            "samples_s": self.samples,
            "cpu_median_s": statistics.median(self.cpu_samples) if self.cpu_samples else None,
        }


def time_once(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Run ``fn`` once and return (seconds, its result), synchronizing the device on both sides."""
    seconds, _, result = time_once_with_cpu(fn, device)
    return seconds, result


def time_once_with_cpu(fn: Callable[[], object], device: torch.device) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds, result) of one call of ``fn``, device synchronized."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu_start, result


def interleaved_timings(
    candidates: Mapping[str, Callable[[], object]],
    *,
    repeats: int,
    device: torch.device,
    warmup: int = 1,
    on_warmup: Callable[[str, int, float, object], None] | None = None,
) -> dict[str, Timing]:
    """Time every candidate ``repeats`` times, interleaved and in rotating order, after warm-up.

    ``on_warmup(name, index, seconds, result)`` sees every warm-up call (to record compile time
    or keep an output for comparison) without timing anything twice.
    """
    names = list(candidates)
    for name in names:
        for index in range(warmup):
            seconds, result = time_once(candidates[name], device)
            if on_warmup is not None:
                on_warmup(name, index, seconds, result)
    timings = {name: Timing() for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, cpu_seconds, _ = time_once_with_cpu(candidates[name], device)
            timings[name].samples.append(seconds)
            timings[name].cpu_samples.append(cpu_seconds)
    return timings


def cpu_model() -> str:
    """The CPU's marketing name, as the kernel reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _total_memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _version(module_name: str) -> str | None:
    try:
        module = __import__(module_name)
    except ImportError:
        return None
    return str(getattr(module, "__version__", None))


def machine_info(device: torch.device) -> dict[str, object]:
    """What a result was measured on: enough to tell two result files' machines apart."""
    info: dict[str, object] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": str(device),
        "cpu_model": cpu_model(),
        "cpu_logical_cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_has_avx512_bf16": "avx512_bf16" in cpu_flags(),  # native bf16 dot products on the CPU
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _total_memory_gib(),
        "load_average_at_start": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu_name": None,
        "gpu_memory_gib": None,
        "numpy": _version("numpy"),
        "av": _version("av"),
        "opencv": _version("cv2"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu_name"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: on a shared machine they say how much else was running."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_line(info: Mapping[str, object]) -> str:
    """One human line naming the machine, for table captions and the README."""
    where = f"{info['gpu_name']}" if info.get("gpu_name") else f"{info['cpu_model']}"
    return (
        f"{where} ({info['cpu_logical_cores']} logical CPU cores, {info['torch_threads']} torch threads, "
        f"{info['memory_gib']} GiB RAM), torch {info['torch']}, {info['date'][:10]}"
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; the first column is left-aligned, the others right-aligned."""
    align = [":--"] + ["--:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 2) -> str:
    """A number with thousands separators and ``digits`` decimals; ``—`` for missing values."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_ms(seconds: float | None) -> str:
    """Milliseconds with about three significant digits."""
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


def not_available(reason: str) -> dict[str, object]:
    """The result of a benchmark that could not run; never a number in place of a measurement."""
    return {"status": "not available", "reason": reason}


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (also with ×) → (height, width)."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"expected a size like 1280x720, got {text!r}")
    width, height = (int(p) for p in parts)
    if width <= 0 or height <= 0:
        raise ValueError(f"sizes must be positive, got {text!r}")
    return height, width


def size_name(height: int, width: int) -> str:
    return f"{width}x{height}"


class ResultsFile:
    """The JSON file of one benchmark run, rewritten after every part so a crash keeps what was done."""

    def __init__(self, out_dir: Path, device: torch.device, *, quick: bool, settings: Mapping[str, object]) -> None:
        info = machine_info(device)
        stamp = _dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
        suffix = "-quick" if quick else ""
        self.path = Path(out_dir) / f"{device.type}-{stamp}{suffix}.json"
        self.data: dict[str, object] = {"machine": info, "quick": quick, "settings": dict(settings), "results": {}}

    def add(self, part: str, result: Mapping[str, object]) -> None:
        self.data["results"][part] = dict(result)  # type: ignore[index]
        self.write()

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_json_default) + "\n")
        os.replace(tmp, self.path)  # readers never see a half-written file
        return self.path


def _json_default(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
