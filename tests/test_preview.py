import cv2
import numpy as np
import pytest

from animevid.weights import styles
from animevid.errors import InputError, StyleNotFoundError, UsageError
from animevid.imageio import read_image, write_image
from animevid.preview import PreviewOptions, contact_sheet
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.weights.formats import load_generator
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.http_server import serve
from tests.style_fixtures import install_random_style, write_kon_mirror
from tests.video_fixtures import make_clip, read_clip

CPU = InferenceOptions(device="cpu")


def stylized(style: str, rgb: np.ndarray) -> np.ndarray:
    """The style's output for ``rgb``, computed directly from its installed weights."""
    return Stylizer(load_generator(styles.style_path(style)), CPU).image(rgb)


def split_sheet(sheet: np.ndarray, rows: int, columns: int, cell: tuple[int, int]) -> tuple[int, int, list[list[np.ndarray]]]:
    """(header height, left band width, cells[row][column]) of a sheet whose cells are ``cell`` = (h, w)."""
    header, band = sheet.shape[0] - rows * cell[0], sheet.shape[1] - columns * cell[1]
    cells = [
        [sheet[header + r * cell[0] : header + (r + 1) * cell[0], band + c * cell[1] : band + (c + 1) * cell[1]] for c in range(columns)]
        for r in range(rows)
    ]
    return header, band, cells


def has_text(region: np.ndarray) -> bool:
    """Labels are light text on a dark band: some pixels much brighter than the band."""
    return int(region.max()) - int(np.median(region)) > 100


@pytest.fixture
def two_styles():
    install_random_style("zeta", seed=1)
    install_random_style("alpha", seed=2, architecture="animegan-v2")
    return ["zeta", "alpha"]


def test_photo_sheet_is_the_source_then_each_style_in_the_order_given(tmp_path, two_styles):
    photo = make_image(60, 80)
    write_image(tmp_path / "photo.png", photo)
    sheet = contact_sheet(tmp_path / "photo.png", PreviewOptions(styles=("zeta", "alpha"), max_side=40, inference=CPU))
    source = cv2.resize(photo, (40, 30), interpolation=cv2.INTER_AREA)  # longer side 80 -> 40
    header, band, cells = split_sheet(sheet, rows=1, columns=3, cell=(30, 40))
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert band == 0 and 10 <= header <= 40  # a photo has no times: no left band
    assert np.array_equal(cells[0][0], source)
    assert np.array_equal(cells[0][1], stylized("zeta", source))
    assert np.array_equal(cells[0][2], stylized("alpha", source))
    for column in range(3):
        assert has_text(sheet[:header, column * 40 : (column + 1) * 40])  # every column is labelled


def test_video_sheet_has_frames_spread_over_the_video_in_rows_with_their_times(tmp_path, two_styles):
    clip = make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=25, fps=10)  # 2.5 s
    contents = read_clip(clip)
    sheet = contact_sheet(clip, PreviewOptions(styles=("alpha",), frames=3, max_side=32, inference=CPU))
    # Rows are the frames on screen at the middles of three equal parts of the video.
    times = [(i + 0.5) * float(contents.duration) / 3 for i in range(3)]
    shown = [max(i for i, t in enumerate(contents.times) if t <= time) for time in times]
    assert shown == [4, 12, 20]
    header, band, cells = split_sheet(sheet, rows=3, columns=2, cell=(24, 32))
    assert 10 <= header <= 40 and 10 <= band <= 80
    for row, index in enumerate(shown):
        source = cv2.resize(contents.frames[index], (32, 24), interpolation=cv2.INTER_AREA)
        assert np.abs(cells[row][0].astype(int) - source).max() <= 1  # decoders may round chroma differently
        assert np.array_equal(cells[row][1], stylized("alpha", cells[row][0]))
        assert has_text(sheet[header + row * 24 : header + (row + 1) * 24, :band])


def test_without_styles_every_installed_style_is_shown_in_name_order(tmp_path, two_styles):
    write_image(tmp_path / "photo.png", make_image(20, 20))
    sheet = contact_sheet(tmp_path / "photo.png", PreviewOptions(max_side=20, inference=CPU))
    _, _, cells = split_sheet(sheet, rows=1, columns=3, cell=(20, 20))
    assert np.array_equal(cells[0][1], stylized("alpha", cells[0][0]))
    assert np.array_equal(cells[0][2], stylized("zeta", cells[0][0]))


def test_small_sources_are_not_enlarged(tmp_path, two_styles):
    write_image(tmp_path / "photo.png", make_image(20, 28))
    sheet = contact_sheet(tmp_path / "photo.png", PreviewOptions(styles=("zeta",), max_side=512, inference=CPU))
    assert sheet.shape[1] == 2 * 28


