"""The pipeline with the colour conversion on the device (``colour_on_device``), forced on the CPU.

Decoding: the device conversion is bit-exact with swscale (tests/video/test_colour.py), so the
generator sees exactly the frames the default path gives it. Encoding: the device's RGB → YUV is
within 1 level of swscale's. Outputs are lossless encodes (crf 0), so the files' planes differ
from the default path's by at most 1 level (and by under 0.1 level on average); timestamps and
audio packets are identical.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from animevid.video.colour import Yuv420Layout
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.options import VideoOptions
from animevid.video.pipeline import stylize_video
from tests.video_fixtures import IdentityStylizer, make_clip, read_clip, side_packets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def planes(path: Path) -> list[np.ndarray]:
    """Every frame's Y, U, V planes concatenated (flat), as the file stores them."""
    with av.open(str(path)) as container:
        return [
            np.concatenate([np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].ravel() for p in frame.planes])
            for frame in container.decode(video=0)
        ]


@pytest.fixture
def conversions(monkeypatch) -> list[int]:
    """How many batches went through the device conversion."""
    calls: list[int] = []
    to_rgb = Yuv420Layout.to_rgb

    def counting(self, packed):
        calls.append(packed.shape[0])
        return to_rgb(self, packed)

    monkeypatch.setattr(Yuv420Layout, "to_rgb", counting)
    return calls


def both_ways(stylizer: Stylizer, source: Path, folder: Path, **options) -> tuple[Path, Path]:
    host, device = folder / "host.mp4", folder / "device.mp4"
    options.setdefault("deflicker", False)  # the generator's frames, converted both ways (the stage on the device: test_pipeline_deflicker)
    stylize_video(stylizer, source, host, VideoOptions(crf=0, **options), progress=False)
    stylize_video(stylizer, source, device, VideoOptions(crf=0, colour_on_device=True, **options), progress=False)
    return host, device


def assert_within_one_level(host: Path, device: Path) -> None:
    a, b = planes(host), planes(device)
    assert len(a) == len(b) and a[0].shape == b[0].shape
    difference = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
    assert difference.max() <= 1 and difference.mean() < 0.1, (difference.max(), difference.mean())
    assert read_clip(host).times == read_clip(device).times


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_device_colour_matches_the_host_path_with_rotation_padding_and_audio(tmp_path, conversions, rotation):
    # 65 wide (MPEG-4 part 2: H.264 cannot store an odd 4:2:0 width): padded to 66 (or, turned
    # upright, 66 high); variable frame rate and an audio track.
    source = make_clip(
        tmp_path / "in.mp4", width=65, height=48, frames=9, audio="mono", rotation=rotation, durations_ms=[40, 20, 80],
        codec="mpeg4", encoder_options={},
    )  # fmt: skip
    host, device = both_ways(IdentityStylizer(), source, tmp_path, batch_size=4)
    assert conversions == [4, 4, 1]  # the device path ran (CPU eager: the partial last batch as it is)
    assert_within_one_level(host, device)
    expected_shape = (48, 66, 3) if rotation == 0 else (66, 48, 3)
    assert read_clip(device).frames[0].shape == expected_shape
    assert side_packets(device, "audio") == side_packets(source, "audio")


def test_device_colour_with_the_generator(tmp_path, random_weights, conversions):
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu", engine="torch", compile=False))
    source = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=3)
    host, device = both_ways(stylizer, source, tmp_path)
    assert conversions
    assert_within_one_level(host, device)


def test_full_range_sources(tmp_path, conversions):
    source = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=4, pixel_format="yuvj420p")
    with av.open(str(source)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuvj420p"
    host, device = both_ways(IdentityStylizer(), source, tmp_path)
    assert conversions
    assert_within_one_level(host, device)


def test_odd_heights_stay_on_the_host(tmp_path, conversions):
    source = make_clip(tmp_path / "in.mp4", width=48, height=33, frames=4, pixel_format="yuv444p")
    host, device = both_ways(IdentityStylizer(), source, tmp_path)
    assert conversions == []
    assert [p.tobytes() for p in planes(host)] == [p.tobytes() for p in planes(device)]


def test_the_cpu_default_is_the_host_path(tmp_path, conversions):
    source = make_clip(tmp_path / "in.mp4", width=48, height=32, frames=4)
    stylize_video(IdentityStylizer(), source, tmp_path / "out.mp4", VideoOptions(), progress=False)
    assert conversions == []
