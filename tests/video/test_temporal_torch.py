"""The torch twin of the blend (animevid.video.temporal_torch) gives the numpy/OpenCV blend's frames within 2 levels (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from animevid.errors import UsageError
from animevid.video.temporal import Blender, MotionEstimator
from animevid.video.temporal_torch import TorchBlender
from tests.temporal_scenes import flickering_stylizer, moving_square, pan


@pytest.mark.parametrize("scene", ["pan", "moving square"])
def test_the_torch_blend_is_the_opencv_blend_within_two_levels(scene):
    sources = pan(12, step=3) if scene == "pan" else moving_square(8)[0]
    stylize = flickering_stylizer(seed=2)
    motion = MotionEstimator()
    numpy_blend, torch_blend = Blender(0.5), TorchBlender(0.5)
    blended = 0
    for source in sources:
        estimate, stylized = motion(source), stylize(source)
        expected = numpy_blend(stylized, estimate)
        ours = torch_blend(torch.from_numpy(stylized), estimate).numpy()
        assert ours.dtype == np.uint8 and ours.shape == expected.shape
        assert np.abs(ours.astype(int) - expected).max() <= 2
        blended += not estimate.cut and not np.array_equal(expected, stylized)
    assert blended >= len(sources) // 2  # the comparison covered real blends, not only fresh starts


def test_a_bad_strength_is_refused():
    with pytest.raises(UsageError, match="between 0 and 1"):
        TorchBlender(2.0)
