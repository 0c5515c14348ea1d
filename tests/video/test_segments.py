"""Segments: cut at key frames, rendered into parts, joined: the same file as one process writes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from animevid.options import VideoOptions
from animevid.video.segments import cut_source, join_parts, plan_segments
from animevid.video.pipeline import PART_FORMAT, Window, stylize_part, stylize_video
from animevid.video.reader import probe_video
from tests.video_fixtures import IdentityStylizer, make_clip, read_clip, side_packets

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Without deflicker: these parts must be the single process's bit for bit (tests/jobs/test_deflicker_segments.py: with it).
LOSSLESS = {"crf": 0, "preset": "ultrafast", "deflicker": False}


def keyframe_clip(path: Path, **options) -> Path:
    """A clip with a key frame every 6 frames (and B-frames), so that it can be cut in several places."""
    options.setdefault("frames", 30)
    return make_clip(path, encoder_options={"preset": "fast", "g": "6", "keyint_min": "6", "sc_threshold": "0"}, **options)


def split_and_join(source: Path, destination: Path, count: int, options: VideoOptions, *, cut: bool = False) -> list[int]:
    plan = plan_segments(source, options, count)
    global_header = bool(av.format.ContainerFormat(_format(destination)).flags & 0x40)
    parts, frames, durations = [], [], []
    for segment in plan.segments:
        part = destination.with_name(f"part{segment.index}.{PART_FORMAT}")
        input_path = source
        if cut:
            input_path = destination.with_name(f"cut{segment.index}.nut")
            input_path.write_bytes(cut_source(source, segment.first, segment.end))
        rotation = probe_video(source).rotation if cut else None
        window = Window(segment.first, segment.end, plan.shift, global_header, rotation, seek=not cut)
        rendered = stylize_part(IdentityStylizer(), input_path, part, options, window)
        assert rendered.frames == segment.frames
        frames.append(rendered.frames)
        durations.append(rendered.durations)
        parts.append(part)
    assert join_parts(source, destination, parts, durations, options) == sum(frames)
    return frames


def _format(path: Path) -> str:
    return {".mp4": "mp4", ".mkv": "matroska"}[path.suffix]


def video_packets(path: Path) -> list[tuple[Fraction, bool]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted((p.pts * p.time_base, p.is_keyframe) for p in container.demux(stream) if p.size)


def assert_same_file(single: Path, joined: Path) -> None:
    a, b = read_clip(single), read_clip(joined)
    assert len(a.frames) == len(b.frames)
    assert a.times == b.times
    assert a.duration == b.duration
    for x, y in zip(a.frames, b.frames):
        np.testing.assert_array_equal(x, y)
    assert a.streams == b.streams
    for kind in ("audio", "subtitles"):
        if any(t == kind.rstrip("s") for t, _ in a.streams):
            assert side_packets(single, kind) == side_packets(joined, kind)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_split_and_join_equals_one_process(tmp_path, suffix):
    source = keyframe_clip(tmp_path / f"in{suffix}", audio="mono")
    options = VideoOptions(**LOSSLESS)
    single = tmp_path / f"single{suffix}"
    stylize_video(IdentityStylizer(), source, single, options, progress=False)
    frames = split_and_join(source, tmp_path / f"joined{suffix}", 3, options)
    assert len(frames) == 3
    assert_same_file(single, tmp_path / f"joined{suffix}")
    keys = [t for t, key in video_packets(tmp_path / f"joined{suffix}") if key]
    assert len(keys) >= 3  # every part starts on a key frame of the output


@pytest.mark.parametrize(
    ("suffix", "clip", "video", "cut"),
    [
        (".mp4", {"audio": "mono"}, {"start": 0.3, "end": 1.0}, False),
        (".mkv", {"audio": "mono", "subtitles": "subrip"}, {"start": 0.25}, True),
        (".mp4", {"durations_ms": [40, 20, 80, 33]}, {}, False),
        (".mkv", {"width": 63, "height": 45, "rotation": 90, "pixel_format": "yuv444p"}, {}, True),
        (".mp4", {"audio": "mono"}, {}, True),  # B-frames: the cut's first decoding times are negative
    ],
    ids=["start-end", "subtitles-start-cut", "vfr", "odd-rotated-cut", "mp4-b-frames-cut"],
)
def test_split_and_join_equals_one_process_in_every_case(tmp_path, suffix, clip, video, cut):
    source = keyframe_clip(tmp_path / f"in{suffix}", **clip)
    options = VideoOptions(**LOSSLESS, **video)
    single = tmp_path / f"single{suffix}"
    stylize_video(IdentityStylizer(), source, single, options, progress=False)
    frames = split_and_join(source, tmp_path / f"joined{suffix}", 3, options, cut=cut)
    assert len(frames) >= 2
    assert_same_file(single, tmp_path / f"joined{suffix}")


def test_segments_start_on_key_frames_and_cover_the_range_once(tmp_path):
    source = keyframe_clip(tmp_path / "in.mp4", frames=40)
    plan = plan_segments(source, VideoOptions(start=0.2, end=1.5), 4)
    keys = {t for t, key in video_packets(source) if key}
    times = [t for t, _ in video_packets(source)]
    kept = [t for t in times if Fraction(0.2) <= t - times[0] < Fraction(1.5)]
    assert [s.first for s in plan.segments[1:]] and all(s.first in keys for s in plan.segments[1:])
    assert sum(s.frames for s in plan.segments) == len(kept)
    assert plan.shift == kept[0]
    for a, b in zip(plan.segments, plan.segments[1:]):
        assert a.end == b.first


def test_parts_with_b_frames_join(tmp_path):
    # The default quality (crf 18, preset medium) gives the parts B-frames, so their first decoding
    # times are negative; NUT cannot seek back in such a part, and the join must not need to.
    source = keyframe_clip(tmp_path / "in.mp4", audio="mono")
    options = VideoOptions()
    single = tmp_path / "single.mp4"
    stylize_video(IdentityStylizer(), source, single, options, progress=False)
    split_and_join(source, tmp_path / "joined.mp4", 3, options)
    with av.open(str(tmp_path / "joined.mp4")) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        assert any(p.dts is not None and p.dts < p.pts for p in packets)  # B-frames were there to cope with
    a, b = read_clip(single), read_clip(tmp_path / "joined.mp4")
    assert (len(a.frames), a.times, a.duration, a.streams) == (len(b.frames), b.times, b.duration, b.streams)
    assert side_packets(single, "audio") == side_packets(tmp_path / "joined.mp4", "audio")
