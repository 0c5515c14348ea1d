"""Chunked encoding (several encoders in one process): the single encoder's file, in every case."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import animevid.video.chunked
from animevid.errors import DeviceError, Interrupted, OutputError, UsageError
from animevid.options import ParallelOptions, VideoOptions
from animevid.video.chunked import stylize_video_chunked
from animevid.video.pipeline import stylize_video
from tests.video.test_segments import LOSSLESS, assert_same_file, video_packets
from tests.video_fixtures import FailingStylizer, IdentityStylizer, InterruptingStylizer, make_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHUNK = 0.25  # seconds: 6 frames at 24 fps, so a 1-second clip has several chunks


def encode(source: Path, destination: Path, stylizer=None, **options) -> None:
    """One encoder through stylize_video, several through stylize_video_chunked."""
    run = stylize_video_chunked if options.get("encoders", 1) > 1 else stylize_video
    run(stylizer or IdentityStylizer(), source, destination, VideoOptions(**LOSSLESS, **options), progress=False)


def key_frames(path: Path) -> int:
    return sum(key for _, key in video_packets(path))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("encoders", [2, 3])
@pytest.mark.parametrize(
    ("suffix", "clip"), [(".mp4", {"audio": "mono"}), (".mkv", {"audio": "stereo", "subtitles": "subrip"})], ids=["mp4", "mkv"]
)
def test_several_encoders_write_the_single_encoder_file(tmp_path, suffix, clip, encoders):
    source = make_clip(tmp_path / f"in{suffix}", frames=30, **clip)
    single, chunked = tmp_path / f"single{suffix}", tmp_path / f"chunked{suffix}"
    encode(source, single)
    encode(source, chunked, encoders=encoders, chunk_seconds=CHUNK, batch_size=2)
    assert_same_file(single, chunked)  # frames (lossless), timestamps, duration, streams, audio and subtitle packets
    assert key_frames(single) == 1
    assert key_frames(chunked) == 5  # 30 frames in chunks of 6 (3 batches of 2): each part starts with a key frame
    assert files_in(tmp_path) == sorted(["in" + suffix, single.name, chunked.name])  # no part left behind


@pytest.mark.parametrize(
    ("clip", "window"),
    [({"audio": "mono"}, {"start": 0.3, "end": 1.0}), ({"durations_ms": [40, 20, 80, 33]}, {"start": 0.2})],
    ids=["start-end", "vfr-start"],
)
def test_start_end_and_variable_frame_rate_are_the_single_encoder_file(tmp_path, clip, window):
    source = make_clip(tmp_path / "in.mp4", frames=36, **clip)
    single, chunked = tmp_path / "single.mp4", tmp_path / "chunked.mp4"
    encode(source, single, **window)
    encode(source, chunked, encoders=2, chunk_seconds=CHUNK, **window)
    assert_same_file(single, chunked)
    assert key_frames(chunked) >= 2


def test_a_chunk_longer_than_the_video_is_one_part(tmp_path):
    source = make_clip(tmp_path / "in.mkv", frames=10, audio="mono")
    encode(source, tmp_path / "single.mkv")
    encode(source, tmp_path / "chunked.mkv", encoders=2)
    assert_same_file(tmp_path / "single.mkv", tmp_path / "chunked.mkv")
    assert key_frames(tmp_path / "chunked.mkv") == 1


def test_an_encoder_failure_is_one_error_and_leaves_nothing(tmp_path, monkeypatch):
    source = make_clip(tmp_path / "in.mp4", frames=30, audio="mono")
    write = animevid.video.chunked._ChunkWriter.write

    def failing(self, batch):
        if self.part.index == 2:
            raise OSError(28, "No space left on device")
        write(self, batch)

    monkeypatch.setattr(animevid.video.chunked._ChunkWriter, "write", failing)
    threads_before = threading.active_count()
    with pytest.raises(OutputError, match=r"cannot write .*out\.mp4: .*No space left on device"):
        encode(source, tmp_path / "out.mp4", encoders=2, chunk_seconds=CHUNK)
    assert files_in(tmp_path) == ["in.mp4"]
    assert threading.active_count() == threads_before  # every encoder thread has ended


def test_a_generator_failure_is_raised_and_leaves_nothing(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=30)
    with pytest.raises(RuntimeError, match="generator exploded"):
        encode(source, tmp_path / "out.mp4", FailingStylizer(after=14), encoders=3, chunk_seconds=CHUNK)
    assert files_in(tmp_path) == ["in.mp4"]


def test_interruption_leaves_nothing_behind(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=30, audio="mono")
    threads_before = threading.active_count()
    with pytest.raises(Interrupted, match="nothing was written"):
        encode(source, tmp_path / "out.mp4", InterruptingStylizer(after=14), encoders=2, chunk_seconds=CHUNK)
    assert files_in(tmp_path) == ["in.mp4"]
    assert threading.active_count() == threads_before


def test_an_existing_destination_is_kept_unless_overwrite(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=12)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"mine")
    with pytest.raises(OutputError, match="already exists"):
        encode(source, out, encoders=2, chunk_seconds=CHUNK)
    assert out.read_bytes() == b"mine"
    stylize_video_chunked(IdentityStylizer(), source, out, VideoOptions(**LOSSLESS, encoders=2, chunk_seconds=CHUNK), overwrite=True,
                          progress=False)  # fmt: skip
    encode(source, tmp_path / "single.mp4")
    assert_same_file(tmp_path / "single.mp4", out)


def test_frames_that_cannot_wait_in_memory_are_refused_before_any_work(tmp_path, monkeypatch):
    source = make_clip(tmp_path / "in.mp4", frames=12)
    monkeypatch.setattr(animevid.video.chunked, "available_bytes", lambda device: 2**20)
    with pytest.raises(DeviceError, match="--encoders 2 .* fewer --encoders or a shorter --chunk-seconds"):
        encode(source, tmp_path / "out.mp4", encoders=2)
    assert files_in(tmp_path) == ["in.mp4"]


def test_held_bytes_counts_every_queue_and_each_encoder():
    from animevid.video.chunked import ENCODER_FRAMES_HELD
    from animevid.video.pipeline import QUEUE_BATCHES

    class Plan:
        frame_size = (10, 20)

    # 3 encoders, chunks of 4 batches of 2 frames of 10x20 rgb: each queue holds a chunk and its mark.
    frame = 10 * 20 * 3
    expected = (3 * 5 + QUEUE_BATCHES + 2) * 2 * frame + 3 * ENCODER_FRAMES_HELD * 10 * 20 * 3 // 2
    assert animevid.video.chunked.held_bytes(Plan(), 3, 4, 2) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"encoders": 0}, "--encoders must be at least 1"),
        ({"chunk_seconds": 0}, "--chunk-seconds must be > 0"),
        ({"encoders": 2, "keep_partial": True}, "--keep-partial applies to one encoder"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(UsageError, match=message):
        VideoOptions(**options)


def test_stylize_video_refuses_several_encoders(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=6)
    with pytest.raises(UsageError, match="stylize_video_chunked"):
        stylize_video(IdentityStylizer(), source, tmp_path / "out.mp4", VideoOptions(encoders=2), progress=False)
    assert files_in(tmp_path) == ["in.mp4"]


def test_workers_and_encoders_together_are_refused(tmp_path, random_weights):
    from animevid.api import stylize

    source = make_clip(tmp_path / "in.mp4", frames=6)
    with pytest.raises(UsageError, match="--encoders"):
        stylize(source, tmp_path / "out.mp4", weights=random_weights, video_options=VideoOptions(encoders=2),
                parallel=ParallelOptions(workers=2), progress=False)  # fmt: skip
    assert files_in(tmp_path) == ["in.mp4"]


def test_cli_encoders(tmp_path, random_weights):
    from tests.clitools import run_cli

    source = make_clip(tmp_path / "in.mkv", frames=12, audio="mono")
    out = tmp_path / "out.mkv"
    result = run_cli(
        "stylize", source, out, "--weights", random_weights, "--engine", "torch", "--no-compile", "--encoders", "2",
        "--chunk-seconds", "0.2", "--crf", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "12 frames in" in result.stderr
    assert key_frames(out) == 3
