"""``python -m benchmarks``: run the benchmarks, print markdown tables, write a JSON result file.

    python -m benchmarks                      # everything, defaults sized for the device
    python -m benchmarks --quick              # everything at small sizes, few repeats (smoke check)
    python -m benchmarks --only table1 --sizes 256x256 --repeats 10 --variants fp32,bf16
    python -m benchmarks --device cuda --out /tmp/bench
    python -m benchmarks --device cuda --only cuda,stages   # what animevid/engine/tuning.py's CUDA defaults are set from
    python -m benchmarks --only temporal                    # the deflicker stage: warping error, fidelity, cost
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from . import PARTS, cuda, datasets, encoders, engines, pipeline, stages, table1, temporal, training, v2graph, workers
from .common import RESULTS_DIR, ResultsFile, load_average, machine_line, not_available, parse_size


QUICK_RESULTS_DIR = Path(tempfile.gettempdir()) / "animevid-benchmarks"


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parts(text: str) -> list[str]:
    parts = _csv(text)
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"unknown part {', '.join(unknown) or text!r} (use {', '.join(PARTS)})")
    return parts


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    try:
        return tuple(parse_size(item) for item in _csv(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(item) for item in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(item) for item in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Table 1 of the AnimeGAN paper, the CPU engines, pipeline throughput, training and dataset speed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="every part at small sizes and few repeats (smoke check, < 1 min on CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--only", action="append", type=_parts, help=f"run only these parts ({', '.join(PARTS)}; repeatable or comma-separated)")
    parser.add_argument(
        "--out", type=Path,
        help=f"folder for the JSON (and markdown) results; default {RESULTS_DIR}, or {QUICK_RESULTS_DIR} with --quick",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")

    group = parser.add_argument_group("table1 (defaults depend on the device; see benchmarks/table1.py)")
    group.add_argument("--sizes", type=_sizes, help="input sizes WxH, comma-separated, e.g. 256x256,1280x720")
    group.add_argument("--repeats", type=_ints, help="timed runs per size (one number, or one per size)")
    group.add_argument("--warmup", type=int, help="warm-up runs per variant and size (at least 1)")
    group.add_argument("--variants", type=_csv, help="variants below 1280x720: fp32, channels_last, bf16, fp16, compile, or a+b combinations")
    group.add_argument("--large-variants", type=_csv, help="variants at 1280x720 and larger")

    group = parser.add_argument_group("engines (CPU)")
    group.add_argument("--engine-sizes", type=_sizes, help="sizes WxH for the engine comparison")
    group.add_argument("--engine-repeats", type=_ints, help="timed rounds per engine size (one number, or one per size)")
    group.add_argument("--engine-variants", type=_csv, help=f"engines to compare: {', '.join(engines.ALL_VARIANTS)}")
    group.add_argument("--memory-sizes", type=_sizes, help="sizes WxH of the peak-memory runs (two or more)")
    group.add_argument("--memory-variants", type=_csv, help=f"engines of the peak-memory runs: {', '.join(engines.MEMORY_VARIANTS)}")
    group.add_argument("--engine-sections", type=_csv, help=f"what to run: {', '.join(engines.SECTIONS)} (default all)")
    group.add_argument("--peer-size", type=_size, help="size WxH of v1 and v2 beside the peers (default 960x540)")
    group.add_argument("--peer-rounds", type=int, help="timed rounds beside the peers (default 2)")

    group = parser.add_argument_group("pipeline")
    group.add_argument("--clip-size", type=_size, help="generated clip size WxH (CPU default 256x144, CUDA 1280x720)")
    group.add_argument("--clip-seconds", type=float, help="generated clip length for the throughput runs")
    group.add_argument("--clip-fps", type=int, help="generated clip frame rate")
    group.add_argument("--batch-size", type=int, help="frames per generator call for (a) and (b)")
    group.add_argument("--memory-seconds", type=_floats, help="clip lengths (two) for the peak-memory runs of (b)")
    group.add_argument("--pipeline-repeats", type=int, help="timed runs of each of (a), (b), (c)")

    group = parser.add_argument_group("encoders (stand-in generator: the encoders are the bound)")
    group.add_argument("--encoder-size", type=_size, help="clip size WxH (default 1280x720)")
    group.add_argument("--encoder-seconds", type=float, help="clip length (default 10)")
    group.add_argument("--encoder-counts", type=_ints, help="encoder counts to compare (default 1,2)")
    group.add_argument("--encoder-repeats", type=int, help="timed runs of each count (default 3)")

    group = parser.add_argument_group("workers (worker processes on one video; on CUDA, counts of GPUs)")
    group.add_argument("--worker-counts", type=_ints, help="worker counts to compare (default 1,2 on the CPU; 1..GPUs on CUDA)")
    group.add_argument("--worker-repeats", type=int, help="timed runs of each count")
    group = parser.add_argument_group("cuda (the generator's CUDA settings; toy sizes on the CPU)")
    group.add_argument("--cuda-compile", choices=cuda.COMPILE_MODES, help="with: eager and compiled candidates (default); without; only")

    group = parser.add_argument_group("train")
    group.add_argument("--train-batch", type=int, help="batch size of the G+D step (default 4)")
    group.add_argument("--train-size", type=int, help="image size of the G+D step (default 256)")
    group.add_argument("--train-steps", type=int, help="timed steps")

    group = parser.add_argument_group("datasets")
    group.add_argument("--film-seconds", type=float, help="length of the synthetic film for extract-frames")
    group.add_argument("--smooth-size", type=int, help="edge smoothing image size (default 256)")
    return parser


def _sizes_and_repeats(sizes, repeats, defaults, option: str) -> tuple[tuple, tuple]:
    """Sizes given or the defaults', with one repeat count per size (one number given applies to all)."""
    chosen = sizes or defaults.sizes
    counts = repeats or (defaults.repeats if not sizes else (defaults.repeats[0],))
    if len(counts) == 1:
        counts = counts * len(chosen)
    if len(counts) != len(chosen):
        raise SystemExit(f"{option}: give one number or one per size ({len(chosen)}), not {len(counts)}")
    return tuple(chosen), tuple(counts)


