"""JobHooks: a long job's progress to a callback, and a cancel between batches that leaves nothing half-made."""

from __future__ import annotations

import pytest

from animevid import stylize
from animevid.errors import Cancelled, Interrupted, UsageError
from animevid.imageio import write_image
from animevid.progress import JobHooks, ProgressReporter
from animevid.options import InferenceOptions, VideoOptions
from animevid.video.pipeline import stylize_video
from tests.conftest import make_image
from tests.style_fixtures import install_random_style
from tests.video_fixtures import IdentityStylizer, make_clip, read_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TORCH = InferenceOptions(device="cpu", engine="torch")  # no OpenVINO conversion to wait for: hooks are the engine's caller's


def test_the_reporter_calls_back_with_done_total_rate_and_eta(monkeypatch):
    clock = iter([100.0, 102.0, 104.0, 104.0, 104.0])  # start, then two advances 2 s apart
    monkeypatch.setattr("animevid.progress.time.perf_counter", lambda: next(clock))
    calls = []
    with ProgressReporter("job", total=10, enabled=False, hooks=JobHooks(on_progress=lambda *a: calls.append(a))) as bar:
        bar.advance(2)  # at 102: 2 frames in 2 s -> 1/s, 8 left -> 8 s
        bar.advance(2)  # at 104: 4 in 4 s -> 1/s, 6 left -> 6 s
    assert calls == [(2, 10, 1.0, 8.0), (4, 10, 1.0, 6.0)]


def test_without_a_total_the_eta_is_unknown():
    calls = []
    with ProgressReporter("job", total=None, enabled=False, hooks=JobHooks(on_progress=lambda *a: calls.append(a))) as bar:
        bar.advance(3)
    assert calls[0][0] == 3 and calls[0][1] is None and calls[0][3] is None


def test_a_video_reports_every_frame_it_encodes(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    seen = []
    hooks = JobHooks(on_progress=lambda done, total, rate, eta: seen.append((done, total)))
    stylize_video(IdentityStylizer(), clip, tmp_path / "out.mp4", VideoOptions(batch_size=4), progress=False, hooks=hooks)
    assert seen == [(4, 12), (8, 12), (12, 12)]
    assert len(read_clip(tmp_path / "out.mp4").frames) == 12


def test_cancel_stops_between_batches_and_leaves_nothing(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=40)
    done, asked = [], []

    def second_time() -> bool:  # asked before each batch goes to the encoder: the second one is refused
        asked.append(1)
        return len(asked) >= 2

    hooks = JobHooks(on_progress=lambda d, *_: done.append(d), should_cancel=second_time)
    with pytest.raises(Cancelled, match=r"^cancelled after \d+ of 40 frames; nothing was written to .*out\.mp4$") as caught:
        stylize_video(IdentityStylizer(), clip, tmp_path / "out.mp4", VideoOptions(batch_size=4), progress=False, hooks=hooks)
    assert isinstance(caught.value, Interrupted)  # the CLI's exit code for a stopped job
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no output, no temporary
    assert len(asked) == 2 and max(done, default=0) <= 4  # stopped at the second batch


def test_stylize_threads_hooks_to_a_video_and_refuses_them_for_folders(tmp_path, animevid_home):
    install_random_style("zeta", seed=1)
    clip = make_clip(tmp_path / "clip.mp4", frames=6, width=32, height=24)
    seen = []
    stylize(clip, tmp_path / "out.mp4", style="zeta", options=TORCH, progress=False, hooks=JobHooks(on_progress=lambda d, t, *_: seen.append((d, t))))
    assert seen[-1] == (6, 6)
    with pytest.raises(Cancelled):
        stylize(clip, tmp_path / "again.mp4", style="zeta", options=TORCH, progress=False, hooks=JobHooks(should_cancel=lambda: True))
    assert not (tmp_path / "again.mp4").exists()
    (tmp_path / "photos").mkdir()
    with pytest.raises(UsageError, match="one photo or video"):
        stylize(tmp_path / "photos", tmp_path / "anime", style="zeta", options=TORCH, progress=False, hooks=JobHooks())


def test_a_cancelled_photo_writes_nothing(tmp_path, animevid_home):
    install_random_style("zeta", seed=1)
    write_image(tmp_path / "photo.png", make_image(16, 16))
    with pytest.raises(Cancelled):
        stylize(tmp_path / "photo.png", tmp_path / "out.png", style="zeta", options=TORCH, progress=False, hooks=JobHooks(should_cancel=lambda: True))
    assert not (tmp_path / "out.png").exists()
