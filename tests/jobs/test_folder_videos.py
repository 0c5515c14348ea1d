"""Folder jobs with videos: each video as its single-file job makes it, refusals up front, resuming."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from animevid.imageio import write_image
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.video_fixtures import make_clip, read_clip, side_packets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Lossless (libx264 at crf 0) and the torch engine: equal inputs give equal packets.
LOSSLESS = ("--engine", "torch", "--crf", "0", "-q")


def packets(path: Path) -> list[tuple[str, int | None, int | None, bytes]]:
    """(stream type, pts, dts, payload) of every packet of the file, read with plain PyAV."""
    with av.open(str(path)) as container:
        return [(p.stream.type, p.pts, p.dts, bytes(p)) for p in container.demux() if p.size]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def make_media_folder(folder: Path) -> Path:
    """Two videos (one with audio, one in a subfolder, another container) and a photo."""
    (folder / "sub").mkdir(parents=True)
    make_clip(folder / "a.mp4", frames=6, audio="mono")
    make_clip(folder / "sub" / "b.mkv", frames=4, fps=25)
    write_image(folder / "photo.png", make_image(20, 24))
    (folder / ".hidden.mp4").write_bytes(b"not looked at")
    return folder


def test_a_folder_of_videos_and_a_photo_equals_the_single_file_jobs(tmp_path, random_weights):
    source = make_media_folder(tmp_path / "media")
    out = tmp_path / "anime"
    result = run_cli("stylize", source, out, "--weights", random_weights, *LOSSLESS[:-1])
    assert result.exit_code == 0, result.output
    assert "1 images and 2 videos (10 frames) in" in result.stderr
    assert tree(out) == ["a.mp4", "photo.png", "sub/b.mkv"]
    singles = tmp_path / "singles"
    singles.mkdir()
    for name in ("a.mp4", "b.mkv", "photo.png"):
        original = next(source.rglob(name))
        assert run_cli("stylize", original, singles / name, "--weights", random_weights, *LOSSLESS).exit_code == 0
        ours = next(out.rglob(name))
        if name.endswith(".png"):
            assert ours.read_bytes() == (singles / name).read_bytes()
            continue
        assert packets(ours) == packets(singles / name)  # every stream, packet for packet
        assert read_clip(ours).times == read_clip(original).times  # every frame, with its timestamp
    assert side_packets(out / "a.mp4", "audio") == side_packets(source / "a.mp4", "audio")


@pytest.mark.parametrize(
    "prepare, extra, fragments",
    [
        (lambda d: shutil.copy(d / "a.mp4", d / "c.flv"), [], ["c.flv", ".flv videos are read but cannot be written"]),
        (lambda d: (d / "notes.mkv").write_text("not a video\n" * 20), [], ["notes.mkv", "not a readable video"]),
        (lambda d: None, ["--keep-partial"], ["--keep-partial applies to a single video"]),
    ],
)
def test_what_a_folder_job_cannot_finish_is_refused_before_any_work(tmp_path, random_weights, prepare, extra, fragments):
    source = make_media_folder(tmp_path / "media")
    prepare(source)
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, *extra)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_audio_its_container_cannot_hold_is_re_encoded_not_refused(tmp_path, random_weights):
    source = make_media_folder(tmp_path / "media")
    (source / "a.mp4").rename(source / "a.webm")  # an MP4 named .webm: the job writes WebM, which cannot hold AAC
    out = tmp_path / "out"
    result = run_cli("stylize", source, out, "--weights", random_weights, "--engine", "torch", "--codec", "libvpx-vp9", "-q")
    assert result.exit_code == 0, result.output
    assert "warning: audio stream #1 (aac) re-encoded to opus: .webm files cannot hold it" in result.stderr
    assert tree(out) == ["a.webm", "photo.png", "sub/b.mkv"]
    with av.open(str(out / "a.webm")) as written, av.open(str(source / "a.webm")) as original:
        assert [s.codec_context.name for s in written.streams] == ["vp9", "opus"]
        seconds = [sum(f.samples for f in c.decode(audio=0)) / c.streams.audio[0].sample_rate for c in (written, original)]
    assert abs(seconds[0] - seconds[1]) <= 0.02  # the same length, within one Opus frame


def test_an_interrupted_folder_of_videos_resumes_with_skip_existing(tmp_path, random_weights, monkeypatch):
    import animevid.video.pipeline

    source = make_media_folder(tmp_path / "media")
    real, calls = animevid.video.pipeline.stylize_video, []

    def interrupted_on_the_second_video(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second video runs
        return real(*args, **kwargs)

    monkeypatch.setattr(animevid.video.pipeline, "stylize_video", interrupted_on_the_second_video)
    out = tmp_path / "anime"
    result = run_cli("stylize", source, out, "--weights", random_weights, *LOSSLESS)
    assert result.exit_code == 130
    assert_one_line_error(result, "interrupted after 2 of 3 files", "--skip-existing")
    assert tree(out) == ["a.mp4", "photo.png"]  # path order: a.mp4, photo.png, sub/b.mkv
    first = (out / "a.mp4").stat().st_ino

    monkeypatch.setattr(animevid.video.pipeline, "stylize_video", real)
    calls.clear()
    result = run_cli("stylize", source, out, "--weights", random_weights, *LOSSLESS[:-1], "--skip-existing")
    assert result.exit_code == 0, result.output
    assert "0 images and 1 videos (4 frames)" in result.stderr and "2 existing outputs kept" in result.stderr
    assert (out / "a.mp4").stat().st_ino == first  # kept, not redone
    assert run_cli("stylize", source, tmp_path / "fresh", "--weights", random_weights, *LOSSLESS).exit_code == 0
    assert tree(out) == tree(tmp_path / "fresh")
    for name in ("a.mp4", "sub/b.mkv"):
        assert packets(out / name) == packets(tmp_path / "fresh" / name)
    assert (out / "photo.png").read_bytes() == (tmp_path / "fresh" / "photo.png").read_bytes()


def test_existing_video_outputs_are_refused_unless_a_flag_says_what_to_do(tmp_path, random_weights):
    source = make_media_folder(tmp_path / "media")
    out = tmp_path / "anime"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.mkv").write_bytes(b"someone's file")
    result = run_cli("stylize", source, out, "--weights", random_weights, "-q")
    assert_one_line_error(result, "1 output files already exist", "b.mkv")
    assert tree(out) == ["sub/b.mkv"] and (out / "sub" / "b.mkv").read_bytes() == b"someone's file"
