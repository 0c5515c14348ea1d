"""Jobs on Ray (a local cluster): the same files as a local run, retries, resuming a killed job, no Ray installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from animevid.errors import InputError
from tests.clitools import assert_one_line_error, run_cli
from tests.jobs.test_folder_videos import LOSSLESS, make_media_folder, packets, tree
from tests import CHECKOUT

# A loopback address Ray keeps as it is (it swaps 127.0.0.1 for the machine's network address).
NODE_IP = "127.0.0.2"
# Workers import this module (the test doubles below) and keep off the network and token files.
RAY_ENV = {"PYTHONPATH": str(CHECKOUT), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ray_address():
    """One local cluster of 2 CPUs for the whole module (starting one takes seconds); its address."""
    ray = pytest.importorskip("ray")
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)
    ray.init(address="local", num_cpus=2, _node_ip_address=NODE_IP, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stream_packets(path: Path) -> list[tuple[str, int | None, int | None, bytes]]:
    """:func:`packets` stream by stream, as the segment join promises them: it interleaves the streams
    its own way, and sets the video's decoding times itself (monotonic across parts; the presentation
    times, the payloads and every audio packet are the single-process file's)."""
    listed = [(kind, pts, None if kind == "video" else dts, payload) for kind, pts, dts, payload in packets(path)]
    return sorted(listed, key=lambda packet: packet[0])


def same_outputs(ours: Path, reference: Path, *, interleaving: bool = True) -> None:
    assert tree(ours) == tree(reference)
    for name in tree(ours):
        if name.endswith(".png"):
            assert (ours / name).read_bytes() == (reference / name).read_bytes(), name
        elif interleaving:
            assert packets(ours / name) == packets(reference / name), name
        else:
            assert stream_packets(ours / name) == stream_packets(reference / name), name


@pytest.fixture(scope="module")
def media(tmp_path_factory, random_weights):
    """A folder of two videos and a photo, and what the local job makes of it."""
    folder = tmp_path_factory.mktemp("ray_media")
    source = make_media_folder(folder / "media")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # a worker's threads: one per CPU of its task
    try:
        assert run_cli("stylize", source, folder / "local", "--weights", random_weights, *LOSSLESS).exit_code == 0
    finally:
        torch.set_num_threads(previous)
    return source, folder / "local"


def test_without_ray_the_option_is_a_one_line_error(tmp_path, random_weights, monkeypatch):
    source = make_media_folder(tmp_path / "media")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as when not installed
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, "--ray")
    assert_one_line_error(result, "--ray needs Ray", "pip install 'animevid[ray]'")
    assert not (tmp_path / "out").exists()


def test_a_ray_job_makes_the_files_of_the_local_job(ray_address, media, tmp_path, random_weights):
    source, local = media
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, *LOSSLESS[:-1], "--ray")
    assert result.exit_code == 0, result.output
    same_outputs(tmp_path / "out", local)
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("1 images and 2 videos (10 frames) in") and "on Ray" in line for line in lines)
    workers = [line for line in lines if " pid " in line and "fps" in line]
    assert workers and sum(int(line.split(": ")[1].split(" files")[0]) for line in workers) == 3


def test_a_single_video_by_address(ray_address, media, tmp_path, random_weights):
    source, local = media
    out = tmp_path / "a.mp4"
    result = run_cli("stylize", source / "a.mp4", out, "--weights", random_weights, *LOSSLESS[:-1], "--ray", ray_address)
    assert result.exit_code == 0, result.output
    assert "6 frames in" in result.stderr
    assert stream_packets(out) == stream_packets(local / "a.mp4")  # its segments (here one) joined


# -- retries: test doubles of the task, run by the workers (they import this module) -------------------


def _attempt(task) -> int:
    """Count this attempt at ``task`` in a file beside the job's source folder; return the count."""
    source = Path(task.name)
    marker = next(p for p in source.parents if p.name == "media").parent / "attempts" / source.name
    marker.parent.mkdir(exist_ok=True)
    with marker.open("a") as log:
        log.write("x")
    return len(marker.read_text())


def crashing_once_task(weights, task, data):
    """The worker dies on the first attempt at each file, as on a preempted node."""
    from animevid.jobs.ray import stylize_file_task

    if _attempt(task) == 1:
        os._exit(1)
    return stylize_file_task(weights, task, data)


