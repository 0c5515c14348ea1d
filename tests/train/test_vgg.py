"""VGG19 up to conv4_4 (before ReLU) from both weight formats, with their preprocessing; bad files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animevid.errors import WeightsError
from tests.train_helpers import one_thread, write_caffe_npy_vgg, write_torchvision_vgg  # noqa: F401
from animevid.train.vgg import CONV_LAYERS, load_vgg19


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vgg")
    return {"torchvision": write_torchvision_vgg(folder / "vgg19.pth", seed=1), "caffe": write_caffe_npy_vgg(folder / "vgg19.npy", seed=2)}


def _reference_conv4_4(x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]], ceil_mode: bool) -> torch.Tensor:
    """VGG19's first 12 convs written out independently of animevid.train.vgg (pools after conv1_2, 2_2, 3_4)."""
    pool_after = {1, 3, 7}
    for index, (weight, bias) in enumerate(layers):
        x = F.conv2d(x, weight, bias, padding=1)
        if index == len(layers) - 1:
            return x
        x = F.relu(x)
        if index in pool_after:
            x = F.max_pool2d(x, 2, ceil_mode=ceil_mode)
    raise AssertionError("unreachable")


def test_torchvision_weights_use_imagenet_normalization(vgg_files):
    state = torch.load(vgg_files["torchvision"], weights_only=True)
    layers = [(state[f"features.{i}.weight"], state[f"features.{i}.bias"]) for _, _, _, i in CONV_LAYERS]
    vgg = load_vgg19(vgg_files["torchvision"])
    images = torch.rand(2, 3, 32, 40) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = _reference_conv4_4(((images + 1) / 2 - mean) / std, layers, ceil_mode=False)
    features = vgg(images)
    assert features.shape == (2, 512, 4, 5)
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-4)
    assert (features < 0).any(), "conv4_4 must be taken before its ReLU"


def test_authors_npy_weights_use_caffe_bgr_preprocessing_and_same_pooling(vgg_files):
    with open(vgg_files["caffe"], "rb") as handle:  # the test's own reading, trusted file
        raw = np.load(handle, allow_pickle=True).item()
    layers = [
        (torch.from_numpy(raw[name][0].transpose(3, 2, 0, 1).copy()), torch.from_numpy(raw[name][1])) for name, _, _, _ in CONV_LAYERS
    ]
    vgg = load_vgg19(vgg_files["caffe"])
    images = torch.rand(2, 3, 36, 36) * 2 - 1
    bgr255 = ((images + 1) * 127.5).flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = _reference_conv4_4(bgr255, layers, ceil_mode=True)
    features = vgg(images)
    assert features.shape == (2, 512, 5, 5)  # 36 → 18 → 9 → 5: TF "SAME" pooling rounds up
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-3)


def test_vgg_is_frozen_but_passes_gradients_to_its_input(vgg_files):
    vgg = load_vgg19(vgg_files["torchvision"])
    assert not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    images = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_(True)
    vgg(images).abs().mean().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_vgg19(tmp_path / "vgg19.pth")


def test_torchvision_file_missing_or_misshapen_layers(tmp_path, vgg_files):
    state = torch.load(vgg_files["torchvision"], weights_only=True)
    missing = dict(state)
    del missing["features.25.weight"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match=r"features\.25\.weight \(conv4_4\) is missing"):
        load_vgg19(tmp_path / "missing.pth")
    misshapen = dict(state)
    misshapen["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(misshapen, tmp_path / "misshapen.pth")
    with pytest.raises(WeightsError, match=r"features\.0\.weight \(conv1_1\) has shape \(64, 1, 3, 3\), expected \(64, 3, 3, 3\)"):
        load_vgg19(tmp_path / "misshapen.pth")


def test_npy_file_missing_or_misshapen_layers(tmp_path, vgg_files):
    raw = np.load(vgg_files["caffe"], allow_pickle=True).item()
    without = {name: value for name, value in raw.items() if name != "conv3_2"}
    np.save(tmp_path / "missing.npy", without, allow_pickle=True)
    with pytest.raises(WeightsError, match="layer conv3_2 is missing"):
        load_vgg19(tmp_path / "missing.npy")
    transposed = dict(raw, conv1_1=[raw["conv1_1"][0].transpose(3, 2, 0, 1), raw["conv1_1"][1]])  # OIHW, not HWIO
    np.save(tmp_path / "misshapen.npy", transposed, allow_pickle=True)
    with pytest.raises(WeightsError, match="conv1_1 weight has shape"):
        load_vgg19(tmp_path / "misshapen.npy")
    np.save(tmp_path / "plain.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(WeightsError, match="plain float32 array"):
        load_vgg19(tmp_path / "plain.npy")


class _RunsCode:
    """An object whose unpickling would call os.system: what a malicious weights file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_npy_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    np.save(path, {"conv1_1": _RunsCode(marker)}, allow_pickle=True)
    with pytest.raises(WeightsError, match="refusing to load posix.system|refusing to load os.system|refusing to load nt.system"):
        load_vgg19(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_files_are_weights_errors(tmp_path, random_weights):
    garbage = tmp_path / "vgg19.pth"
    garbage.write_bytes(b"not a weights file at all")
    with pytest.raises(WeightsError, match="neither the authors' vgg19.npy nor a torch state dict"):
        load_vgg19(garbage)
    with pytest.raises(WeightsError, match="is not torchvision's VGG19 state dict"):
        load_vgg19(random_weights)  # an AnimeGAN generator, not a VGG
    pickled_module = tmp_path / "module.pth"
    with pickled_module.open("wb") as handle:
        pickle.dump({"features.0.weight": _RunsCode(tmp_path / "pwned")}, handle)
    with pytest.raises(WeightsError):
        load_vgg19(pickled_module)
    assert not (tmp_path / "pwned").exists()
