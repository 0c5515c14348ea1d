"""Audio and subtitles beside the film: copied where the container takes them, else re-encoded (or dropped, with a note).

The files are read back with plain PyAV (decoded sound and cues), independently of the code under test.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import animevid.video.side_streams
from animevid.errors import UsageError
from animevid.options import VideoOptions
from animevid.video.chunked import stylize_video_chunked
from animevid.video.pipeline import stylize_video
from tests.clitools import assert_one_line_error, run_cli
from tests.video.test_segments import LOSSLESS, keyframe_clip, split_and_join
from tests.video_fixtures import IdentityStylizer, make_clip, side_packets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AAC_FRAME = Fraction(1024, 48_000)  # seconds of one AAC packet at the clips' rate
OPUS_FRAME = Fraction(20, 1000)  # libopus's default frame


@pytest.fixture
def pcm_clip(tmp_path: Path) -> Path:
    """A clip as an editor exports it: 24-bit PCM in .mkv (no channel order stored), 30 frames at 24 fps."""
    return keyframe_clip(tmp_path / "edit.mkv", audio="stereo", audio_codec="pcm_s24le")


def run(source: Path, destination: Path, **options) -> None:
    quality = LOSSLESS if options.get("codec", "libx264") == "libx264" else {}
    stylize_video(IdentityStylizer(), source, destination, VideoOptions(**quality, **options), progress=False)


def sound(path: Path) -> tuple[str, Fraction, int, np.ndarray]:
    """(codec, start in seconds, sample rate, float samples (channels, n)) of the file's first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        to_float = av.AudioResampler(format="fltp")
        start, rate, chunks = None, None, []
        for frame in container.decode(stream):
            if start is None:
                start, rate = frame.pts * frame.time_base, frame.sample_rate
            chunks += [converted.to_ndarray() for converted in to_float.resample(frame)]
        return stream.codec_context.name, start, rate, np.concatenate(chunks, axis=1)


def assert_same_sound(source: Path, output: Path, codec: str, frame: Fraction, precision: Fraction = Fraction(0)) -> None:
    """``output`` holds ``source``'s sound in ``codec``, at the same time, its length within one codec frame.

    The timestamps place the source's first sample in the output; the waveforms must match there,
    give or take ``precision`` (the output container's timestamp precision: WebM counts ms). The
    output may hold less than a codec frame more before it (an encoder's priming, which a container
    can trim only to its first timestamp) and after it (the last frame's padding).
    """
    _, start_in, rate, expected = sound(source)
    name, start, rate_out, got = sound(output)
    assert (name, rate_out) == (codec, rate)
    most, slack = int(frame * rate), int(precision * rate)
    placed = round((start_in - start) * rate)  # where the timestamps put the source's first sample
    assert -slack <= placed <= most + slack
    window = expected[:, : 4 * most]
    lags = range(max(0, placed - slack), placed + slack + 1)  # within half the tone's period: the match is unambiguous
    lead = min(lags, key=lambda lag: np.abs(got[:, lag : lag + window.shape[1]] - window).mean())
    overlap = min(expected.shape[1], got.shape[1] - lead)
    assert overlap >= expected.shape[1] - slack and got.shape[1] - lead - expected.shape[1] <= most
    # Lossy, but aligned: the tone (amplitude 0.3) one sample off would differ by 0.011 on average.
    assert np.abs(got[:, lead : lead + overlap] - expected[:, :overlap]).mean() < 0.005


