"""Edge smoothing (S_data(e)): the vectorized version against the per-pixel definition, and ``animevid smooth``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from animevid.errors import InputError
from animevid.train.smooth import edge_mask, edge_smooth, edge_smooth_reference, gaussian_weights, smooth_folder
from animevid.train.synthetic_film import Scene, render_frame
from tests.temporaries import left_by_a_killed_process


def random_image(seed: int, height: int, width: int) -> np.ndarray:
    """Noise, blurred by a random amount: from edges everywhere to a few smooth edges."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    blur = int(rng.integers(0, 3)) * 2 + 1
    return cv2.GaussianBlur(image, (blur, blur), 0) if blur > 1 else image


def cel_image(seed: int, size: int) -> np.ndarray:
    return cv2.cvtColor(render_frame(Scene("shapes", 1.0, seed=seed), 3, size, size), cv2.COLOR_RGB2BGR)


@pytest.mark.parametrize("seed", range(8))
def test_vectorized_equals_the_per_pixel_definition(seed):
    rng = np.random.default_rng(100 + seed)
    height, width = (int(v) for v in rng.integers(12, 70, 2))
    image = random_image(seed, height, width)
    for size in (None, 40):
        expected = edge_smooth_reference(image, size)
        assert np.array_equal(edge_smooth(image, size), expected)
    gray = rng.integers(0, 256, (height, width), dtype=np.uint8)  # edges found on another picture
    assert np.array_equal(edge_smooth(image, 32, gray=gray), edge_smooth_reference(image, 32, gray=gray))


def test_vectorized_equals_reference_on_cel_images_at_training_size():
    for seed in (1, 2):
        image = cel_image(seed, 96)
        assert np.array_equal(edge_smooth(image, 96), edge_smooth_reference(image, 96))


def test_reference_is_the_weighted_sum_over_the_reflected_border():
    image = random_image(3, 20, 24)
    smoothed = edge_smooth_reference(image, None)
    mask = edge_mask(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    weights = gaussian_weights()

    def reflect(i: int, n: int) -> int:  # numpy 'reflect': the edge pixel is not repeated
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i

    for y, x in [(0, 0), (1, 23), (19, 5), (10, 12)]:
        if not mask[y, x]:
            continue
        for channel in range(3):
            total = sum(
                float(image[reflect(y + dy, 20), reflect(x + dx, 24), channel]) * weights[dy + 2, dx + 2]
                for dy in range(-2, 3)
                for dx in range(-2, 3)
            )
            assert smoothed[y, x, channel] == int(total)
    assert mask[0, 0] and mask[19, 5]  # the corners and borders were checked, not skipped
    assert np.array_equal(smoothed[~mask], image[~mask])


def test_gaussian_is_the_binomial_kernel():
    assert np.array_equal(gaussian_weights() * 256, np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]))


def test_only_the_edge_neighbourhood_changes():
    image = cel_image(4, 64)
    smoothed = edge_smooth(image, None)
    mask = edge_mask(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    assert 0 < mask.mean() < 0.7
    assert np.array_equal(smoothed[~mask], image[~mask])
    assert (smoothed[mask] != image[mask]).any()
    flat = np.full((32, 32, 3), 90, np.uint8)
    assert np.array_equal(edge_smooth(flat, None), flat)


def test_input_must_be_a_colour_uint8_image():
    with pytest.raises(ValueError):
        edge_smooth(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError):
        edge_smooth(np.zeros((8, 8, 3), np.float32))


# -- smooth_folder and the command ---------------------------------------------------------------------


def make_dataset(root: Path, names: list[str], size: int = 80) -> Path:
    (root / "style").mkdir(parents=True)
    for i, name in enumerate(names):
        assert cv2.imwrite(str(root / "style" / name), cel_image(i, size))
    return root


def test_smooth_folder_matches_the_official_recipe(tmp_path):
    root = make_dataset(tmp_path / "set", ["a.png", "b.jpg", "c.png"], size=80)
    result = smooth_folder(root, size=64)
    assert result.written == 3 and result.skipped == 0
    for name in ("a.png", "b.jpg", "c.png"):
        source = str(root / "style" / name)
        # As the official edge_smooth.py: colour and grayscale read by OpenCV, then resized.
        expected = edge_smooth_reference(cv2.imread(source), 64, gray=cv2.imread(source, 0))
        written = cv2.imread(str(root / "smooth" / name))
        if name.endswith(".png"):
            assert np.array_equal(written, expected)
        else:
            assert written.shape == (64, 64, 3) and np.abs(written.astype(int) - expected).mean() < 3


def test_smooth_folder_resumes_and_overwrites_only_when_asked(tmp_path):
    root = make_dataset(tmp_path / "set", ["a.png", "b.png"])
    (root / "smooth").mkdir()
    (root / "smooth" / "a.png").write_bytes(b"from an earlier run")
    left_by_a_killed_process(root / "smooth" / "b.png", b"torn")
    result = smooth_folder(root, size=64)
    assert (result.written, result.skipped) == (1, 1)
    assert (root / "smooth" / "a.png").read_bytes() == b"from an earlier run"
    assert sorted(p.name for p in (root / "smooth").iterdir()) == ["a.png", "b.png"]
    result = smooth_folder(root, size=64, overwrite=True)
    assert (result.written, result.skipped) == (2, 0)
    assert cv2.imread(str(root / "smooth" / "a.png")).shape == (64, 64, 3)


def test_smooth_folder_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        smooth_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="style"):
        smooth_folder(tmp_path)
    (tmp_path / "style").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        smooth_folder(tmp_path)
    (tmp_path / "style" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot be decoded"):
        smooth_folder(tmp_path)


def cli(args: list[str]):
    from animevid._cli import main

    return CliRunner().invoke(main, args)


def test_smooth_command(tmp_path):
    root = make_dataset(tmp_path / "set", ["a.png"])
    result = cli(["smooth", str(root), "--size", "64", "-q"])
    assert result.exit_code == 0, result.output
    assert "1 images written" in result.output
    assert cv2.imread(str(root / "smooth" / "a.png")).shape == (64, 64, 3)


def test_smooth_command_errors_are_one_line(tmp_path):
    for target, pattern in ((tmp_path / "missing", "no such folder"), (tmp_path, "style")):
        result = cli(["smooth", str(target)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0]