def _table1_settings(args: argparse.Namespace, device: torch.device) -> table1.Table1Settings:
    settings = table1.default_settings(device, args.quick)
    sizes, repeats = _sizes_and_repeats(args.sizes, args.repeats, settings, "--repeats")
    for height, width in sizes:
        if height % 4 or width % 4:
            raise SystemExit(f"--sizes: {width}x{height}: CartoonGAN needs sides that are multiples of 4")
    variants = tuple(args.variants) if args.variants else settings.variants
    large = tuple(args.large_variants) if args.large_variants else (variants if args.variants else settings.large_variants)
    for spec in (*variants, *large):
        try:
            table1.parse_variant(spec)
        except ValueError as exc:
            raise SystemExit(f"--variants: {exc}") from None
    warmup = args.warmup if args.warmup is not None else settings.warmup
    return table1.Table1Settings(sizes, repeats, max(1, warmup), variants, large)


def _engine_settings(args: argparse.Namespace, device: torch.device) -> engines.EngineSettings:
    settings = engines.default_settings(device, args.quick)
    sizes, repeats = _sizes_and_repeats(args.engine_sizes, args.engine_repeats, settings, "--engine-repeats")
    for option, names, known in (("--engine-variants", args.engine_variants, engines.ALL_VARIANTS),
                                 ("--memory-variants", args.memory_variants, engines.MEMORY_VARIANTS)):  # fmt: skip
        unknown = [name for name in names or () if name not in known]
        if unknown:
            raise SystemExit(f"{option}: unknown {', '.join(unknown)} (use {', '.join(known)})")
    unknown = [name for name in args.engine_sections or () if name not in engines.SECTIONS]
    if unknown:
        raise SystemExit(f"--engine-sections: unknown {', '.join(unknown)} (use {', '.join(engines.SECTIONS)})")
    return _override(
        settings, sizes=sizes, repeats=repeats, variants=tuple(args.engine_variants) if args.engine_variants else None,
        memory_sizes=args.memory_sizes, memory_variants=tuple(args.memory_variants) if args.memory_variants else None,
        sections=tuple(args.engine_sections) if args.engine_sections else None, peer_size=args.peer_size, peer_rounds=args.peer_rounds,
    )  # fmt: skip


