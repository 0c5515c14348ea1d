import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from animevid.weights import styles
from animevid.errors import DownloadError, StyleNotFoundError, UsageError
from animevid.imageio import read_image, write_image
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.weights.formats import load_generator, load_weights, read_metadata
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.http_server import serve
from tests.style_fixtures import KON_PREFIX, write_kon_mirror
from tests.reference_generators import write_bryandlee_state_dict, write_v2_checkpoint
from tests.temporaries import kill_hard, start_writer
from tests.tf_writer import synthetic_data_for_index
from tests.video_fixtures import make_clip, read_clip

# The pinned locations, written out here rather than read from the table they test.
HAYAO_DIR = "TachibanaYoshino/AnimeGAN/b7c16f7c58e6c609f4064b1228782419a7e7a45c/checkpoint/generator_Hayao_weight"
KON_FILES = [f"/{KON_PREFIX}.index", f"/{KON_PREFIX}.data-00000-of-00001"]
DATA = ".data-00000-of-00001"


@pytest.fixture
def v2_mirror(tmp_path):
    return write_kon_mirror(tmp_path / "mirror")


@pytest.fixture
def hayao_mirror(tmp_path, reference_dir, monkeypatch):
    """The official Hayao-60 index with synthetic data, and the known data checksum pointed at that data."""
    folder = tmp_path / "mirror" / HAYAO_DIR
    folder.mkdir(parents=True)
    shutil.copy(reference_dir / "Hayao-60.ckpt.index", folder / "Hayao-60.ckpt.index")
    synthetic_data_for_index(folder / "Hayao-60.ckpt.index", folder / f"Hayao-60.ckpt{DATA}")
    known = styles.KNOWN_STYLES["hayao"]
    data = dataclasses.replace(known.official.data, git_sha1=styles.git_blob_sha1(folder / f"Hayao-60.ckpt{DATA}"))
    monkeypatch.setitem(styles.KNOWN_STYLES, "hayao", dataclasses.replace(known, official=dataclasses.replace(known.official, data=data)))
    return tmp_path / "mirror"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stylized(style: str, rgb: np.ndarray) -> np.ndarray:
    return Stylizer(load_generator(styles.style_path(style)), InferenceOptions(device="cpu")).image(rgb)


