import os
import pickle
import stat

import pytest
import torch

from animevid.errors import WeightsError
from animevid.weights import ARCHITECTURE, load_generator, load_state_dict, read_metadata, save_weights


def test_safetensors_round_trip_keeps_tensors_and_metadata(tmp_path, random_state_dict):
    path = save_weights(random_state_dict, tmp_path / "w.safetensors", style="kon", source="x", training={"epochs": 3})
    metadata = read_metadata(path)
    assert metadata["architecture"] == ARCHITECTURE and metadata["style"] == "kon" and metadata["source"] == "x"
    assert '"epochs": 3' in metadata["training"]
    loaded = load_state_dict(path)
    assert all(torch.equal(loaded[k], random_state_dict[k]) for k in random_state_dict)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {"generator": sd, "epoch": 3},
                                  lambda sd: {f"module.{k}": v for k, v in sd.items()}])  # fmt: skip
def test_torch_state_dicts_load_with_common_wrappings(tmp_path, random_state_dict, wrap):
    path = tmp_path / "g.pth"
    torch.save(wrap(dict(random_state_dict)), path)
    generator = load_generator(path)
    assert torch.equal(generator.out.weight, random_state_dict["out.weight"])
    assert not generator.training


class _Evil:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickled code ran')",))


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"out.weight": _Evil()}, handle, protocol=2)
    with pytest.raises(WeightsError, match="weights only"):
        load_state_dict(path)


def test_mismatched_weights_are_refused_with_details(tmp_path, random_state_dict):
    state = dict(random_state_dict)
    state["out.weight"] = torch.zeros(4, 64, 1, 1)
    del state["b1.conv1.conv.weight"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"1 missing .*b1\.conv1.*1 of the wrong shape .*out\.weight"):
        load_state_dict(tmp_path / "bad.pt")


def test_foreign_safetensors_architecture_is_refused(tmp_path, random_state_dict):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"architecture": "resnet50"})
    with pytest.raises(WeightsError, match="resnet50"):
        load_state_dict(tmp_path / "other.safetensors")


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
        load_state_dict(tmp_path / name)
