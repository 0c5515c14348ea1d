import contextlib
import dataclasses
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from animevid import styles
from animevid._cli import main
from animevid.errors import DownloadError, StyleNotFoundError, UsageError
from animevid.weights import load_weights, read_metadata
from tests.tf_writer import synthetic_data_for_index

OFFICIAL_DIR = "checkpoint/generator_Hayao_weight"


@contextlib.contextmanager
def serve(directory: Path):
    """A static file server on 127.0.0.1 (an ephemeral port), for the download code."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror_dir(tmp_path, reference_dir):
    """A copy of the official repository's layout: the real index and synthetic weights."""
    root = tmp_path / "mirror"
    folder = root / OFFICIAL_DIR
    folder.mkdir(parents=True)
    shutil.copy(reference_dir / "Hayao-60.ckpt.index", folder / "Hayao-60.ckpt.index")
    synthetic_data_for_index(folder / "Hayao-60.ckpt.index", folder / "Hayao-60.ckpt.data-00000-of-00001")
    return root


@pytest.fixture
def hayao_matching_mirror(mirror_dir, monkeypatch):
    """Point the known 'hayao' entry's data checksum at the synthetic file (the index is the real one)."""
    known = styles.KNOWN_STYLES["hayao"]
    data = mirror_dir / OFFICIAL_DIR / "Hayao-60.ckpt.data-00000-of-00001"
    files = (known.files[0], dataclasses.replace(known.files[1], git_sha1=styles.git_blob_sha1(data)))
    monkeypatch.setitem(styles.KNOWN_STYLES, "hayao", dataclasses.replace(known, files=files))
    return mirror_dir


def test_git_blob_sha1_of_the_official_index(reference_dir):
    assert styles.git_blob_sha1(reference_dir / "Hayao-60.ckpt.index") == styles.KNOWN_STYLES["hayao"].files[0].git_sha1


def test_styles_home_follows_animevid_home(animevid_home):
    assert styles.style_path("kon") == animevid_home / "styles" / "kon.safetensors"


def test_fetch_downloads_verifies_converts_and_installs(hayao_matching_mirror):
    received = []
    with serve(hayao_matching_mirror) as url:
        path = styles.fetch_style("hayao", mirror=url, on_bytes=received.append)
    assert path == styles.style_path("hayao") and sum(received) > 15_000_000
    assert read_metadata(path)["style"] == "hayao"
    assert read_metadata(path)["source"].endswith("Hayao-60.ckpt")
    assert len(load_weights(path).state_dict) == 129
    assert [p.name for p in path.parent.iterdir()] == ["hayao.safetensors"]  # no download leftovers


def test_fetch_refuses_files_that_are_not_the_official_ones(mirror_dir):
    with serve(mirror_dir) as url, pytest.raises(DownloadError, match="checksum mismatch"):
        styles.fetch_style("hayao", mirror=url)
    assert not styles.style_path("hayao").exists()
    assert list(styles.styles_dir().iterdir()) == []


def test_fetch_reports_http_errors(tmp_path):
    with serve(tmp_path) as url, pytest.raises(DownloadError, match="HTTP 404"):
        styles.fetch_style("hayao", mirror=url)


def test_fetch_reports_unreachable_servers():
    with pytest.raises(DownloadError, match="failed"):
        styles.fetch_style("hayao", mirror="http://127.0.0.1:9/", timeout=5)


def test_stylize_fetches_hayao_on_first_use(hayao_matching_mirror, tmp_path, monkeypatch):
    from tests.conftest import make_image
    from animevid.imageio import write_image

    write_image(tmp_path / "photo.png", make_image(24, 32))
    with serve(hayao_matching_mirror) as url:
        monkeypatch.setenv("ANIMEVID_MIRROR", url)
        result = CliRunner().invoke(main, ["stylize", str(tmp_path / "photo.png"), str(tmp_path / "out.png"), "--style", "hayao", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.png").is_file() and styles.style_path("hayao").is_file()


def test_add_list_and_remove(random_weights):
    runner = CliRunner()
    result = runner.invoke(main, ["styles", "add", "my-style", str(random_weights)])
    assert result.exit_code == 0, result.output
    assert read_metadata(styles.style_path("my-style"))["source"] == str(random_weights)
    listed = {info.name: info for info in styles.list_styles()}
    assert listed["my-style"].installed and not listed["kon"].installed and "Paprika" in listed["kon"].description
    assert "my-style" in runner.invoke(main, ["styles"], terminal_width=200).output
    again = runner.invoke(main, ["styles", "add", "my-style", str(random_weights)])
    assert again.exit_code != 0 and "already installed" in again.output
    assert runner.invoke(main, ["styles", "add", "my-style", str(random_weights), "--overwrite"]).exit_code == 0
    assert runner.invoke(main, ["styles", "remove", "my-style"]).exit_code == 0
    assert not styles.style_path("my-style").exists()


def test_add_accepts_a_torch_state_dict(tmp_path, random_state_dict):
    torch.save(random_state_dict, tmp_path / "g.pt")
    styles.add_style("from-torch", tmp_path / "g.pt")
    assert torch.equal(load_weights(styles.style_path("from-torch")).state_dict["out.weight"], random_state_dict["out.weight"])


def test_unknown_and_unfetchable_styles_say_how_to_get_them():
    with pytest.raises(StyleNotFoundError, match="styles add kon.*train"):
        styles.resolve_style("kon")
    with pytest.raises(StyleNotFoundError, match="not installed"):
        styles.resolve_style("nosuchstyle")
    with pytest.raises(StyleNotFoundError, match="no public official weights"):
        styles.fetch_style("shinkai")
    with pytest.raises(UsageError, match="invalid style name"):
        styles.resolve_style("../etc")
