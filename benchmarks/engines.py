"""The generator's engines side by side: torch eager, torch.compile (fp32, bf16), OpenVINO (fp32, bf16),
ONNX Runtime, and the band-by-band execution; speed, difference, start-up and peak memory.

Speed: ms per frame at batch 1, generator only (float input in [-1, 1], float output), all
candidates in one process, interleaved, medians after a warm-up. Each output is compared with
torch eager fp32's on the uint8 scale the product writes (Δ max / mean LSB, and the share of
pixels off by more than 1 level). The input is :func:`benchmarks.table1.synthetic_input` (smooth,
colourful); the weights are random in the official layout, their norm affines drawn like the
tests' (scale 0.5-1.5, shift ±0.2): bf16's difference with trained weights is still to measure.

Start-up: OpenVINO's engine built with an empty cache (export to ONNX, conversion, compilation)
and again with the cache it left; ONNX Runtime's export and session; torch.compile's first call.

Peers (section ``peers``): v1 and v2 at 960x540 beside their peers' eager fp32 forward
(:mod:`benchmarks.peers`), with OpenVINO fp32 and bf16, each one's Δ against our fp32, what
``--dtype auto`` chose for these weights on this CPU, and a 10-second phone clip's generator time.
``--engine-sections peers`` runs only that.

Memory: each engine at each size in a fresh process (``python -m benchmarks.engines --child``):
peak RSS (``VmHWM``) minus the RSS just before the frame, i.e. what one frame adds. Fitted as
fixed + per-pixel bytes over the sizes: the figures :mod:`animevid.engine.memory` plans with.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .common import fmt, interleaved_timings, markdown_table, not_available, size_name
from .table1 import lsb_difference, synthetic_input, to_uint8_scale

# "bands": torch band by band (fp32); "bands-openvino": OpenVINO band by band (what a photo too large
# for the whole forward runs with the default engine), fp32 and bf16.
ALL_VARIANTS = ("eager", "compile", "compile+bf16", "openvino", "openvino+bf16", "onnxruntime", "bands", "bands-openvino",
                "bands-openvino+bf16")  # fmt: skip
MEMORY_VARIANTS = ("eager", "eager+bf16", "openvino", "openvino+bf16", "bands", "bands-openvino", "bands-openvino+bf16")
TARGET_SIZE = (540, 960)  # the targets are at a phone video frame
TARGETS_S = {"default (exact)": 2.2, "bf16": 0.7}
SECTIONS = ("speed", "contention", "memory", "peers")
PHONE_CLIP_FRAMES = 300  # a 10-second phone clip at 30 frames/s


@dataclass(frozen=True)
class EngineSettings:
    sizes: tuple[tuple[int, int], ...] = ((256, 256), (540, 960), (720, 1280), (1080, 1920))
    repeats: tuple[int, ...] = (5, 3, 1, 1)
    warmup: int = 1
    variants: tuple[str, ...] = ALL_VARIANTS
    memory_sizes: tuple[tuple[int, int], ...] = ((540, 960), (1080, 1920))
    memory_variants: tuple[str, ...] = MEMORY_VARIANTS
    contention: bool = True  # OpenVINO fp32 beside a busy thread, pinned vs unpinned
    sections: tuple[str, ...] = SECTIONS
    peer_size: tuple[int, int] = TARGET_SIZE  # v1 and v2 beside the peers' eager forward
    peer_rounds: int = 2


def default_settings(device: torch.device, quick: bool) -> EngineSettings:
    """CPU only (CUDA is torch's). A full CPU run takes about 30 minutes on 2 cores."""
    if quick:
        # One export (about 15 s on 2 cores) is most of it: ONNX Runtime, which would export again, is left out.
        return EngineSettings(
            ((32, 32),), (1,), 1, ("eager", "openvino", "bands"), ((32, 32), (64, 64)), ("eager", "openvino"), False,
            peer_size=(32, 32), peer_rounds=1,
        )  # fmt: skip
    return EngineSettings()


def seeded_generator(seed: int = 0):
    """The v1 generator with seeded random weights (:func:`animevid.weights.formats.random_weights`), ready for inference."""
    from animevid.weights.formats import random_weights

    return random_weights(seed=seed).generator()


@contextlib.contextmanager
def _empty_cache() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="animevid-bench-cache-"))
    previous = os.environ.get("ANIMEVID_CACHE")
    os.environ["ANIMEVID_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("ANIMEVID_CACHE", None)
        else:
            os.environ["ANIMEVID_CACHE"] = previous
        shutil.rmtree(folder, ignore_errors=True)


def _openvino_engines(generator, variants: tuple[str, ...], startup: dict[str, object], log) -> dict[str, object]:
    """Each OpenVINO variant built twice: first (fp32: with an empty cache, i.e. export, conversion and
    compilation; bf16: the conversion is fp32's, shared, so compilation only), then from the cache."""
    from animevid.engine.openvino import OpenVINOGenerator, cpu_has_native_bf16

    engines: dict[str, object] = {}
    for variant in sorted((v for v in variants if v.startswith("openvino")), key=len):  # fp32 first
        dtype = torch.bfloat16 if variant.endswith("bf16") else torch.float32
        if dtype == torch.bfloat16 and not cpu_has_native_bf16():
            startup[variant] = {"status": "not available: no native bf16 on this CPU"}
            continue
        started = time.perf_counter()
        OpenVINOGenerator(generator, dtype)
        first = time.perf_counter() - started
        started = time.perf_counter()
        engines[variant] = OpenVINOGenerator(generator, dtype)
        cached = time.perf_counter() - started
        startup[variant] = {"first_run_s": first, "cached_s": cached}
        log(f"  {variant}: start-up {first:.1f} s first, {cached:.2f} s cached")
    return engines


def _onnxruntime_session(generator, startup: dict[str, object], log):
    try:
        import onnxruntime
    except ImportError:
        startup["onnxruntime"] = {"status": "not available: onnxruntime is not installed"}
        return None
    from animevid.engine.onnx_export import INPUT_NAME, onnx_model_bytes
    from animevid.engine.resources import usable_cpus

    started = time.perf_counter()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = usable_cpus()
    session = onnxruntime.InferenceSession(onnx_model_bytes(generator), options, providers=["CPUExecutionProvider"])
    startup["onnxruntime"] = {"first_run_s": time.perf_counter() - started}
    log(f"  onnxruntime: export and session {startup['onnxruntime']['first_run_s']:.1f} s")
    return lambda x: torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])


