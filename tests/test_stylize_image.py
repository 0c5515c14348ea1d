import os
import stat

import numpy as np
import pytest

from animevid.imageio import read_image, write_image
from animevid.stylizer import InferenceOptions, Stylizer
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    write_image(path, make_image(45, 61))
    return path


def test_photo_to_png(photo, tmp_path, random_weights):
    out = tmp_path / "anime.png"
    result = run_cli("stylize", photo, out, "--weights", random_weights)
    assert result.exit_code == 0, result.output
    assert "1 images in" in result.stderr and "cpu, float32" in result.stderr
    styled, original = read_image(out), read_image(photo)
    assert styled.shape == original.shape == (45, 61, 3)
    assert np.abs(styled.astype(int) - original.astype(int)).mean() > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anime.png", "photo.jpg"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_library_matches_cli_and_is_deterministic(photo, tmp_path, random_weights):
    stylizer = Stylizer.from_weights(random_weights, InferenceOptions(device="cpu"))
    image = read_image(photo)
    first, second = stylizer.image(image), stylizer.image(image)
    assert np.array_equal(first, second)
    run_cli("stylize", photo, tmp_path / "cli.png", "--weights", random_weights)
    assert np.array_equal(read_image(tmp_path / "cli.png"), first)


def test_max_side_keeps_the_output_size(photo, tmp_path, random_weights):
    assert run_cli("stylize", photo, tmp_path / "small.png", "--weights", random_weights, "--max-side", "16").exit_code == 0
    assert run_cli("stylize", photo, tmp_path / "full.png", "--weights", random_weights).exit_code == 0
    small, full = read_image(tmp_path / "small.png"), read_image(tmp_path / "full.png")
    assert small.shape == full.shape == (45, 61, 3)
    assert not np.array_equal(small, full)


def test_folder_to_folder_mirrors_the_tree(tmp_path, random_weights):
    source = tmp_path / "photos"
    (source / "sub").mkdir(parents=True)
    write_image(source / "a.png", make_image(20, 24, seed=1))
    write_image(source / "sub" / "b.jpg", make_image(33, 17, seed=2))
    (source / "notes.txt").write_text("not an image")
    (source / ".hidden.png").write_bytes(b"")
    out = tmp_path / "anime"
    result = run_cli("stylize", source, out, "--weights", random_weights)
    assert result.exit_code == 0, result.output
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["a.png", os.path.join("sub", "b.jpg")]
    assert read_image(out / "sub" / "b.jpg").shape == (33, 17, 3)
    again = run_cli("stylize", source, out, "--weights", random_weights)
    assert_one_line_error(again, "already exist", "--overwrite")
    assert run_cli("stylize", source, out, "--weights", random_weights, "--overwrite").exit_code == 0


def test_folder_with_an_unreadable_image_writes_the_others_and_fails(tmp_path, random_weights):
    source = tmp_path / "photos"
    source.mkdir()
    write_image(source / "good.png", make_image(16, 16))
    (source / "broken.jpg").write_text("this is text")
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, "-q")
    assert_one_line_error(result, "1 of 2 images could not be read", "broken.jpg")
    assert (tmp_path / "out" / "good.png").is_file() and not (tmp_path / "out" / "broken.jpg").exists()


def test_existing_output_is_kept_unless_overwrite(photo, tmp_path, random_weights):
    out = tmp_path / "anime.png"
    out.write_bytes(b"precious")
    assert_one_line_error(run_cli("stylize", photo, out, "--weights", random_weights), "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    assert run_cli("stylize", photo, out, "--weights", random_weights, "--overwrite").exit_code == 0
    assert read_image(out).shape == (45, 61, 3)


@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda d, w: ["stylize", d / "missing.jpg", d / "o.png", "--weights", w], ["does not exist"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png"], ["exactly one of --style"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--style", "kon"], ["exactly one"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "photo.jpg", "--weights", w, "--overwrite"], ["is the input"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.gif", "--weights", w], ["must be an image file"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "nodir" / "o.png", "--weights", w], ["does not exist"]),
        (lambda d, w: ["stylize", d / "text.jpg", d / "o.png", "--weights", w], ["not a readable image"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--style", "face-paint"], ["'face-paint'", "animevid styles add face-paint"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", d / "text.jpg"], ["unknown weights format"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--half"], ["needs a CUDA device"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--device", "cuda:0"], ["CUDA is not available"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--device", "tpu"], ["device"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--dtype", "int8"], ["unknown dtype"]),
        (lambda d, w: ["stylize", d / "empty", d / "out", "--weights", w], ["no images found"]),
        (lambda d, w: ["stylize", d / "empty", d / "photo.jpg", "--weights", w], ["not a folder"]),
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(tmp_path, photo, random_weights, make_args, fragments):
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "empty").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(*make_args(tmp_path, random_weights))
    assert_one_line_error(result, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert read_image(photo).shape == (45, 61, 3)  # the input is untouched
