"""Why OpenVINO ran AnimeGANv2 no faster than v1, and what the exported graph change gives.

``python -m benchmarks.v2graph`` (or ``python -m benchmarks --only v2graph``): in one process, at
960×540, batch 1, OpenVINO fp32 on the CPU,

* the v2 generator exported as before (each layer norm a ``GroupNorm(1, C)``, which the exporter
  writes as ``GroupNormalization`` and OpenVINO decomposes into reshapes to a flat view around an
  ``MVN``), and as now (the plain formula, which OpenVINO fuses into one ``MVN`` with the affine and
  the LeakyReLU on its blocked layout), beside v1 (instance norms): ms per frame, interleaved
  medians after a warm-up, and each one's difference from torch eager fp32 in LSB;
* OpenVINO's per-layer profile (``PERF_COUNT``) of each: time by layer type, the top types, and the
  layer types of the compiled (runtime) model;
* two ways of running that might pay on top: two inference requests in flight (``AsyncInferQueue``,
  two streams of one thread each, frames per second over a run of frames) against one request at a
  time with every thread, and a static input shape (the model reshaped to the frame size before
  compiling) against the dynamic one the engine compiles.

The weights are random in the official layout (:func:`animevid.weights.formats.random_weights`).
"""

from __future__ import annotations

import collections
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .common import fmt, interleaved_timings, markdown_table, not_available, size_name
from .table1 import lsb_difference, synthetic_input


@dataclass(frozen=True)
class V2GraphSettings:
    size: tuple[int, int] = (540, 960)
    repeats: int = 3
    warmup: int = 1
    graphs: tuple[str, ...] = ("v2 before", "v2 now", "v1")
    ways: bool = True  # two requests in flight, static shape
    frames_in_flight: int = 4


def default_settings(device: torch.device, quick: bool) -> V2GraphSettings:
    if quick:  # one export (about 15 s on 2 cores) at a tiny size: a smoke check of the machinery
        return V2GraphSettings((32, 32), 1, 1, ("v2 now",), False, 2)
    return V2GraphSettings()


@contextlib.contextmanager
def _norms_exported_as_group_norm() -> Iterator[None]:
    """The export as it was before: v2's layer norms as torch's GroupNorm."""
    from animevid.models.animegan_v2 import LayerNorm

    own = LayerNorm.forward
    LayerNorm.forward = torch.nn.GroupNorm.forward
    try:
        yield
    finally:
        LayerNorm.forward = own


def _generator(name: str):
    from animevid.weights.formats import random_weights

    architecture = "animegan-v1" if name == "v1" else "animegan-v2"
    return random_weights(architecture, "tf1", seed=0).generator().eval()


def _compile(generator, config: dict[str, object], *, before: bool = False, shape: tuple[int, ...] | None = None, onnx: bytes | None = None):
    from animevid.engine.onnx_export import onnx_model_bytes
    from animevid.engine.openvino import openvino_core

    if onnx is None:
        with _norms_exported_as_group_norm() if before else contextlib.nullcontext():
            onnx = onnx_model_bytes(generator)
    model = openvino_core().read_model(onnx, b"")
    if shape is not None:
        model.reshape({model.inputs[0]: list(shape)})
    return openvino_core().compile_model(model, "CPU", config)


def _latency_config(threads: int) -> dict[str, object]:
    return {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads}


def _layer_types(compiled) -> dict[str, int]:
    return dict(collections.Counter(op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()))


def _profile(request) -> dict[str, float]:
    """Milliseconds by executed layer type in the request's last inference."""
    by_type: collections.Counter[str] = collections.Counter()
    for layer in request.get_profiling_info():
        by_type[layer.node_type] += layer.real_time.total_seconds() * 1000
    return {name: round(ms, 2) for name, ms in by_type.most_common()}


