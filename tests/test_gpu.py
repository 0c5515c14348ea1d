"""What only a CUDA device can check (deselected by default; run with ``pytest -m gpu``).

The device colour conversion and the TF1 resize give the CPU's results on CUDA; a generator
forward and the device colour conversion make no host synchronisation
(``torch.cuda.set_sync_debug_mode("error")`` turns any into an error); the pipeline with the
colour conversion on the device (the CUDA default) writes what the host path writes, within one
level, with the last partial batch at full shape and cuDNN autotuning restored after the job.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from animevid.video.colour import Yuv420Layout, rgb_to_yuv420, yuv420_to_rgb
from animevid.models.resize import tf1_resize_bilinear
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.options import VideoOptions
from animevid.video.pipeline import stylize_video
from animevid.weights.formats import build_generator
from tests.video_fixtures import make_clip, read_clip, side_packets

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@contextmanager
def no_host_syncs():
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def test_device_colour_conversion_equals_the_cpus():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 256, (3, 48, 66), dtype=np.uint8))
    u = torch.from_numpy(rng.integers(0, 256, (3, 24, 33), dtype=np.uint8))
    v = torch.from_numpy(rng.integers(0, 256, (3, 24, 33), dtype=np.uint8))
    for matrix in ("bt601", "bt709", "bt2020"):
        for full in (False, True):
            on_cpu = yuv420_to_rgb(y, u, v, matrix, full)
            assert torch.equal(yuv420_to_rgb(y.cuda(), u.cuda(), v.cuda(), matrix, full).cpu(), on_cpu)  # integer arithmetic
            planes_cpu = rgb_to_yuv420(on_cpu, matrix, full)
            planes_cuda = rgb_to_yuv420(on_cpu.cuda(), matrix, full)
            for a, b in zip(planes_cpu, planes_cuda):  # float: a rounding tie may land either way
                assert (a.int() - b.cpu().int()).abs().max() <= 1


@pytest.mark.parametrize("in_size, out_size", [((5, 6), (10, 12)), ((3, 4), (7, 9)), ((68, 120), (135, 240))])
def test_tf1_resize_on_cuda_equals_the_cpu(in_size, out_size):
    x = torch.rand(2, 8, *in_size, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tf1_resize_bilinear(x.cuda(), out_size).cpu(), tf1_resize_bilinear(x, out_size), rtol=0, atol=1e-6)


@pytest.mark.parametrize("architecture", ["animegan-v1", "animegan-v2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_generator_forward_makes_no_host_sync(architecture, dtype):
    generator = build_generator(architecture, "tf1").cuda().eval().to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 68, 124, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        generator(x)  # warm-up: cuDNN handles, allocator pools
        with no_host_syncs():
            y = generator(x)
    assert y.shape == x.shape


def test_device_colour_conversion_makes_no_host_sync():
    layout = Yuv420Layout(48, 65, 90, 66, 48)
    packed = torch.randint(0, 256, (4, layout.input_bytes), dtype=torch.uint8, device="cuda")
    layout.from_rgb(layout.to_rgb(packed))
    with no_host_syncs():
        planes = layout.from_rgb(layout.to_rgb(packed))
    assert planes.shape == (4, layout.output_bytes)


def _planes(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([
            np.concatenate([np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].ravel() for p in frame.planes])
            for frame in container.decode(video=0)
        ])  # fmt: skip


def test_cuda_pipeline_converts_colours_on_the_device_like_the_host(tmp_path, random_weights, monkeypatch):
    source = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=11, audio="mono", rotation=90)
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cuda", dtype="float32"))
    shapes: list[int] = []
    to_rgb = Yuv420Layout.to_rgb
    monkeypatch.setattr(Yuv420Layout, "to_rgb", lambda self, packed: shapes.append(packed.shape[0]) or to_rgb(self, packed))
    torch.backends.cudnn.benchmark = False
    stylize_video(stylizer, source, tmp_path / "device.mp4", VideoOptions(crf=0, batch_size=4), progress=False)  # the CUDA default
    assert shapes == [4, 4, 4]  # the last batch (3 frames) at full shape: no new cuDNN autotuning
    assert torch.backends.cudnn.benchmark is False  # restored after the job
    stylize_video(stylizer, source, tmp_path / "host.mp4", VideoOptions(crf=0, batch_size=4, colour_on_device=False), progress=False)
    difference = np.abs(_planes(tmp_path / "device.mp4").astype(int) - _planes(tmp_path / "host.mp4").astype(int))
    # One level from the conversion; one more where cuDNN's kernels round a generator output differently.
    assert difference.max() <= 2 and difference.mean() < 0.1
    assert read_clip(tmp_path / "device.mp4").times == read_clip(source).times
    assert read_clip(tmp_path / "device.mp4").frames[0].shape == (64, 48, 3)  # upright
    assert side_packets(tmp_path / "device.mp4", "audio") == side_packets(source, "audio")