def _runner(variant: str, generator, x: torch.Tensor, engines: dict[str, object], ort) -> Callable[[], torch.Tensor] | None:
    if variant.startswith("openvino"):
        engine = engines.get(variant)
        return (lambda: engine(x)) if engine is not None else None
    if variant == "onnxruntime":
        return (lambda: ort(x)) if ort is not None else None
    if variant == "bands":
        from animevid.models.animegan_bands import BandedAnimeGAN

        banded = BandedAnimeGAN(generator)
        return lambda: banded(x)
    if variant.startswith("bands-openvino"):
        openvino_banded = _openvino_bands(generator, variant)
        return (lambda: openvino_banded(x)) if openvino_banded is not None else None
    forward = torch.compile(generator, dynamic=False) if variant.startswith("compile") else generator
    bf16 = variant.endswith("bf16")

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            return forward(x)

    return run


def _openvino_bands(generator, variant: str):
    """OpenVINO band by band at the variant's precision; None where bf16 is not native here."""
    from animevid.engine.openvino import cpu_has_native_bf16
    from animevid.engine.openvino_bands import OpenVINOBands

    bf16 = variant.endswith("bf16")
    if bf16 and not cpu_has_native_bf16():
        return None
    return OpenVINOBands(generator, torch.bfloat16 if bf16 else torch.float32)


