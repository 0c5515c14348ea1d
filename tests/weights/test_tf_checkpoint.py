import shutil

import numpy as np
import pytest
import torch

from animevid.weights.convert import load_tf_checkpoint, reference_shapes, tf_to_torch_layout, tf_variable_names
from animevid.errors import CheckpointError, UsageError, WeightsError
from animevid.models import AnimeGANGenerator
from animevid.weights.tf_checkpoint import read_checkpoint, read_index
from animevid.weights.formats import load_generator, load_weights
from tests.reference_generators import (
    animegan_v1_tf,
    animegan_v2_tf,
    random_v1_tf_tensors,
    random_v2_tf_tensors,
    run_reference,
    write_v2_checkpoint,
)
from tests.tf_meta import read_graph_nodes
from tests.tf_writer import synthetic_data_for_index, write_checkpoint

REFERENCES = {"animegan-v1": (random_v1_tf_tensors, animegan_v1_tf), "animegan-v2": (random_v2_tf_tensors, animegan_v2_tf)}


def assert_computes_the_reference(generator: torch.nn.Module, forward, tensors, size=(16, 20)) -> None:
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        ours = generator(x).double()
    torch.testing.assert_close(ours, run_reference(forward, tensors, x), rtol=0, atol=1e-4)


def test_official_index_lists_the_papers_parameters_with_checksums(reference_dir):
    entries = read_index(reference_dir / "Hayao-60.ckpt.index")  # its block CRCs are verified on reading
    assert len(entries) == 129
    assert sum(e.numel for e in entries.values()) == 3_956_096
    assert all(e.dtype == np.float32 and e.size == e.numel * 4 for e in entries.values())
    assert len({e.crc32c for e in entries.values()}) == 129  # one real checksum per tensor


def test_the_rederived_v1_scopes_name_the_official_variables(reference_dir):
    # Validates the test's own re-derivation of the authors' scopes against the real index.
    entries = read_index(reference_dir / "Hayao-60.ckpt.index")
    tensors = random_v1_tf_tensors()
    assert sorted(tensors) == sorted(entries)
    assert all(tensors[name].shape == entries[name].shape for name in entries)


@pytest.mark.parametrize("architecture", ["animegan-v1", "animegan-v2"])
def test_every_parameter_maps_to_one_official_variable(architecture):
    mapping = tf_variable_names(architecture)
    official = REFERENCES[architecture][0]()  # names from the authors' scopes, re-derived in the test
    state = reference_shapes(architecture)
    assert set(mapping) == set(state)  # every parameter is mapped ...
    assert len(set(mapping.values())) == len(mapping)  # ... to its own variable ...
    assert sorted(mapping.values()) == sorted(official)  # ... and every official variable is used
    assert len(mapping) == {"animegan-v1": 129, "animegan-v2": 77}[architecture]
    for torch_name, tf_name in mapping.items():
        assert tf_to_torch_layout(torch_name, official[tf_name]).shape == state[torch_name], torch_name


@pytest.mark.parametrize("architecture", ["animegan-v1", "animegan-v2"])
def test_imported_checkpoint_computes_the_authors_graph(tmp_path, architecture):
    random_tensors, forward = REFERENCES[architecture]
    tensors = random_tensors(seed=5)
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, tensors)
    for source in (prefix, f"{prefix}.index", f"{prefix}.data-00000-of-00001"):
        weights = load_weights(source)
        assert (weights.architecture, weights.semantics) == (architecture, "tf1")
    generator = load_generator(prefix)
    assert not generator.training
    assert_computes_the_reference(generator, forward, tensors)


def test_v2_checkpoint_helper_writes_the_official_naming(tmp_path):
    tensors = write_v2_checkpoint(tmp_path / "Paprika-54.ckpt", seed=2)
    entries = read_index(tmp_path / "Paprika-54.ckpt.index")
    assert len(entries) == 77 and "generator/G_MODEL/C/r1/r1/bias" in entries
    assert_computes_the_reference(load_generator(tmp_path / "Paprika-54.ckpt"), animegan_v2_tf, tensors, size=(12, 8))


def test_synthetic_data_at_official_offsets_imports_exactly(reference_dir, tmp_path):
    prefix = tmp_path / "Hayao-60.ckpt"
    shutil.copy(reference_dir / "Hayao-60.ckpt.index", f"{prefix}.index")
    source = synthetic_data_for_index(reference_dir / "Hayao-60.ckpt.index", tmp_path / "Hayao-60.ckpt.data-00000-of-00001")
    assert read_checkpoint(prefix).keys() == source.keys()  # the real CRCs check out
    assert_computes_the_reference(load_generator(prefix), animegan_v1_tf, source)


def test_depthwise_layout_keeps_channels_apart():
    kernel = np.arange(3 * 3 * 4, dtype=np.float32).reshape(3, 3, 4, 1)  # (H, W, C, 1)
    converted = tf_to_torch_layout("m.blocks.0.depthwise.weight", kernel)
    assert converted.shape == (4, 1, 3, 3)
    for channel in range(4):
        assert np.array_equal(converted[channel, 0], kernel[:, :, channel, 0])


def test_conv_layout_is_hwio_to_oihw():
    kernel = np.arange(3 * 3 * 2 * 5, dtype=np.float32).reshape(3, 3, 2, 5)  # (H, W, in, out)
    converted = tf_to_torch_layout("a.conv1.conv.weight", kernel)
    assert converted.shape == (5, 2, 3, 3)
    assert converted[4, 1, 2, 0] == kernel[2, 0, 1, 4]


