import json
import os
import pickle
import stat

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from animevid.weights import styles
from animevid.errors import UsageError, WeightsError
from animevid.imageio import read_image, write_image
from animevid.weights.formats import GeneratorWeights, build_generator, load_generator, load_weights, read_metadata, save_weights
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.reference_generators import (
    animegan_v2_bryandlee,
    random_bryandlee_state_dict,
    random_v2_tf_tensors,
    run_reference,
    write_bryandlee_state_dict,
    write_v2_checkpoint,
)
from tests.tf_writer import write_checkpoint


@pytest.fixture(scope="module")
def v2_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return build_generator("animegan-v2", "pytorch").state_dict()


def test_safetensors_round_trip_keeps_tensors_and_metadata(tmp_path, random_state_dict):
    weights = GeneratorWeights(random_state_dict, "animegan-v1", "tf1")
    path = save_weights(weights, tmp_path / "w.safetensors", style="kon", source="x", training={"epochs": 3}, extra={"sha256": "ab12"})
    metadata = read_metadata(path)
    assert {k: metadata[k] for k in ("format", "architecture", "semantics", "style", "source", "sha256")} == {
        "format": "animevid", "architecture": "animegan-v1", "semantics": "tf1", "style": "kon", "source": "x", "sha256": "ab12",
    }  # fmt: skip
    assert json.loads(metadata["training"]) == {"epochs": 3}
    loaded = load_weights(path)
    assert (loaded.architecture, loaded.semantics) == ("animegan-v1", "tf1")
    assert loaded.state_dict.keys() == random_state_dict.keys()
    assert all(torch.equal(loaded.state_dict[k], random_state_dict[k]) for k in random_state_dict)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_v2_weights_keep_their_semantics_through_a_file(tmp_path, v2_state_dict):
    path = save_weights(GeneratorWeights(v2_state_dict, "animegan-v2", "pytorch"), tmp_path / "face.safetensors")
    assert read_metadata(path)["semantics"] == "pytorch"
    generator = load_generator(path)
    assert generator.semantics == "pytorch" and not generator.training
    assert all(torch.equal(generator.state_dict()[k], v2_state_dict[k]) for k in v2_state_dict)
    with pytest.raises(UsageError, match="pytorch semantics; --semantics tf1 contradicts it"):
        load_weights(path, semantics="tf1")


def test_files_in_the_old_metadata_format_load_as_v1_tf1(tmp_path, random_state_dict):
    old = {"format": "animevid", "architecture": "animegan-v1-generator", "style": "hayao", "source": "s", "training": "{}"}
    save_file({k: v.contiguous() for k, v in random_state_dict.items()}, str(tmp_path / "old.safetensors"), metadata=old)
    weights = load_weights(tmp_path / "old.safetensors")
    assert (weights.architecture, weights.semantics) == ("animegan-v1", "tf1")
    assert torch.equal(weights.state_dict["out.weight"], random_state_dict["out.weight"])


def test_extra_metadata_cannot_replace_the_recorded_keys(tmp_path, random_state_dict):
    with pytest.raises(ValueError, match="semantics"):
        save_weights(GeneratorWeights(random_state_dict, "animegan-v1", "tf1"), tmp_path / "w.safetensors", extra={"semantics": "pytorch"})
    assert not list(tmp_path.iterdir())


def test_weights_are_checked_when_made(random_state_dict, v2_state_dict):
    with pytest.raises(WeightsError, match="animegan-v1 weights run with tf1 semantics, not 'pytorch'"):
        GeneratorWeights(random_state_dict, "animegan-v1", "pytorch")
    with pytest.raises(WeightsError, match=r"animegan-v2 generator: 76 missing .*128 unexpected .*out\.weight: \(3, 64, 1, 1\), expected \(3, 32, 1, 1\)"):
        GeneratorWeights(random_state_dict, "animegan-v2", "tf1")
    with pytest.raises(WeightsError, match="unknown generator architecture 'animegan-v3'"):
        GeneratorWeights(v2_state_dict, "animegan-v3", "tf1")


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {"generator": sd, "epoch": 3},
                                  lambda sd: {f"module.{k}": v for k, v in sd.items()}])  # fmt: skip
def test_torch_state_dicts_load_with_common_wrappings(tmp_path, random_state_dict, wrap):
    path = tmp_path / "g.pth"
    torch.save(wrap(dict(random_state_dict)), path)
    generator = load_generator(path)
    assert torch.equal(generator.out.weight, random_state_dict["out.weight"])
    assert not generator.training


