"""The memory guard: the whole forward when it fits, bands when not, a one-line refusal when nothing fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from animevid.engine import memory
from animevid.errors import DeviceError
from animevid.imageio import read_image, write_image
from animevid.engine.memory import BANDS_FOOTPRINT, CPU_FOOTPRINTS, GIB, WHOLE_FRACTION, plan_frame
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.video_fixtures import make_clip

CPU = torch.device("cpu")
WHOLE = CPU_FOOTPRINTS[("torch", torch.float32)]


def limit_memory(monkeypatch, free_bytes: float) -> None:
    """Pretend the process may allocate only ``free_bytes`` more (before the reserve is taken off)."""
    monkeypatch.setattr(memory, "available_memory", lambda: free_bytes)


def usable(free_bytes: float) -> float:
    return free_bytes * (1 - memory.RESERVE_FRACTION) - memory.RESERVE_BYTES


def test_whole_forward_when_it_fits(monkeypatch):
    limit_memory(monkeypatch, 16 * GIB)
    plan = plan_frame("torch", torch.float32, CPU, 540, 960)
    assert plan.executor == "whole"
    assert plan.need_bytes == pytest.approx(WHOLE.fixed + WHOLE.per_pixel * 540 * 960)


def test_bands_when_the_whole_forward_does_not_fit(monkeypatch):
    limit_memory(monkeypatch, 16 * GIB)
    assert WHOLE.bytes(3024 * 4032) > WHOLE_FRACTION * usable(16 * GIB)  # the premise: a 12 MP photo
    plan = plan_frame("openvino", torch.float32, CPU, 3024, 4032)
    assert plan.executor == "bands" and plan.need_bytes < CPU_FOOTPRINTS[("openvino", torch.float32)].bytes(3024 * 4032) / 2


def test_refusal_names_the_largest_size_and_the_max_side(monkeypatch):
    free = 2 * GIB
    limit_memory(monkeypatch, free)
    with pytest.raises(DeviceError) as raised:
        plan_frame("torch", torch.float32, CPU, 3024, 4032)
    message = str(raised.value)
    # Re-derived by hand: bands need fixed + per_pixel * pixels; the largest image has that many pixels.
    largest = (usable(free) - BANDS_FOOTPRINT.fixed) / BANDS_FOOTPRINT.per_pixel
    max_side = math.floor(4032 * math.sqrt(largest / (3024 * 4032)))
    assert f"about {largest / 1e6:.1f} MP" in message and f"--max-side {max_side}" in message
    assert "4032x3024" in message and "\n" not in message
    # ... and that --max-side does fit, while a little more does not.
    height, width = round(3024 * max_side / 4032), max_side
    assert plan_frame("torch", torch.float32, CPU, height, width).executor == "bands"
    with pytest.raises(DeviceError):
        plan_frame("torch", torch.float32, CPU, round(height * 1.02), round(width * 1.02))


def test_without_bands_the_whole_forward_is_the_only_way(monkeypatch):
    limit_memory(monkeypatch, 4 * GIB)
    with pytest.raises(DeviceError, match="--max-side"):
        plan_frame("torch", torch.float32, CPU, 1080, 1920, bands=False)


def test_unknown_available_memory_runs_whole(monkeypatch):
    limit_memory(monkeypatch, None)
    assert plan_frame("torch", torch.float32, CPU, 8000, 8000).executor == "whole"


def test_the_stylizer_runs_bands_under_memory_pressure_with_the_same_pixels(monkeypatch, random_weights):
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu", engine="torch"))
    photo = make_image(70, 90)
    whole = stylizer.image(photo)
    assert stylizer.memory_plan(70, 90).executor == "whole"
    pressed = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu", engine="torch"))
    # Enough for the bands of a 70x90 image, not for its whole forward.
    limit_memory(monkeypatch, (BANDS_FOOTPRINT.bytes(72 * 92) + memory.RESERVE_BYTES) / (1 - memory.RESERVE_FRACTION) + 1)
    monkeypatch.setattr(memory, "CPU_FOOTPRINTS", {key: memory.Footprint(GIB, 1e6) for key in CPU_FOOTPRINTS})
    assert pressed.memory_plan(70, 90).executor == "bands"
    assert pressed.engine_for(70, 90) == "torch (band by band)" and stylizer.engine_for(70, 90) == "torch"
    banded = pressed.image(photo)
    assert np.abs(banded.astype(int) - whole.astype(int)).max() <= 1


def test_a_photo_too_large_is_refused_before_any_work(tmp_path, monkeypatch, random_weights):
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(300, 400))
    limit_memory(monkeypatch, 0.5 * GIB)
    # torch: the OpenVINO engine would first say that it converts the generator (an information line).
    result = run_cli("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "--engine", "torch")
    assert_one_line_error(result, "a 400x300 image needs about", "free some memory first")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
    assert read_image(photo).shape == (300, 400, 3)


def test_a_video_too_large_is_refused_before_any_work(tmp_path, monkeypatch, random_weights):
    source = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=4)
    limit_memory(monkeypatch, 2 * GIB)
    # As if each pixel needed 20 MB: a 64x48 frame then needs 60 GB, whole or in bands.
    monkeypatch.setattr(memory, "CPU_FOOTPRINTS", {key: memory.Footprint(0, 2e7) for key in CPU_FOOTPRINTS})
    monkeypatch.setattr(memory, "BANDS_FOOTPRINT", memory.Footprint(0, 2e7))
    result = run_cli("stylize", source, tmp_path / "out.mp4", "--weights", random_weights, "--engine", "torch")
    assert_one_line_error(result, "a 64x48 image needs about", "--max-side")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.fixture(scope="module")
def v2_weights(tmp_path_factory):
    from animevid.weights.formats import save_weights
    from tests.conftest import random_generator_weights

    return save_weights(random_generator_weights(3, "animegan-v2", "tf1"), tmp_path_factory.mktemp("v2") / "v2.safetensors", style="v2", source="tests")


def test_a_12_megapixel_v2_photo_runs_band_by_band_within_8_gb(monkeypatch, v2_weights):
    limit_memory(monkeypatch, 8 * GIB)
    stylizer = Stylizer.from_weights(v2_weights, InferenceOptions(device="cpu", engine="torch"))
    plan = stylizer.memory_plan(3024, 4032)
    assert plan.executor == "bands" and plan.need_bytes <= usable(8 * GIB)
    assert stylizer.engine_for(3024, 4032) == "torch (band by band)"


def test_a_24_megapixel_v2_photo_is_refused_with_the_max_side_that_fits(monkeypatch, v2_weights):
    limit_memory(monkeypatch, 8 * GIB)
    stylizer = Stylizer.from_weights(v2_weights, InferenceOptions(device="cpu", engine="torch"))
    with pytest.raises(DeviceError) as refusal:
        stylizer.memory_plan(4000, 6000)
    message = str(refusal.value)
    assert "6000x4000" in message and "\n" not in message
    max_side = int(message.rsplit("--max-side ", 1)[1].split()[0])
    assert 4032 <= max_side < 6000  # at least a 12 MP photo's side fits
    fitted = Stylizer.from_weights(v2_weights, InferenceOptions(device="cpu", engine="torch", max_side=max_side))
    assert fitted.memory_plan(4000, 6000).executor == "bands"


def test_a_v2_photo_too_large_is_refused_before_any_work(tmp_path, monkeypatch, v2_weights):
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(48, 64))
    limit_memory(monkeypatch, 2 * GIB)
    monkeypatch.setattr(memory, "CPU_FOOTPRINTS", {key: memory.Footprint(0, 2e7) for key in CPU_FOOTPRINTS})
    monkeypatch.setattr(memory, "BANDS_FOOTPRINT", memory.Footprint(0, 2e7))
    result = run_cli("stylize", photo, tmp_path / "out.png", "--weights", v2_weights, "--engine", "torch")
    assert_one_line_error(result, "a 64x48 image needs about", "--max-side")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_openvino_bands_fall_back_to_torch_bands_where_only_those_fit(monkeypatch):
    pixels = 3024 * 4032
    torch_need = BANDS_FOOTPRINT.bytes(pixels)
    openvino_need = memory.OPENVINO_BANDS_FOOTPRINTS[torch.float32].bytes(pixels)
    assert torch_need < openvino_need  # as measured: OpenVINO's fp32 bands keep their requests' buffers
    between = (torch_need + openvino_need) / 2
    limit_memory(monkeypatch, (between + memory.RESERVE_BYTES) / (1 - memory.RESERVE_FRACTION))
    assert plan_frame("openvino", torch.float32, CPU, 3024, 4032).executor == "torch-bands"
    assert plan_frame("torch", torch.float32, CPU, 3024, 4032).executor == "bands"
    # With room for OpenVINO's own bands they run.
    limit_memory(monkeypatch, (openvino_need + memory.RESERVE_BYTES) / (1 - memory.RESERVE_FRACTION) + 1)
    assert plan_frame("openvino", torch.float32, CPU, 3024, 4032).executor == "bands"
