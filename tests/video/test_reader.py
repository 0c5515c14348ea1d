"""The one way to read a video: which stream is the film, timestamps, and one wording of every
input error, whichever command (stylize, extract-frames) reads the file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from animevid.errors import InputError
from animevid.video.reader import FrameClock, VideoInfo, decode_frames, open_video, probe_video, upright
from tests.clitools import run_cli
from tests.video_fixtures import (
    make_audio_only,
    make_clip,
    make_empty,
    make_garbled,
    make_headers_only,
    make_text,
    make_truncated,
    put_cover_art_first,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COVER = np.zeros((32, 32, 3), np.uint8)
COVER[:, :, 0] = 255  # a red square, unlike any frame of the film


def cover_first_clip(path: Path) -> Path:
    return put_cover_art_first(make_clip(path, frames=12, cover=COVER))


def test_cover_art_listed_first_is_not_taken_for_the_film(tmp_path):
    path = cover_first_clip(tmp_path / "tagged.mp4")
    with av.open(str(path)) as container:  # what the file holds, read by plain PyAV
        first, second = container.streams.video
        assert first.disposition & av.stream.Disposition.attached_pic and first.codec_context.name == "png"
        assert second.codec_context.name == "h264"
    info = probe_video(path)
    assert (info.stream_index, info.width, info.height, info.codec) == (1, 64, 48, "h264")
    with open_video(path) as video:
        assert sum(1 for _ in decode_frames(video)) == 12


def test_a_file_with_only_cover_art_has_no_video_stream(tmp_path):
    path = tmp_path / "cover.mp4"
    make_clip(path, frames=0, cover=COVER, audio="mono", audio_seconds=0.1)
    with pytest.raises(InputError, match=r"has no video stream \(only cover art\)"):
        probe_video(path)


def test_frame_clock_fills_missing_timestamps_at_the_nominal_rate_and_keeps_them_increasing():
    info = VideoInfo(
        stream_index=0, codec="h264", width=4, height=4, rotation=0, sample_aspect_ratio=None,
        time_base=Fraction(1, 1000), frame_rate=Fraction(25), start_pts=500, duration=None, frames=0,
    )  # fmt: skip
    clock = FrameClock(info)
    given = [None, None, 620, 620, 610, None]
    # None: the stream's start, then +40 ms (25 fps); a repeated or earlier timestamp: +1 tick.
    assert [clock.pts(SimpleNamespace(pts=pts)) for pts in given] == [500, 540, 620, 621, 622, 662]
    assert clock.seconds(662) == Fraction(162, 1000)
    assert clock.seconds(48_000, Fraction(1, 48_000)) == Fraction(1) - Fraction(1, 2)  # another stream's time base


def test_upright_turns_counter_clockwise():
    stored = np.array([[1, 2], [3, 4]])
    assert upright(stored, 0) is stored
    assert upright(stored, 90).tolist() == [[2, 4], [1, 3]]  # the top-right corner goes to the top left
    assert upright(stored, 180).tolist() == [[4, 3], [2, 1]]
    assert upright(stored, 270).tolist() == [[3, 1], [4, 2]]


# -- one wording, whichever command reads the file ---------------------------------------------------


def _only_cover(folder: Path) -> Path:
    return make_clip(folder / "cover.mp4", frames=0, cover=COVER, audio="mono", audio_seconds=0.1)


BAD_FILES = {
    "missing": (lambda folder: folder / "missing.mp4", "does not exist"),
    "empty": (make_empty, "is empty"),
    "text": (make_text, "is not a readable video"),
    "headers only": (make_headers_only, "is not a readable video"),
    "garbled frames": (make_garbled, "is damaged: its first video frame cannot be decoded"),
    "no video stream": (lambda folder: make_audio_only(folder / "sound.mp4"), "has no video stream"),
    "only cover art": (_only_cover, "has no video stream (only cover art)"),
}


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("case", BAD_FILES)
def test_both_commands_word_a_bad_file_the_same(tmp_path, random_weights, case):
    make, fragment = BAD_FILES[case]
    source = make(tmp_path)
    stylized = error_line(run_cli("stylize", source, tmp_path / "out.mp4", "--weights", random_weights, "--no-compile"))
    extracted = error_line(run_cli("extract-frames", source, "-o", tmp_path / "set", "-q"))
    assert stylized == extracted
    assert fragment in stylized and str(source) in stylized
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "set").exists()


def test_both_commands_word_a_truncated_file_the_same(tmp_path, random_weights):
    source = make_truncated(tmp_path)
    stylized = error_line(run_cli("stylize", source, tmp_path / "out.mp4", "--weights", random_weights, "--no-compile", "-q"))
    extracted = run_cli("extract-frames", source, "-o", tmp_path / "set", "-q", "--min-detail", "0", "--margin", "0")
    assert extracted.exit_code == 0, extracted.output  # a dataset from the frames before the damage
    (warning,) = [line for line in extracted.stderr.splitlines() if "damaged" in line]
    damage = f"{source} is damaged or truncated: decoding stopped after"
    assert stylized.startswith(f"error: {damage}") and warning.startswith(f"warning: {damage}")
    assert stylized.split(";")[0].removeprefix("error: ") == warning.split(";")[0].removeprefix("warning: ")
