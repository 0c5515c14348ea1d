"""The device check's verdict: ``check.json`` and ``summary.txt`` from what ``benchmarks/gpu_check.sh`` wrote.

    python -m benchmarks.gpu_summary --out "$OUT"

Reads ``bench.json`` (``python -m benchmarks --only cuda,stages``), ``bench-compile.json`` (the
compiled candidates, run apart), ``e2e-*.json`` (:mod:`benchmarks.gpu_e2e`) and, in ``log.txt``,
each stage's result line and pytest's. Writes the figures the issue's targets are about, where the bound is, and
the values :data:`animevid.engine.tuning.CUDA` would take from them (a suggestion: a person sets them).
Missing inputs (a stage that failed or ran out of time) become "not measured", never a number.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

TARGETS = {"720p_fps": 250.0, "1080p_fps": 120.0, "ratio": 0.9, "gpu_busy_percent": 85.0}
SIZE_NAMES = {"1280x720": "720p", "1920x1080": "1080p"}


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stage_statuses(out: Path) -> list[dict[str, object]]:
    """The ``stage-result NAME rc=N s=M limit=L`` lines gpu_check.sh logs after each stage."""
    try:
        text = (out / "log.txt").read_text(errors="replace")
    except OSError:
        return []
    return [
        {"stage": name, "exit_code": int(rc), "seconds": int(seconds), "limit_s": int(limit), "timed_out": rc in ("124", "137")}
        for name, rc, seconds, limit in re.findall(r"^stage-result (\S+) rc=(-?\d+) s=(\d+) limit=(\d+)$", text, re.M)
    ]


def test_line(out: Path) -> str | None:
    try:
        text = (out / "log.txt").read_text(errors="replace")
    except OSError:
        return None
    lines = re.findall(r"^=+ .*(?:passed|failed|skipped|error).* =+$|^\d+ (?:passed|failed|skipped|deselected).*$", text, re.M)
    return lines[0].strip("= ") if lines else None


def generator_figures(bench: dict | None) -> dict[str, object]:
    cuda = (bench or {}).get("results", {}).get("cuda", {})
    if cuda.get("status") != "ok":
        return {"status": "not measured", "reason": cuda.get("reason", "the cuda part did not run")}
    per_size = {}
    for size, entries in cuda["throughput"].items():
        entries = {name: entry for name, entry in entries.items() if isinstance(entry, dict)}
        per_layout = {}
        for layout in ("nchw", "channels_last"):
            eager = {e["batch_size"]: e["fps"] for e in entries.values() if e["layout"] == layout and e["mode"] == "eager"}
            compiled = {e["batch_size"]: e["fps"] for e in entries.values() if e["layout"] == layout and e["mode"] == "compile"}
            per_layout[layout] = {"eager_fps_by_batch": eager, "compiled_fps_by_batch": compiled}
        fastest = max(entries.values(), key=lambda e: e["fps"])
        per_size[size] = {
            "layouts": per_layout, "fastest": {k: fastest[k] for k in ("layout", "mode", "batch_size", "fps")},
            "precision_vs_fp32": cuda["precision_vs_fp32"].get(size),
        }  # fmt: skip
    return {"status": "ok", "dtype": cuda["dtype"], "sizes": per_size, "defaults_when_measured": cuda.get("current_defaults")}


def stage_figures(bench: dict | None) -> dict[str, object]:
    stages = (bench or {}).get("results", {}).get("stages", {})
    if stages.get("status") != "ok":
        return {"status": "not measured", "reason": stages.get("reason", "the stages part did not run")}
    return {
        "status": "ok",
        "sizes": {size: {stage: entry["fps"] for stage, entry in data["stages"].items()} for size, data in stages["sizes"].items()},
        "default_preset": stages.get("default_preset"),
    }


def bound(stage_fps: dict[str, float], preset: str | None) -> dict[str, object]:
    """The slowest of the pipeline's stages as the device path runs them (each in its own thread)."""
    encode = f"encode {preset or 'medium'}, auto threads"
    chain = {
        "decoder (decode, planes copied)": stage_fps.get("decode"),
        "colour conversion (device, both ways)": _harmonic(stage_fps.get("yuv→rgb device"), stage_fps.get("rgb→yuv device")),
        "generator": stage_fps.get("generator"),
        f"encoder ({encode})": stage_fps.get(encode),
    }
    measured = {name: fps for name, fps in chain.items() if fps}
    if not measured:
        return {"bound": None, "stages_fps": chain}
    return {"bound": min(measured, key=measured.get), "stages_fps": chain}


def _harmonic(a: float | None, b: float | None) -> float | None:
    # Both conversions run in the generator's thread, one after the other: their times add up.
    return 1.0 / (1.0 / a + 1.0 / b) if a and b else None


