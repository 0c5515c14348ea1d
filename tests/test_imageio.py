"""One rule for which files are images, one decoder and one encoder for the whole project."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from animevid.errors import InputError, UsageError
from animevid.imageio import decode_image, encode_image, list_images, read_image, write_image
from tests.conftest import make_image


def touch(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_which_files_are_images(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JPEG", "d.webp", "e.tif", "f.tiff", "g.bmp", "notes.txt", "film.mp4", "noext",
                 ".hidden.png", "sub/h.png", "sub/.i.png", ".cache/j.png", "z/k.jpg", ".a.png.123-abcdef.k9z8y7x6.part.png"]:
        touch(tmp_path / name)
    (tmp_path / "folder.png").mkdir()  # a folder named like an image is none
    os.symlink(tmp_path / "a.jpg", tmp_path / "link.jpg")

    flat = ["a.jpg", "b.PNG", "c.JPEG", "d.webp", "e.tif", "f.tiff", "g.bmp", "link.jpg"]
    assert [p.name for p in list_images(tmp_path)] == flat
    # Recursive: sorted by path components, so a folder's files come together.
    below = [str(p.relative_to(tmp_path)) for p in list_images(tmp_path, recursive=True)]
    assert below == [*flat, os.path.join("sub", "h.png"), os.path.join("z", "k.jpg")]


def test_png_and_webp_are_lossless_and_jpeg_is_quality_95(tmp_path):
    rgb = make_image(21, 34)
    for suffix in (".png", ".webp"):
        write_image(tmp_path / f"x{suffix}", rgb)
        assert np.array_equal(cv2.cvtColor(cv2.imread(str(tmp_path / f"x{suffix}")), cv2.COLOR_BGR2RGB), rgb)
    write_image(tmp_path / "x.jpg", rgb)
    ok, expected = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok and (tmp_path / "x.jpg").read_bytes() == expected.tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg", "x.png", "x.webp"]  # no temporaries left


def test_channel_orders(tmp_path):
    rgb = make_image(9, 11)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    assert encode_image(bgr, ".png", order="bgr") == encode_image(rgb, ".png")
    data = encode_image(rgb, ".png")
    assert np.array_equal(decode_image(data), rgb) and np.array_equal(decode_image(data, order="bgr"), bgr)
    gray = decode_image(data, order="gray")
    assert gray.shape == (9, 11) and np.array_equal(gray, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE))
    assert np.array_equal(decode_image(encode_image(gray, ".png", order="gray"), order="gray"), gray)


def test_bad_files_and_names(tmp_path):
    with pytest.raises(InputError, match="is not a readable image"):
        read_image(touch(tmp_path / "text.png", b"hello"))
    with pytest.raises(InputError, match="cannot read"):
        read_image(tmp_path / "missing.png")
    assert decode_image(b"") is None
    with pytest.raises(UsageError, match="cannot write images as .gif"):
        encode_image(make_image(4, 4), ".gif")
