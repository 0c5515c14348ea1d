"""ONNX export: one size-independent graph that ONNX Runtime runs like the torch forward at any size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from animevid.engine.onnx_export import INPUT_NAME, OUTPUT_NAME, onnx_model_bytes, weights_digest
from animevid.models import AnimeGANGenerator
from animevid.models.resize import tf1_resize_bilinear
from tests.clitools import assert_one_line_error, run_cli

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")


def lsb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differences on the uint8 scale the product writes ([-1, 1] spans 255 levels)."""
    return np.abs(a.astype(np.float64) - b.astype(np.float64)) * 127.5


@pytest.fixture(scope="module")
def generator(random_state_dict) -> AnimeGANGenerator:
    model = AnimeGANGenerator()
    model.load_state_dict(random_state_dict)
    return model.eval()


@pytest.fixture(scope="module")
def exported(generator) -> bytes:
    return onnx_model_bytes(generator)


@pytest.fixture(scope="module")
def session(exported):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(exported, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("shape", [(1, 3, 64, 80), (1, 3, 45, 61), (2, 3, 33, 47), (1, 3, 9, 13), (1, 3, 130, 97), (3, 3, 16, 100)])
def test_onnx_runtime_matches_the_torch_forward_at_any_size(generator, session, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1
    with torch.no_grad():
        expected = generator(x).numpy()
    (got,) = session.run(None, {INPUT_NAME: x.numpy()})
    assert got.shape == expected.shape == shape
    difference = lsb(got, expected)
    assert difference.mean() <= 0.05 and difference.max() <= 1.0


@pytest.mark.parametrize("semantics", ["tf1", "pytorch"])
def test_the_v2_generator_exports_too(semantics):
    ort = pytest.importorskip("onnxruntime")
    from animevid.models import AnimeGANv2Generator

    torch.manual_seed(1)
    generator = AnimeGANv2Generator(semantics).eval()
    session = ort.InferenceSession(onnx_model_bytes(generator), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 37, 53), (2, 3, 64, 48)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[2])) * 2 - 1
        with torch.no_grad():
            expected = generator(x).numpy()
        (got,) = session.run(None, {INPUT_NAME: x.numpy()})
        assert got.shape == expected.shape
        assert lsb(got, expected).mean() <= 0.05 and lsb(got, expected).max() <= 1.0


def test_graph_is_size_independent_with_asymmetric_linear_resizes(exported):
    model = onnx.load_from_string(exported)
    resizes = [node for node in model.graph.node if node.op_type == "Resize"]
    assert len(resizes) == 4  # two Down-Convs, two Up-Convs
    for node in resizes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["mode"] == b"linear" and attributes["coordinate_transformation_mode"] == b"asymmetric"
    (image,), (anime,) = model.graph.input, model.graph.output
    assert (image.name, anime.name) == (INPUT_NAME, OUTPUT_NAME)
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_metadata_names_the_weights(exported, generator):
    metadata = {p.key: p.value for p in onnx.load_from_string(exported).metadata_props}
    assert metadata["weights_sha256"] == weights_digest(generator)
    assert metadata["architecture"] == "AnimeGANGenerator" and metadata["input_range"] == "[-1, 1]"


def test_weights_digest_changes_with_any_weight(generator):
    changed = AnimeGANGenerator()
    changed.load_state_dict(generator.state_dict())
    with torch.no_grad():
        changed.out.weight[0, 0, 0, 0] += 1e-3
    assert weights_digest(changed) != weights_digest(generator)
    assert weights_digest(generator) == weights_digest(generator)


