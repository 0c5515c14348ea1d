"""Tiny training inputs made on the fly: photo folders, style datasets, random VGG19 weight files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import make_image
from animevid.train.vgg import CONV_LAYERS


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Training steps are many small ops: on a small shared machine one thread is faster than two
    threads that wait for each other, and runs in a predictable time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Imported by the training test modules (autouse there)."""
    with single_thread():
        yield


def write_rgb(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def make_photos(folder: Path, count: int, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """``count`` textured RGB photos of (height, width) ``size``."""
    for index in range(count):
        write_rgb(folder / f"photo_{index:03d}.jpg", make_image(*size, seed=seed + index))
    return folder


def make_style_dataset(folder: Path, count: int, size: tuple[int, int] = (36, 36), seed: int = 100) -> Path:
    """The layout ``animevid extract-frames`` writes: style/, smooth/ (same names), manifest.jsonl."""
    for index in range(count):
        image = make_image(*size, seed=seed + index)
        write_rgb(folder / "style" / f"frame_{index:03d}.png", image)
        write_rgb(folder / "smooth" / f"frame_{index:03d}.png", cv2.GaussianBlur(image, (5, 5), 0))
    (folder / "manifest.jsonl").write_text('{"note": "ignored by training"}\n')
    return folder


def random_vgg_layers(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """He-initialized conv1_1 … conv4_4 as {name: (weight OIHW, bias)}, so features neither vanish nor explode."""
    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for name, cin, cout, _ in CONV_LAYERS:
        weight = torch.randn(cout, cin, 3, 3, generator=generator) * (2.0 / (9 * cin)) ** 0.5
        bias = torch.randn(cout, generator=generator) * 0.01
        layers[name] = (weight, bias)
    return layers


def write_torchvision_vgg(path: Path, seed: int = 0) -> Path:
    """A torchvision-layout VGG19 state dict (features.N.weight/bias) with random weights."""
    state = {}
    layers = random_vgg_layers(seed)
    for name, _, _, index in CONV_LAYERS:
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = layers[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_caffe_npy_vgg(path: Path, seed: int = 0) -> Path:
    """The authors' vgg19.npy layout: {layer: [weight HWIO, bias]} pickled in a numpy object array."""
    layers = {
        name: [weight.permute(2, 3, 1, 0).numpy().copy(), bias.numpy().copy()]  # OIHW → HWIO
        for name, (weight, bias) in random_vgg_layers(seed).items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, layers, allow_pickle=True)
    return path
