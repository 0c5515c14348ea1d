"""The deflicker stage (animevid.video.temporal) on synthetic scenes whose true motion is known."""

from __future__ import annotations

import numpy as np
import pytest
import cv2

import animevid
from animevid.errors import UsageError
from animevid.video.temporal import Deflicker
from tests.temporal_scenes import flickering_stylizer, known_pan_warping_error, moving_square, pan, stable_stylizer, texture


def run(deflicker: Deflicker, sources: list[np.ndarray], stylized: list[np.ndarray]) -> list[np.ndarray]:
    return [deflicker(source, frame) for source, frame in zip(sources, stylized)]


def test_a_panning_scene_flickers_half_as_much_or_less():
    sources = pan(24, step=2)
    stylize = flickering_stylizer(seed=3)
    per_frame = [stylize(frame) for frame in sources]
    deflickered = run(Deflicker(strength=0.3), sources, per_frame)
    assert known_pan_warping_error(deflickered, 2) <= 0.5 * known_pan_warping_error(per_frame, 2)


def test_a_still_scene_with_a_stable_style_is_the_per_frame_output():
    still = texture(64, 96, seed=5)
    sources = [still.copy() for _ in range(12)]
    per_frame = [stable_stylizer(frame) for frame in sources]
    for out, reference in zip(run(Deflicker(), sources, per_frame), per_frame):
        assert np.abs(out.astype(int) - reference).max() <= 1  # no drift, no smearing


def test_the_first_frame_after_a_scene_cut_is_the_per_frame_output():
    first, second = pan(8, step=2, seed=0), pan(8, step=2, seed=9)
    sources = first + second
    stylize = flickering_stylizer(seed=4)
    per_frame = [stylize(frame) for frame in sources]
    out = run(Deflicker(), sources, per_frame)
    assert np.abs(out[8].astype(int) - per_frame[8]).max() <= 1  # no ghost of the first shot
    assert np.abs(out[5].astype(int) - per_frame[5]).max() > 1  # within a shot it does blend


def test_a_revealed_region_gets_the_per_frame_output():
    sources, masks = moving_square(8, step=8)
    per_frame = [stable_stylizer(frame) for frame in sources]
    out = run(Deflicker(), sources, per_frame)
    for t in range(1, len(sources)):
        revealed = masks[t - 1] & ~masks[t]  # the square was there, the background shows now
        core = cv2.erode(revealed.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert core.any()
        assert np.abs(out[t].astype(int) - per_frame[t])[core].max() <= 1


def test_strength_zero_changes_nothing():
    sources = pan(6)
    stylize = flickering_stylizer()
    per_frame = [stylize(frame) for frame in sources]
    for out, reference in zip(run(Deflicker(strength=0), sources, per_frame), per_frame):
        assert np.array_equal(out, reference)


def test_reset_starts_afresh():
    sources = pan(6)
    stylize = flickering_stylizer()
    per_frame = [stylize(frame) for frame in sources]
    deflicker = Deflicker()
    run(deflicker, sources[:5], per_frame[:5])
    deflicker.reset()
    assert np.array_equal(deflicker(sources[5], per_frame[5]), per_frame[5])


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan"), "strong"])
def test_a_strength_outside_zero_to_one_is_a_one_line_error(strength):
    with pytest.raises(UsageError, match="between 0 and 1") as error:
        Deflicker(strength=strength)
    assert "\n" not in str(error.value)


def test_frames_must_be_rgb_uint8_of_one_size():
    with pytest.raises(UsageError, match="uint8"):
        Deflicker()(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UsageError, match="must match"):
        Deflicker()(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8))


def test_it_is_exported_at_the_top_level():
    assert animevid.Deflicker is Deflicker
