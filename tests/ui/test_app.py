"""The web app driven through its API with gradio_client, as a page would: photo, video, cancel, bad uploads, styles."""

from __future__ import annotations

import re
import time
from pathlib import Path

import av
import numpy as np
import pytest

gradio_client = pytest.importorskip("gradio_client", reason="the web app's tests need gradio_client: pip install -e '.[dev]'")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from animevid import stylize  # noqa: E402
from animevid.imageio import read_image, write_image  # noqa: E402
from animevid.options import InferenceOptions  # noqa: E402
from animevid.preview import PreviewOptions, contact_sheet  # noqa: E402
from animevid.progress import ProgressReporter  # noqa: E402
from animevid.ui.files import results_dir  # noqa: E402
from tests.clitools import run_cli  # noqa: E402
from tests.conftest import make_image  # noqa: E402
from tests.video_fixtures import make_clip, make_text, read_clip  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# torch, not OpenVINO (the CPU's default engine): converting each random-weight generator for
# OpenVINO costs 10-15 s, and the app only passes the engine on (tested in tests/engine).
ENGINE = "torch"


@pytest.fixture
def client(app_url, tmp_path) -> Client:
    return Client(app_url, verbose=False, download_files=str(tmp_path / "downloads"))


def photo_job(client: Client, photo: Path, style: str = "zeta"):
    return client.predict(handle_file(str(photo)), style, "cpu", "auto", ENGINE, 0, api_name="/stylize_photo")


def video_job(client: Client, video: Path, style: str = "zeta", start: float = 0, end: float = 0):
    """submit() of the video job as the page sends it untouched (0: no start, end or max side; CRF 18),
    the flag checkboxes (whatever VideoOptions has) left off."""
    flags = [False] * sum(1 for entry in client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/stylize_video"]["parameters"] if entry["component"] == "Checkbox")
    return client.submit(handle_file(str(video)), style, start, end, "cpu", "auto", ENGINE, 0, 18, *flags, api_name="/stylize_video")


def cli_error(*args) -> str:
    result = run_cli(*args)
    assert result.exit_code != 0
    return result.stderr.strip().removeprefix("error: ")


def test_a_photo_comes_back_at_full_size_as_the_library_makes_it(client, tmp_path):
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(50, 70))
    (before, after), download, info = photo_job(client, photo)
    stylize(photo, tmp_path / "reference.png", style="zeta", options=InferenceOptions(device="cpu", engine=ENGINE), progress=False)
    expected = read_image(tmp_path / "reference.png")
    assert read_image(download).shape == (50, 70, 3)
    assert np.array_equal(read_image(download), expected)
    assert np.array_equal(read_image(before), make_image(50, 70))
    assert "saved to" in info and Path(info.rsplit("saved to ", 1)[1]).parent == results_dir()


def test_all_styles_is_the_preview_sheet_of_every_installed_style(client, tmp_path):
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(40, 40))
    sheet = client.predict(handle_file(str(photo)), "cpu", "auto", ENGINE, api_name="/all_styles")
    expected = contact_sheet(photo, PreviewOptions(styles=("alpha", "zeta"), inference=InferenceOptions(device="cpu", engine=ENGINE)))
    assert np.array_equal(read_image(sheet), expected)


def test_a_video_keeps_its_frames_and_audio_with_progress_on_the_way(client, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", width=48, height=32, frames=24, fps=12, audio="mono")
    job = video_job(client, clip, end=1.5)
    status, video, download, saved = job.result(timeout=120)
    updates = [output[0] for output in job.outputs()]
    assert any(re.fullmatch(r"frames \d+/18 \(\d+%\) · [\d.]+ fps( · ETA \d+:\d\d:\d\d)?", line) for line in updates), updates
    assert status.startswith("done: 18 frames") and Path(saved).parent == results_dir() and Path(saved).is_file()
    contents = read_clip(Path(download))
    assert len(contents.frames) == 18 and contents.frames[0].shape == (32, 48, 3)  # [0, 1.5 s) at 12 fps
    assert [kind for kind, _ in contents.streams] == ["video", "audio"]
    with av.open(str(download)) as container:
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate
    assert 1.3 < seconds < 1.8  # the audio of the chosen range, kept


def test_cancel_stops_the_job_leaves_nothing_and_the_app_keeps_serving(client, tmp_path, monkeypatch):
    advance = ProgressReporter.advance
    monkeypatch.setattr(ProgressReporter, "advance", lambda self, count=1: (time.sleep(0.5), advance(self, count))[1])  # a slow machine
    # Under AUTO_COMPILE_MIN_FRAMES frames: no torch.compile to wait for.
    clip = make_clip(tmp_path / "clip.mp4", width=48, height=32, frames=45, fps=24)
    job = video_job(client, clip)
    deadline = time.monotonic() + 60
    while not any(output[0].startswith("frames ") for output in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), job.outputs()
        time.sleep(0.1)
    assert client.predict(api_name="/cancel_video") == "cancelling…"
    with pytest.raises(AppError, match=r"cancelled after \d+ of 45 frames; nothing was written to"):
        job.result(timeout=60)
    assert not list(results_dir().glob("*.mp4")) and not list(results_dir().glob(".*"))  # no video, no temporary
    assert client.predict(api_name="/cancel_video") == "no job of yours is running"
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(16, 16))
    assert Path(photo_job(client, photo)[1]).is_file()


