"""Several worker processes: the same file as one process, retries, resume after a kill, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from animevid.options import InferenceOptions, ParallelOptions, VideoOptions
from animevid.jobs.parallel import ProcessBackend, stylize_video_parallel
from animevid.video.segments import render_part
from animevid.engine.stylizer import Stylizer
from animevid.video.pipeline import stylize_video
from tests.video.test_segments import LOSSLESS, assert_same_file, keyframe_clip
from tests import CHECKOUT

CPU = InferenceOptions(device="cpu", engine="torch", compile=False)
FAIL_MARKERS = "ANIMEVID_TEST_FAIL_DIR"


def flaky_render_part(spec, report):
    """render_part, except that segment 1 fails once: by an exception, or by its process dying."""
    folder = Path(os.environ[FAIL_MARKERS])
    marker = folder / f"failed-{spec.index}"
    if spec.index == 1 and not marker.exists():
        marker.write_text("x")
        if (folder / "crash").exists():
            os._exit(9)
        raise RuntimeError("worker exploded")
    return render_part(spec, report)


def slow_render_part(spec, report):
    result = render_part(spec, report)
    time.sleep(float(os.environ.get("ANIMEVID_TEST_SLOW", "0")) if spec.index > 0 else 0)
    return result


def single(tmp_path, source, weights, options):
    out = tmp_path / f"single{source.suffix}"
    stylize_video(Stylizer.from_weights(weights, CPU), source, out, options, progress=False)
    return out


def parallel(source, out, weights, options, backend=ProcessBackend, **kw):
    kw.setdefault("segment_seconds", 0.3)
    return stylize_video_parallel(
        source, out, weights, CPU, options, ParallelOptions(devices="cpu", **kw), progress=False, backend=backend
    )


def test_two_cpu_workers_write_the_single_process_file(tmp_path, random_weights, one_torch_thread):
    source = keyframe_clip(tmp_path / "in.mkv", audio="mono")
    options = VideoOptions(**LOSSLESS)
    out = tmp_path / "out.mkv"
    result = parallel(source, out, random_weights, options, workers=2)
    assert result.count == 30
    assert len([worker for worker in result.workers if "pid" in worker.name]) == 2  # both workers did segments
    assert_same_file(single(tmp_path, source, random_weights, options), out)
    assert not [p for p in tmp_path.iterdir() if "animevid-work" in p.name]  # the work folder is gone


def test_two_workers_re_encode_the_audio_as_one_process_does_and_say_so(tmp_path, random_weights, one_torch_thread, caplog):
    source = keyframe_clip(tmp_path / "edit.mkv", audio="stereo", audio_codec="pcm_s24le")  # .mp4 cannot hold 24-bit PCM
    options = VideoOptions(**LOSSLESS)
    parallel(source, tmp_path / "out.mp4", random_weights, options, workers=2)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == ["audio stream #1 (pcm_s24le) re-encoded to aac: .mp4 files cannot hold it"]
    stylize_video(Stylizer.from_weights(random_weights, CPU), source, tmp_path / "single.mp4", options, progress=False)
    assert_same_file(tmp_path / "single.mp4", tmp_path / "out.mp4")  # the re-encoded audio's packets included


@pytest.mark.parametrize("crash", [False, True], ids=["exception", "dead-process"])
def test_a_failed_segment_is_retried_on_a_fresh_worker(tmp_path, random_weights, monkeypatch, crash, one_torch_thread):
    monkeypatch.setenv(FAIL_MARKERS, str(tmp_path))
    if crash:
        (tmp_path / "crash").write_text("")
    source = keyframe_clip(tmp_path / "in.mp4", audio="mono")
    options = VideoOptions(**LOSSLESS, start=0.2)
    out = tmp_path / "out.mp4"
    result = parallel(source, out, random_weights, options, workers=2, backend=lambda slots: ProcessBackend(slots, flaky_render_part))
    assert (tmp_path / "failed-1").exists()
    assert_same_file(single(tmp_path, source, random_weights, options), out)
    assert result.count == len([1 for _ in range(result.count)])


def test_a_segment_failing_past_its_retries_fails_the_job(tmp_path, random_weights, monkeypatch):
    monkeypatch.setenv(FAIL_MARKERS, str(tmp_path))
    source = keyframe_clip(tmp_path / "in.mp4")
    from animevid.errors import AnimevidError

    with pytest.raises(AnimevidError, match="segment 1 failed 1 times"):
        parallel(source, tmp_path / "out.mp4", random_weights, VideoOptions(**LOSSLESS), workers=1, retries=0,
                 backend=lambda slots: ProcessBackend(slots, flaky_render_part))  # fmt: skip
    assert not (tmp_path / "out.mp4").exists()


KILLED_JOB = """
import sys
from animevid.options import InferenceOptions, ParallelOptions, VideoOptions
from animevid.jobs.parallel import ProcessBackend, stylize_video_parallel
from tests.jobs.test_parallel import slow_render_part
stylize_video_parallel(sys.argv[1], sys.argv[2], sys.argv[3], InferenceOptions(device="cpu", engine="torch", compile=False),
    VideoOptions(crf=0, preset="ultrafast"), ParallelOptions(devices="cpu", workers=2, segment_seconds=0.3),
    progress=False, backend=lambda slots: ProcessBackend(slots, slow_render_part))
