"""Shared fixtures: an isolated animevid home, random generator weights, reference-data paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import torch

from tests import CHECKOUT

REFERENCE_DIR = CHECKOUT.parent / "shared" / "reference" / "animegan-v1"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("animevid_cache")


@pytest.fixture(autouse=True)
def animevid_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """Every test gets its own empty ANIMEVID_HOME and no mirror, so nothing touches the user's data.

    The engines' cache (ANIMEVID_CACHE) is shared by the whole session: converting a generator for
    OpenVINO takes about 15 s, and most tests use the same random weights. Tests of the cache itself
    point ANIMEVID_CACHE at a folder of their own.
    """
    home = tmp_path_factory.mktemp("animevid_home")
    monkeypatch.setenv("ANIMEVID_HOME", str(home))
    monkeypatch.setenv("ANIMEVID_CACHE", str(shared_cache))
    monkeypatch.delenv("ANIMEVID_MIRROR", raising=False)
    return home


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a machine shared with other jobs, OpenMP threads waiting on each
    other make small convolutions many times slower; one thread keeps the time steady (and gives
    the same bits as a subprocess run with OMP_NUM_THREADS=1)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_generator_weights(seed: int, architecture: str = "animegan-v1", semantics: str = "tf1"):
    """Seeded random :class:`animevid.weights.formats.GeneratorWeights` (see :func:`animevid.weights.formats.random_weights`)."""
    from animevid.weights.formats import random_weights

    return random_weights(architecture, semantics, seed=seed)


@pytest.fixture(scope="session")
def random_state_dict() -> dict[str, torch.Tensor]:
    return random_generator_weights(0).state_dict


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory, random_state_dict) -> Path:
    """A safetensors file with random (but valid) generator weights."""
    from animevid.weights.formats import GeneratorWeights, save_weights

    path = tmp_path_factory.mktemp("weights") / "random.safetensors"
    return save_weights(GeneratorWeights(random_state_dict, "animegan-v1", "tf1"), path, style="random", source="tests")


@pytest.fixture
def reference_dir() -> Path:
    """The official Hayao-60 index and graph (shared reference data); skip when absent."""
    if not (REFERENCE_DIR / "Hayao-60.ckpt.index").is_file():
        pytest.skip("shared reference data (../shared/reference/animegan-v1) is not available")
    return REFERENCE_DIR


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful RGB uint8 test image with some texture."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [127 + 100 * np.sin(xs / 7 + seed), 127 + 100 * np.cos(ys / 5), 127 + 60 * np.sin((xs + ys) / 11)], axis=-1
    )
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