def test_a_damaged_upload_gets_the_command_lines_message_and_the_app_keeps_serving(client, tmp_path):
    bad = make_text(tmp_path)  # notes.mp4: text
    job = video_job(client, bad)
    with pytest.raises(AppError) as caught:
        job.result(timeout=60)
    upload = re.search(r"\S*notes\.mp4", str(caught.value)).group(0)
    # The same line as `animevid stylize` gives for that file, the file's path aside.
    assert str(caught.value).replace(upload, "NOTES") == cli_error("stylize", bad, tmp_path / "out.mp4", "-s", "zeta", "--engine", ENGINE).replace(str(bad), "NOTES")
    not_a_photo = tmp_path / "photo.png"
    not_a_photo.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(AppError) as caught:
        photo_job(client, not_a_photo)
    upload = re.search(r"\S*photo\.png", str(caught.value)).group(0)
    line = cli_error("stylize", not_a_photo, tmp_path / "out.png", "-s", "zeta", "--engine", ENGINE)
    assert str(caught.value).replace(upload, "PHOTO") == line.replace(str(not_a_photo), "PHOTO")
    write_image(not_a_photo, make_image(16, 16))
    assert Path(photo_job(client, not_a_photo)[1]).is_file()


def test_preview_shows_frames_of_the_chosen_range(client, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", width=48, height=32, frames=40, fps=10)
    sheet = client.predict(handle_file(str(clip)), "alpha", 1.0, 3.0, "cpu", "auto", ENGINE, api_name="/preview_video")
    options = PreviewOptions(styles=("alpha",), frames=3, start=1.0, end=3.0, inference=InferenceOptions(device="cpu", engine=ENGINE))
    assert np.array_equal(read_image(sheet), contact_sheet(clip, options))


def test_a_weights_file_added_becomes_a_style(client, tmp_path):
    from animevid.weights.styles import style_path

    weights = tmp_path / "mine.safetensors"
    weights.write_bytes(style_path("zeta").read_bytes())
    message, table, *_ = client.predict("mine", handle_file(str(weights)), "from the file", api_name="/add_style")
    assert message.startswith("installed 'mine'")
    assert "mine" in [row[0] for row in table["data"]]
    with pytest.raises(AppError, match="already installed"):
        client.predict("mine", handle_file(str(weights)), "from the file", api_name="/add_style")


def test_one_job_at_a_time_photos_wait_for_the_running_video(client, tmp_path, monkeypatch):
    advance = ProgressReporter.advance
    monkeypatch.setattr(ProgressReporter, "advance", lambda self, count=1: (time.sleep(0.5), advance(self, count))[1])
    clip = make_clip(tmp_path / "clip.mp4", width=48, height=32, frames=30, fps=24)
    video = video_job(client, clip)
    deadline = time.monotonic() + 60
    while not any(output[0].startswith("frames ") for output in video.outputs()):
        assert time.monotonic() < deadline and not video.done(), video.outputs()
        time.sleep(0.1)
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(16, 16))
    waiting = client.submit(handle_file(str(photo)), "zeta", "cpu", "auto", ENGINE, 0, api_name="/stylize_photo")
    time.sleep(1.5)  # long enough for a 16x16 photo, were it not queued behind the video
    assert not waiting.done() and not video.done()
    client.predict(api_name="/cancel_video")
    assert Path(waiting.result(timeout=60)[1]).is_file()
    assert video.done()


def test_an_official_style_is_fetched_and_listed(client, tmp_path, monkeypatch):
    from tests.http_server import serve
    from tests.style_fixtures import write_kon_mirror

    with serve(write_kon_mirror(tmp_path / "mirror")) as (url, log):
        monkeypatch.setenv("ANIMEVID_MIRROR", url)  # read by the app's process (this one) when it fetches
        job = client.submit("kon", api_name="/fetch_style")
        message, table, *_ = job.result(timeout=120)
    assert message.startswith("installed 'kon'") and len(log.requests) == 2
    assert [row[-1] for row in table["data"] if row[0] == "kon"] == ["yes (tf1)"]


def test_uploads_over_the_size_limit_are_refused(ui_styles, monkeypatch, tmp_path):
    from animevid.options import UiOptions
    from animevid.ui import start
    from tests.ui.conftest import UI_ENVIRONMENT, free_port

    for name in UI_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    page = start(UiOptions(port=free_port(), max_file_size="1kb"))
    try:
        small = Client(page.local_url, verbose=False, download_files=str(tmp_path / "downloads"))
        photo = tmp_path / "photo.png"
        write_image(photo, make_image(64, 64, seed=5))  # noise: a PNG well over 1 kB
        assert photo.stat().st_size > 1024
        with pytest.raises(ValueError, match="exceeds the maximum file size of 1024 bytes"):  # the app's limit, as its page gives it
            photo_job(small, photo)
    finally:
        page.close()
