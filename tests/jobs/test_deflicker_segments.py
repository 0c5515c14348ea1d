"""A video split into segments (worker processes, Ray tasks) and deflickered: no seam where the parts join.

Each worker warms its deflicker state up on the frames just before its segment, so after the
warm-up its frames are the single process's within 2 levels, and the warping error across a
boundary is no worse than within the segments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from animevid.engine.stylizer import Stylizer
from animevid.jobs.parallel import ProcessBackend, stylize_video_parallel
from animevid.options import InferenceOptions, ParallelOptions, VideoOptions
from animevid.train.synthetic_film import write_clip
from animevid.video.pipeline import stylize_video
from animevid.video.segments import plan_segments
from tests.clitools import run_cli
from tests.jobs.test_ray import ray_address  # noqa: F401 -- the module's local cluster, as the Ray tests start it
from tests.temporal_scenes import known_pan_warping_error, pan

CPU = InferenceOptions(device="cpu", engine="torch", compile=False)
KEYS_EVERY_6 = {"preset": "fast", "g": "6", "keyint_min": "6", "sc_threshold": "0"}
OPTIONS = VideoOptions(codec="png", deflicker=True, deflicker_strength=0.5)  # rgb24 out, lossless; a strength that shows what it does
STEP = 2

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def panning_film(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deflicker_segments") / "pan.mov"
    write_clip(path, pan(30, step=STEP, seed=7), fps=24, encoder_options=KEYS_EVERY_6)
    return path


@pytest.fixture(scope="module")
def single(panning_film, random_weights) -> list[np.ndarray]:
    import torch

    out = panning_film.with_name("single.mov")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # a module fixture runs before one_torch_thread; OpenMP threads without a core crawl
    try:
        stylize_video(Stylizer.from_weights(random_weights, CPU), panning_film, out, OPTIONS, progress=False)
    finally:
        torch.set_num_threads(previous)
    return decoded(out)


def decoded(path: Path) -> list[np.ndarray]:
    from tests.video_fixtures import read_clip

    return read_clip(path).frames


def boundaries(film: Path) -> list[int]:
    """Index of the first frame of every segment after the first (segments of 0.25 s: a key frame every 6 frames)."""
    plan = plan_segments(film, OPTIONS, 5)
    starts, total = [], 0
    for segment in plan.segments[:-1]:
        total += segment.frames
        starts.append(total)
    return starts


def assert_no_seam(joined: list[np.ndarray], single: list[np.ndarray], starts: list[int]) -> None:
    assert len(joined) == len(single) and starts
    for index, (a, b) in enumerate(zip(joined, single)):
        assert np.abs(a.astype(int) - b).max() <= 2, index
    pairs = [known_pan_warping_error(joined[t : t + 2], STEP) for t in range(len(joined) - 1)]
    across = [pairs[start - 1] for start in starts]
    inside = [error for t, error in enumerate(pairs) if t + 1 not in starts]
    assert max(across) <= max(inside)


def test_worker_processes_join_without_a_seam(tmp_path, panning_film, random_weights, single):
    out = tmp_path / "workers.mov"
    stylize_video_parallel(
        panning_film, out, random_weights, CPU, OPTIONS, ParallelOptions(devices="cpu", workers=2, segment_seconds=0.25),
        progress=False, backend=ProcessBackend,
    )  # fmt: skip
    assert_no_seam(decoded(out), single, boundaries(panning_film))


def test_ray_tasks_join_without_a_seam(ray_address, tmp_path, panning_film, random_weights, single):  # noqa: F811
    out = tmp_path / "ray.mov"
    result = run_cli(
        "stylize", panning_film, out, "--weights", random_weights, "--codec", "png", "--deflicker", "--deflicker-strength", "0.5",
        "--engine", "torch", "--no-compile", "--segment-seconds", "0.25", "--ray", ray_address,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_no_seam(decoded(out), single, boundaries(panning_film))
