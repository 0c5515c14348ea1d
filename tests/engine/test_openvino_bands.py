"""Band-by-band OpenVINO: the whole-image forward's output, band by band, for v1 and both v2 semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from animevid.engine import memory  # noqa: E402
from animevid.engine.openvino import OpenVINOGenerator, cpu_has_native_bf16  # noqa: E402
from animevid.engine.openvino_bands import AS_IS, TF1_DOUBLED, Held, Layer, OpenVINOBands, _rows_for  # noqa: E402
from animevid.engine.stylizer import Stylizer  # noqa: E402
from animevid.models.animegan import AnimeGANGenerator  # noqa: E402
from animevid.models.animegan_v2 import AnimeGANv2Generator  # noqa: E402
from animevid.options import InferenceOptions  # noqa: E402
from tests.conftest import make_image  # noqa: E402
from tests.engine.test_memory import limit_memory  # noqa: E402

NETWORKS = {
    "v1": lambda: AnimeGANGenerator(),
    "v2-tf1": lambda: AnimeGANv2Generator("tf1"),
    "v2-pytorch": lambda: AnimeGANv2Generator("pytorch"),
}


def contrasted(name: str, seed: int = 0) -> torch.nn.Module:
    """A seeded random generator whose norms scale by 0.5-2 and shift by ±0.5: default random weights
    give nearly flat images, on which a wrong row or a wrong statistic would hardly show."""
    torch.manual_seed(seed)
    generator = NETWORKS[name]().eval()
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, (torch.nn.GroupNorm, torch.nn.InstanceNorm2d)) and module.weight is not None:
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    return generator


def levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| in 8-bit levels of [-1, 1] images."""
    return (a - b).abs() * 127.5


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("band_pixels", [1, 700])
def test_float32_bands_equal_the_whole_forward(name, band_pixels):
    # Odd sizes (v1 and tf1 pad to a multiple of 4, pytorch does not); one-row bands put every band at
    # a border of some layer's reflect padding and every resize's clamped last row in its own band.
    generator = contrasted(name)
    x = torch.rand(1, 3, 45, 61, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        reference = generator(x)
    banded = OpenVINOBands(generator, torch.float32, band_pixels=band_pixels)(x)
    assert banded.shape == reference.shape == (1, 3, 45, 61)
    difference = levels(banded, reference)
    assert difference.max() <= 1.0 and difference.mean() <= 0.01
    whole = OpenVINOGenerator(generator, torch.float32)(x)
    assert levels(banded, whole).max() <= 1.0


def test_a_batch_runs_image_by_image():
    generator = contrasted("v2-tf1")
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        reference = generator(x)
    banded = OpenVINOBands(generator, torch.float32, band_pixels=300)
    assert levels(banded(x), reference).max() <= 1.0
    # The compiled models are kept: a second call (a video's next frame) gives the same output.
    assert torch.equal(banded(x), banded(x))


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="OpenVINO bf16 needs AVX512-BF16 or AMX")
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_bfloat16_bands_are_as_close_to_float32_as_the_whole_bf16_forward(name):
    # bf16 rounds at different places band by band than OpenVINO's whole graph does, so the two bf16
    # outputs are not equal; what matters is the distance to the exact function, which --dtype auto judges.
    generator = contrasted(name, seed=3)
    x = torch.rand(1, 3, 64, 88, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.inference_mode():
        reference = generator(x)
    whole = levels(OpenVINOGenerator(generator, torch.bfloat16)(x), reference)
    banded = levels(OpenVINOBands(generator, torch.bfloat16, band_pixels=900)(x), reference)
    assert banded.mean() <= 1.5 * whole.mean() + 0.05
    assert banded.max() <= 2 * whole.max() + 2


def _layer(height: int, kernel: int, stride: int, padding, resample: str, resampled: tuple[int, int]) -> Layer:
    source = Held(torch.zeros(1, 1, height, 5))
    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, bias=False)
    return Layer("test", source, resample, resampled, conv, padding, None, False, None, False, torch.float32, runner=None)


def test_rows_mirror_at_the_borders_as_reflect_padding_does():
    # 3x3, stride 1, pad 1 on 6 rows: output row 0 reads padded rows 0..2 = source rows 1, 0, 1.
    lo, hi, (rows,) = _rows_for(_layer(6, 3, 1, (1, 1, 1, 1), AS_IS, (6, 5)), 0, 1)
    assert (lo, hi, rows.tolist()) == (0, 2, [1, 0, 1])
    # Output row 5 reads source rows 4, 5 and 4 (row 6 mirrored).
    lo, hi, (rows,) = _rows_for(_layer(6, 3, 1, (1, 1, 1, 1), AS_IS, (6, 5)), 5, 6)
    assert (lo, hi, (rows + lo).tolist()) == (4, 6, [4, 5, 4])
    # 3x3, stride 2, TF's bottom-only pad: 6 rows give 3; output row 2 reads rows 4, 5 and 6 -> 4.
    lo, hi, (rows,) = _rows_for(_layer(6, 3, 2, (0, 1, 0, 1), AS_IS, (6, 5)), 2, 3)
    assert (rows + lo).tolist() == [4, 5, 4]


def test_doubled_rows_read_tf1_source_rows_and_weights():
    # TF1's x2 of 4 rows: row 2i is source row i, row 2i + 1 averages rows i and i + 1, row 7 clamps.
    # A 1x1 conv reads resampled rows 5..7 as they are.
    lo, hi, (lower, upper, frac) = _rows_for(_layer(4, 1, 1, (0, 0, 0, 0), TF1_DOUBLED, (8, 10)), 5, 8)
    assert (lower + lo).tolist() == [2, 3, 3] and (upper + lo).tolist() == [3, 3, 3]
    assert frac.tolist() == [0.5, 0.0, 0.5]
    assert (lo, hi) == (2, 4)


def test_the_stylizer_runs_openvino_bands_under_memory_pressure(monkeypatch, random_weights):
    options = InferenceOptions(device="cpu", engine="openvino", dtype="float32")
    photo = make_image(70, 90)
    whole = Stylizer.from_weights(random_weights, options).image(photo)
    pressed = Stylizer.from_weights(random_weights, options)
    footprint = memory.OPENVINO_BANDS_FOOTPRINTS[torch.float32]
    limit_memory(monkeypatch, (footprint.bytes(72 * 92) + memory.RESERVE_BYTES) / (1 - memory.RESERVE_FRACTION) + 1)
    monkeypatch.setattr(memory, "CPU_FOOTPRINTS", {key: memory.Footprint(2**30, 1e6) for key in memory.CPU_FOOTPRINTS})
    assert pressed.memory_plan(70, 90).executor == "bands"
    assert pressed.engine_for(70, 90) == "openvino (band by band)"
    banded = pressed.image(photo)
    assert np.abs(banded.astype(int) - whole.astype(int)).max() <= 1
