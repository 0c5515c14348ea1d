"""``animevid.video.reader.read_frames_at``: the frame on screen at given times, against a full decode."""

import numpy as np
import pytest

from animevid.errors import InputError
from animevid.video.reader import read_frames_at
from tests.video_fixtures import make_clip, read_clip


def on_screen(times: list, at: float) -> int:
    """Index of the last frame shown at or before ``at`` (the first one before the video starts)."""
    return max([i for i, t in enumerate(times) if t <= at], default=0)


@pytest.mark.parametrize("rotation", [None, 90])
def test_frames_at_times_are_the_frames_on_screen_then_upright(tmp_path, rotation):
    clip = make_clip(tmp_path / "clip.mp4", frames=30, fps=10, rotation=rotation)  # B-frames: seeks must decode forward
    contents = read_clip(clip)
    wanted = [2.05, 0.0, 1.234, 2.95, 9.0]  # out of order, between frames; the last is past the end
    got = read_frames_at(clip, wanted)
    for at, (seconds, frame) in zip(wanted, got):
        index = on_screen(contents.times, at)
        expected = contents.frames[index]
        if rotation:
            expected = np.rot90(expected, rotation // 90)  # counter-clockwise, as the display matrix says
        assert seconds == pytest.approx(float(contents.times[index]))
        assert np.array_equal(frame, expected), at


def test_an_unreadable_file_is_an_input_error(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"no video here" * 50)
    with pytest.raises(InputError, match="x.mp4"):
        read_frames_at(tmp_path / "x.mp4", [0.0])