def transient_once_task(weights, task, data):
    """The first attempt at each file meets a full scratch disk."""
    from animevid.jobs.ray import stylize_file_task

    if _attempt(task) == 1:
        raise OSError(28, "No space left on device")
    return stylize_file_task(weights, task, data)


def bad_input_task(weights, task, data):
    """Every attempt at the photo finds a bad input."""
    from animevid.jobs.ray import stylize_file_task

    _attempt(task)
    if task.kind == "image":
        raise InputError(f"{task.name} is not a readable image")
    return stylize_file_task(weights, task, data)


@pytest.mark.parametrize("task", [crashing_once_task, transient_once_task], ids=["worker-dies", "transient-error"])
def test_a_task_that_fails_once_is_retried_and_the_job_succeeds(ray_address, media, tmp_path, random_weights, monkeypatch, task):
    import animevid.jobs.ray

    source, local = media
    copy = tmp_path / "media"
    subprocess.run(["cp", "-r", str(source), str(copy)], check=True)
    monkeypatch.setattr(animevid.jobs.ray, "stylize_file_task", task)
    result = run_cli("stylize", copy, tmp_path / "out", "--weights", random_weights, *LOSSLESS, "--ray")
    assert result.exit_code == 0, result.output
    same_outputs(tmp_path / "out", local)
    attempts = {p.name: len(p.read_text()) for p in (tmp_path / "attempts").iterdir()}
    assert attempts == {"a.mp4": 2, "b.mkv": 2, "photo.png": 2}


def test_a_bad_input_is_not_retried(ray_address, media, tmp_path, random_weights, monkeypatch):
    import animevid.jobs.ray

    source, local = media
    copy = tmp_path / "media"
    subprocess.run(["cp", "-r", str(source), str(copy)], check=True)
    monkeypatch.setattr(animevid.jobs.ray, "stylize_file_task", bad_input_task)
    result = run_cli("stylize", copy, tmp_path / "out", "--weights", random_weights, *LOSSLESS, "--ray")
    assert_one_line_error(result, "1 of 3 files failed", "photo.png is not a readable image", "the others were written")
    assert len((tmp_path / "attempts" / "photo.png").read_text()) == 1
    assert tree(tmp_path / "out") == ["a.mp4", "sub/b.mkv"]


# -- a job killed midway ---------------------------------------------------------------------------

_KILLED_DRIVER = """
import os, signal, sys
import animevid.jobs.ray as ray_jobs
from animevid._cli import main
from animevid.fileio import atomic_path

real_write, writes = ray_jobs.write_bytes_atomic, []

def write_then_die(path, data):
    writes.append(path)
    if len(writes) == 2:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data[: len(data) // 2])
            print(tmp, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # the driver dies with half its second output written
    real_write(path, data)

ray_jobs.write_bytes_atomic = write_then_die
main(sys.argv[1:])
"""


@pytest.mark.skipif(os.name != "posix", reason="kill -9")
def test_a_killed_job_rerun_with_skip_existing_continues(ray_address, media, tmp_path, random_weights):
    source, local = media
    out = tmp_path / "out"
    command = [
        sys.executable, "-c", _KILLED_DRIVER, "stylize", str(source), str(out), "--weights", str(random_weights),
        *LOSSLESS, "--ray", ray_address,
    ]  # fmt: skip
    child = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, env={**os.environ, **RAY_ENV}, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    temporary = Path(child.stdout.strip().splitlines()[-1])
    assert temporary.is_file() and temporary.name.endswith(".part" + temporary.suffix)
    finished = [name for name in tree(out) if not Path(name).name.startswith(".")]
    assert len(finished) == 1  # the first output, whole; the second only as a temporary

    result = run_cli("stylize", source, out, "--weights", random_weights, *LOSSLESS[:-1], "--ray", "--skip-existing")
    assert result.exit_code == 0, result.output
    assert "1 existing outputs kept" in result.stderr
    assert not temporary.exists()
    same_outputs(out, local)


# -- a long video: its segments are the tasks --------------------------------------------------------


