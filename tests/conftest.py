"""Shared fixtures: an isolated animevid home, the session's own temporary folder, random generator
weights, reference-data paths; and a check that the suite leaves nothing in the system temp folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import torch

from tests import CHECKOUT

REFERENCE_DIR = CHECKOUT.parent / "shared" / "reference" / "animegan-v1"


# -- temporary files: the session's own folder, and the system's left as it was ----------------------

SYSTEM_TEMP = Path(tempfile.gettempdir())  # read before the session moves it
# What this project's stack names the files it leaves in a temporary folder: Ray's state, a Ray
# task's scratch folder, torch.compile's cache, the session's own folder. A new entry of these names
# fails the session; any other new entry is listed as a warning (on a shared machine, another
# program may have written it) unless ANIMEVID_TESTS_TEMP_CHECK=strict (a machine of its own: CI).
OUR_TEMP_NAMES = ("ray", "animevid", "torchinductor_", "av-")
TEMP_CHECK = "ANIMEVID_TESTS_TEMP_CHECK"


@pytest.fixture(scope="session", autouse=True)
def session_temp(tmp_path_factory: pytest.TempPathFactory):
    """Every temporary file of the session and of the processes it starts goes to one folder, removed
    at the end: Ray's state (sockets, logs, the current-cluster file ``ray start`` writes), a killed
    Ray task's scratch folder, torch.compile's cache, the tests' own markers. Short (Ray's unix
    socket paths must stay under 107 bytes); pytest's ``tmp_path`` folders stay where pytest keeps them.
    No test joins a cluster of the developer's (``RAY_ADDRESS``)."""
    tmp_path_factory.getbasetemp()  # before TMPDIR moves: pytest keeps its last runs for inspection
    root = Path(tempfile.mkdtemp(prefix="av-"))
    settings = {"TMPDIR": str(root), "RAY_TMPDIR": str(root), "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor")}
    saved = {name: os.environ.get(name) for name in (*settings, "RAY_ADDRESS")}
    os.environ.update(settings)
    os.environ.pop("RAY_ADDRESS", None)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    try:
        yield root
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        tempfile.tempdir = None
        shutil.rmtree(root, ignore_errors=True)


def _system_temp_entries() -> set[str]:
    try:
        return {entry.name for entry in SYSTEM_TEMP.iterdir()}
    except OSError:
        return set()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _system_temp_entries()


_BEFORE = pytest.StashKey[set]()
_LEFT = pytest.StashKey[tuple]()


@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down (their folders removed)
def pytest_sessionfinish(session: pytest.Session) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    # pytest's own folder (pytest-of-USER) is pytest's to keep: it holds its last three runs
    new = sorted(name for name in _system_temp_entries() - before if not name.startswith("pytest-of-"))
    strict = os.environ.get(TEMP_CHECK) == "strict"
    ours = [name for name in new if strict or name.startswith(OUR_TEMP_NAMES)]
    session.config.stash[_LEFT] = (ours, [name for name in new if name not in ours])
    if ours and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    ours, others = config.stash.get(_LEFT, ([], []))
    if ours:
        terminalreporter.write_line(
            f"FAILED: the session left {len(ours)} entries in {SYSTEM_TEMP}: {', '.join(ours[:20])} "
            "(keep temporary files under the session's TMPDIR, see tests/conftest.py)", red=True,
        )  # fmt: skip
    if others:
        terminalreporter.write_line(
            f"warning: {len(others)} entries appeared in {SYSTEM_TEMP} during the session, maybe another program's: "
            f"{', '.join(others[:10])} ({TEMP_CHECK}=strict makes them a failure)", yellow=True,
        )  # fmt: skip


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


@pytest.fixture(autouse=True)
def auto_measures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--dtype auto`` offers no faster precision in tests, as on a CPU without native bf16: a test's
    pixels must not depend on the CPU it runs on. tests/engine/test_precision.py offers its own."""
    from animevid.engine import precision

    monkeypatch.setattr(precision, "candidates", lambda: ())


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
