"""Band-by-band execution of the AnimeGANv2 generator: the plain forward's output, in bounded memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from animevid.models import AnimeGANv2Generator
from animevid.models.animegan_bands import NormStatistics, Whole
from animevid.models.animegan_v2_bands import AlignedResized, BandedAnimeGANv2
from tests import CHECKOUT
from tests.conftest import random_generator_weights


@pytest.fixture(scope="module", params=["tf1", "pytorch"])
def generator(request) -> AnimeGANv2Generator:
    return random_generator_weights(7, "animegan-v2", request.param).generator().eval()


def lsb(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.double() - b.double()).abs() * 127.5


@pytest.mark.parametrize(
    ("shape", "band_pixels"),
    [
        ((1, 3, 45, 61), 61),  # odd sides, one row per band at full resolution: every band edge is exercised
        ((2, 3, 30, 38), 500),  # a batch, sides that are not multiples of 4, bands of a few rows
        ((1, 3, 24, 24), 1 << 30),  # a single band: the whole image at once
    ],
)
def test_bands_equal_the_whole_image_forward(generator, shape, band_pixels):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[2])) * 2 - 1
    with torch.no_grad():
        expected = generator(x)
    got = BandedAnimeGANv2(generator, band_pixels)(x)
    assert got.shape == expected.shape
    difference = lsb(got, expected)
    assert difference.max() <= 1.0 and difference.mean() <= 0.01


def test_layer_norm_statistics_over_bands_are_the_layer_norm():
    x = torch.randn(1, 5, 12, 9) * 3 + 2
    x[:, 2] += 4  # channels with different means: a per-channel statistic would differ
    norm = torch.nn.GroupNorm(1, 5, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    statistics = NormStatistics.for_norm(norm, 5, x.device)
    for start, stop in [(0, 5), (5, 6), (6, 12)]:
        statistics.add(x[:, :, start:stop])
    scale, shift = statistics.affine(norm)
    # the layer norm written out: one mean and (biased) variance over (C, H, W)
    mean, variance = x.mean(), x.var(unbiased=False)
    expected = (x - mean) / torch.sqrt(variance + 1e-5) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    with torch.no_grad():
        assert torch.allclose(x * scale + shift, expected, atol=1e-5)


@pytest.mark.parametrize(("size", "rows"), [((9, 13), (2, 7)), ((11, 5), (0, 11)), ((20, 31), (19, 20))])
def test_aligned_resize_rows_are_the_align_corners_interpolation(size, rows):
    x = torch.randn(1, 2, 6, 8)
    expected = F.interpolate(x, size=size, mode="bilinear", align_corners=True)[:, :, rows[0] : rows[1]]
    assert torch.allclose(AlignedResized(Whole(x), *size, x.device).rows(*rows), expected, atol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)")
def test_a_12_megapixel_v2_photo_is_stylized_in_8_gb(tmp_path):
    """4032x3024, a phone photo, with a v2 style: the whole-image forward peaked at 22 GB (OpenVINO fp32)."""
    from animevid.imageio import read_image, write_image
    from animevid.weights.formats import save_weights
    from tests.conftest import make_image
    from tests.models.test_animegan_bands import _CLI_WITH_PEAK_RSS

    photo, weights = tmp_path / "photo.jpg", tmp_path / "v2.safetensors"
    write_image(photo, make_image(3024, 4032))
    save_weights(random_generator_weights(5, "animegan-v2", "tf1"), weights, style="v2", source="tests")
    # The default engine and precision (OpenVINO; --dtype auto), as if 8 GB were available: band by band.
    command = [sys.executable, "-c", _CLI_WITH_PEAK_RSS, str(8 * 2**30), "stylize", str(photo), str(tmp_path / "out.png"), "--weights",
               str(weights)]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=CHECKOUT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "band by band" in completed.stderr
    peak_kib = int(completed.stderr.rsplit("peak_rss_kib", 1)[1].split()[0])
    print(f"12 MP v2 photo: peak RSS {peak_kib / 2**20:.2f} GiB; {completed.stderr.strip().splitlines()[-2]}")
    assert peak_kib <= 8 * 2**20
    assert read_image(tmp_path / "out.png").shape == (3024, 4032, 3)