def test_v1_runs_with_tf1_semantics_only(tmp_path, random_state_dict):
    torch.save(random_state_dict, tmp_path / "v1.pt")
    assert load_weights(tmp_path / "v1.pt", semantics="tf1").semantics == "tf1"
    with pytest.raises(UsageError, match="animegan-v1 weights with tf1 semantics; --semantics pytorch contradicts it"):
        load_weights(tmp_path / "v1.pt", semantics="pytorch")
    with pytest.raises(UsageError, match="unknown semantics 'tf2'"):
        load_weights(tmp_path / "v1.pt", semantics="tf2")


def test_v2_torch_files_under_our_names_need_their_semantics(tmp_path, v2_state_dict):
    torch.save(v2_state_dict, tmp_path / "mine.pt")
    with pytest.raises(WeightsError, match="unknown semantics for these animegan-v2 weights: pass --semantics tf1"):
        load_weights(tmp_path / "mine.pt")
    weights = load_weights(tmp_path / "mine.pt", semantics="pytorch")
    assert (weights.architecture, weights.semantics) == ("animegan-v2", "pytorch")


@pytest.mark.parametrize("name, semantics", [
    ("face_paint_512_v1.pt", "pytorch"), ("face_paint_512_v2.pt", "pytorch"), ("celeba_distill.pt", "pytorch"),
    ("paprika.pt", "tf1"), ("pytorch_generator_Hayao.pt", "tf1"),  # convert_weights.py's output naming
])  # fmt: skip
def test_bryandlee_files_are_known_by_name(tmp_path, name, semantics):
    write_bryandlee_state_dict(tmp_path / name)
    weights = load_weights(tmp_path / name)
    assert (weights.architecture, weights.semantics) == ("animegan-v2", semantics)
    other = "tf1" if semantics == "pytorch" else "pytorch"
    assert load_weights(tmp_path / name, semantics=other).semantics == other  # a name only suggests


def test_a_bryandlee_file_of_unknown_name_needs_its_semantics(tmp_path):
    write_bryandlee_state_dict(tmp_path / "my_anime.pt")
    with pytest.raises(WeightsError, match="my_anime.pt: unknown semantics .*--semantics pytorch"):
        load_weights(tmp_path / "my_anime.pt")
    assert load_weights(tmp_path / "my_anime.pt", semantics="pytorch").semantics == "pytorch"


@pytest.mark.parametrize("size", [(32, 24), (21, 30), (9, 13)])
def test_bryandlee_weights_compute_his_model(tmp_path, size):
    state = write_bryandlee_state_dict(tmp_path / "face_paint_512_v2.pt", seed=4)
    generator = load_generator(tmp_path / "face_paint_512_v2.pt")
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        ours = generator(x).double()
    torch.testing.assert_close(ours, run_reference(animegan_v2_bryandlee, state, x), rtol=0, atol=1e-5)


def bryandlee_convert(tf_tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TF v2 tensors renamed and laid out by the rules of bryandlee's convert_weights.py."""
    converted = {}
    for tf_name, array in tf_tensors.items():
        parts = tf_name.split("/")[2:]  # drop generator/G_MODEL
        block, leaf = parts[0], {"weights": "weight", "w": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}[parts[-1]]
        depthwise = len(parts) == 4 and parts[1] == parts[2]
        if block == "out_layer":
            name = "out_layer.0"
        elif len(parts) == 4:  # C/rN/<layer>/<leaf>
            layer = {"Conv": "0.1", "LayerNorm": "0.2", parts[1]: "1.1", "1": "1.2", "Conv_1": "2", "2": "3"}[parts[2]]
            name = f"block_c.{parts[1][1:]}.layers.{layer}"
        else:  # <block>/Conv[_n] or LayerNorm[_n]: Sequential index n, conv item 1, norm item 2
            kind, _, index = parts[1].partition("_")
            index = int(index or 0)
            if block == "C" and index == 1:
                index = 5  # C's last Conv-Block follows conv 0 and the four residual blocks
            name = f"block_{block.lower()}.{index}.{1 if kind == 'Conv' else 2}"
        tensor = torch.from_numpy(np.array(array))
        if tensor.dim() == 4:
            tensor = tensor.permute(2, 3, 0, 1) if depthwise else tensor.permute(3, 2, 0, 1)
        converted[f"{name}.{leaf}"] = tensor.contiguous()
    return converted


def test_a_bryandlee_conversion_of_a_tf_checkpoint_computes_the_checkpoint(tmp_path):
    tf_tensors = random_v2_tf_tensors(seed=6)
    write_checkpoint(tmp_path / "Paprika-54.ckpt", tf_tensors)
    converted = bryandlee_convert(tf_tensors)
    assert sorted(converted) == sorted(random_bryandlee_state_dict())
    torch.save(converted, tmp_path / "pytorch_generator_Paprika.pt")
    from_tf = load_weights(tmp_path / "Paprika-54.ckpt")
    from_pt = load_weights(tmp_path / "pytorch_generator_Paprika.pt")
    assert from_pt.semantics == from_tf.semantics == "tf1"
    assert all(torch.equal(from_pt.state_dict[k], from_tf.state_dict[k]) for k in from_tf.state_dict)


def test_bad_bryandlee_state_dicts_name_the_tensor(tmp_path):
    state = random_bryandlee_state_dict()
    del state["block_c.3.layers.1.1.bias"]
    torch.save(state, tmp_path / "paprika.pt")
    with pytest.raises(WeightsError, match=r"bryandlee's animegan2-pytorch generator: 1 missing \(e\.g\. block_c\.3\.layers\.1\.1\.bias\)"):
        load_weights(tmp_path / "paprika.pt")


class _Evil:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickled code ran')",))


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"out.weight": _Evil()}, handle, protocol=2)
    with pytest.raises(WeightsError, match="weights only"):
        load_weights(path)


