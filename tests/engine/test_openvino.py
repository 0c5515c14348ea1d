"""The OpenVINO engine: same pixels as torch fp32, a cache that is reused and invalidated, one-line errors."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from animevid.errors import UsageError
from animevid.engine.stylizer import Stylizer, resolve_engine
from animevid.options import InferenceOptions
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.video_fixtures import make_clip, read_clip

openvino = pytest.importorskip("openvino")
pytest.importorskip("onnxscript")

from animevid.engine import openvino as openvino_engine  # noqa: E402
from animevid.engine.openvino import OpenVINOGenerator  # noqa: E402

CPU = torch.device("cpu")


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.fixture(scope="module")
def stylizers(random_weights):
    torch_engine = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu", engine="torch"))
    return torch_engine, Stylizer.from_weights(random_weights, InferenceOptions(device="cpu", engine="openvino"))


@pytest.mark.parametrize("size", [(45, 61), (64, 64), (97, 130), (16, 300)])
def test_photos_match_torch_fp32(stylizers, size):
    torch_engine, openvino = stylizers
    assert (torch_engine.engine, openvino.engine) == ("torch", "openvino")
    photo = make_image(*size, seed=size[0])
    expected, got = torch_engine.image(photo), openvino.image(photo)
    assert got.shape == expected.shape == (*size, 3)
    assert mean_abs_diff(got, expected) <= 0.05 and max_abs_diff(got, expected) <= 1


def test_a_batch_of_frames_matches_torch_fp32(stylizers):
    torch_engine, openvino = stylizers
    frames = torch.from_numpy(np.stack([make_image(40, 56, seed=i) for i in range(3)]))
    assert mean_abs_diff(openvino.frames(frames).numpy(), torch_engine.frames(frames).numpy()) <= 0.05


def test_short_video_matches_torch_fp32(tmp_path, random_weights):
    source = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=8)
    outputs = {}
    for engine in ("torch", "openvino"):
        outputs[engine] = tmp_path / f"{engine}.mp4"
        # --crf 0: lossless, so that the encoder adds no difference of its own
        result = run_cli("stylize", source, outputs[engine], "--weights", random_weights, "--engine", engine, "--crf", "0")
        assert result.exit_code == 0, result.output
        assert f"{engine} engine" in result.stderr
    with_torch, with_openvino = read_clip(outputs["torch"]), read_clip(outputs["openvino"])
    assert with_openvino.times == with_torch.times and len(with_openvino.frames) == 8
    assert mean_abs_diff(np.stack(with_openvino.frames), np.stack(with_torch.frames)) <= 0.05


def test_the_v2_generator_runs_on_openvino(tmp_path, monkeypatch):
    from animevid.models import AnimeGANv2Generator

    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path))
    torch.manual_seed(2)
    generator = AnimeGANv2Generator("tf1").eval()
    torch_engine = Stylizer(generator, InferenceOptions(device="cpu", engine="torch"))
    openvino = Stylizer(generator, InferenceOptions(device="cpu", engine="openvino"))
    photo = make_image(45, 61)
    expected, got = torch_engine.image(photo), openvino.image(photo)
    assert mean_abs_diff(got, expected) <= 0.05 and max_abs_diff(got, expected) <= 1
    assert openvino.memory_plan(45, 61).executor == "whole"

    # Every layer norm runs as one fused MVN on OpenVINO's blocked layout, not as a chain of
    # reductions and element-wise ops, nor reshaped to a flat view (reorders around each norm).
    runtime_types = Counter(op.get_rt_info()["layerType"].astype(str) for op in openvino._openvino.compiled.get_runtime_model().get_ops())
    norms = sum(isinstance(module, torch.nn.GroupNorm) for module in generator.modules())
    assert norms == 24 and runtime_types["MVN"] == norms
    assert runtime_types["Reduce"] == 0 and runtime_types["Reorder"] <= 4, runtime_types
    # tf1's epsilon (1e-12) is kept: where a norm's input is flat it is what stops 0 / 0.
    zeros = torch.zeros(1, 3, 16, 20)
    with torch.no_grad():
        assert torch.allclose(openvino._openvino(zeros), generator(zeros), atol=1e-4)


def test_auto_is_openvino_on_the_cpu_and_torch_when_asked_for_compile():
    assert resolve_engine("auto", CPU) == "openvino"
    assert resolve_engine("auto", CPU, compile=True) == "torch"
    assert resolve_engine("auto", torch.device("cuda", 0)) == "torch"
    assert resolve_engine("torch", CPU) == "torch"


def test_long_videos_are_not_torch_compiled_with_openvino(tmp_path, random_weights, monkeypatch):
    from animevid.engine import stylizer as stylizer_module

    calls = []
    monkeypatch.setattr(stylizer_module.torch, "compile", lambda module, **kwargs: calls.append(kwargs) or module)
    monkeypatch.setattr(stylizer_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    source = make_clip(tmp_path / "in.mp4", width=32, height=32, frames=60)
    result = run_cli("stylize", source, tmp_path / "out.mp4", "--weights", random_weights)
    assert result.exit_code == 0, result.output
    assert "openvino engine" in result.stderr and not calls


class _Tiny(nn.Module):
    """A small generator (any nn.Module works): converting it takes a second, not the AnimeGAN's fifteen."""

    MIN_SIZE = 4

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def test_the_cache_is_reused_and_invalidated_when_the_weights_change(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path))
    tiny = _Tiny(seed=1).eval()
    first = OpenVINOGenerator(tiny)
    assert first.converted and first.model_path.parent == tmp_path / "openvino"
    assert any((tmp_path / "openvino" / "compiled").iterdir())  # OpenVINO's compiled blobs
    again = OpenVINOGenerator(tiny)
    assert not again.converted and again.model_path == first.model_path
    x = torch.rand(1, 3, 9, 11) * 2 - 1
    assert torch.equal(again(x), first(x))

    changed = _Tiny(seed=2).eval()
    other = OpenVINOGenerator(changed)
    assert other.converted and other.model_path != first.model_path
    with torch.no_grad():
        assert torch.allclose(other(x), changed(x), atol=1e-5)  # the new weights, not the cached ones
    assert sorted(p.suffix for p in other.model_path.parent.glob("*.*")) == [".bin", ".bin", ".xml", ".xml"]