def _in_flight(compiled, x: np.ndarray, frames: int) -> float:
    """Frames per second with as many requests in flight as the compiled model has streams."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    for _ in range(queue.__len__()):  # warm-up: every request once
        queue.start_async({0: x})
    queue.wait_all()
    started = time.perf_counter()
    for _ in range(frames):
        queue.start_async({0: x})
    queue.wait_all()
    return frames / (time.perf_counter() - started)


def _sequential(request, x: np.ndarray, frames: int) -> float:
    request.infer({0: x})
    started = time.perf_counter()
    for _ in range(frames):
        request.infer({0: x})
    return frames / (time.perf_counter() - started)


def run(device: torch.device, settings: V2GraphSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    from animevid.engine.openvino import openvino_available
    from animevid.engine.resources import usable_cpus

    if device.type != "cpu":
        return not_available("OpenVINO's graph is a CPU matter: run with --device cpu")
    if not openvino_available():
        return not_available("openvino is not installed")
    threads = usable_cpus()
    height, width = settings.size
    x_torch = synthetic_input(height, width, torch.device("cpu"))
    x = x_torch.numpy()
    compiled, requests, references = {}, {}, {}
    for name in settings.graphs:
        log(f"exporting and compiling {name}")
        generator = _generator(name.split()[0])
        with torch.no_grad():
            references[name] = generator(x_torch)
        compiled[name] = _compile(generator, {**_latency_config(threads), "PERF_COUNT": True}, before=name == "v2 before")
        requests[name] = compiled[name].create_infer_request()

    def runner(name: str) -> Callable[[], torch.Tensor]:
        def infer() -> torch.Tensor:
            requests[name].infer({0: x})
            return torch.from_numpy(np.array(requests[name].get_output_tensor(0).data, copy=True))

        return infer

    log(f"timing {', '.join(settings.graphs)} at {size_name(height, width)}")
    outputs: dict[str, torch.Tensor] = {}
    timings = interleaved_timings(
        {name: runner(name) for name in settings.graphs}, repeats=settings.repeats, device=device, warmup=settings.warmup,
        on_warmup=lambda name, index, seconds, output: outputs.__setitem__(name, output),
    )  # fmt: skip
    graphs = {}
    for name in settings.graphs:
        profile = _profile(requests[name])
        graphs[name] = {
            "ms_per_frame": timings[name].median * 1000,
            "samples_s": timings[name].samples,
            "cpu_s": timings[name].cpu_samples,
            "vs_torch_fp32": lsb_difference(outputs[name], references[name]),
            "profile_ms_by_type": profile,
            "runtime_layer_types": _layer_types(compiled[name]),
        }
    result: dict[str, object] = {"status": "ok", "size": [height, width], "threads": threads, "graphs": graphs}
    if settings.ways:
        result["ways"] = _ways(x, threads, settings, log)
    return result


def _ways(x: np.ndarray, threads: int, settings: V2GraphSettings, log: Callable[[str], None]) -> dict[str, float]:
    """v2 (now): frames per second one request at a time, two in flight, and with a static shape."""
    from animevid.engine.onnx_export import onnx_model_bytes

    generator = _generator("v2")
    log("v2: one request with every thread, two requests in flight, a static input shape")
    onnx = onnx_model_bytes(generator)
    dynamic = _compile(generator, _latency_config(threads), onnx=onnx)
    static = _compile(generator, _latency_config(threads), shape=x.shape, onnx=onnx)
    throughput_config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": threads}
    two = _compile(generator, throughput_config, onnx=onnx)
    dynamic_request, static_request = dynamic.create_infer_request(), static.create_infer_request()
    ways = {
        "one request": lambda: _sequential(dynamic_request, x, settings.frames_in_flight),
        "two in flight": lambda: _in_flight(two, x, settings.frames_in_flight),
        "static shape": lambda: _sequential(static_request, x, settings.frames_in_flight),
    }
    rounds: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for index in range(3):  # interleaved rounds, the order rotating
        for name in names[index % 3 :] + names[: index % 3]:
            rounds[name].append(ways[name]())
    return {name: statistics.median(values) for name, values in rounds.items()}


def markdown(result: dict[str, object], device_label: str) -> str:
    height, width = result["size"]
    graphs = result["graphs"]
    reference = graphs.get("v2 before", {}).get("ms_per_frame")
    rows = []
    for name, graph in graphs.items():
        top = ", ".join(f"{kind} {ms:.0f}" for kind, ms in list(graph["profile_ms_by_type"].items())[:4])
        types = graph["runtime_layer_types"]
        speedup = fmt(reference / graph["ms_per_frame"]) if reference and name.startswith("v2") else "—"
        rows.append([name, f"{graph['ms_per_frame']:,.0f}", speedup, f"{graph['vs_torch_fp32']['max_lsb']:.0f} / {graph['vs_torch_fp32']['mean_lsb']:.3f}",
                     types.get("MVN", 0), types.get("Reorder", 0), types.get("Reduce", 0), top])  # fmt: skip
    text = (
        f"### v2 graph on OpenVINO (fp32, {size_name(height, width)}, batch 1, {device_label})\n\n"
        + markdown_table(["graph", "ms/frame", "vs before", "Δ vs torch fp32 (max / mean LSB)", "MVN", "Reorder", "Reduce", "top layer types (ms)"], rows)
    )
    if "ways" in result:
        ways = result["ways"]
        one = ways["one request"]
        text += "\n\nv2 (now), frames per second: " + ", ".join(f"{name} {fps:.3f} ({fps / one:.2f}×)" for name, fps in ways.items())
    return text + "\n"


def main(argv: list[str] | None = None) -> None:
    from .common import machine_info, machine_line

    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    device = torch.device("cpu")
    result = run(device, default_settings(device, quick), lambda message: print(message, file=sys.stderr, flush=True))
    if result.get("status") != "ok":
        print(f"not available: {result['reason']}")
        return
    print(f"Machine: {machine_line(machine_info(device))}\n")
    print(markdown(result, f"{machine_info(device)['cpu_model']}, {result['threads']} threads"))


if __name__ == "__main__":
    main()