def folder_contents(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# -- fetching ----------------------------------------------------------------------------------------


def test_fetch_kon_asks_for_exactly_the_pinned_files_and_records_their_sha256(v2_mirror):
    received = []
    with serve(v2_mirror) as (url, log):
        path = styles.fetch_style("kon", mirror=url, on_bytes=received.append)
    assert log.paths == KON_FILES
    served = [v2_mirror / (KON_PREFIX + ".index"), v2_mirror / (KON_PREFIX + DATA)]
    assert sum(received) == sum(p.stat().st_size for p in served)
    metadata = read_metadata(path)
    assert json.loads(metadata["sha256"]) == {p.name: sha256_of(p) for p in served}
    assert metadata["style"] == "kon" and metadata["architecture"] == "animegan-v2" and metadata["semantics"] == "tf1"
    assert metadata["source"] == url + KON_PREFIX
    weights = load_weights(path)
    assert weights.architecture == "animegan-v2" and len(weights.state_dict) == 77
    assert folder_contents(styles.styles_dir()) == ["kon.safetensors"]
    assert folder_contents(styles.downloads_dir()) == []  # nothing left from the download


def test_a_corrupted_byte_is_refused_naming_the_tensor_and_nothing_is_installed(v2_mirror):
    data = v2_mirror / (KON_PREFIX + DATA)
    corrupted = bytearray(data.read_bytes())
    corrupted[len(corrupted) // 2] ^= 0x40
    data.write_bytes(bytes(corrupted))
    with serve(v2_mirror) as (url, _), pytest.raises(DownloadError, match=r"generator/G_MODEL/\S+.*nothing was installed") as error:
        styles.fetch_style("kon", mirror=url)
    assert "crc" in str(error.value).lower() and "\n" not in str(error.value)
    assert not styles.style_path("kon").exists()
    assert folder_contents(styles.styles_dir()) == [] and folder_contents(styles.downloads_dir()) == []


def test_an_interrupted_fetch_resumes_the_download(v2_mirror):
    data = (v2_mirror / (KON_PREFIX + DATA)).read_bytes()
    partial = styles.downloads_dir() / "kon-4c5ab5a3f153" / f"Paprika-54.ckpt{DATA}.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:1000])  # what a fetch killed mid-download leaves
    with serve(v2_mirror) as (url, log):
        styles.fetch_style("kon", mirror=url)
    assert log.requests[-1] == (KON_FILES[1], "bytes=1000-")
    assert json.loads(read_metadata(styles.style_path("kon"))["sha256"])[f"Paprika-54.ckpt{DATA}"] == hashlib.sha256(data).hexdigest()


def test_git_blob_sha1_of_the_official_index(reference_dir):
    index = reference_dir / "Hayao-60.ckpt.index"  # the real file: its blob id and size are what the table pins
    assert styles.git_blob_sha1(index) == styles.KNOWN_STYLES["hayao"].official.index.git_sha1
    assert index.stat().st_size == styles.KNOWN_STYLES["hayao"].official.index.size


def test_hayao_is_checked_by_git_blob_sha1(hayao_mirror):
    with serve(hayao_mirror) as (url, log):
        path = styles.fetch_style("hayao", mirror=url)
    assert log.paths == [f"/{HAYAO_DIR}/Hayao-60.ckpt.index", f"/{HAYAO_DIR}/Hayao-60.ckpt{DATA}"]
    assert load_weights(path).architecture == "animegan-v1" and read_metadata(path)["source"].endswith("Hayao-60.ckpt")


def test_files_that_are_not_the_official_ones_are_refused(hayao_mirror):
    data = hayao_mirror / HAYAO_DIR / f"Hayao-60.ckpt{DATA}"
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")  # same size, other bytes
    with serve(hayao_mirror) as (url, _), pytest.raises(DownloadError, match="checksum mismatch"):
        styles.fetch_style("hayao", mirror=url)
    assert folder_contents(styles.styles_dir()) == [] and folder_contents(styles.downloads_dir()) == []


def test_fetch_reports_http_errors_and_unreachable_servers(tmp_path):
    with serve(tmp_path) as (url, _), pytest.raises(DownloadError, match="HTTP 404"):
        styles.fetch_style("kon", mirror=url)
    with pytest.raises(DownloadError, match="failed"):
        styles.fetch_style("shinkai", mirror="http://127.0.0.1:9/", timeout=5)
    assert folder_contents(styles.styles_dir()) == []


def test_styles_fetch_cli_takes_a_mirror_and_shows_progress(v2_mirror):
    with serve(v2_mirror) as (url, log):
        result = run_cli("styles", "fetch", "kon", "--mirror", url)
    assert result.exit_code == 0, result.output
    assert log.paths == KON_FILES and "installed style 'kon'" in result.output
    assert "fetching style 'kon'" in result.stderr and "4c5ab5a" in result.stderr


def test_every_fetchable_style_is_pinned_to_a_commit():
    for name, known in styles.KNOWN_STYLES.items():
        if known.official is not None:
            url = known.official.url(known.official.data)
            assert url.startswith("https://raw.githubusercontent.com/TachibanaYoshino/"), name
            assert len(url.split("/")[5]) == 40, f"{name}: {url} is not at a commit"


# -- first use from stylize --------------------------------------------------------------------------


def test_stylize_a_photo_with_kon_fetches_it_on_first_use(v2_mirror, tmp_path, monkeypatch):
    photo = make_image(24, 32)
    write_image(tmp_path / "photo.png", photo)
    with serve(v2_mirror) as (url, log):
        monkeypatch.setenv("ANIMEVID_MIRROR", url)
        result = run_cli("stylize", tmp_path / "photo.png", tmp_path / "out.png", "--style", "kon", "-q")
    assert result.exit_code == 0, result.output
    assert log.paths == KON_FILES
    assert np.array_equal(read_image(tmp_path / "out.png"), stylized("kon", photo))


def test_stylize_a_video_with_kon_end_to_end(v2_mirror, tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", width=32, height=24, frames=6, fps=12)
    with serve(v2_mirror) as (url, _):
        monkeypatch.setenv("ANIMEVID_MIRROR", url)
        result = run_cli("stylize", clip, tmp_path / "anime.mp4", "--style", "kon", "--no-compile", "-q")
    assert result.exit_code == 0, result.output
    source, output = read_clip(clip), read_clip(tmp_path / "anime.mp4")
    assert len(output.frames) == 6 and output.frames[0].shape == (24, 32, 3)
    expected = stylized("kon", source.frames[2])
    error = np.abs(output.frames[2].astype(int) - expected).mean()
    unrelated = np.abs(output.frames[2].astype(int) - source.frames[2]).mean()
    assert error < 6 < unrelated  # the stylized frame, up to H.264's loss


# -- installing, listing -----------------------------------------------------------------------------


def test_add_a_v2_checkpoint_and_a_bryandlee_file_records_their_semantics(tmp_path):
    write_v2_checkpoint(tmp_path / "Mine-10.ckpt", seed=5)
    write_bryandlee_state_dict(tmp_path / "face_paint_512_v2.pt", seed=6)
    assert run_cli("styles", "add", "mine", tmp_path / "Mine-10.ckpt.index").exit_code == 0
    result = run_cli("styles", "add", "face-paint", tmp_path / "face_paint_512_v2.pt")
    assert result.exit_code == 0, result.output
    listed = {info.name: info for info in styles.list_styles()}
    assert (listed["mine"].network, listed["mine"].semantics) == ("v2", "tf1")
    assert (listed["face-paint"].network, listed["face-paint"].semantics, listed["face-paint"].installed) == ("v2", "pytorch", True)
    assert read_metadata(styles.style_path("face-paint"))["source"] == str(tmp_path / "face_paint_512_v2.pt")


def test_listing_has_network_artist_film_source_and_installed(random_weights):
    styles.add_style("my-style", random_weights)
    listed = {info.name: info for info in styles.list_styles()}
    assert {"hayao", "kon", "shinkai", "hayao-v2", "face-paint", "my-style"} <= listed.keys()
    kon = listed["kon"]
    assert (kon.network, kon.artist, kon.film, kon.installed) == ("v2", "Kon Satoshi", "Paprika", False)
    assert "4c5ab5a" in kon.source and "Paprika-54" in kon.source
    assert listed["hayao"].network == "v1" and listed["shinkai"].film == "Your Name, Weathering with You"
    assert "styles add face-paint" in listed["face-paint"].source and "face_paint_512_v2.pt" in listed["face-paint"].source
    mine = listed["my-style"]
    assert mine.installed and mine.network == "v1" and mine.source == str(random_weights) and mine.artist == ""
    output = run_cli_wide("styles")
    header = next(line for line in output.splitlines() if "name" in line and "network" in line)
    assert [word for word in ("name", "network", "artist", "film", "source", "installed") if word in header] == [
        "name", "network", "artist", "film", "source", "installed"
    ]  # fmt: skip
    assert header.index("network") < header.index("artist") < header.index("film") < header.index("source") < header.index("installed")
    kon_line = next(line for line in output.splitlines() if line.strip("│ ").startswith("kon "))
    assert "v2" in kon_line and "Kon Satoshi" in kon_line and "Paprika" in kon_line and kon_line.rstrip(" │").endswith("no")


def run_cli_wide(*args: str) -> str:
    from click.testing import CliRunner

    from animevid._cli import main

    result = CliRunner().invoke(main, list(args), terminal_width=250, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_temporary_left_by_a_killed_process_is_not_a_style_and_is_cleaned(random_weights):
    styles.add_style("mine", random_weights)
    killed, leftover = start_writer(styles.style_path("kon"))  # an install of kon, killed mid-write
    kill_hard(killed)
    assert leftover.parent == styles.styles_dir() and leftover.name.endswith(".safetensors")
    listed = [info.name for info in styles.list_styles() if info.installed]
    assert listed == ["mine"]
    assert not leftover.exists() and folder_contents(styles.styles_dir()) == ["mine.safetensors"]


def test_download_folders_of_earlier_versions_are_cleaned():
    legacy = styles.styles_dir() / ".fetch-k2j4h5g6"  # where versions before downloads/ downloaded
    legacy.mkdir(parents=True)
    (legacy / "Hayao-60.ckpt.index").write_bytes(b"partial")
    assert [info.name for info in styles.list_styles() if info.installed] == []
    assert folder_contents(styles.styles_dir()) == []


def test_a_temporary_being_written_by_a_running_process_is_kept():
    styles.styles_dir().mkdir(parents=True)
    running, in_progress = start_writer(styles.style_path("kon"))
    try:
        assert [info.name for info in styles.list_styles() if info.installed] == []
        assert in_progress.exists()
    finally:
        kill_hard(running)


def test_add_list_and_remove_through_the_cli(random_weights):
    assert run_cli("styles", "add", "my-style", random_weights).exit_code == 0
    assert_one_line_error(run_cli("styles", "add", "my-style", random_weights), "already installed")
    assert run_cli("styles", "add", "my-style", random_weights, "--overwrite").exit_code == 0
    assert run_cli("styles", "remove", "my-style").exit_code == 0
    assert not styles.style_path("my-style").exists()
    assert_one_line_error(run_cli("styles", "remove", "my-style"), "not installed")


def test_unknown_and_unfetchable_styles_say_how_to_get_them():
    with pytest.raises(StyleNotFoundError, match="styles add face-paint") as error:
        styles.resolve_style("face-paint")
    assert "face_paint_512_v2.pt" in str(error.value) and "train" not in str(error.value)  # training is v1 only
    with pytest.raises(StyleNotFoundError, match="not installed.*styles add nosuchstyle.*train"):
        styles.resolve_style("nosuchstyle")
    with pytest.raises(StyleNotFoundError, match="no official weights to fetch"):
        styles.fetch_style("face-paint")
    with pytest.raises(UsageError, match="invalid style name"):
        styles.resolve_style("../etc")


def test_styles_home_follows_animevid_home(animevid_home):
    assert styles.style_path("kon") == animevid_home / "styles" / "kon.safetensors"
    assert styles.downloads_dir() == animevid_home / "downloads"