"""


def test_a_job_killed_midway_continues_from_its_finished_parts(tmp_path, random_weights, one_torch_thread):
    source = keyframe_clip(tmp_path / "in.mp4", audio="mono")
    out = tmp_path / "out.mp4"
    env = {**os.environ, "ANIMEVID_TEST_SLOW": "30", "PYTHONPATH": str(CHECKOUT)}
    job = subprocess.Popen([sys.executable, "-c", KILLED_JOB, source, out, random_weights], env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    manifests: list[Path] = []
    while time.monotonic() < deadline and not manifests:
        manifests = list(tmp_path.glob(".out.mp4.animevid-work-*/part-*.json"))
        time.sleep(0.1)
    time.sleep(1.0)  # the second part is rendered, then its worker sleeps: killed before it is recorded
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert manifests and not out.exists()
    finished = {p.name: p.stat().st_mtime_ns for p in manifests[0].parent.glob("part-*.json")}
    assert finished
    result = parallel(source, out, random_weights, VideoOptions(crf=0, preset="ultrafast"), workers=2)
    assert f"{len(finished)} segments reused" in result.summary()
    assert_same_file(single(tmp_path, source, random_weights, VideoOptions(crf=0, preset="ultrafast")), out)


def test_cli_workers_write_one_file_and_say_what_each_worker_did(tmp_path, random_weights):
    from tests.clitools import run_cli

    source = keyframe_clip(tmp_path / "in.mp4", audio="mono")
    out = tmp_path / "out.mp4"
    result = run_cli(
        "stylize", source, out, "--weights", random_weights, "--engine", "torch", "--no-compile",
        "--devices", "cpu", "--workers", "2", "--segment-seconds", "0.3", "--crf", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "30 frames in" in result.stderr
    assert result.stderr.count(" pid ") == 2
    again = run_cli("stylize", source, out, "--weights", random_weights, "--workers", "2")
    assert again.exit_code != 0 and "already exists" in again.stderr


INTERRUPTED_CLI = """
import sys
import animevid.jobs.parallel
from tests.jobs.test_parallel import slow_render_part
animevid.jobs.parallel.ProcessBackend.__init__.__defaults__ = (slow_render_part,)  # segments after the first take long
from animevid._cli import main
main(sys.argv[1:], prog_name="animevid")
"""


def test_ctrl_c_midway_exits_130_keeps_the_finished_parts_and_a_rerun_reuses_them(tmp_path, random_weights, one_torch_thread):
    from tests.clitools import run_cli

    source = keyframe_clip(tmp_path / "in.mp4", audio="mono")
    out = tmp_path / "out.mp4"
    args = [source, out, "--weights", random_weights, "--engine", "torch", "--no-compile", "--workers", "2",
            "--segment-seconds", "0.3", "--crf", "0", "--preset", "ultrafast", "--no-deflicker"]  # fmt: skip
    env = {**os.environ, "ANIMEVID_TEST_SLOW": "60", "PYTHONPATH": str(CHECKOUT)}
    job = subprocess.Popen([sys.executable, "-c", INTERRUPTED_CLI, "stylize", *map(str, args), "-q"], env=env,
                           start_new_session=True, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        manifests: list[Path] = []
        while time.monotonic() < deadline and not manifests and job.poll() is None:
            manifests = list(tmp_path.glob(".out.mp4.animevid-work-*/part-*.json"))
            time.sleep(0.1)
        assert manifests, "no segment finished"
        job.send_signal(signal.SIGINT)  # Ctrl-C reaches the parent; its workers ignore SIGINT
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode == 130, stderr
    assert "interrupted" in stderr and "rerun the same command to continue" in stderr
    assert not out.exists()
    (work,) = [p for p in tmp_path.iterdir() if "animevid-work" in p.name]  # nothing else beside the destination
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", work.name])
    finished = sorted(p.name for p in work.glob("part-*.json"))
    assert finished and all((work / name.replace(".json", ".nut")).is_file() for name in finished)
    result = run_cli("stylize", *args)
    assert result.exit_code == 0, result.output
    assert f"{len(finished)} segments reused from an interrupted run" in result.stderr
    assert not work.exists()
    assert_same_file(single(tmp_path, source, random_weights, VideoOptions(**LOSSLESS)), out)