def end_to_end(out: Path) -> dict[str, object]:
    result = {}
    for path in sorted(out.glob("e2e-*.json")):
        data = _load(path)
        if data is None:
            result[path.stem] = {"status": "not measured", "reason": f"{path.name} unreadable"}
            continue
        runs = [run for run in data["runs"] if run.get("status") == "ok"]
        longest = max(runs, key=lambda run: run["clip_seconds"]) if runs else None
        result[data["size"]] = {
            "status": "ok" if longest else "failed",
            "runs": [
                {k: run.get(k) for k in ("clip_seconds", "clip_frames", "exit_code", "job_fps", "fps", "generator_only_fps",
                                          "ratio_end_to_end_over_generator", "batch_size", "dtype", "max_rss_mib",
                                          "cuda_max_memory_allocated_mib", "check", "status", "stderr")}
                | {"gpu_busy_steady_percent": (run.get("gpu_busy") or {}).get("steady_mean_percent")}
                for run in data["runs"]
            ],  # fmt: skip
            "flat_in_length": data.get("flat_in_length"),
            "encoders_sweep": data.get("encoders_sweep"),
            "encoders_sweep_note": data.get("encoders_sweep_note"),
        }
    return result


def verdicts(e2e: dict[str, object]) -> dict[str, object]:
    found = {}
    for size, data in e2e.items():
        label = SIZE_NAMES.get(size)
        if not label or data.get("status") != "ok":
            continue
        run = max((r for r in data["runs"] if r.get("status") == "ok"), key=lambda r: r["clip_seconds"])
        fps = run.get("job_fps")
        busy = run.get("gpu_busy_steady_percent")
        ratio = run.get("ratio_end_to_end_over_generator")
        found[label] = {
            "fps": fps, "fps_target": TARGETS[f"{label}_fps"], "fps_met": fps is not None and fps >= TARGETS[f"{label}_fps"],
            "ratio": ratio, "ratio_met": ratio is not None and ratio >= TARGETS["ratio"],
            "gpu_busy_percent": busy, "gpu_busy_met": busy is not None and busy >= TARGETS["gpu_busy_percent"],
            "file_checked": bool(run.get("check", {}).get("frames_equal") and run.get("check", {}).get("audio_packets_equal")),
        }  # fmt: skip
    return found


def suggested_tuning(generator: dict[str, object], stages: dict[str, object], e2e: dict[str, object]) -> dict[str, object]:
    """What animevid/engine/tuning.py's CUDA fields would be from these figures (1080p decides layout and compile)."""
    if generator.get("status") != "ok":
        return {"note": "generator figures missing: nothing to suggest"}
    sizes = generator["sizes"]
    suggestion: dict[str, object] = {}
    key = "1920x1080" if "1920x1080" in sizes else next(iter(sizes))
    layouts = sizes[key]["layouts"]
    best_layout = max(layouts, key=lambda layout: max(layouts[layout]["eager_fps_by_batch"].values(), default=0))
    suggestion["channels_last"] = best_layout == "channels_last"
    compile_size = next((s for s in sizes.values() if any(d["compiled_fps_by_batch"] for d in s["layouts"].values())), None)
    if compile_size is not None:
        pairs = [
            (fps, figures["eager_fps_by_batch"].get(batch), layout)
            for layout, figures in compile_size["layouts"].items()
            for batch, fps in figures["compiled_fps_by_batch"].items()
        ]
        fps, eager, layout = max(pairs, key=lambda pair: pair[0])
        suggestion["compile"] = bool(eager and fps > 1.05 * eager)  # worth its compilation only if clearly faster
        suggestion["compile_speedup_vs_eager"] = fps / eager if eager else None
        suggestion["compile_fastest_layout"] = layout
    # The smallest batch within 3 % of the best eager figure at each size, in pixels.
    pixels = []
    for size, data in sizes.items():
        by_batch = data["layouts"][best_layout]["eager_fps_by_batch"]
        top = max(by_batch.values())
        batch = min(int(b) for b, fps in by_batch.items() if fps >= 0.97 * top)
        width, height = (int(v) for v in size.split("x"))
        pixels.append(batch * width * height)
    suggestion["pixels_per_batch"] = max(pixels) if pixels else None
    if stages.get("status") == "ok":
        presets = {}
        for size, fps in stages["sizes"].items():
            presets[size] = {name: value for name, value in fps.items() if name.startswith("encode ") and "auto" in name}
        suggestion["encode_fps_auto_threads_by_preset"] = presets
    sweep = [run for data in e2e.values() if isinstance(data, dict) for run in (data.get("encoders_sweep") or []) if run.get("status") == "ok"]
    if sweep:
        fastest = max(sweep, key=lambda run: run["fps"])
        suggestion["workers_per_gpu"] = f"{fastest.get('option', 'encoders')}={fastest['encoders']} ({fastest['fps']:.1f} fps, whole command)"
    return suggestion


def merge_compiled(bench: dict | None, compiled: dict | None) -> dict | None:
    """bench.json with bench-compile.json's compiled candidates added to its cuda throughput."""
    extra = (compiled or {}).get("results", {}).get("cuda", {})
    if bench is None or extra.get("status") != "ok":
        return bench
    cuda = bench.get("results", {}).get("cuda", {})
    if cuda.get("status") == "ok":
        for size, entries in extra["throughput"].items():
            cuda["throughput"].setdefault(size, {}).update({k: v for k, v in entries.items() if isinstance(v, dict)})
    return bench


