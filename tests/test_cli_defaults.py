"""Every CLI default is the library's: a command run without options hands the library exactly the
defaults of its dataclasses (and functions), and --help shows those values."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from types import SimpleNamespace

import click
import pytest

import animevid.api
from animevid import options
import animevid.train.frames
import animevid.train.smooth
from animevid._cli import main
from animevid._cli.defaults import LibraryDefault, library_option
from animevid.options import AUTO_COMPILE_MIN_FRAMES, InferenceOptions, ParallelOptions
from animevid.train.frames import DEFAULT_THRESHOLDS, ExtractOptions
from animevid.options import VideoOptions
from tests.clitools import run_cli


def bound_fields(command_name: str) -> dict[str, set[str]]:
    """{owner name: fields} of the command's options that take their default from the library."""
    bound: dict[str, set[str]] = {}
    for param in main.commands[command_name].params:
        if isinstance(param, LibraryDefault):
            bound.setdefault(param.owner().__name__, set()).add(param.field)
    return bound


def field_names(dataclass: type) -> set[str]:
    return {field.name for field in dataclasses.fields(dataclass)}


def test_every_option_field_has_its_cli_option():
    # --devices and --workers have no default: either one given makes the job one of several processes.
    parallel = field_names(ParallelOptions) - {"devices", "workers"}
    assert bound_fields("stylize") == {
        "InferenceOptions": field_names(InferenceOptions), "VideoOptions": field_names(VideoOptions), "ParallelOptions": parallel,
    }  # fmt: skip
    assert bound_fields("extract-frames") == {"ExtractOptions": field_names(ExtractOptions)}
    assert bound_fields("smooth") == {"smooth_folder": {"size", "jpeg_quality"}}


def test_stylize_without_options_uses_the_dataclass_defaults(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(animevid.api, "stylize", lambda *args, **kwargs: calls.append(kwargs))
    result = run_cli("stylize", tmp_path / "in.jpg", tmp_path / "out.png", "--weights", tmp_path / "w.safetensors", "-q")
    assert result.exit_code == 0, result.output
    (kwargs,) = calls
    assert kwargs["options"] == InferenceOptions() and kwargs["video_options"] == VideoOptions()
    assert (kwargs["overwrite"], kwargs["skip_existing"]) == (False, False)


def test_extract_frames_and_smooth_without_options_use_the_library_defaults(tmp_path, monkeypatch):
    calls = []
    done = SimpleNamespace(warnings=(), already_complete=True, out_dir=tmp_path, images=0)
    monkeypatch.setattr(animevid.train.frames, "extract_frames", lambda *args, **kwargs: calls.append(args) or done)
    assert run_cli("extract-frames", tmp_path / "film.mkv").exit_code == 0
    assert calls[0][2] == ExtractOptions()

    real = animevid.train.smooth.smooth_folder
    smoothed = SimpleNamespace(smooth_dir=tmp_path, written=0, skipped=0, elapsed_s=0.0)

    @functools.wraps(real)  # keeps the signature the CLI reads its defaults from
    def recorded(*args, **kwargs):
        calls.append(kwargs)
        return smoothed

    monkeypatch.setattr(animevid.train.smooth, "smooth_folder", recorded)
    assert run_cli("smooth", tmp_path).exit_code == 0
    defaults = inspect.signature(real).parameters
    assert calls[1]["size"] == defaults["size"].default and calls[1]["jpeg_quality"] == defaults["jpeg_quality"].default


def test_help_shows_the_library_defaults():
    stylize_help = run_cli("stylize", "--help").output
    for text in (
        f"[default: {VideoOptions().codec}]",
        f"[default: {options.DEFAULT_CRF}]",
        f"[default: {options.DEFAULT_PRESET}]",
        f"[default: {InferenceOptions().device}]",
        f"{AUTO_COMPILE_MIN_FRAMES}+ frames",
    ):
        assert text in " ".join(stylize_help.split()), text
    extract_help = " ".join(run_cli("extract-frames", "--help").output.split())
    assert f"[default: {ExtractOptions().min_shot}]" in extract_help
    assert f"{DEFAULT_THRESHOLDS['content']:g} for content" in extract_help


def test_a_library_option_cannot_carry_its_own_default():
    with pytest.raises(TypeError, match="from the library"):
        click.command()(library_option("--codec", type=str, owner=lambda: VideoOptions, default="mpeg4")(lambda codec: None))
    with pytest.raises(TypeError, match="give type="):
        library_option("--codec", owner=lambda: VideoOptions)
