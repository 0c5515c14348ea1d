"""Colour conversion as torch ops, checked against FFmpeg's swscale through PyAV (an independent implementation).

Decoding direction (yuv420p → rgb24): bit-exact with ``VideoFrame.to_ndarray(format="rgb24")``
for frames of even height, on every case here (random planes, which stress chroma the most, and decoded H.264 frames), so
the tests allow 0 levels. Encoding direction (rgb24 → yuv420p): float arithmetic against
swscale's integers, within 1 level (max) and under 0.1 level on average per plane in limited
range, the pipeline's output (measured: luma mean < 0.01, chroma mean about 0.09 on random RGB),
under 0.2 in full range (chroma mean 0.06 on random RGB, 0.17 on a smooth frame).
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from animevid.video.colour import Yuv420Layout, is_full_range, matrix_for, rgb_to_yuv420, yuv420_to_rgb
from tests.video_fixtures import clip_frame, make_clip

AVCOL_SPC = {"unspecified": 2, "bt709": 1, "bt470bg": 5, "smpte170m": 6, "bt2020nc": 9}


def frame_from_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray, pixel_format: str, colorspace: int) -> av.VideoFrame:
    frame = av.VideoFrame(y.shape[1], y.shape[0], pixel_format)
    for plane, data in zip(frame.planes, (y, u, v)):
        assert (plane.height, plane.width) == data.shape
        plane.update(np.ascontiguousarray(np.pad(data, ((0, 0), (0, plane.line_size - plane.width)))).tobytes())
    frame.colorspace = colorspace
    if pixel_format == "yuvj420p":
        frame.color_range = 2
    return frame


def planes_of(frame: av.VideoFrame) -> list[np.ndarray]:
    return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy() for p in frame.planes]


def random_planes(height: int, width: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    chroma = ((height + 1) // 2, (width + 1) // 2)
    return [rng.integers(0, 256, (height, width), dtype=np.uint8), *(rng.integers(0, 256, chroma, dtype=np.uint8) for _ in range(2))]


def batch(*planes: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(plane)[None] for plane in planes]


@pytest.mark.parametrize("pixel_format", ["yuv420p", "yuvj420p"])
@pytest.mark.parametrize("colorspace", list(AVCOL_SPC))
@pytest.mark.parametrize("size", [(48, 64), (46, 62), (26, 33)])
def test_yuv420_to_rgb_is_swscale_exactly(pixel_format, colorspace, size):
    y, u, v = random_planes(*size, seed=size[0])
    frame = frame_from_planes(y, u, v, pixel_format, AVCOL_SPC[colorspace])
    expected = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)  # as the CPU pipeline decodes
    matrix, full = matrix_for(frame.colorspace), is_full_range(frame.color_range, frame.format.name)
    got = yuv420_to_rgb(*batch(y, u, v), matrix, full)[0].numpy()
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert difference.max() == 0, (difference.max(), difference.mean())


def test_frames_of_odd_height_are_left_to_the_host():
    # swscale converts them on another path (interpolated chroma), which yuv420_to_rgb does not follow.
    from animevid.video.colour import device_conversion_matches_host

    assert device_conversion_matches_host("yuv420p", 26) and device_conversion_matches_host("yuvj420p", 720)
    assert not device_conversion_matches_host("yuv420p", 25)
    assert not device_conversion_matches_host("yuv422p", 26)
    y, u, v = random_planes(25, 32, seed=0)
    frame = frame_from_planes(y, u, v, "yuv420p", 2)
    assert not np.array_equal(yuv420_to_rgb(*batch(y, u, v))[0].numpy(), frame.to_ndarray(format="rgb24"))


def test_decoded_h264_frames_convert_exactly(tmp_path):
    source = make_clip(tmp_path / "in.mp4", width=66, height=50, frames=4)
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            expected = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)
            got = yuv420_to_rgb(*batch(*planes_of(frame)), matrix_for(frame.colorspace), is_full_range(frame.color_range))
            assert np.array_equal(got[0].numpy(), expected)


@pytest.mark.parametrize("full_range", [False, True])
@pytest.mark.parametrize("colorspace", ["unspecified", "bt709", "bt2020nc"])
@pytest.mark.parametrize("content", ["random", "smooth"])
def test_rgb_to_yuv420_is_within_one_level_of_swscale(full_range, colorspace, content):
    height, width = 48, 64
    if content == "random":
        rgb = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        rgb = clip_frame(5, height, width)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.colorspace = AVCOL_SPC[colorspace]  # as the encoder stage tags its frames
    expected = planes_of(frame.reformat(format="yuv420p", dst_color_range=2 if full_range else None))
    got = rgb_to_yuv420(torch.from_numpy(rgb)[None], matrix_for(frame.colorspace), full_range)
    for name, a, b in zip("YUV", got, expected):
        difference = np.abs(a[0].numpy().astype(int) - b.astype(int))
        limit = 0.2 if full_range else 0.1  # full range: swscale truncates, the offset only approximates it
        assert difference.max() <= 1 and difference.mean() < limit, (name, difference.max(), difference.mean())


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("stored", [(24, 32), (24, 33)])
def test_layout_turns_frames_upright_and_repeats_the_last_row_and_column(rotation, stored):
    y, u, v = random_planes(*stored, seed=rotation)
    frame = frame_from_planes(y, u, v, "yuv420p", AVCOL_SPC["bt709"])
    rgb = np.rot90(frame.to_ndarray(format="rgb24"), rotation // 90)  # the CPU pipeline's frame, upright
    height, width = rgb.shape[0] + rgb.shape[0] % 2, rgb.shape[1] + rgb.shape[1] % 2
    expected = np.pad(rgb, ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0)), mode="edge")
    layout = Yuv420Layout(*stored, rotation, height, width, source_matrix="bt709")
    packed = torch.from_numpy(np.concatenate([y.ravel(), u.ravel(), v.ravel()]))[None]
    assert packed.shape[1] == layout.input_bytes
    assert np.array_equal(layout.to_rgb(packed)[0].numpy(), expected)


def test_layout_output_is_what_pyav_reads_as_yuv420p():
    layout = Yuv420Layout(24, 32, 0, 24, 32)
    rgb = torch.from_numpy(np.stack([clip_frame(i, 24, 32) for i in range(3)]))
    packed = layout.from_rgb(rgb)
    assert packed.shape == (3, layout.output_bytes)
    planes = rgb_to_yuv420(rgb)
    for index in range(3):
        frame = av.VideoFrame.from_ndarray(packed[index].numpy().reshape(24 * 3 // 2, 32), format="yuv420p")
        for got, expected in zip(planes_of(frame), planes):
            assert np.array_equal(got, expected[index].numpy())


def test_bad_shapes_and_matrices_are_refused():
    y, u, v = batch(*random_planes(8, 8, 0))
    with pytest.raises(ValueError, match="do not fit"):
        yuv420_to_rgb(y, u[:, :3], v)
    with pytest.raises(ValueError, match="unknown matrix"):
        yuv420_to_rgb(y, u, v, "bt470m")
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420(torch.zeros(1, 5, 8, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="must be even"):
        Yuv420Layout(25, 33, 0, 25, 34)