def test_an_incomplete_cache_entry_is_converted_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path))
    tiny = _Tiny(seed=3).eval()
    path = OpenVINOGenerator(tiny).model_path
    path.with_suffix(".bin").unlink()  # e.g. a disk that filled up
    engine = OpenVINOGenerator(tiny)
    assert engine.converted and path.with_suffix(".bin").is_file()


def test_threads_follow_the_usable_cpus(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path))
    monkeypatch.setattr(openvino_engine, "usable_cpus", lambda: 1)
    engine = OpenVINOGenerator(_Tiny(seed=4).eval())
    assert engine.compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert engine.compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32  # exact, not the CPU's bf16 default


def test_bfloat16_without_native_support_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path))
    monkeypatch.setattr(openvino_engine, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(UsageError, match="natively"):
        OpenVINOGenerator(_Tiny(seed=5).eval(), torch.bfloat16)
    assert resolve_engine("auto", CPU, dtype=torch.bfloat16) == "torch"  # torch emulates it


@pytest.fixture
def photo(tmp_path):
    from animevid.imageio import write_image

    path = tmp_path / "photo.png"
    write_image(path, make_image(20, 24))
    return path


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--engine", "tensorrt"], ["unknown engine 'tensorrt'", "auto, torch, openvino"]),
        (["--engine", "openvino", "--compile"], ["--compile is torch.compile"]),
        (["--engine", "openvino", "--device", "cuda"], ["CUDA is not available"]),
    ],
)
def test_engine_errors_are_one_line(tmp_path, photo, random_weights, extra, fragments):
    result = run_cli("stylize", photo, tmp_path / "out.png", "--weights", random_weights, *extra)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out.png").exists()


def test_openvino_absent(tmp_path, photo, random_weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    result = run_cli("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "--engine", "openvino")
    assert_one_line_error(result, "needs the openvino package", "pip install openvino")
    assert not (tmp_path / "out.png").exists()
    result = run_cli("stylize", photo, tmp_path / "auto.png", "--weights", random_weights)  # auto: torch, silently
    assert result.exit_code == 0, result.output
    assert "torch engine" in result.stderr


def test_the_same_tensors_under_two_semantics_are_two_conversions(tmp_path, monkeypatch):
    """One set of AnimeGANv2 tensors installed twice, as a TF checkpoint (tf1) and as bryandlee's .pt
    (pytorch): each style's OpenVINO output is its own torch forward's, the second run included."""
    from animevid.weights.convert import bryandlee_names
    from animevid.weights.formats import load_weights
    from tests.reference_generators import write_v2_checkpoint

    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path / "cache"))
    checkpoint = tmp_path / "ckpt" / "Paprika-54.ckpt"
    checkpoint.parent.mkdir()
    write_v2_checkpoint(checkpoint, seed=11)
    ours = load_weights(checkpoint).state_dict
    torch.save({theirs: ours[name] for name, theirs in bryandlee_names().items()}, tmp_path / "same_values.pt")
    assert run_cli("styles", "add", "as-tf1", checkpoint).exit_code == 0
    assert run_cli("styles", "add", "as-pytorch", tmp_path / "same_values.pt", "--semantics", "pytorch").exit_code == 0

    photo = tmp_path / "photo.png"
    from animevid.imageio import read_image, write_image

    write_image(photo, make_image(48, 64, seed=5))
    outputs = {}
    for style in ("as-tf1", "as-pytorch"):  # in this order: the second must not get the first's conversion
        for engine in ("openvino", "torch"):
            outputs[style, engine] = tmp_path / f"{style}-{engine}.png"
            result = run_cli("stylize", photo, outputs[style, engine], "--style", style, "--engine", engine)
            assert result.exit_code == 0, result.output
    converted = sorted((tmp_path / "cache" / "openvino").glob("*.xml"))
    assert len(converted) == 2
    for style in ("as-tf1", "as-pytorch"):
        got, expected = read_image(outputs[style, "openvino"]), read_image(outputs[style, "torch"])
        assert mean_abs_diff(got, expected) <= 0.05 and max_abs_diff(got, expected) <= 1, style
    # The two semantics do differ here: a shared conversion would have shown.
    assert max_abs_diff(read_image(outputs["as-tf1", "torch"]), read_image(outputs["as-pytorch", "torch"])) > 1