class _Resize(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tf1_resize_bilinear(x, (x.shape[2] * 2, x.shape[3] // 2))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.export internals
def test_exported_resize_is_tf1s_mapping_by_hand():
    ort = pytest.importorskip("onnxruntime")
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]).view(1, 1, 2, 4)
    program = torch.onnx.export(
        _Resize().eval(), (x,), dynamo=True, input_names=["x"],
        dynamic_shapes=({2: torch.export.Dim("h", min=2), 3: torch.export.Dim("w", min=2)},),
    )  # fmt: skip
    session = ort.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    # Rows doubled: out[d] = in[d / 2] (odd d between neighbours, the last clamped); columns
    # halved: out[d] = in[2 d] (a pick, no averaging). Hand-computed, no half-pixel centres.
    expected = np.array([[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [4.0, 6.0]], np.float32)
    (got,) = session.run(None, {"x": x.numpy()})
    assert np.array_equal(got[0, 0], expected)
    bigger = np.arange(3 * 6, dtype=np.float32).reshape(1, 1, 3, 6)  # another size, same graph
    (got,) = session.run(None, {"x": bigger})
    rows = np.array([0, 0.5, 1, 1.5, 2, 2])  # source row of each output row, clamped at the end
    expected = np.stack([np.interp(rows, [0, 1, 2], bigger[0, 0, :, c]) for c in (0, 2, 4)], axis=1)
    assert np.allclose(got[0, 0], expected)


def test_cli_export_writes_an_onnx_file_and_refuses_to_overwrite(tmp_path, random_weights):
    out = tmp_path / "model.onnx"
    result = run_cli("export", out, "--weights", random_weights)
    assert result.exit_code == 0, result.output
    assert onnx.load(str(out)).graph.input[0].name == INPUT_NAME
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    assert_one_line_error(run_cli("export", out, "--weights", random_weights), "already exists", "--overwrite")
    assert run_cli("export", out, "--weights", random_weights, "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    ("make_args", "fragments"),
    [
        (lambda d, w: ["export", d / "model.onnx"], ["exactly one of --style"]),
        (lambda d, w: ["export", d / "model.onnx", "--weights", w, "--style", "hayao"], ["exactly one"]),
        (lambda d, w: ["export", d / "model.pt", "--weights", w], ["must be an .onnx file"]),
        (lambda d, w: ["export", d / "missing" / "model.onnx", "--weights", w], ["does not exist"]),
        (lambda d, w: ["export", d / "model.onnx", "--weights", d / "nothing.safetensors"], ["does not exist"]),
    ],
)
def test_cli_export_bad_input_is_one_line(tmp_path, random_weights, make_args, fragments):
    assert_one_line_error(run_cli(*make_args(tmp_path, random_weights)), *fragments)
    assert list(tmp_path.iterdir()) == []



def test_the_function_digest_tells_semantics_apart_where_the_tensors_cannot():
    from animevid.engine.onnx_export import function_digest
    from animevid.weights.formats import GeneratorWeights, random_weights

    weights = random_weights("animegan-v2", "tf1", seed=4)
    tf1 = weights.generator()
    pytorch = GeneratorWeights(weights.state_dict, "animegan-v2", "pytorch").generator()
    assert weights_digest(tf1) == weights_digest(pytorch)  # the same tensors...
    assert function_digest(tf1) != function_digest(pytorch)  # ...computing two functions
    assert function_digest(tf1) == function_digest(weights.generator())


def test_the_function_digest_covers_plain_attributes_and_tensors():
    from animevid.engine.onnx_export import function_digest

    def norm(eps: float, seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.GroupNorm(1, 3, eps=eps))

    assert function_digest(norm(1e-5)) == function_digest(norm(1e-5))
    assert function_digest(norm(1e-5)) != function_digest(norm(1e-12))  # an attribute, not a tensor
    assert function_digest(norm(1e-5)) != function_digest(norm(1e-5, seed=1))  # a tensor


def test_the_function_digest_changes_with_the_export_format(monkeypatch):
    """A new way of exporting the same network (v2's norms as MVN-shaped formulas) must not reuse
    conversions cached from the old graph."""
    from animevid.engine import onnx_export

    network = torch.nn.Conv2d(3, 3, 1)
    before = onnx_export.function_digest(network)
    monkeypatch.setattr(onnx_export, "EXPORT_FORMAT", onnx_export.EXPORT_FORMAT - 1)
    assert onnx_export.function_digest(network) != before
