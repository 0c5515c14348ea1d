"""``python -m benchmarks --quick`` runs every part and writes a complete JSON result.

Smoke test only: it checks that each part ran and reported positive measurements, never how fast
anything was (timings on a shared test machine say nothing about the code).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import PARTS
from benchmarks.__main__ import main


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    path = main(["--quick", "--device", "cpu", "--out", str(out)], log=lambda message: None)
    assert path.parent == out and path.suffix == ".json"
    return path, json.loads(path.read_text())


def test_quick_run_writes_json_and_markdown(quick_results):
    path, data = quick_results
    assert data["quick"] is True
    assert path.with_suffix(".md").read_text().startswith("Machine: ")
    assert set(data["results"]) == set(PARTS)
    for part in PARTS:
        assert data["results"][part]["status"] == "ok", (part, data["results"][part].get("reason"))
        assert positive(data["results"][part]["elapsed_s"])


def test_machine_info_is_complete(quick_results):
    machine = quick_results[1]["machine"]
    for key in ("date", "device", "cpu_model", "cpu_logical_cores", "torch_threads", "torch", "gpu_name", "python"):
        assert key in machine
    assert machine["cpu_model"] and machine["torch"] and machine["date"]
    assert positive(machine["cpu_logical_cores"]) and positive(machine["torch_threads"])
    assert machine["device"] == "cpu" and machine["gpu_name"] is None


def test_table1_static_figures(quick_results):
    table1 = quick_results[1]["results"]["table1"]
    static = table1["static"]
    assert static["animegan"]["params"] == 3_956_096  # the paper's count: the architecture is exact
    for model in ("animegan", "cartoongan"):
        for key in ("params", "size_mib_fp32", "size_mib_fp16", "gflops_256", "gmacs_256"):
            assert positive(static[model][key]), (model, key)
        assert static[model]["gflops_256"] == pytest.approx(2 * static[model]["gmacs_256"])
    assert table1["paper"]["figures"]["animegan"]["gflops"] == 38.66
    candidates = table1["animegan_flops_investigation"]["candidates"]
    assert len(candidates) >= 3 and all(positive(c["gflops"]) for c in candidates)


def test_table1_speed_entries(quick_results):
    table1 = quick_results[1]["results"]["table1"]
    assert table1["sizes"]
    for size in table1["sizes"]:
        variants = table1["variants"][size]
        assert "fp32" in variants and "bf16" in variants
        for model in ("animegan", "cartoongan"):
            for variant in variants:
                entry = table1["speed"][size][model][variant]
                assert positive(entry["ms_per_frame"]) and positive(entry["speedup_vs_fp32"]) and positive(entry["first_call_s"])
                assert entry["max_lsb"] >= 0 and entry["mean_lsb"] >= 0
                assert entry["timing"]["runs"] >= 1 and all(positive(s) for s in entry["timing"]["samples_s"])
            assert table1["speed"][size][model]["fp32"]["max_lsb"] == 0  # the baseline against itself


def test_engine_entries(quick_results):
    engines = quick_results[1]["results"]["engines"]
    for size in engines["sizes"]:
        entries = engines["speed"][size]
        assert {"eager", "openvino", "bands"} <= set(entries)
        for entry in entries.values():
            assert positive(entry["ms_per_frame"]) and positive(entry["speedup_vs_eager"]) and entry["mean_lsb"] >= 0
        assert entries["eager"]["max_lsb"] == 0  # the reference against itself
    assert positive(engines["startup"]["openvino"]["first_run_s"]) and positive(engines["startup"]["openvino"]["cached_s"])
    for variant in ("eager", "openvino"):
        assert len(engines["memory"][variant]["points"]) == 2
        assert all(positive(point["peak_bytes"]) for point in engines["memory"][variant]["points"])


def test_engine_peer_entries(quick_results):
    peers = quick_results[1]["results"]["engines"]["peers"]
    assert set(peers["networks"]) == {"v1", "v2"}
    for entry in peers["networks"].values():
        rows = entry["rows"]
        assert {"peer eager fp32", "openvino fp32"} <= set(rows)
        for row in rows.values():
            assert positive(row["ms_per_frame"]) and positive(row["vs_peer"])
            assert row["phone_clip_s"] == pytest.approx(row["ms_per_frame"] * 300 / 1e3)  # a 10-second clip at 30 fps
        assert rows["peer eager fp32"]["vs_peer"] == 1.0 and rows["openvino fp32"]["max_lsb"] == 0
        assert entry["auto"]["runs_as"] in rows and positive(entry["gflop_per_frame"])
    assert "beside the peers" in quick_results[0].with_suffix(".md").read_text()


def test_v2graph_entries(quick_results):
    v2graph = quick_results[1]["results"]["v2graph"]
    now = v2graph["graphs"]["v2 now"]
    assert positive(now["ms_per_frame"]) and now["vs_torch_fp32"]["max_lsb"] <= 1
    assert now["runtime_layer_types"]["MVN"] == 24 and positive(sum(now["profile_ms_by_type"].values()))


def test_pipeline_entries(quick_results):
    pipeline = quick_results[1]["results"]["pipeline"]
    for name in ("a_generator_only", "b_end_to_end", "c_naive_opencv"):
        assert positive(pipeline["fps"][name])
    assert positive(pipeline["ratio_b_over_a"]) and positive(pipeline["ratio_b_over_c"])
    assert positive(pipeline["clip"]["frames"]) and positive(pipeline["batch_size"])
    assert pipeline["engine"] == "openvino"  # the default engine on the CPU
    frames = pipeline["clip"]["frames"]
    assert pipeline["outputs"]["b_end_to_end"] == {"video_frames": frames, "audio_streams": 1}
    assert pipeline["outputs"]["c_naive_opencv"]["video_frames"] == frames
    assert len(pipeline["memory"]) == 2
    for run in pipeline["memory"]:
        assert positive(run["max_rss_mib"]) and positive(run["clip_frames"]) and run["frames"] == run["clip_frames"]


def test_stage_entries(quick_results):
    stages = quick_results[1]["results"]["stages"]
    for size in stages["sizes"].values():
        names = set(size["stages"])
        assert {"decode", "yuv→rgb host (swscale)", "yuv→rgb device", "rgb→yuv device", "generator"} <= names
        assert any(name.startswith("encode ") and "1 thread" in name for name in names)
        assert all(positive(entry["fps"]) for entry in size["stages"].values())


def test_cuda_part_entries(quick_results):
    cuda = quick_results[1]["results"]["cuda"]
    for size, per_size in cuda["throughput"].items():
        layouts = {entry["layout"] for entry in per_size.values() if isinstance(entry, dict)}
        assert layouts == {"nchw", "channels_last"}
        assert all(positive(entry["fps"]) for entry in per_size.values() if isinstance(entry, dict))
        assert cuda["best"][size]["fastest"] in per_size
    precision = next(iter(cuda["precision_vs_fp32"].values()))
    assert precision["max_lsb"] >= precision["mean_lsb"] >= 0


def test_training_entries(quick_results):
    train = quick_results[1]["results"]["train"]
    assert positive(train["steps_per_s"]) and positive(train["images_per_s"]) and positive(train["step_s"])
    assert train["warmup_losses"] and all(math.isfinite(v) for v in train["warmup_losses"].values())


def test_dataset_entries(quick_results):
    datasets = quick_results[1]["results"]["datasets"]
    extract, smooth = datasets["extract_frames"], datasets["edge_smooth"]
    assert extract["status"] == "ok" and smooth["status"] == "ok"
    assert positive(extract["frames_per_s"]) and positive(extract["frames_decoded"])
    assert positive(smooth["vectorized_images_per_s"]) and positive(smooth["reference_images_per_s"]) and positive(smooth["speedup"])
    assert smooth["outputs_equal"] is True
