"""What a plain ``pip install`` gives: a headless OpenCV, and the training code under ``animevid``.

These run in the environment the tests run in, which CI makes with exactly the README's set-up.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import CHECKOUT



def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_opencv_is_the_headless_build_alone():
    # opencv-python (the GUI build) shares cv2's files with the headless build and needs libGL:
    # nothing we depend on may pull it in.
    assert _installed("opencv-python-headless")
    assert not _installed("opencv-python"), "opencv-python (GUI build) was installed by a dependency"
    requirements = importlib.metadata.requires("scenedetect-headless") or []
    names = {re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower() for requirement in requirements}
    assert "opencv-python-headless" in names and "opencv-python" not in names


def _run_elsewhere(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` with ``tmp_path`` as the working directory (first on sys.path), outside the checkout."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1"},
    )  # fmt: skip


def test_cv2_and_scenedetect_import_in_a_fresh_process(tmp_path):
    result = _run_elsewhere(tmp_path, "import cv2, scenedetect; print(cv2.__file__)")
    assert result.returncode == 0, result.stderr


def test_a_users_train_module_does_not_shadow_the_training_code(tmp_path):
    (tmp_path / "train.py").write_text("raise SystemExit('the user module was imported')\n")
    (tmp_path / "benchmarks").mkdir()
    code = (
        "import animevid.train.loop as loop, animevid._cli.train\n"
        "from pathlib import Path\n"
        f"assert Path(loop.__file__).resolve().parent == Path({str(CHECKOUT / 'train')!r}) "
        "or 'site-packages' in loop.__file__, loop.__file__\n"
        "import train\n"  # the user's own module is still theirs
    )
    result = _run_elsewhere(tmp_path, code)
    assert result.returncode != 0 and "the user module was imported" in result.stderr, result.stderr


def test_benchmarks_are_not_installed(tmp_path):
    result = _run_elsewhere(tmp_path, "import importlib.util; print(importlib.util.find_spec('benchmarks'))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_torchrun_style_module_entry_point(tmp_path):
    (tmp_path / "train.py").write_text("raise SystemExit('the user module was imported')\n")
    result = subprocess.run(
        [sys.executable, "-m", "animevid", "train", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--photos" in result.stdout


@pytest.mark.parametrize(
    "command, light",
    [("stylize", ("torch", "av", "cv2", "openvino")), ("preview", ("torch", "av", "cv2", "openvino")),
     ("export", ("torch", "av", "openvino")), ("styles", ("torch", "av")),
     ("extract-frames", ("torch",)), ("train", ("torch",))],
)  # fmt: skip
def test_help_does_not_import_the_heavy_libraries(tmp_path, command, light):
    # --help reads the options' defaults (animevid.options, ExtractOptions, TrainConfig): it must
    # not pay seconds for torch (about 2 s) before printing a line.
    code = (
        "import sys\n"
        "from animevid._cli import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
        f"heavy = sorted(name for name in {light!r} if name in sys.modules)\n"
        "print('imported:', heavy, file=sys.stderr)\n"
        "assert not heavy, heavy\n"
    )
    result = _run_elsewhere(tmp_path, code)
    assert result.returncode == 0, result.stderr
