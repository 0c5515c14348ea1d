"""The web app in a real browser: Playwright driving the system's Chromium (never Playwright's own download).

Screenshots of each page are saved under the test's temporary folder (``screenshots/``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright's Python package: pip install -e '.[dev]'")

from animevid.imageio import read_image, write_image  # noqa: E402
from animevid.progress import ProgressReporter  # noqa: E402
from tests.clitools import run_cli  # noqa: E402
from tests.conftest import make_image  # noqa: E402
from tests.video_fixtures import make_clip, read_clip  # noqa: E402

# Debian's package (apt-get install chromium): /usr/bin/chromium is a shell wrapper, the browser is below /usr/lib.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM = next((path for path in CHROMIUM_CANDIDATES if Path(path).is_file()), shutil.which("chromium"))
WAIT_MS = 60_000

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)"),
]


@pytest.fixture
def browser_page(app_url, tmp_path):
    """A Chromium page on the app, its profile under tmp_path, recording every address the page asks for."""
    profile = tmp_path / "chromium-profile"
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, accept_downloads=True, viewport={"width": 1280, "height": 900},
            env={
                "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
                "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            },
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        )  # fmt: skip
        try:
            page = context.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(app_url)
            page.wait_for_selector("#stylize-photo", timeout=WAIT_MS)
            yield page, requested
        finally:
            context.close()


def choose(page, elem_id: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown ``elem_id``, as a user does: open it, click the option."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def shoot(page, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)
    return folder / name


def test_a_photo_in_the_browser_matches_the_command_line(browser_page, app_url, tmp_path):
    page, requested = browser_page
    photo = tmp_path / "photo.png"
    write_image(photo, make_image(48, 64, seed=3))
    choose(page, "engine", "torch")  # what the command line below runs (no OpenVINO conversion to wait for)
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    page.locator("#photo input[type=file]").set_input_files(str(damaged))
    page.locator("#stylize-photo").click()
    page.get_by_text("damaged.png is not a readable image").first.wait_for(timeout=WAIT_MS)  # the library's line, in the page
    shoot(page, tmp_path, "photo-error.png")
    page.get_by_role("button", name="Remove Image").click()
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    choose(page, "photo-style", "zeta")
    page.locator("#stylize-photo").click()
    link = page.locator("#photo-download a[download]").first
    link.wait_for(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        link.click()
    download.value.save_as(tmp_path / "downloaded.png")
    shoot(page, tmp_path, "photo.png")
    result = run_cli("stylize", photo, tmp_path / "cli.png", "--style", "zeta", "--engine", "torch", "-q")
    assert result.exit_code == 0, result.output
    downloaded, expected = read_image(tmp_path / "downloaded.png"), read_image(tmp_path / "cli.png")
    assert downloaded.shape == (48, 64, 3)
    assert np.abs(downloaded.astype(int) - expected).max() <= 1
    outside = [url for url in requested if not url.startswith(app_url.rstrip("/")) and not url.startswith(("data:", "blob:"))]
    assert not outside, f"the page loaded from elsewhere: {outside}"


def test_a_clip_in_the_browser_shows_progress_and_the_result(browser_page, tmp_path, monkeypatch):
    page, _ = browser_page
    advance = ProgressReporter.advance
    monkeypatch.setattr(ProgressReporter, "advance", lambda self, count=1: (time.sleep(0.2), advance(self, count))[1])  # a slow machine
    clip = make_clip(tmp_path / "clip.mp4", width=48, height=32, frames=24, fps=12, audio="mono")
    choose(page, "engine", "torch")
    page.get_by_role("tab", name="Video").click()
    page.locator("#video input[type=file]").set_input_files(str(clip))
    page.locator("#stylize-video").click()
    progress = page.locator("#video-progress textarea")
    seen: set[str] = set()
    deadline = time.monotonic() + WAIT_MS / 1000
    while not (progress.input_value().startswith("done") or time.monotonic() > deadline):
        seen.add(progress.input_value())
        if any(value.startswith("frames ") for value in seen) and not (tmp_path / "screenshots" / "video-progress.png").exists():
            shoot(page, tmp_path, "video-progress.png")
        time.sleep(0.1)
    assert progress.input_value().startswith("done: 24 frames"), (progress.input_value(), seen)
    assert any(value.startswith("frames ") and "fps" in value for value in seen), seen
    page.locator("#video-result video").wait_for(timeout=WAIT_MS)
    saved = Path(page.locator("#video-saved textarea").input_value())
    assert len(read_clip(saved).frames) == 24
    shoot(page, tmp_path, "video.png")