def test_cli_writes_the_sheet_and_refuses_to_overwrite_it(tmp_path, two_styles):
    write_image(tmp_path / "photo.png", make_image(30, 30))
    out = tmp_path / "sheet.png"
    result = run_cli("preview", tmp_path / "photo.png", "-s", "zeta", "-o", out, "--max-side", "30", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    first = read_image(out)
    _, _, cells = split_sheet(first, rows=1, columns=2, cell=(30, 30))
    assert np.array_equal(cells[0][1], stylized("zeta", cells[0][0]))
    assert_one_line_error(run_cli("preview", tmp_path / "photo.png", "-s", "zeta", "-o", out), "already exists", "--overwrite")
    again = run_cli("preview", tmp_path / "photo.png", "-s", "alpha", "-o", out, "--max-side", "30", "--overwrite", "-q")
    assert again.exit_code == 0 and not np.array_equal(read_image(out), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "sheet.png"]  # no temporaries left


def test_the_default_output_is_beside_the_source(tmp_path, two_styles):
    write_image(tmp_path / "photo.png", make_image(16, 16))
    assert run_cli("preview", tmp_path / "photo.png", "-s", "zeta", "-q").exit_code == 0
    assert (tmp_path / "photo.preview.png").is_file()


def test_official_styles_not_installed_are_fetched_first_and_it_says_so(tmp_path, two_styles):
    write_image(tmp_path / "photo.png", make_image(24, 24))
    with serve(write_kon_mirror(tmp_path / "mirror")) as (url, log):
        result = run_cli("preview", tmp_path / "photo.png", "-s", "kon", "-s", "zeta", "-o", tmp_path / "s.png", "--mirror", url)
    assert result.exit_code == 0, result.output
    assert "fetching style 'kon'" in result.stderr and len(log.requests) == 2
    _, _, cells = split_sheet(read_image(tmp_path / "s.png"), rows=1, columns=3, cell=(24, 24))
    assert np.array_equal(cells[0][1], stylized("kon", cells[0][0]))


def test_no_styles_installed_is_a_one_line_error(tmp_path):
    write_image(tmp_path / "photo.png", make_image(16, 16))
    assert_one_line_error(run_cli("preview", tmp_path / "photo.png"), "no styles are installed")
    with pytest.raises(StyleNotFoundError):
        contact_sheet(tmp_path / "photo.png")


def test_a_style_that_cannot_be_had_is_named_before_any_work(tmp_path, two_styles, monkeypatch):
    write_image(tmp_path / "photo.png", make_image(16, 16))
    monkeypatch.setattr(styles, "fetch_style", lambda *a, **k: pytest.fail("fetched before checking every style"))
    # kon could be fetched, face-paint cannot (it is added from a file), nosuch is unknown.
    for name, fragment in (("face-paint", "styles add face-paint"), ("nosuch", "'nosuch' is not installed")):
        result = run_cli("preview", tmp_path / "photo.png", "-s", "kon", "-s", name, "-o", tmp_path / "s.png")
        assert_one_line_error(result, fragment)
    assert not (tmp_path / "s.png").exists()


def test_an_unreadable_source_is_a_one_line_error(tmp_path, two_styles):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 100)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert_one_line_error(run_cli("preview", tmp_path / "broken.mp4", "-s", "zeta"), "broken.mp4")
    assert_one_line_error(run_cli("preview", tmp_path / "broken.png", "-s", "zeta"), "broken.png", "not a readable image")
    assert_one_line_error(run_cli("preview", tmp_path / "missing.png", "-s", "zeta"), "does not exist")
    with pytest.raises(InputError):
        contact_sheet(tmp_path / "broken.mp4", PreviewOptions(styles=("zeta",)))


def test_bad_options_are_refused():
    with pytest.raises(UsageError, match="twice"):
        PreviewOptions(styles=("kon", "kon"))
    with pytest.raises(UsageError, match="--frames"):
        PreviewOptions(frames=0)


def test_start_and_end_spread_the_video_rows_over_that_range(tmp_path, two_styles):
    clip = make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=40, fps=10)  # 4 s
    contents = read_clip(clip)
    sheet = contact_sheet(clip, PreviewOptions(styles=("alpha",), frames=2, max_side=32, inference=CPU, start=1.0, end=3.0))
    # The middles of [1, 2) and [2, 3): 1.5 s and 2.5 s, frames 15 and 25 at 10 fps.
    header, band, cells = split_sheet(sheet, rows=2, columns=2, cell=(24, 32))
    for row, index in enumerate([15, 25]):
        source = cv2.resize(contents.frames[index], (32, 24), interpolation=cv2.INTER_AREA)
        assert np.abs(cells[row][0].astype(int) - source).max() <= 1


def test_a_range_is_refused_when_it_cannot_apply(tmp_path, two_styles):
    with pytest.raises(UsageError, match="--end must be after --start"):
        PreviewOptions(start=2.0, end=1.0)
    with pytest.raises(UsageError, match="--start must be"):
        PreviewOptions(start=-1.0)
    clip = make_clip(tmp_path / "clip.mp4", width=32, height=24, frames=10, fps=10)
    with pytest.raises(UsageError, match="not before the end of the video"):
        contact_sheet(clip, PreviewOptions(styles=("alpha",), inference=CPU, start=5.0))
    assert_one_line_error(run_cli("preview", clip, "-s", "alpha", "--start", "5"), "--start 5 s is not before the end")
    write_image(tmp_path / "photo.png", make_image(20, 20))
    with pytest.raises(UsageError, match="apply to videos"):
        contact_sheet(tmp_path / "photo.png", PreviewOptions(styles=("alpha",), inference=CPU, start=1.0))
