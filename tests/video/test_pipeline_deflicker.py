"""The deflicker stage in the video paths: the single pipeline, several encoders, folders; options, CLI and summary."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from animevid.jobs.folder import stylize_folder
from animevid.options import DEFAULT_DEFLICKER_STRENGTH, VideoOptions
from animevid.train.synthetic_film import write_clip
from animevid.video.chunked import stylize_video_chunked
from animevid.video.pipeline import stylize_video
from animevid.video.temporal import Deflicker
from tests.clitools import assert_one_line_error, run_cli
from tests.temporal_scenes import pan
from tests.video_fixtures import IdentityStylizer, read_clip

RGB_LOSSLESS = {"codec": "png", "deflicker": True}  # rgb24 frames in and out: no chroma subsampling between us and the reference


class FlickeringStylizer(IdentityStylizer):
    """Noise and a colour cast that change with every frame, seeded by the frame's bytes (the same frame, the same output)."""

    def frames(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.stack([flicker(frame) for frame in batch.numpy()]))


def flicker(frame: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(frame.tobytes()))
    noisy = frame.astype(np.float32) + rng.normal(0, 6, 3) + rng.normal(0, 10, frame.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture
def panning_clip(tmp_path) -> Path:
    path = tmp_path / "pan.mov"
    write_clip(path, pan(16, step=2), fps=24, encoder_options={"preset": "fast", "g": "6", "keyint_min": "6", "sc_threshold": "0"})
    return path


def reference(source: Path, strength: float = DEFAULT_DEFLICKER_STRENGTH) -> list[np.ndarray]:
    """What animevid.Deflicker makes of the decoded source frames and their per-frame styles."""
    deflicker = Deflicker(strength)
    return [deflicker(frame, flicker(frame)) for frame in read_clip(source).frames]


def assert_within(frames: list[np.ndarray], expected: list[np.ndarray], levels: int) -> None:
    assert len(frames) == len(expected)
    for index, (frame, wanted) in enumerate(zip(frames, expected)):
        assert np.abs(frame.astype(int) - wanted).max() <= levels, index


def test_the_pipeline_deflickers_as_the_library_does(tmp_path, panning_clip):
    out = tmp_path / "out.mov"
    stylize_video(FlickeringStylizer(), panning_clip, out, VideoOptions(**RGB_LOSSLESS), progress=False)
    assert_within(read_clip(out).frames, reference(panning_clip), 2)
    stylize_video(FlickeringStylizer(), panning_clip, tmp_path / "off.mov", VideoOptions(codec="png", deflicker=False), progress=False)
    per_frame = [flicker(frame) for frame in read_clip(panning_clip).frames]
    assert_within(read_clip(tmp_path / "off.mov").frames, per_frame, 0)  # off: the generator's frames as they were


def test_the_strength_reaches_the_stage(tmp_path, panning_clip):
    out = tmp_path / "out.mov"
    stylize_video(FlickeringStylizer(), panning_clip, out, VideoOptions(**RGB_LOSSLESS, deflicker_strength=0.8), progress=False)
    assert_within(read_clip(out).frames, reference(panning_clip, 0.8), 2)


def test_several_encoders_write_the_single_encoders_frames(tmp_path, panning_clip):
    options = VideoOptions(**RGB_LOSSLESS, encoders=2, chunk_seconds=0.1)
    stylize_video_chunked(FlickeringStylizer(), panning_clip, tmp_path / "chunked.mov", options, progress=False)
    assert_within(read_clip(tmp_path / "chunked.mov").frames, reference(panning_clip), 2)


def test_a_folder_deflickers_its_videos(tmp_path, panning_clip):
    folder = tmp_path / "in"
    folder.mkdir()
    panning_clip.rename(folder / "pan.mov")
    stylize_folder(FlickeringStylizer(), folder, tmp_path / "out", progress=False, video_options=VideoOptions(**RGB_LOSSLESS))
    assert_within(read_clip(tmp_path / "out" / "pan.mov").frames, reference(folder / "pan.mov"), 2)


@pytest.mark.parametrize("strength", ["-0.5", "1.01", "nan"])
def test_a_strength_outside_zero_to_one_is_a_one_line_error(tmp_path, panning_clip, strength):
    result = run_cli("stylize", panning_clip, tmp_path / "out.mov", "--weights", "unused.safetensors", "--deflicker-strength", strength)
    assert_one_line_error(result, "--deflicker-strength must be between 0 and 1")
    assert not (tmp_path / "out.mov").exists()


def test_the_summary_says_whether_it_was_on(tmp_path, random_weights):
    short = tmp_path / "short.mov"
    write_clip(short, pan(3), fps=24)
    on = run_cli("stylize", short, tmp_path / "on.mov", "--weights", random_weights, "--deflicker", "--deflicker-strength", "0.4", "--no-compile", "--engine", "torch")
    assert on.exit_code == 0, on.output
    assert "; deflicker: on (strength 0.4)" in on.stderr
    default = run_cli("stylize", short, tmp_path / "default.mov", "--weights", random_weights, "--no-compile", "--engine", "torch")
    assert default.exit_code == 0, default.output
    assert "; deflicker: on (strength 0.22)" in default.stderr  # on for videos unless asked otherwise
    off = run_cli("stylize", short, tmp_path / "off.mov", "--weights", random_weights, "--no-deflicker", "--no-compile", "--engine", "torch")
    assert off.exit_code == 0, off.output
    assert "; deflicker: off" in off.stderr
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), pan(1)[0])
    result = run_cli("stylize", photo, tmp_path / "anime.png", "--weights", random_weights, "--engine", "torch")
    assert result.exit_code == 0, result.output
    assert "deflicker" not in result.stderr  # photos are untouched


class CountingFlicker(IdentityStylizer):
    """Flicker seeded by the frame's number: the same sequence whatever path converted the colours."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def frames(self, batch: torch.Tensor) -> torch.Tensor:
        out = []
        for frame in batch.numpy():
            rng = np.random.default_rng(self.count)
            self.count += 1
            out.append(np.clip(frame.astype(np.float32) + rng.normal(0, 6, 3) + rng.normal(0, 10, frame.shape), 0, 255).astype(np.uint8))
        return torch.from_numpy(np.stack(out))


def test_with_colours_converted_on_the_device_the_blend_runs_there_too(tmp_path, panning_clip, monkeypatch):
    from animevid.video import temporal_torch

    calls = []
    original = temporal_torch.TorchBlender.__call__
    monkeypatch.setattr(temporal_torch.TorchBlender, "__call__", lambda self, *args: calls.append(1) or original(self, *args))
    runs = {}
    on = {"deflicker": True, "deflicker_strength": 0.5}
    for name, options in {"host": on, "device": {**on, "colour_on_device": True}, "off": {"deflicker": False}}.items():
        stylize_video(CountingFlicker(), panning_clip, tmp_path / f"{name}.mp4", VideoOptions(crf=0, **options), progress=False)
        runs[name] = np.stack(read_clip(tmp_path / f"{name}.mp4").frames).astype(float)
    assert len(calls) == 16  # every frame, on the device path only
    assert np.abs(runs["host"] - runs["off"]).mean() > 2.0
    # The same motion; the device converts colours within 1 level of swscale and blends within 2 of
    # OpenCV, and the recursion carries such differences a few frames (measured: mean 0.35, max 5).
    difference = np.abs(runs["device"] - runs["host"])
    assert difference.mean() < 0.5 and difference.max() <= 6