def _override(settings, **values):
    return replace(settings, **{key: value for key, value in values.items() if value is not None})


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {name}: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Run the selected parts; returns the JSON file written."""
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _resolve_device(args.device)
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    selected = {part for group in args.only or [] for part in group}
    parts = [part for part in PARTS if not selected or part in selected]

    settings_by_part = {
        "table1": lambda: _table1_settings(args, device),
        "engines": lambda: _engine_settings(args, device),
        "pipeline": lambda: _override(
            pipeline.default_settings(device, args.quick),
            size=args.clip_size, seconds=args.clip_seconds, fps=args.clip_fps,
            batch_size=args.batch_size, memory_seconds=args.memory_seconds, repeats=args.pipeline_repeats,
        ),
        "stages": lambda: stages.default_settings(device, args.quick),
        "v2graph": lambda: v2graph.default_settings(device, args.quick),
        "cuda": lambda: _override(cuda.default_settings(device, args.quick), compile_mode=args.cuda_compile),
        "encoders": lambda: _override(
            encoders.default_settings(device, args.quick), size=args.encoder_size, seconds=args.encoder_seconds,
            encoders=args.encoder_counts, repeats=args.encoder_repeats,
        ),
        "workers": lambda: _override(workers.default_settings(device, args.quick), workers=args.worker_counts, repeats=args.worker_repeats),
        "train": lambda: _override(
            training.default_settings(device, args.quick),
            batch_size=args.train_batch, image_size=args.train_size, steps=args.train_steps,
        ),
        "datasets": lambda: _override(
            datasets.default_settings(device, args.quick), film_seconds=args.film_seconds, smooth_size=args.smooth_size
        ),
        "temporal": lambda: temporal.default_settings(device, args.quick),
    }  # fmt: skip
    modules = {
        "table1": table1, "engines": engines, "pipeline": pipeline, "encoders": encoders, "workers": workers, "stages": stages,
        "cuda": cuda, "train": training, "datasets": datasets, "temporal": temporal, "v2graph": v2graph,
    }  # fmt: skip
    settings = {part: settings_by_part[part]() for part in parts}

    out = args.out or (QUICK_RESULTS_DIR if args.quick else RESULTS_DIR)  # smoke runs stay out of the committed results
    results = ResultsFile(out, device, quick=args.quick, settings={p: _describe(s) for p, s in settings.items()})
    device_label = machine_line(results.data["machine"])  # type: ignore[arg-type]
    load = results.data["machine"]["load_average_at_start"]  # type: ignore[index]
    header = f"Machine: {device_label}; load average at start {load} (other work on the machine slows every figure)"
    print(f"# animevid benchmarks{' (quick)' if args.quick else ''}\n\n{header}\n", flush=True)
    markdown_parts = [header, ""]
    for part in parts:
        started, load_before = time.perf_counter(), load_average()
        log(f"== {part} ==")
        try:
            result = modules[part].run(device, settings[part], log)
        except Exception as exc:  # one broken part must not lose the others' measurements
            log(traceback.format_exc())
            result = not_available(f"{type(exc).__name__}: {exc}")
        result["elapsed_s"] = time.perf_counter() - started
        result["load_average"] = {"before": load_before, "after": load_average()}
        results.add(part, result)
        text = modules[part].markdown(result, _short_device(results.data["machine"])) if result.get("status") == "ok" else (
            f"### {part}\n\nnot available: {result['reason']}\n"
        )  # fmt: skip
        print(text + "\n", flush=True)
        markdown_parts.append(text)
    path = results.write()
    path.with_suffix(".md").write_text("\n".join(markdown_parts) + "\n")
    log(f"results: {path} (and {path.with_suffix('.md').name})")
    return path


def _short_device(machine: dict) -> str:
    if machine.get("gpu_name"):
        return str(machine["gpu_name"])
    return f"{machine['cpu_model']}, {machine['torch_threads']} threads"


def _describe(settings: object) -> object:
    from dataclasses import asdict, is_dataclass

    return asdict(settings) if is_dataclass(settings) else settings


if __name__ == "__main__":
    main()
