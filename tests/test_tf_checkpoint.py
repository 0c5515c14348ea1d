import shutil

import numpy as np
import pytest
import torch

from animevid.convert import load_tf_checkpoint, official_variable_names, tf_to_torch_layout
from animevid.errors import CheckpointError, WeightsError
from animevid.models import AnimeGANGenerator
from animevid.tf_checkpoint import read_checkpoint, read_index
from animevid.weights import load_state_dict
from tests.tf_meta import read_graph_nodes
from tests.tf_writer import synthetic_data_for_index, write_checkpoint


def torch_to_tf(name: str, tensor: torch.Tensor) -> np.ndarray:
    array = tensor.numpy()
    if array.ndim == 1:
        return array.copy()
    if name.endswith("depthwise.weight"):
        return np.ascontiguousarray(array.transpose(2, 3, 0, 1))  # (C, 1, H, W) -> (H, W, C, 1)
    return np.ascontiguousarray(array.transpose(2, 3, 1, 0))  # OIHW -> HWIO


def official_tensors(state_dict) -> dict[str, np.ndarray]:
    return {tf: torch_to_tf(pt, state_dict[pt]) for pt, tf in official_variable_names().items()}


def test_official_index_lists_the_papers_parameters(reference_dir):
    entries = read_index(reference_dir / "Hayao-60.ckpt.index")
    assert len(entries) == 129
    assert sum(e.numel for e in entries.values()) == 3_956_096
    assert all(e.dtype == np.float32 and e.size == e.numel * 4 for e in entries.values())


def test_every_generator_parameter_maps_to_one_official_variable(reference_dir):
    entries = read_index(reference_dir / "Hayao-60.ckpt.index")
    mapping = official_variable_names()
    state = AnimeGANGenerator().state_dict()
    assert set(mapping) == set(state)
    assert sorted(mapping.values()) == sorted(entries)  # one-to-one, nothing left over
    for torch_name, tf_name in mapping.items():
        converted = tf_to_torch_layout(torch_name, np.zeros(entries[tf_name].shape, np.float32))
        assert converted.shape == tuple(state[torch_name].shape), torch_name


def test_synthetic_data_at_official_offsets_imports_exactly(reference_dir, tmp_path):
    prefix = tmp_path / "Hayao-60.ckpt"
    shutil.copy(reference_dir / "Hayao-60.ckpt.index", f"{prefix}.index")
    source = synthetic_data_for_index(reference_dir / "Hayao-60.ckpt.index", tmp_path / "Hayao-60.ckpt.data-00000-of-00001")
    state = load_tf_checkpoint(prefix)
    mapping = official_variable_names()
    for torch_name, tensor in state.items():
        assert np.array_equal(torch_to_tf(torch_name, tensor), source[mapping[torch_name]]), torch_name
    AnimeGANGenerator().load_state_dict(state)


def test_checkpoint_written_from_a_state_dict_round_trips(tmp_path, random_state_dict):
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, official_tensors(random_state_dict))
    for source in (prefix, f"{prefix}.index", f"{prefix}.data-00000-of-00001"):
        state = load_state_dict(source)
        assert all(torch.equal(state[k], random_state_dict[k]) for k in random_state_dict)


def test_imported_model_computes_the_same_function(tmp_path, random_state_dict):
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, official_tensors(random_state_dict))
    original, imported = AnimeGANGenerator().eval(), AnimeGANGenerator().eval()
    original.load_state_dict(random_state_dict)
    imported.load_state_dict(load_tf_checkpoint(prefix))
    x = torch.rand(1, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        assert torch.equal(original(x), imported(x))


def test_depthwise_layout_keeps_channels_apart():
    kernel = np.arange(3 * 3 * 4, dtype=np.float32).reshape(3, 3, 4, 1)  # (H, W, C, 1)
    converted = tf_to_torch_layout("m.blocks.0.depthwise.weight", kernel)
    assert converted.shape == (4, 1, 3, 3)
    for channel in range(4):
        assert np.array_equal(converted[channel, 0], kernel[:, :, channel, 0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("generator/G_MODEL/m/r3/r3/w"), "missing"),
        (lambda t: t.update({"generator/G_MODEL/extra/weights": np.zeros(3, np.float32)}), "unexpected"),
        (lambda t: t.update({"generator/G_MODEL/Conv/weights": np.zeros((1, 1, 64, 4), np.float32)}), "shape"),
    ],
)
def test_bad_checkpoints_are_refused_clearly(tmp_path, random_state_dict, change, message):
    tensors = official_tensors(random_state_dict)
    change(tensors)
    prefix = tmp_path / "bad.ckpt"
    write_checkpoint(prefix, tensors)
    with pytest.raises(CheckpointError, match=message):
        load_tf_checkpoint(prefix)


def test_truncated_data_and_garbage_index_are_refused(tmp_path, random_state_dict):
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, official_tensors(random_state_dict))
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(prefix)
    (tmp_path / "model.ckpt.index").write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint"):
        read_checkpoint(prefix)
    (tmp_path / "lonely.ckpt.index").write_bytes(b"x")
    with pytest.raises(WeightsError, match="no data file"):
        load_state_dict(tmp_path / "lonely.ckpt")


def test_official_graph_resizes_without_half_pixel_centres(reference_dir):
    nodes = read_graph_nodes(reference_dir / "Hayao-60.ckpt.meta")
    resizes = [n for n in nodes.values() if n.op == "ResizeBilinear"]
    assert len(resizes) == 4
    for node in resizes:
        assert node.attrs["align_corners"] is False and node.attrs["half_pixel_centers"] is False


def test_official_graph_epsilons_and_strides_match_the_model(reference_dir):
    nodes = read_graph_nodes(reference_dir / "Hayao-60.ckpt.meta")
    generator = AnimeGANGenerator()
    modules = dict(generator.named_modules())
    for torch_name, tf_name in official_variable_names().items():
        if torch_name.endswith("norm.weight"):
            scope = tf_name.removesuffix("/gamma")
            epsilon = nodes[f"{scope}/instancenorm/add/y"].attrs["value"]
            assert modules[torch_name.removesuffix(".weight")].eps == pytest.approx(epsilon, rel=1e-6), torch_name
        if torch_name.endswith("depthwise.weight") and "blocks" not in torch_name:
            scope = tf_name.removesuffix("/depthwise_weights")
            stride = nodes[f"{scope}/separable_conv2d/depthwise"].attrs["strides"][1]
            assert modules[torch_name.removesuffix(".weight")].stride == (stride, stride), torch_name
