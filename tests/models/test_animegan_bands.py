"""Band-by-band execution of the AnimeGAN generator: the plain forward's output, in bounded memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from animevid.models import AnimeGANGenerator
from animevid.models.animegan_bands import BandedAnimeGAN, NormStatistics, Whole, bands, reflected_rows
from tests import CHECKOUT


@pytest.fixture(scope="module")
def generator(random_state_dict) -> AnimeGANGenerator:
    model = AnimeGANGenerator()
    model.load_state_dict(random_state_dict)
    return model.eval()


def lsb(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.double() - b.double()).abs() * 127.5


@pytest.mark.parametrize(
    ("shape", "band_pixels"),
    [
        ((1, 3, 64, 80), 80),  # one row per band at full resolution: every band edge is exercised
        ((1, 3, 45, 61), 500),  # odd sides (padded inside), bands of a few rows
        ((2, 3, 33, 47), 1),  # one row per band everywhere, a batch
        ((1, 3, 130, 97), 4000),
        ((1, 3, 24, 24), 1 << 30),  # a single band: the whole image at once
    ],
)
def test_bands_equal_the_whole_image_forward(generator, shape, band_pixels):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[2])) * 2 - 1
    with torch.no_grad():
        expected = generator(x)
    got = BandedAnimeGAN(generator, band_pixels)(x)
    assert got.shape == expected.shape
    difference = lsb(got, expected)
    assert difference.max() <= 1.0 and difference.mean() <= 0.01


@pytest.mark.parametrize(("start", "stop"), [(-1, 3), (0, 5), (3, 7), (5, 8), (-1, 8), (6, 9)])
def test_reflected_rows_are_reflect_padding(start, stop):
    x = torch.arange(7 * 2, dtype=torch.float32).view(1, 1, 7, 2)
    padded = F.pad(x, (0, 0, 1, 2), mode="reflect")  # row -1 is row 1; rows 7, 8 are rows 5, 4
    assert torch.equal(reflected_rows(Whole(x), start, stop), padded[:, :, start + 1 : stop + 1])


def test_bands_cover_the_rows_once():
    assert list(bands(10, 4, band_pixels=12)) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert list(bands(3, 100, band_pixels=1)) == [(0, 1), (1, 2), (2, 3)]


def test_norm_statistics_over_bands_are_instance_norms():
    x = torch.randn(1, 5, 12, 9) * 3 + 2
    norm = torch.nn.InstanceNorm2d(5, eps=1e-5, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    statistics = NormStatistics(5, x.device)
    for start, stop in [(0, 5), (5, 6), (6, 12)]:
        statistics.add(x[:, :, start:stop])
    scale, shift = statistics.affine(norm)
    with torch.no_grad():
        assert torch.allclose(x * scale + shift, norm(x), atol=1e-5)


# The CLI in a subprocess, with its peak RSS printed last; as if 8 GB were available (argv[1]), so that
# the memory plan decides as on an 8 GB machine whatever this one has free.
_CLI_WITH_PEAK_RSS = """
import sys
import animevid.engine.memory
from animevid._cli import main
available = float(sys.argv.pop(1))
animevid.engine.memory.available_memory = lambda: available
try:
    main(sys.argv[1:])
finally:
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(f"peak_rss_kib {peak}", file=sys.stderr)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc (Linux)")
def test_a_12_megapixel_photo_is_stylized_in_8_gb(tmp_path, random_weights):
    """4032x3024, a phone photo: the whole-image forward would need over 20 GB (OpenVINO) or 36 GB (torch)."""
    from animevid.imageio import read_image, write_image
    from tests.conftest import make_image

    photo = tmp_path / "photo.jpg"
    write_image(photo, make_image(3024, 4032))
    command = [sys.executable, "-c", _CLI_WITH_PEAK_RSS, str(8 * 2**30), "stylize", str(photo), str(tmp_path / "out.png"), "--weights",
               str(random_weights)]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=CHECKOUT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "band by band" in completed.stderr
    peak_kib = int(completed.stderr.rsplit("peak_rss_kib", 1)[1].split()[0])
    print(f"12 MP photo: peak RSS {peak_kib / 2**20:.2f} GiB; {completed.stderr.strip().splitlines()[-2]}")
    assert peak_kib <= 8 * 2**20
    assert read_image(tmp_path / "out.png").shape == (3024, 4032, 3)