def test_a_single_video_runs_as_segment_tasks(ray_address, tmp_path, random_weights):
    from tests.video_fixtures import make_clip

    film = make_clip(tmp_path / "film.mkv", frames=24, audio="mono", encoder_options={"preset": "fast", "g": "6", "keyint_min": "6", "sc_threshold": "0"})
    options = ("--weights", random_weights, *LOSSLESS[:-1], "--segment-seconds", "0.25")
    # The same segments, in two local worker processes: each segment's encoding starts on a key frame.
    assert run_cli("stylize", film, tmp_path / "local.mkv", *options, "--workers", "2").exit_code == 0
    result = run_cli("stylize", film, tmp_path / "ray.mkv", *options, "--ray", ray_address)
    assert result.exit_code == 0, result.output
    assert stream_packets(tmp_path / "ray.mkv") == stream_packets(tmp_path / "local.mkv")
    workers = [line for line in result.stderr.splitlines() if " pid " in line and " segments, " in line]
    assert workers and sum(int(line.split(": ")[1].split(" segments")[0]) for line in workers) == 4  # 24 frames, a key frame every 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the work folder is gone


def segment_attempts() -> Path:
    """Where the workers count attempts: a fixed place in the session's temporary folder (the workers
    inherit its TMPDIR), as they started before the test and share no variable with it."""
    return Path(tempfile.gettempdir()) / "animevid-test-segment-attempts"


def crashing_segment_task(spec, source, weights, cpus):
    """The worker dies on the first attempt at segment 0, as on a preempted node."""
    from animevid.jobs.ray import render_segment_task

    marker = segment_attempts() / f"segment-{spec.index}"
    with marker.open("a") as log:
        log.write("x")
    if spec.index == 0 and len(marker.read_text()) == 1:
        os._exit(1)
    return render_segment_task(spec, source, weights, cpus)


def test_a_long_video_of_a_folder_is_cut_and_a_dead_segment_task_retried(ray_address, media, tmp_path, random_weights, monkeypatch):
    import animevid.jobs.ray

    source, local = media
    attempts = segment_attempts()
    shutil.rmtree(attempts, ignore_errors=True)
    attempts.mkdir()
    monkeypatch.setattr(animevid.jobs.ray, "render_segment_task", crashing_segment_task)
    # a.mp4 (0.25 s) is longer than 0.2 s: it runs as segments; b.mkv (0.16 s) and the photo as file tasks.
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, *LOSSLESS[:-1],
                     "--segment-seconds", "0.2", "--ray", ray_address)  # fmt: skip
    assert result.exit_code == 0, result.output
    same_outputs(tmp_path / "out", local, interleaving=False)
    counts = {p.name: len(p.read_text()) for p in attempts.iterdir()}
    assert counts == {"segment-0": 2}  # a.mp4's one segment: its first attempt died, the retry made it
    assert any(line.startswith("1 images and 2 videos (10 frames) in") for line in result.stderr.splitlines())
    shutil.rmtree(attempts, ignore_errors=True)


# -- a task no live node can run ---------------------------------------------------------------------

_INFEASIBLE_DRIVER = """
import sys
import animevid.jobs.ray as ray_jobs
import animevid.jobs.ray_cluster as ray_cluster
from animevid._cli import main

# Every task asks for a resource no node of the cluster has (as a GPU task when the only GPU node left).
ray_jobs._task_resources = lambda backend, options, cpus: ray_jobs.TaskResources(custom=(("animevid-test-absent", 1),))
ray_cluster.RAY_WAITS = ray_cluster.RayWaits(check_every=0.5, infeasible_grace=3)
main(sys.argv[1:])
"""


@pytest.mark.parametrize("single", [False, True], ids=["file-tasks", "segment-tasks"])
def test_a_task_no_node_can_run_ends_in_a_one_line_error(ray_address, media, tmp_path, random_weights, single):
    source, _ = media
    out = tmp_path / ("a.mp4" if single else "out")
    command = [
        sys.executable, "-c", _INFEASIBLE_DRIVER, "stylize", str(source / "a.mp4" if single else source), str(out),
        "--weights", str(random_weights), *LOSSLESS, "--ray", ray_address,
    ]  # fmt: skip
    # A regression waits for ever: the timeout turns it into a failure.
    child = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, env={**os.environ, **RAY_ENV}, timeout=180)
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert child.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), child.stderr
    assert "no live node of the Ray cluster" in lines[0] and "1 animevid-test-absent" in lines[0], lines[0]
    assert ("rerun the same command" if single else "0 of 3 files were written") in lines[0], lines[0]
    assert not out.exists() or tree(out) == []
