"""INT8 of our exported generators, measured: NNCF post-training quantization against the ``--dtype auto`` bound.

    python -m benchmarks.int8                       # v2 and v1, 960x540, writes benchmarks/results/int8-*.json
    python -m benchmarks.int8 --size 256x256 --rounds 1 --calibration 4

For each network (seeded random weights in the official layout, as every benchmark here), the model
OpenVINO runs by default (our ONNX export, converted) is quantized by NNCF with several
configurations — plain, the mixed preset, the transformer model type, first and last convolutions
kept in floating point, the norms' inputs kept in floating point — calibrated on the built-in
calibration images (:func:`animevid.engine.precision.calibration_frames`), and compared with OpenVINO
fp32 on images it was not calibrated on, on the uint8 scale the product writes: max / mean |Δ| and
PSNR, against the bound of :data:`animevid.engine.precision.BOUND`. The non-quantized parts run in
fp32 (INFERENCE_PRECISION_HINT f32: on a CPU with native bf16 OpenVINO would otherwise run them in
bf16, mixing two errors). Speed: ms per frame, medians of interleaved rounds after a warm-up.

NNCF is not a dependency of animevid (INT8 did not pass the bound, see the README); this script
imports it lazily and says so when it is missing (``pip install nncf``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .common import RESULTS_DIR, cpu_model, interleaved_timings, load_average, markdown_table, parse_size
from .table1 import synthetic_input

NETWORKS = {"v2": ("animegan-v2", "tf1"), "v1": ("animegan-v1", "tf1")}


def _configs(nncf, model) -> dict[str, dict[str, object]]:
    convolutions = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]
    norms = ("MVN", "GroupNormalization", "ReduceMean", "NormalizeL2")
    keep_ends = nncf.IgnoredScope(names=[convolutions[0], convolutions[-1]], validate=False)
    return {
        "plain": {},
        "mixed preset": {"preset": nncf.QuantizationPreset.MIXED},
        "transformer model type": {"model_type": nncf.ModelType.TRANSFORMER},
        "first/last conv fp32": {"ignored_scope": keep_ends},
        "first/last conv fp32, mixed, norms fp32": {
            "preset": nncf.QuantizationPreset.MIXED,
            "ignored_scope": nncf.IgnoredScope(names=[convolutions[0], convolutions[-1]], types=list(norms), validate=False),
        },
    }


def _difference(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    from animevid.engine.precision import compare

    max_lsb, mean_lsb, psnr = compare(torch.from_numpy(output), torch.from_numpy(reference))
    return {"max_lsb": max_lsb, "mean_lsb": mean_lsb, "psnr_db": psnr}


def _accuracy_controlled(nncf, model, calibration_inputs: list[np.ndarray], core, max_lsb: float):
    """NNCF's quantization with accuracy control: layers go back to floating point, most harmful first,
    until the max |Δ| against fp32 on the calibration images (the metric: 255 minus it) grows by at most ``max_lsb``."""
    from animevid.engine.precision import compare

    fp32 = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    items = [(x, np.array(fp32(x)[0], copy=True)) for x in calibration_inputs]

    def validate(compiled, data) -> float:
        worst = 0.0
        for x, reference in data:
            output = np.array(compiled(x)[0], copy=True)
            worst = max(worst, compare(torch.from_numpy(output), torch.from_numpy(reference))[0])
        return 255.0 - worst  # 255 for fp32 itself: NNCF divides by the reference metric

    dataset = nncf.Dataset(items, lambda item: item[0])
    return nncf.quantize_with_accuracy_control(
        model, dataset, dataset, validate, max_drop=max_lsb, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(items)
    )


def measure_network(
    name: str, size: tuple[int, int], calibration: int, rounds: int, log, accuracy_control: bool = False
) -> dict[str, object]:
    import nncf
    import openvino as ov

    from animevid.engine.openvino import OpenVINOGenerator
    from animevid.engine.openvino import cpu_has_native_bf16
    from animevid.engine.precision import BOUND, calibration_frames, to_model_input
    from animevid.weights.formats import random_weights

    architecture, semantics = NETWORKS[name]
    generator = random_weights(architecture, semantics, seed=0).generator().eval().requires_grad_(False)
    reference_engine = OpenVINOGenerator(generator, torch.float32)  # converts (cached) and compiles fp32
    core = reference_engine.core
    model = core.read_model(str(reference_engine.model_path))
    calibration_inputs = [to_model_input(frames[None]).numpy() for frames in calibration_frames(count=calibration)]
    evaluation = [synthetic_input(*size, torch.device("cpu")).numpy(), to_model_input(calibration_frames(size, 1)).numpy()]
    references = [reference_engine(x).numpy() for x in evaluation]
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    runners = {"fp32": reference_engine}
    if cpu_has_native_bf16():
        runners["bf16"] = OpenVINOGenerator(generator, torch.bfloat16)
    rows: dict[str, dict[str, object]] = {label: {} for label in runners}
    configs: dict[str, object] = dict(_configs(nncf, model))
    if accuracy_control:
        configs["accuracy control (max Δ ≤ 8 on the calibration images)"] = "accuracy control"
    for label, options in configs.items():
        started = time.perf_counter()
        try:
            if options == "accuracy control":
                quantized = _accuracy_controlled(nncf, model.clone(), calibration_inputs, core, BOUND.max_lsb)
            else:
                quantized = nncf.quantize(model.clone(), nncf.Dataset(calibration_inputs), subset_size=calibration, **options)
        except Exception as exc:  # noqa: BLE001 - one configuration NNCF refuses must not cost the others
            rows[f"int8, {label}"] = {"status": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            log(f"  {name} {label}: failed ({exc})")
            continue
        seconds = time.perf_counter() - started
        compiled = core.compile_model(quantized, "CPU", config)
        request = compiled.create_infer_request()

        def run(x: np.ndarray, request=request) -> torch.Tensor:
            request.infer({0: x})
            return torch.from_numpy(np.array(request.get_output_tensor(0).data, copy=True))

        runners[f"int8, {label}"] = run
        rows[f"int8, {label}"] = {"quantize_s": seconds}
        log(f"  {name} {label}: quantized in {seconds:.0f} s")
    for label, runner in runners.items():
        outputs = np.concatenate([np.asarray(runner(x)) for x in evaluation])
        difference = _difference(outputs, np.concatenate(references))
        rows.setdefault(label, {}).update(difference, passes=BOUND.passes(difference["max_lsb"], difference["psnr_db"]))
    timed = {label: (lambda r=runner: r(evaluation[0])) for label, runner in runners.items()}
    timings = interleaved_timings(timed, repeats=rounds, device=torch.device("cpu"), warmup=1)
    for label, timing in timings.items():
        rows[label]["ms_per_frame"] = timing.median * 1e3
        rows[label]["speedup_vs_fp32"] = timings["fp32"].median / timing.median
        log(f"  {name} {label}: {timing.median * 1e3:,.0f} ms, Δ {rows[label]['max_lsb']:.0f} / {rows[label]['mean_lsb']:.2f} LSB, "
            f"{rows[label]['psnr_db']:.1f} dB")  # fmt: skip
    return {"network": architecture, "rows": rows}


def markdown(result: dict[str, object]) -> str:
    parts = []
    for name, network in result["networks"].items():
        rows = []
        for label, row in network["rows"].items():
            if "status" in row:
                rows.append([label, row["status"], "", "", "", ""])
                continue
            rows.append([label, f"{row['ms_per_frame']:,.0f}", f"{row['speedup_vs_fp32']:.2f}×",
                         f"{row['max_lsb']:.0f} / {row['mean_lsb']:.2f}", f"{row['psnr_db']:.1f}", "yes" if row["passes"] else "no"])  # fmt: skip
        parts += [f"### {name} ({network['network']}), {result['size']}", "",
                  markdown_table(["precision", "ms/frame", "vs fp32", "Δ max / mean (LSB)", "PSNR (dB)", "within the bound"], rows), ""]  # fmt: skip
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> Path | None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=(540, 960), help="evaluation and timing size, HxW (default 540x960)")
    parser.add_argument("--calibration", type=int, default=8, help="calibration images (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds after one warm-up (default 2)")
    parser.add_argument("--networks", default="v2,v1")
    parser.add_argument("--accuracy-control", action="store_true", help="also NNCF's quantization with accuracy control (slow)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    try:
        import nncf  # noqa: F401
    except ImportError:
        print("benchmarks.int8 needs NNCF, which animevid does not depend on: pip install nncf", file=sys.stderr)
        return None
    from animevid.engine.precision import BOUND

    size = args.size
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu_model": cpu_model(),
        "load_average_at_start": load_average(),
        "size": f"{size[1]}x{size[0]}",
        "calibration_images": args.calibration,
        "rounds": args.rounds,
        "bound": {"max_lsb": BOUND.max_lsb, "min_psnr_db": BOUND.min_psnr_db},
        "weights": "random, official layout (animevid.weights.formats.random_weights, seed 0)",
        "networks": {},
    }
    for name in [n.strip() for n in args.networks.split(",") if n.strip()]:
        print(f"int8: {name}", file=sys.stderr)
        result["networks"][name] = measure_network(
            name, size, args.calibration, args.rounds, lambda m: print(m, file=sys.stderr), args.accuracy_control
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"int8-{time.strftime('%Y-%m-%d-%H%M%S', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=2, default=float))
    print(markdown(result))
    return path


if __name__ == "__main__":
    main()
