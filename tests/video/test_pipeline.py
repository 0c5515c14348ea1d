"""The streaming video pipeline: frames, timestamps, audio, rotation, odd sizes, segments, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from animevid.errors import InputError, Interrupted, OutputError, UsageError
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.options import VideoOptions
from animevid.video.pipeline import _place_upright, stylize_video
from animevid.train.synthetic_film import write_clip
from animevid.video.reader import probe_video
from tests.clitools import assert_one_line_error, run_cli
from tests.reference import generator_from, mean_abs_diff, stylize_reference, yuv420_roundtrip
from tests.video_fixtures import (
    FailingStylizer,
    IdentityStylizer,
    InterruptingStylizer,
    clip_frame,
    decodable_frames,
    put_cover_art_first,
    read_clip,
    side_packets,
    make_clip,
    make_truncated,
)

VFR_DURATIONS_MS = [40, 20, 80, 33]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "videos"
    path.mkdir()
    return path


@pytest.fixture
def identity() -> IdentityStylizer:
    return IdentityStylizer()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def make_clip_of(path: Path, frames: list[np.ndarray], **options) -> Path:
    write_clip(path, frames, fps=24, **options)
    return path


def run(stylizer: Stylizer, source: Path, destination: Path, **options):
    overwrite = options.pop("overwrite", False)
    options.setdefault("deflicker", False)  # these tests check the per-frame path; tests/video/test_pipeline_deflicker.py the stage
    return stylize_video(stylizer, source, destination, VideoOptions(**options), overwrite=overwrite, progress=False)


# -- what comes out --------------------------------------------------------------------------------


def test_cli_stylizes_every_frame_and_copies_the_audio(folder, random_weights, random_state_dict):
    source = make_clip(folder / "in.mp4", frames=20, audio="mono")
    out = folder / "out.mp4"
    result = run_cli("stylize", source, out, "--weights", random_weights, "--no-deflicker")
    assert result.exit_code == 0, result.output
    assert "20 frames in" in result.stderr and "cpu, float32, batch size 1" in result.stderr
    assert "; deflicker: off" in result.stderr
    original, styled = read_clip(source), read_clip(out)
    assert styled.times == original.times and len(styled.frames) == 20
    assert abs(styled.duration - original.duration) < Fraction(1, 24)
    assert styled.streams == [("video", "h264"), ("audio", "aac")]
    assert side_packets(out, "audio") == side_packets(source, "audio")  # same bytes, same timestamps
    assert files_in(folder) == ["in.mp4", "out.mp4"]
    # Each frame is the generator on its decoded source frame, within what libx264 at the default
    # quality loses: measured here by encoding the expected frames ourselves.
    generator = generator_from(random_state_dict)
    expected = [stylize_reference(generator, frame) for frame in original.frames]
    lossless = [yuv420_roundtrip(frame) for frame in expected]
    ours = make_clip_of(folder / "expected.mp4", expected, encoder_options={"crf": "18", "preset": "medium"})
    codec_loss = np.mean([mean_abs_diff(a, b) for a, b in zip(read_clip(ours).frames, lossless)])
    for index, frame in enumerate(styled.frames):
        assert mean_abs_diff(frame, lossless[index]) < 1.25 * codec_loss + 0.5, index
        assert mean_abs_diff(frame, lossless[index]) < mean_abs_diff(frame, lossless[index - 1]) / 2, index


def test_a_lossless_video_holds_the_generator_output_of_every_decoded_frame(folder, random_weights, random_state_dict):
    source = make_clip(folder / "in.mp4", frames=9)
    assert run_cli("stylize", source, folder / "out.mp4", "--weights", random_weights, "--crf", "0", "--engine", "torch", "--no-deflicker", "-q").exit_code == 0
    generator = generator_from(random_state_dict)
    original, styled = read_clip(source), read_clip(folder / "out.mp4")
    assert len(styled.frames) == 9
    for frame, source_frame in zip(styled.frames, original.frames):
        # crf 0 is lossless for yuv420p: all that remains is the RGB -> yuv420p -> RGB conversion.
        assert np.array_equal(frame, yuv420_roundtrip(stylize_reference(generator, source_frame)))


def test_frames_come_out_in_order_with_their_pixels(folder, identity):
    source = make_clip(folder / "in.mp4", frames=23)
    result = run(identity, source, folder / "out.mp4", batch_size=4, crf=0)  # 23 = 5 batches of 4 + 3
    assert (result.kind, result.count, result.batch_size) == ("video", 23, 4)
    original, styled = read_clip(source), read_clip(folder / "out.mp4")
    assert len(styled.frames) == 23
    for index, (a, b) in enumerate(zip(styled.frames, original.frames)):
        assert np.array_equal(a, yuv420_roundtrip(b)), index  # identity "style", lossless: the same frame


def test_variable_frame_rate_keeps_every_timestamp(folder, identity):
    source = make_clip(folder / "vfr.mp4", frames=20, durations_ms=VFR_DURATIONS_MS, audio="mono")
    original = read_clip(source)
    assert len(set(np.diff([float(t) for t in original.times]).round(3))) > 1  # really variable
    run(identity, source, folder / "out.mp4")
    styled = read_clip(folder / "out.mp4")
    assert styled.times == original.times
    assert abs(styled.duration - original.duration) < Fraction(1, 50)
    assert side_packets(folder / "out.mp4", "audio") == side_packets(source, "audio")


def test_odd_sides_are_padded_by_repeating_the_last_row_and_column(folder, identity, caplog):
    source = make_clip(folder / "odd.mp4", width=63, height=47, frames=6, pixel_format="yuv444p")
    run(identity, source, folder / "out.mp4", crf=0)
    original, styled = read_clip(source), read_clip(folder / "out.mp4")
    assert styled.frames[0].shape == (48, 64, 3)
    assert "written as 64x48" in caplog.text
    for a, b in zip(styled.frames, original.frames):
        padded = np.pad(b, ((0, 1), (0, 1), (0, 0)), mode="edge")  # the last row and column repeated
        assert np.array_equal(a, yuv420_roundtrip(padded))  # 4:4:4 in, 4:2:0 out, lossless


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_frames_are_placed_upright_and_padded_with_their_last_row_and_column(rotation):
    stored = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)  # (h=5, w=3, rgb)
    upright = torch.from_numpy(np.ascontiguousarray(np.rot90(stored, rotation // 90)))
    slot = torch.zeros((upright.shape[0] + 1, upright.shape[1] + 1, 3), dtype=torch.uint8)
    _place_upright(slot, stored, rotation)
    assert torch.equal(slot[:-1, :-1], upright)
    assert torch.equal(slot[-1, :-1], upright[-1]) and torch.equal(slot[:-1, -1], upright[:, -1])
    assert torch.equal(slot[-1, -1], upright[-1, -1])
    # np.rot90 turns counter-clockwise, as PyAV's VideoFrame.rotation counts: the top-right corner goes top-left.
    if rotation == 90:
        assert torch.equal(upright[0, 0], torch.from_numpy(stored[0, -1]))


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied_to_the_pixels(folder, identity, rotation):
    source = make_clip(folder / "rotated.mp4", frames=5, rotation=rotation)
    original = read_clip(source)
    assert original.rotation % 360 == rotation % 360
    run(identity, source, folder / "out.mp4", crf=0)
    styled = read_clip(folder / "out.mp4")
    assert styled.rotation == 0  # upright pixels, no display matrix left to apply
    upright = [np.rot90(frame, rotation // 90) for frame in original.frames]  # counter-clockwise
    assert styled.frames[0].shape == upright[0].shape
    for a, b in zip(styled.frames, upright):
        assert np.array_equal(a, yuv420_roundtrip(b))


def test_cover_art_listed_before_the_film_is_not_stylized(folder, identity, caplog):
    cover = np.full((32, 32, 3), (255, 0, 0), np.uint8)
    source = put_cover_art_first(make_clip(folder / "tagged.mp4", frames=12, cover=cover))
    result = run(identity, source, folder / "out.mp4", crf=0)
    assert result.count == 12
    assert "video stream #0 (png) dropped: only the film's stream (#1) is stylized" in caplog.text
    with av.open(str(source)) as container:  # the film is stream 1, read by plain PyAV
        film = [frame.to_ndarray(format="rgb24") for frame in container.decode(container.streams[1])]
    styled = read_clip(folder / "out.mp4")
    assert styled.frames[0].shape == (48, 64, 3)
    for frame, expected in zip(styled.frames, film):
        assert np.array_equal(frame, yuv420_roundtrip(expected))  # identity "style", lossless encode


def test_segment_cuts_video_and_audio_and_starts_at_zero(folder, identity):
    source = make_clip(folder / "in.mp4", frames=24, audio="mono")  # 1 s at 24 fps
    out = folder / "cut.mp4"
    result = run(identity, source, out, start=0.25, end=0.6, crf=0)
    original, styled = read_clip(source), read_clip(out)
    kept = [t for t in original.times if Fraction(1, 4) <= t < Fraction(3, 5)]
    assert result.count == len(kept) == len(styled.frames) == 9
    assert styled.times == [t - kept[0] for t in kept]
    for a, b in zip(styled.frames, original.frames[6:15]):
        assert np.array_equal(a, yuv420_roundtrip(b))
    audio_in = [(pts, data) for pts, _, data in side_packets(source, "audio") if kept[0] <= pts < Fraction(3, 5)]
    audio_out = [(pts + kept[0], data) for pts, _, data in side_packets(out, "audio")]
    assert audio_out == audio_in and len(audio_in) > 5  # whole packets, shifted with the video


def test_subtitles_are_copied_where_the_container_can_hold_them(folder, identity, caplog):
    source = make_clip(folder / "subs.mkv", frames=12, subtitles="subrip")
    run(identity, source, folder / "out.mkv")
    assert [kind for kind, _ in read_clip(folder / "out.mkv").streams] == ["video", "subtitle"]
    assert [data for *_, data in side_packets(folder / "out.mkv", "subtitles")] == [b"line 0", b"line 5", b"line 10"]
    assert not caplog.text  # (re-encoded and dropped streams: tests/video/test_side_streams.py)


def test_stream_matches_frames_whatever_the_batch_size(random_weights):
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu"))
    frames = [np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8) for i in range(7)]
    expected = [stylizer.image(frame) for frame in frames]
    for batch_size in (1, 3, 7, 10):
        styled = list(stylizer.stream(iter(frames), batch_size=batch_size))
        assert len(styled) == 7
        for a, b in zip(styled, expected):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # batched convolutions may round differently
    assert list(stylizer.stream([])) == []
    with pytest.raises(ValueError, match="first frame's size"):
        list(stylizer.stream([frames[0], frames[0][:10]]))


# -- the destination -------------------------------------------------------------------------------


def test_existing_destination_is_refused_unless_overwrite(folder, identity):
    source = make_clip(folder / "in.mp4", frames=4)
    out = folder / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists"):
        run(identity, source, out)
    assert out.read_bytes() == b"precious"
    run(identity, source, out, overwrite=True)
    assert len(read_clip(out).frames) == 4
    assert files_in(folder) == ["in.mp4", "out.mp4"]


def test_destination_equal_to_the_source_is_refused_even_with_overwrite(folder, identity):
    source = make_clip(folder / "in.mp4", frames=4)
    before = source.read_bytes()
    result = run_cli("stylize", source, folder / "." / "in.mp4", "--weights", "unused.safetensors", "--overwrite")
    assert_one_line_error(result, "is the input file")
    assert source.read_bytes() == before


def test_interruption_leaves_nothing_behind(folder):
    source = make_clip(folder / "in.mp4", frames=20, audio="mono")
    threads_before = threading.active_count()
    with pytest.raises(Interrupted, match="interrupted after .* frames; nothing was written"):
        run(InterruptingStylizer(after=6), source, folder / "out.mp4", batch_size=2)
    assert files_in(folder) == ["in.mp4"]
    assert threading.active_count() == threads_before  # the decoder and encoder threads have ended


def test_keep_partial_finalizes_a_playable_prefix_on_interruption(folder):
    source = make_clip(folder / "in.mp4", frames=20, audio="mono")
    with pytest.raises(Interrupted, match=r"interrupted after (\d+) of 20 frames; they were written") as caught:
        run(InterruptingStylizer(after=6), source, folder / "out.mp4", batch_size=2, keep_partial=True)
    written = int(caught.value.args[0].split("after ")[1].split(" ")[0])
    assert 0 < written <= 6
    partial = read_clip(folder / "out.mp4")
    assert partial.times == read_clip(source).times[:written]
    assert files_in(folder) == ["in.mp4", "out.mp4"]


def test_a_failing_stage_stops_the_others_and_is_raised_once(folder):
    source = make_clip(folder / "in.mp4", frames=20)
    threads_before = threading.active_count()
    with pytest.raises(RuntimeError, match="generator exploded"):  # a bug keeps its traceback
        run(FailingStylizer(after=4), source, folder / "out.mp4", batch_size=2)
    assert files_in(folder) == ["in.mp4"]
    assert threading.active_count() == threads_before


def test_sigterm_stops_cleanly_with_exit_130(folder, random_weights):
    source = make_clip(folder / "in.mp4", frames=400)
    out = folder / "out.mp4"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # --no-compile: the signal must land while frames are being stylized, not during a compilation.
    command = [sys.executable, "-m", "animevid", "stylize", str(source), str(out), "--weights", str(random_weights), "--no-compile"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(name.endswith(".part.mp4") for name in files_in(folder)):  # the job has started
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "error: terminated (SIGTERM) after" in stderr and "Traceback" not in stderr
    assert files_in(folder) == ["in.mp4"]


# -- bad input -------------------------------------------------------------------------------------


def _directory(folder: Path) -> Path:
    (folder / "dir").mkdir()
    return folder / "dir"


# Files both commands refuse alike are in test_video_input.py; these are stylize's own cases.
BAD_INPUTS = {
    "directory": (_directory, "no images or videos found"),  # a folder is a folder job
    "truncated": (make_truncated, "damaged or truncated: decoding stopped after"),  # extract-frames keeps the frames
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_error_and_leaves_nothing(folder, random_weights, case):
    make_source, message = BAD_INPUTS[case]
    source = make_source(folder)
    before = files_in(folder)
    # --no-compile: a compilation would make the first frame slow enough for a progress line.
    result = run_cli("stylize", source, folder / "out.mp4", "--weights", random_weights, "--no-compile")
    assert_one_line_error(result, message)
    assert files_in(folder) == before


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("missing/out.mp4", "does not exist"),
        ("in.mp4/out.mp4", "does not exist"),  # the "folder" is a file
        ("out.png", "must be a video file"),
        ("sub.mp4", "is a directory"),
    ],
)
def test_unwritable_destination_is_one_line_error(folder, random_weights, destination, message):
    source = make_clip(folder / "in.mp4", frames=4)
    (folder / "sub.mp4").mkdir()
    result = run_cli("stylize", source, folder / destination, "--weights", random_weights)
    assert_one_line_error(result, message)
    assert files_in(folder) == ["in.mp4", "sub.mp4"]


def test_truncated_input_with_keep_partial_keeps_the_decodable_frames(folder, identity):
    source = make_truncated(folder)
    with pytest.raises(InputError, match=r"decoding stopped after (\d+) frames.*the \1 frames before it were written"):
        run(identity, source, folder / "out.mp4", keep_partial=True)
    kept = read_clip(folder / "out.mp4")
    assert len(kept.frames) == decodable_frames(source) < 60  # every frame the file still holds


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codec": "nope264"}, "unknown video encoder"),
        ({"codec": "aac"}, "not a video encoder"),
        ({"codec": "mpeg4", "crf": 20}, "apply to libx264 and libx265 only"),
        ({"crf": 60}, "between 0 and 51"),
        ({"preset": "warp"}, "unknown --preset"),
        ({"batch_size": 0}, "at least 1"),
        ({"start": -1.0}, "--start"),
        ({"start": 2.0, "end": 1.0}, "--end must be after --start"),
    ],
)
def test_video_options_are_validated(options, message):
    with pytest.raises(UsageError, match=message):
        VideoOptions(**options)


def test_start_after_the_end_of_the_video_is_refused(folder, identity):
    source = make_clip(folder / "in.mp4", frames=12)  # 0.5 s
    with pytest.raises(UsageError, match="is not before the end of the video"):
        run(identity, source, folder / "out.mp4", start=3.0)
    assert probe_video(source).frames == 12


# -- CUDA (deselected by default; on a GPU machine: pytest tests/video/test_pipeline.py -m gpu) --------------


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@pytest.mark.gpu
def test_cuda_overlapped_batches_match_single_frames_in_order(cuda, random_weights):
    # Pinned pools reused many times, side-stream uploads, asynchronous downloads: any missing
    # synchronisation shows up as a frame holding another frame's (or a half-written) result.
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cuda", dtype="float32"))
    frames = [np.random.default_rng(i).integers(0, 256, (96, 160, 3), dtype=np.uint8) for i in range(41)]
    expected = [stylizer.image(frame) for frame in frames]
    for batch_size in (1, 2, 8):
        styled = list(stylizer.stream(iter(frames), batch_size=batch_size))
        assert len(styled) == len(frames)
        for index, (a, b) in enumerate(zip(styled, expected)):
            assert mean_abs_diff(a, b) < 0.5, (batch_size, index)
    cpu = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu"))
    for frame, on_gpu in zip(frames[:3], expected):  # TF32 convolutions on the GPU: small differences
        assert mean_abs_diff(cpu.image(frame), on_gpu) < 1.0


@pytest.mark.gpu
def test_cuda_video_in_half_precision(cuda, folder, random_weights):
    source = make_clip(folder / "in.mp4", width=160, height=96, frames=37, audio="mono", durations_ms=VFR_DURATIONS_MS)
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cuda"))
    assert stylizer.dtype == torch.float16 and stylizer.default_batch_size(96, 160) == 16
    result = stylize_video(stylizer, source, folder / "out.mp4", VideoOptions(batch_size=8), progress=False)
    assert (result.count, result.device, result.dtype) == (37, "cuda", "float16")
    original, styled = read_clip(source), read_clip(folder / "out.mp4")
    assert styled.times == original.times
    assert side_packets(folder / "out.mp4", "audio") == side_packets(source, "audio")
    full = Stylizer.from_weights(random_weights, InferenceOptions(device="cuda", dtype="float32"))
    for frame in original.frames[:3]:
        assert mean_abs_diff(stylizer.image(frame), full.image(frame)) < 2.0


@pytest.mark.gpu
def test_cuda_cli_with_compile(cuda, folder, random_weights):
    source = make_clip(folder / "in.mp4", width=160, height=96, frames=20)
    result = run_cli("stylize", source, folder / "out.mp4", "--weights", random_weights, "--device", "cuda", "--compile", "--batch-size", "6")
    assert result.exit_code == 0, result.output
    assert "20 frames in" in result.stderr and "cuda, float16, batch size 6" in result.stderr
    assert read_clip(folder / "out.mp4").times == read_clip(source).times


# -- torch.compile: the automatic choice and its fallback ---------------------------------------------


def test_auto_compile_policy(monkeypatch):
    from animevid.engine import stylizer as stylizer_module
    from animevid.engine.stylizer import should_compile
    from animevid.options import AUTO_COMPILE_MIN_FRAMES

    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    monkeypatch.setattr(stylizer_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert should_compile(cpu, AUTO_COMPILE_MIN_FRAMES)
    assert not should_compile(cpu, AUTO_COMPILE_MIN_FRAMES - 1)
    assert not should_compile(cpu, None)  # unknown length: the compilation might never pay
    assert not should_compile(cuda, 10_000)  # not measured on CUDA yet: opt-in there
    monkeypatch.setattr(stylizer_module.shutil, "which", lambda name: None)
    assert not should_compile(cpu, 10_000)  # inductor's CPU backend needs a C++ compiler


@pytest.mark.parametrize("frames, compiled", [(12, False), (60, True)])
def test_long_cpu_videos_are_compiled_by_default(folder, random_weights, monkeypatch, frames, compiled):
    from animevid.engine import stylizer as stylizer_module

    calls = []

    def fake_compile(module, **kwargs):  # records the decision without paying for a compilation
        calls.append(kwargs)
        return module

    monkeypatch.setattr(stylizer_module.torch, "compile", fake_compile)
    monkeypatch.setattr(stylizer_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    source = make_clip(folder / "in.mp4", width=32, height=32, frames=frames)
    result = run_cli("stylize", source, folder / "out.mp4", "--weights", random_weights, "--engine", "torch", "-q")
    assert result.exit_code == 0, result.output
    assert bool(calls) is compiled
    assert len(read_clip(folder / "out.mp4").frames) == frames
    calls.clear()
    assert run_cli("stylize", source, folder / "out2.mp4", "--weights", random_weights, "--engine", "torch", "--no-compile", "-q").exit_code == 0
    assert not calls


def test_a_failing_compilation_falls_back_to_the_eager_generator(random_state_dict, monkeypatch, caplog):
    from animevid.engine import stylizer as stylizer_module
    from animevid.models import AnimeGANGenerator

    def broken_compile(module, **kwargs):
        def compiled(x):
            from torch._inductor.exc import InductorError

            raise InductorError(RuntimeError("no working C++ compiler"), None)

        return compiled

    generator = AnimeGANGenerator()
    generator.load_state_dict(random_state_dict)
    eager = Stylizer(generator, InferenceOptions(device="cpu", compile=False, engine="torch"))
    monkeypatch.setattr(stylizer_module.torch, "compile", broken_compile)
    fallback = Stylizer(generator, InferenceOptions(device="cpu", compile=True))
    frames = torch.from_numpy(np.stack([clip_frame(i, 24, 32) for i in range(2)]))
    with caplog.at_level("WARNING", logger="animevid"):
        assert torch.equal(fallback.frames(frames), eager.frames(frames))
    assert not fallback.compiled and "torch.compile failed" in caplog.text


@pytest.mark.slow
def test_a_real_compiled_run_matches_the_eager_one(folder, random_weights):
    source = make_clip(folder / "in.mp4", width=32, height=32, frames=50)
    assert run_cli("stylize", source, folder / "compiled.mp4", "--weights", random_weights, "--compile", "-q").exit_code == 0
    assert run_cli("stylize", source, folder / "eager.mp4", "--weights", random_weights, "--no-compile", "-q").exit_code == 0
    compiled, eager = read_clip(folder / "compiled.mp4"), read_clip(folder / "eager.mp4")
    assert compiled.times == eager.times
    difference = np.abs(np.stack(compiled.frames).astype(int) - np.stack(eager.frames).astype(int))
    assert difference.mean() < 1.0  # same function; the encoder may round a level differently