def write_summary(out: Path) -> dict[str, object]:
    bench = merge_compiled(_load(out / "bench.json"), _load(out / "bench-compile.json"))
    generator, stages = generator_figures(bench), stage_figures(bench)
    e2e = end_to_end(out)
    check: dict[str, object] = {
        "machine": (bench or {}).get("machine"),
        "stages": stage_statuses(out),
        "tests": test_line(out),
        "generator": generator,
        "pipeline_stages": stages,
        "bounds": {size: bound(fps, stages.get("default_preset")) for size, fps in stages.get("sizes", {}).items()},
        "end_to_end": e2e,
        "targets": verdicts(e2e),
        "suggested_tuning": suggested_tuning(generator, stages, e2e),
    }
    (out / "check.json").write_text(json.dumps(check, indent=2, default=str) + "\n")
    (out / "summary.txt").write_text(summary_text(check))
    return check


def _f(value: object, digits: int = 1, unit: str = "") -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}{unit}"
    return "not measured"


def summary_text(check: dict[str, object]) -> str:
    machine = check.get("machine") or {}
    lines = [
        f"animevid GPU check: {machine.get('gpu_name') or machine.get('cpu_model') or 'machine unknown'}; "
        f"torch {machine.get('torch')}, CUDA {machine.get('cuda')}, {machine.get('cpu_logical_cores')} CPU cores, {machine.get('date')}",
        "",
        "stages: " + ", ".join(f"{s['stage']} rc={s['exit_code']} ({s['seconds']} s)" for s in check["stages"]),
        f"tests (-m gpu): {check.get('tests') or 'no result line'}",
        "",
    ]
    generator = check["generator"]
    if generator.get("status") == "ok":
        lines.append(f"generator alone ({generator['dtype']}), frames/s by batch size:")
        for size, data in generator["sizes"].items():
            for layout, figures in data["layouts"].items():
                eager = ", ".join(f"b{b} {_f(fps)}" for b, fps in figures["eager_fps_by_batch"].items())
                compiled = ", ".join(f"b{b} {_f(fps)}" for b, fps in figures["compiled_fps_by_batch"].items())
                lines.append(f"  {size} {layout}: eager {eager}" + (f"; compiled {compiled}" if compiled else ""))
            precision = data.get("precision_vs_fp32")
            if precision:
                lines.append(f"  {size} {precision['dtype']} vs fp32: max {_f(precision['max_lsb'], 0)} LSB, mean {_f(precision['mean_lsb'], 3)} LSB")
    else:
        lines.append(f"generator alone: not measured ({generator.get('reason')})")
    lines.append("")
    for size, data in check["bounds"].items():
        stages = ", ".join(f"{name} {_f(fps)}" for name, fps in data["stages_fps"].items())
        lines.append(f"stages at {size} (frames/s): {stages}; bound: {data['bound']}")
    for size, fps in check["pipeline_stages"].get("sizes", {}).items():
        lines.append(f"  {size} all stages: " + ", ".join(f"{name} {_f(value)}" for name, value in fps.items()))
    lines.append("")
    for size, data in check["end_to_end"].items():
        for run in data.get("runs", []):
            if run.get("status") != "ok":
                lines.append(f"end to end {size}: FAILED ({(run.get('stderr') or '')[-300:]})")
                continue
            lines.append(
                f"end to end {size}, {run['clip_seconds']:g} s clip ({run['clip_frames']} frames, audio): job {_f(run['job_fps'])} fps, "
                f"whole command {_f(run['fps'])} fps, generator alone {_f(run['generator_only_fps'])} fps (batch {run['batch_size']}, "
                f"{run['dtype']}), ratio {_f(run['ratio_end_to_end_over_generator'], 2)}; GPU busy {_f(run['gpu_busy_steady_percent'], 1, ' %')}; "
                f"peak GPU {_f(run['cuda_max_memory_allocated_mib'], 0, ' MiB')}, host RSS {_f(run['max_rss_mib'], 0, ' MiB')}; checked: {run.get('check')}"
            )
        if data.get("flat_in_length"):
            lines.append(f"  growth from the shortest to the longest clip: {data['flat_in_length']}")
        if data.get("encoders_sweep_note"):
            lines.append(f"  {data['encoders_sweep_note']}")
        for run in data.get("encoders_sweep") or []:
            lines.append(
                f"  {run.get('option', 'encoders')}={run['encoders']}: {_f(run.get('fps'))} fps (whole command), "
                f"status {run.get('status')}, checked: {run.get('check')}"
            )
    lines += ["", "targets: " + json.dumps(check["targets"]), "suggested animevid/engine/tuning.py CUDA values: " + json.dumps(check["suggested_tuning"], default=str), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_summary")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_summary(args.out)
    print((args.out / "summary.txt").read_text())


if __name__ == "__main__":
    main()