def test_mismatched_weights_are_refused_with_details(tmp_path, random_state_dict):
    state = dict(random_state_dict)
    state["out.weight"] = torch.zeros(4, 64, 1, 1)
    del state["b1.conv1.conv.weight"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"animegan-v1 generator: 1 missing .*b1\.conv1.*1 of the wrong shape .*out\.weight"):
        load_weights(tmp_path / "bad.pt")


def test_foreign_tensors_are_refused(tmp_path):
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"architecture": "resnet50"})
    with pytest.raises(WeightsError, match="resnet50"):
        load_weights(tmp_path / "other.safetensors")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match=r"not hold AnimeGAN v1 or v2 generator weights \(it has e\.g\. fc\.weight\)"):
        load_weights(tmp_path / "other.pt")


@pytest.mark.parametrize("name, content, message", [
    ("missing.safetensors", None, "does not exist"),
    ("garbage.safetensors", b"\x00" * 64, "not a readable safetensors"),
    ("garbage.pt", b"not a zip", "weights only"),
    ("weights.h5", b"", "unknown weights format"),
])  # fmt: skip
def test_unreadable_weights_give_clear_errors(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(tmp_path / name)


def test_cli_takes_the_semantics_of_a_bryandlee_file(tmp_path):
    write_bryandlee_state_dict(tmp_path / "my_anime.pt")
    write_image(tmp_path / "photo.png", make_image(20, 28))
    out = tmp_path / "anime.png"
    assert_one_line_error(run_cli("stylize", tmp_path / "photo.png", out, "--weights", tmp_path / "my_anime.pt"), "--semantics")
    assert not out.exists()
    result = run_cli("stylize", tmp_path / "photo.png", out, "--weights", tmp_path / "my_anime.pt", "--semantics", "pytorch", "-q")
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert run_cli("styles", "add", "mine", tmp_path / "my_anime.pt", "--semantics", "pytorch").exit_code == 0
    assert read_metadata(styles.style_path("mine"))["semantics"] == "pytorch"
    assert_one_line_error(run_cli("styles", "add", "other", tmp_path / "my_anime.pt", "--semantics", "tf2"), "unknown semantics 'tf2'")


def test_cli_installs_and_runs_a_v2_tf_checkpoint(tmp_path):
    write_v2_checkpoint(tmp_path / "Paprika-54.ckpt")
    write_image(tmp_path / "photo.png", make_image(19, 26))
    assert run_cli("styles", "add", "paprika", tmp_path / "Paprika-54.ckpt.index").exit_code == 0
    metadata = read_metadata(styles.style_path("paprika"))
    assert (metadata["architecture"], metadata["semantics"]) == ("animegan-v2", "tf1")
    result = run_cli("stylize", tmp_path / "photo.png", tmp_path / "anime.png", "--style", "paprika", "-q")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "anime.png").shape == (19, 26, 3)
    contradicted = run_cli("stylize", tmp_path / "photo.png", tmp_path / "other.png", "--style", "paprika", "--semantics", "pytorch")
    assert_one_line_error(contradicted, "tf1 semantics; --semantics pytorch contradicts it")