G = "generator/G_MODEL/"


@pytest.mark.parametrize(
    "architecture, change, message",
    [
        ("animegan-v1", lambda t: t.pop(G + "m/r3/r3/w"), r"animegan-v1 generator: 1 missing \(e\.g\. generator/G_MODEL/m/r3/r3/w\)"),
        ("animegan-v1", lambda t: t.update({G + "extra/weights": np.zeros(3, np.float32)}), "1 unexpected .*extra/weights"),
        ("animegan-v1", lambda t: t.update({G + "Conv/weights": np.zeros((1, 1, 64, 4), np.float32)}), r"wrong shape .*Conv/weights: \(1, 1, 64, 4\)"),
        ("animegan-v2", lambda t: t.pop(G + "C/r2/r2/bias"), r"animegan-v2 generator: 1 missing \(e\.g\. generator/G_MODEL/C/r2/r2/bias\)"),
        ("animegan-v2", lambda t: t.update({G + "C/r5/r5/w": np.zeros((3, 3, 512, 1), np.float32)}), "1 unexpected .*C/r5/r5/w"),
        ("animegan-v2", lambda t: t.update({G + "E/Conv_2/weights": np.zeros((3, 3, 64, 32), np.float32)}), r"wrong shape .*E/Conv_2/weights"),
    ],
)  # fmt: skip
def test_bad_checkpoints_are_refused_naming_the_tensor(tmp_path, architecture, change, message):
    tensors = REFERENCES[architecture][0]()
    change(tensors)
    prefix = tmp_path / "bad.ckpt"
    write_checkpoint(prefix, tensors)
    with pytest.raises(CheckpointError, match=message):
        load_tf_checkpoint(prefix)


def test_a_checkpoint_of_something_else_is_refused(tmp_path):
    write_checkpoint(tmp_path / "resnet.ckpt", {"resnet/conv1/kernel": np.zeros((7, 7, 3, 64), np.float32)})
    with pytest.raises(CheckpointError, match="not an AnimeGAN v1 or v2 generator .*resnet/conv1/kernel"):
        load_tf_checkpoint(tmp_path / "resnet.ckpt")


@pytest.mark.parametrize("architecture, victim", [("animegan-v1", "generator/G_MODEL/m/r4/Conv_1/weights"),
                                                  ("animegan-v2", "generator/G_MODEL/C/r1/r1/bias")])  # fmt: skip
def test_a_corrupted_byte_in_the_data_is_refused_naming_the_tensor(tmp_path, architecture, victim):
    tensors = REFERENCES[architecture][0]()
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, tensors)
    entry = read_index(f"{prefix}.index")[victim]
    data_path = tmp_path / "model.ckpt.data-00000-of-00001"
    data = bytearray(data_path.read_bytes())
    data[entry.offset + entry.size // 2] ^= 0x01  # one flipped bit in the middle of that tensor
    data_path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"corrupted: tensor '{victim}' fails its CRC32C check"):
        load_weights(prefix)


def test_a_corrupted_index_block_is_refused(tmp_path):
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, random_v2_tf_tensors())
    index_path = tmp_path / "model.ckpt.index"
    table = bytearray(index_path.read_bytes())
    position = table.index(b"G_MODEL")  # in the first key, in the first data block
    table[position] ^= 0x20
    index_path.write_bytes(bytes(table))
    with pytest.raises(CheckpointError, match="index is corrupted: the block at byte 0 fails its CRC32C check"):
        read_index(index_path)


def test_tf_checkpoints_run_with_tf1_semantics_only(tmp_path):
    write_v2_checkpoint(tmp_path / "v2.ckpt")
    assert load_weights(tmp_path / "v2.ckpt", semantics="tf1").semantics == "tf1"
    with pytest.raises(UsageError, match="tf1 semantics; --semantics pytorch contradicts it"):
        load_weights(tmp_path / "v2.ckpt", semantics="pytorch")


def test_truncated_data_and_garbage_index_are_refused(tmp_path):
    prefix = tmp_path / "model.ckpt"
    write_checkpoint(prefix, random_v1_tf_tensors())
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(prefix)
    (tmp_path / "model.ckpt.index").write_bytes(b"not a table" * 10)
    with pytest.raises(CheckpointError, match="not a TensorFlow checkpoint"):
        read_checkpoint(prefix)
    (tmp_path / "lonely.ckpt.index").write_bytes(b"x")
    with pytest.raises(WeightsError, match="no data file"):
        load_weights(tmp_path / "lonely.ckpt")


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
    for torch_name, tf_name in tf_variable_names("animegan-v1").items():
        if torch_name.endswith("norm.weight"):
            scope = tf_name.removesuffix("/gamma")
            epsilon = nodes[f"{scope}/instancenorm/add/y"].attrs["value"]
            assert modules[torch_name.removesuffix(".weight")].eps == pytest.approx(epsilon, rel=1e-6), torch_name
        if torch_name.endswith("depthwise.weight") and "blocks" not in torch_name:
            scope = tf_name.removesuffix("/depthwise_weights")
            stride = nodes[f"{scope}/separable_conv2d/depthwise"].attrs["strides"][1]
            assert modules[torch_name.removesuffix(".weight")].stride == (stride, stride), torch_name