def cues(path: Path) -> list[tuple[Fraction, Fraction, bytes]]:
    """(start, duration, text) of every cue of the file's first subtitle stream."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        found = []
        for packet in container.demux(stream):
            decoded = stream.codec_context.decode2(packet) if packet.size else None
            if decoded is not None and len(decoded):
                found.append((packet.pts * packet.time_base, packet.duration * packet.time_base, decoded[0].dialogue))
        return found


def stream_kinds(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(stream.type, stream.codec_context.name) for stream in container.streams]


def warning_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]


# -- audio ------------------------------------------------------------------------------------------


def test_pcm_from_an_editor_into_mp4_is_re_encoded_to_aac_and_said(tmp_path, pcm_clip, random_weights):
    result = run_cli("stylize", pcm_clip, tmp_path / "out.mp4", "--weights", random_weights, "--engine", "torch", "-q")
    assert result.exit_code == 0, result.output
    assert "warning: audio stream #1 (pcm_s24le) re-encoded to aac: .mp4 files cannot hold it" in result.stderr
    assert [kind for kind, _ in stream_kinds(tmp_path / "out.mp4")] == ["video", "audio"]
    assert_same_sound(pcm_clip, tmp_path / "out.mp4", "aac", AAC_FRAME)


@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_a_container_that_takes_the_stream_gets_it_copied(tmp_path, pcm_clip, caplog, suffix):
    # .mov takes 24-bit PCM, .mp4 does not, though FFmpeg's codec table claims both do: the trial decides.
    run(pcm_clip, tmp_path / f"out{suffix}")
    copied, original = side_packets(tmp_path / f"out{suffix}", "audio"), side_packets(pcm_clip, "audio")
    if suffix == ".mkv":
        assert copied == original  # the same packets: bytes and times
    else:  # QuickTime stores PCM as samples: read back in other packets, the same bytes from the same time
        assert copied[0][0] == original[0][0] and b"".join(p[2] for p in copied) == b"".join(p[2] for p in original)
    assert stream_kinds(tmp_path / f"out{suffix}")[1] == ("audio", "pcm_s24le")
    assert not warning_lines(caplog)


def test_aac_into_webm_is_re_encoded_to_opus(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=12, audio="mono")
    run(source, tmp_path / "out.webm", codec="libvpx-vp9")
    assert [kind for kind, _ in stream_kinds(tmp_path / "out.webm")] == ["video", "audio"]
    assert_same_sound(source, tmp_path / "out.webm", "opus", OPUS_FRAME, precision=Fraction(1, 1000))  # WebM counts ms


def test_start_and_end_cut_re_encoded_audio_as_they_cut_copied_audio(tmp_path, pcm_clip):
    run(pcm_clip, tmp_path / "copied.mkv", start=0.3, end=1.0)
    run(pcm_clip, tmp_path / "re-encoded.mp4", start=0.3, end=1.0)
    assert_same_sound(tmp_path / "copied.mkv", tmp_path / "re-encoded.mp4", "aac", AAC_FRAME, precision=Fraction(1, 1000))
    _, start, rate, kept = sound(tmp_path / "copied.mkv")
    assert 0 <= start < AAC_FRAME and abs(kept.shape[1] / rate - 0.7) < 0.05  # whole packets from the first frame to --end


@pytest.mark.parametrize("how", ["join", "encoders"])
def test_the_join_and_several_encoders_write_the_single_process_audio(tmp_path, pcm_clip, how):
    """The join (--workers, --devices, --ray segments) and --encoders write what one process writes."""
    options = VideoOptions(**LOSSLESS, start=0.2)
    stylize_video(IdentityStylizer(), pcm_clip, tmp_path / "single.mp4", options, progress=False)
    out = tmp_path / f"{how}.mp4"
    if how == "join":
        assert len(split_and_join(pcm_clip, out, 3, options)) == 3
    else:
        stylize_video_chunked(IdentityStylizer(), pcm_clip, out, VideoOptions(**LOSSLESS, start=0.2, encoders=2, chunk_seconds=0.25), progress=False)
    assert stream_kinds(out) == stream_kinds(tmp_path / "single.mp4") == [("video", "h264"), ("audio", "aac")]
    assert side_packets(out, "audio") == side_packets(tmp_path / "single.mp4", "audio")


def test_audio_no_encoder_here_can_write_is_refused_before_any_work(tmp_path, pcm_clip, monkeypatch):
    monkeypatch.setitem(animevid.video.side_streams.AUDIO_ENCODERS, "mp4", ("no_such_encoder",))
    with pytest.raises(UsageError) as refused:
        run(pcm_clip, tmp_path / "out.mp4")
    message = str(refused.value)
    assert message == (
        "audio stream #1 (pcm_s24le) cannot be stored in a .mp4 file, and this FFmpeg build has no "
        "no_such_encoder encoder to re-encode it: write a .mkv file instead"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edit.mkv"]


def test_the_cli_refuses_it_in_one_line(tmp_path, pcm_clip, random_weights, monkeypatch):
    monkeypatch.setitem(animevid.video.side_streams.AUDIO_ENCODERS, "mp4", ("no_such_encoder",))
    result = run_cli("stylize", pcm_clip, tmp_path / "out.mp4", "--weights", random_weights)
    assert_one_line_error(result, "audio stream #1 (pcm_s24le) cannot be stored in a .mp4 file", "write a .mkv file instead")


# -- subtitles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "codec", "options"), [(".mp4", "mov_text", {}), (".webm", "webvtt", {"codec": "libvpx-vp9"})], ids=["mp4", "webm"]
)
def test_text_subtitles_are_re_encoded_to_the_container_text_format(tmp_path, caplog, suffix, codec, options):
    source = make_clip(tmp_path / "in.mkv", frames=12, subtitles="subrip")
    out = tmp_path / f"out{suffix}"
    run(source, out, **options)
    assert stream_kinds(out)[1] == ("subtitle", codec)
    assert cues(out) == cues(source) and [text for *_, text in cues(source)] == [b"line 0", b"line 5", b"line 10"]
    assert warning_lines(caplog) == [f"subtitle stream #1 (subrip) re-encoded to {codec}: {suffix} files cannot hold it"]


def test_mov_text_into_mkv_is_re_encoded_to_ass(tmp_path, caplog):
    source = make_clip(tmp_path / "in.mkv", frames=12, subtitles="subrip")
    run(source, tmp_path / "mov_text.mp4")  # QuickTime text, as phones and editors write it
    run(tmp_path / "mov_text.mp4", tmp_path / "out.mkv")
    assert stream_kinds(tmp_path / "out.mkv")[1] == ("subtitle", "ssa")  # FFmpeg's ASS decoder is "ssa"
    assert cues(tmp_path / "out.mkv") == cues(source)
    assert warning_lines(caplog)[-1] == "subtitle stream #1 (mov_text) re-encoded to ass: .mkv files cannot hold it"


def make_picture_subtitles(path: Path) -> Path:
    """A clip with a PGS (Blu-ray, bitmap) subtitle stream: the cues' bytes are never decoded, only carried."""
    make_clip(path, frames=12)
    with av.open(str(path)) as source, av.open(str(path.with_name("pgs.mkv")), "w") as out:
        video = out.add_stream_from_template(source.streams.video[0])
        pictures = out.add_mux_stream("hdmv_pgs_subtitle", time_base=Fraction(1, 1000))
        for packet in source.demux(source.streams.video[0]):
            if packet.size:
                packet.stream = video
                out.mux(packet)
        for start in (0, 200, 400):
            cue = av.Packet(b"\x80\x00\x00")  # an end-of-display segment
            cue.stream, cue.time_base, cue.pts, cue.dts, cue.duration = pictures, Fraction(1, 1000), start, start, 100
            out.mux(cue)
    return path.with_name("pgs.mkv")


def test_picture_subtitles_or_a_container_without_subtitles_drop_them_with_a_note(tmp_path, caplog):
    pictures = make_picture_subtitles(tmp_path / "in.mkv")
    run(pictures, tmp_path / "pictures.mkv")
    assert stream_kinds(tmp_path / "pictures.mkv")[1] == ("subtitle", "pgssub")  # copied where it fits
    run(pictures, tmp_path / "pictures.mp4")
    assert [kind for kind, _ in stream_kinds(tmp_path / "pictures.mp4")] == ["video"]
    text = make_clip(tmp_path / "text.mkv", frames=12, subtitles="subrip", audio="mono")
    run(text, tmp_path / "text.avi")
    assert [kind for kind, _ in stream_kinds(tmp_path / "text.avi")] == ["video", "audio"]
    assert warning_lines(caplog) == [
        "subtitle stream #1 (hdmv_pgs_subtitle) dropped: .mp4 files cannot hold it, and its cues are pictures, "
        "which mov_text cannot carry (.mkv can hold it)",
        "subtitle stream #2 (subrip) dropped: .avi files hold no subtitles (.mkv does)",
    ]