def _difference(output: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    levels = (to_uint8_scale(output) - to_uint8_scale(reference)).abs()
    return {**lsb_difference(output, reference), "share_over_1_lsb": (levels > 1).float().mean().item(),
            "p99_lsb": torch.quantile(levels.flatten()[:: max(1, levels.numel() // 2**24)], 0.99).item()}  # fmt: skip


def time_size(height: int, width: int, settings: EngineSettings, repeats: int, generator, engines, ort, log) -> dict[str, object]:
    x = synthetic_input(height, width, torch.device("cpu"))
    candidates = {}
    for variant in settings.variants:
        runner = _runner(variant, generator, x, engines, ort)
        if runner is not None:
            candidates[variant] = runner
    outputs: dict[str, torch.Tensor] = {}
    first_call: dict[str, float] = {}

    def on_warmup(name: str, index: int, seconds: float, result: object) -> None:
        if index == 0:
            outputs[name], first_call[name] = result.detach().float(), seconds  # type: ignore[union-attr]
            log(f"  {size_name(height, width)} {name}: first call {seconds:.2f} s")

    timings = interleaved_timings(candidates, repeats=repeats, device=torch.device("cpu"), warmup=settings.warmup, on_warmup=on_warmup)
    reference = outputs.get("eager")
    base = timings["eager"].median if "eager" in timings else None
    result: dict[str, object] = {}
    for name, timing in timings.items():
        entry: dict[str, object] = {"ms_per_frame": timing.median * 1e3, "first_call_s": first_call[name], "timing": timing.as_dict(),
                                    "speedup_vs_eager": base / timing.median if base else None}  # fmt: skip
        if reference is not None:
            entry.update(_difference(outputs[name], reference))
        result[name] = entry
    return result


def _busy(stop: threading.Event) -> None:
    """A stand-in for the video pipeline's decoder or encoder: one thread compressing bytes (no GIL held)."""
    data = np.random.default_rng(0).integers(0, 256, 1 << 22, dtype=np.uint8).tobytes()
    while not stop.is_set():
        zlib.compress(data, 6)


def contention(generator, log, repeats: int = 3) -> dict[str, object]:
    """OpenVINO fp32 at 540x960 alone and beside one busy thread, with and without CPU pinning (the default)."""
    from animevid.engine.openvino import OpenVINOGenerator

    x = synthetic_input(*TARGET_SIZE, torch.device("cpu"))
    engines = {"unpinned": OpenVINOGenerator(generator, pin_threads=False), "pinned": OpenVINOGenerator(generator, pin_threads=True)}
    candidates = {f"{name}, {load}": (lambda e=engine: e(x)) for name, engine in engines.items() for load in ("alone", "busy thread")}
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for name, run in candidates.items():
        run()  # warm-up
    for round_index in range(repeats):
        for name, run in candidates.items():
            stop = threading.Event()
            worker = threading.Thread(target=_busy, args=(stop,)) if "busy" in name else None
            if worker is not None:
                worker.start()
            started = time.perf_counter()
            run()
            results[name].append(time.perf_counter() - started)
            stop.set()
            if worker is not None:
                worker.join()
    medians = {name: float(np.median(samples)) * 1e3 for name, samples in results.items()}
    log("  contention: " + ", ".join(f"{name} {ms:,.0f} ms" for name, ms in medians.items()))
    return {"ms_per_frame": medians, "samples_s": results, "size": size_name(*TARGET_SIZE)}


# -- v1 and v2 beside the peers ------------------------------------------------------------------------

NETWORKS = {"v2": "animegan-v2", "v1": "animegan-v1"}


def peer_comparison(settings: EngineSettings, log) -> dict[str, object]:
    """Each network's default (``--dtype auto``: what it chose, and why), OpenVINO fp32 and bf16 (where
    native) beside its peer's eager fp32 forward (:mod:`benchmarks.peers`), at one size, interleaved.
    Δ: our precisions against our OpenVINO fp32, uint8 levels (the peers compute another function)."""
    from torch.utils.flop_counter import FlopCounterMode

    from animevid.engine.openvino import OpenVINOGenerator, cpu_has_native_bf16
    from animevid.engine.precision import choose_cpu_precision, compare
    from animevid.weights.formats import random_weights

    from .peers import peer

    height, width = settings.peer_size
    x = synthetic_input(height, width, torch.device("cpu"))
    networks: dict[str, object] = {}
    for network, architecture in NETWORKS.items():
        generator = random_weights(architecture, "tf1", seed=0).generator().eval().requires_grad_(False)
        peer_name, peer_generator = peer(network)
        started = time.perf_counter()
        choice = choose_cpu_precision(generator)  # first run: conversion, then the measurement (empty cache)
        auto_seconds = time.perf_counter() - started
        log(f"  peers {network}: auto chose {choice.label()} ({auto_seconds:.1f} s, conversion included)")
        engines = {"openvino fp32": OpenVINOGenerator(generator, torch.float32)}
        if cpu_has_native_bf16():
            engines["openvino bf16"] = OpenVINOGenerator(generator, torch.bfloat16)

        def eager(model=peer_generator) -> torch.Tensor:
            with torch.inference_mode():
                return model(x)

        candidates = {"peer eager fp32": eager, **{name: (lambda e=engine: e(x)) for name, engine in engines.items()}}
        outputs: dict[str, torch.Tensor] = {}

        def keep(name: str, index: int, seconds: float, result: object) -> None:
            if index == 0:
                outputs[name] = result.detach().float()  # type: ignore[union-attr]

        timings = interleaved_timings(candidates, repeats=settings.peer_rounds, device=torch.device("cpu"), warmup=1, on_warmup=keep)
        base = timings["peer eager fp32"].median
        rows: dict[str, object] = {}
        for name, timing in timings.items():
            row: dict[str, object] = {"ms_per_frame": timing.median * 1e3, "vs_peer": base / timing.median, "timing": timing.as_dict(),
                                      "phone_clip_s": timing.median * PHONE_CLIP_FRAMES}  # fmt: skip
            if name != "peer eager fp32":
                max_lsb, mean_lsb, psnr = compare(outputs[name], outputs["openvino fp32"])
                row.update(max_lsb=max_lsb, mean_lsb=mean_lsb, psnr_db=psnr)
            rows[name] = row
            log(f"  peers {network} {name}: {timing.median * 1e3:,.0f} ms/frame ({base / timing.median:.2f}x the peer)")
        auto_row = "openvino bf16" if choice.dtype == torch.bfloat16 else "openvino fp32"
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            generator(x)
        networks[network] = {
            "peer": peer_name,
            "gflop_per_frame": counter.get_total_flops() / 1e9,
            "auto": {"dtype": choice.name, "label": choice.label(), "runs_as": auto_row, "first_run_s": auto_seconds,
                     "measurements": [m.__dict__ for m in choice.measurements]},  # fmt: skip
            "rows": rows,
        }
    return {"size": size_name(height, width), "rounds": settings.peer_rounds, "phone_clip_frames": PHONE_CLIP_FRAMES,
            "peers_weights": "random-initialized (torch defaults), re-typed in benchmarks/peers.py", "networks": networks}  # fmt: skip


def peers_markdown(result: dict[str, object], device_label: str) -> str:
    rows = []
    for network, entry in result["networks"].items():
        auto = entry["auto"]
        for name, row in entry["rows"].items():
            label = f"{entry['peer']}, eager fp32 (the {network} peer)" if name == "peer eager fp32" else f"animevid {network}, {name}"
            if name == auto["runs_as"]:
                label += " — the default (auto)"
            delta = f"{row['max_lsb']:.0f} / {row['mean_lsb']:.2f}" if "max_lsb" in row else "—"
            rows.append([label, fmt(row["ms_per_frame"], 0), f"{row['vs_peer']:.2f}", delta, f"{row['phone_clip_s'] / 60:.1f} min"])
    autos = "; ".join(f"{network}: {entry['auto']['label']}" for network, entry in result["networks"].items())
    return "\n".join([
        f"### v1 and v2 beside the peers, {result['size'].replace('x', '×')}, batch 1, {device_label}: median of "
        f"{result['rounds']} interleaved rounds after a warm-up", "",
        markdown_table(["", "ms/frame", "vs the peer", "Δ vs our fp32 max / mean (LSB)",
                        f"{result['phone_clip_frames']} frames (10 s at 30 fps)"], rows),  # fmt: skip
        "", f"`--dtype auto` chose — {autos}", "",
    ])


# -- memory, in fresh processes ----------------------------------------------------------------------


def child_main(argv: list[str]) -> None:
    """One frame of one engine in this (fresh) process; prints its RSS before and its peak."""
    variant, height, width = argv[0], int(argv[1]), int(argv[2])
    from animevid.models.animegan_bands import BandedAnimeGAN

    generator = seeded_generator()
    x = synthetic_input(height, width, torch.device("cpu"))
    small = synthetic_input(32, 32, torch.device("cpu"))
    if variant.startswith("openvino"):
        from animevid.engine.openvino import OpenVINOGenerator

        engine = OpenVINOGenerator(generator, torch.bfloat16 if variant.endswith("bf16") else torch.float32)
        run = engine
    elif variant == "bands":
        run = BandedAnimeGAN(generator)
    elif variant.startswith("bands-openvino"):
        run = _openvino_bands(generator, variant)
        if run is None:
            raise SystemExit("not available: no native bf16 on this CPU")
    else:
        def run(image: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16) if variant.endswith("bf16") else nullcontext():
                return generator(image)
    run(small)  # libraries loaded, kernels picked: what is left to count is the frame itself
    before = _rss("VmRSS")
    run(x)
    print(json.dumps({"rss_before_bytes": before, "peak_bytes": _rss("VmHWM")}))


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(settings: EngineSettings, log) -> dict[str, object]:
    if not Path("/proc/self/status").exists():
        return not_available("peak RSS is read from /proc/self/status (Linux only)")
    if any(v.startswith("openvino") for v in settings.memory_variants):
        from animevid.engine.openvino import OpenVINOGenerator

        OpenVINOGenerator(seeded_generator())  # converted here (if not yet): the children's peaks must not include the export
    rows: dict[str, object] = {}
    for variant in settings.memory_variants:
        points = []
        for height, width in settings.memory_sizes:
            command = [sys.executable, "-m", "benchmarks.engines", "--child", variant, str(height), str(width)]
            completed = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
            if completed.returncode != 0:
                points = None
                rows[variant] = {"status": f"failed: {completed.stderr.strip().splitlines()[-1][:300]}"}
                break
            report = json.loads(completed.stdout.strip().splitlines()[-1])
            growth = report["peak_bytes"] - report["rss_before_bytes"]
            points.append({"size": size_name(height, width), "pixels": height * width, "growth_bytes": growth, **report})
            log(f"  memory {variant} {size_name(height, width)}: +{growth / 2**20:,.0f} MiB")
        if points:
            rows[variant] = {"points": points, **_fit(points)}
    return rows


def _fit(points: list[dict[str, object]]) -> dict[str, float]:
    """fixed + per_pixel * pixels through the smallest and the largest size."""
    first, last = points[0], points[-1]
    per_pixel = (last["growth_bytes"] - first["growth_bytes"]) / max(1, last["pixels"] - first["pixels"])
    return {"per_pixel_bytes": per_pixel, "fixed_bytes": first["growth_bytes"] - per_pixel * first["pixels"],
            "mib_per_megapixel": per_pixel * 1e6 / 2**20}  # fmt: skip


# -- the part ----------------------------------------------------------------------------------------


def run(device: torch.device, settings: EngineSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    if device.type != "cpu":
        return not_available("the engines compared here are CPU engines (on CUDA the generator runs with torch)")
    try:
        from animevid.engine.openvino import openvino_available
    except ImportError as exc:
        return not_available(f"animevid.engine.openvino cannot be imported: {exc}")
    with _empty_cache():  # for the whole part: first-run start-up, then the children share its conversion
        return _run(settings, openvino_available(), log)


def _run(settings: EngineSettings, with_openvino: bool, log: Callable[[str], None]) -> dict[str, object]:
    generator = seeded_generator()
    startup: dict[str, object] = {}
    log(f"engines: {', '.join(settings.variants)} at {', '.join(size_name(h, w) for h, w in settings.sizes)}")
    run_speed = "speed" in settings.sections
    engines = _openvino_engines(generator, settings.variants, startup, log) if with_openvino and run_speed else {}
    ort = _onnxruntime_session(generator, startup, log) if "onnxruntime" in settings.variants and run_speed else None
    speed = {}
    for (height, width), repeats in zip(settings.sizes, settings.repeats) if run_speed else ():
        log(f"engines: {size_name(height, width)}, {repeats} timed round(s) after {settings.warmup} warm-up")
        speed[size_name(height, width)] = time_size(height, width, settings, repeats, generator, engines, ort, log)
    peers = None
    if "peers" in settings.sections and with_openvino:
        log(f"engines: v1 and v2 beside the peers at {size_name(*settings.peer_size)}, {settings.peer_rounds} round(s)")
        peers = peer_comparison(settings, log)
    return {
        "status": "ok",
        "weights": "random, official layout; norm scales U(0.5, 1.5), shifts U(-0.2, 0.2)",
        "input": "benchmarks.table1.synthetic_input",
        "sections": list(settings.sections),
        "sizes": [size_name(h, w) for h, w in settings.sizes] if run_speed else [],
        "repeats": list(settings.repeats),
        "warmup": settings.warmup,
        "startup": startup,
        "speed": speed,
        "contention": contention(generator, log) if settings.contention and "contention" in settings.sections and "openvino" in engines else None,
        "memory": measure_memory(settings, log) if "memory" in settings.sections else not_available("not asked for (--engine-sections)"),
        "peers": peers,
    }


def markdown(result: dict[str, object], device_label: str) -> str:
    parts = []
    for size in result["sizes"]:
        entries = result["speed"][size]
        rows = [
            [name, fmt(e["ms_per_frame"], 0), f"{e['speedup_vs_eager']:.2f}×" if e.get("speedup_vs_eager") else "—",
             f"{e['max_lsb']:.0f} / {e['mean_lsb']:.3f}" if "max_lsb" in e else "—",
             f"{100 * e['share_over_1_lsb']:.2f} %" if "share_over_1_lsb" in e else "—"]
            for name, e in entries.items()
        ]  # fmt: skip
        repeats = result["repeats"][result["sizes"].index(size)]
        parts += [
            f"### Engines, {size.replace('x', '×')}, batch 1, {device_label}: median of {repeats} after {result['warmup']} warm-up, interleaved",
            "",
            markdown_table(["engine", "ms/frame", "vs eager", "Δ vs eager fp32 max / mean (LSB)", "pixels > 1 LSB off"], rows),
            "",
        ]
    if result.get("peers"):
        parts += [peers_markdown(result["peers"], device_label)]
    startup_rows = [
        [name, fmt(s.get("first_run_s"), 1) if "first_run_s" in s else s.get("status", "—"), fmt(s.get("cached_s"), 2) if "cached_s" in s else "—"]
        for name, s in result["startup"].items()
    ]  # fmt: skip
    compile_first = {size: e["compile"]["first_call_s"] for size, e in result["speed"].items() if "compile" in e}
    if startup_rows:
        parts += ["Start-up (s); OpenVINO fp32's first run exports, converts and compiles, bf16's shares that conversion:", "",
                  markdown_table(["engine", "first run", "cached"], startup_rows), ""]  # fmt: skip
    if compile_first:
        parts += ["torch.compile first call (compilation) per size: " + ", ".join(f"{k} {v:.1f} s" for k, v in compile_first.items()), ""]
    if result.get("contention"):
        contention_rows = [[name, fmt(ms, 0)] for name, ms in result["contention"]["ms_per_frame"].items()]
        parts += [f"OpenVINO fp32 at {result['contention']['size']}, alone and beside one busy thread:", "",
                  markdown_table(["threads", "ms/frame"], contention_rows), ""]  # fmt: skip
    memory = result["memory"]
    if memory.get("status") is None:
        memory_rows = []
        for name, entry in memory.items():
            if "points" not in entry:
                memory_rows.append([name, entry.get("status", "—"), "", ""])
                continue
            growth = ", ".join(f"{p['size']}: {p['growth_bytes'] / 2**20:,.0f}" for p in entry["points"])
            memory_rows.append([name, growth, fmt(entry["mib_per_megapixel"], 0), fmt(entry["fixed_bytes"] / 2**20, 0)])
        parts += ["Peak RSS a frame adds (MiB; each in a fresh process), fitted as fixed + per megapixel:", "",
                  markdown_table(["engine", "growth (MiB)", "MiB / MP", "fixed MiB"], memory_rows), ""]  # fmt: skip
    return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        raise SystemExit("benchmarks.engines is run by `python -m benchmarks --only engines`")
