"""Synthetic videos: the one clip writer of the tests, the benchmarks and the synthetic films, and
small synthetic "films" with known hard cuts, for tests and benchmarks of the frame extractor.

:func:`write_clip` encodes any RGB frames into a file, with what the tests need to exercise a
reader: a variable frame rate, an AAC track, subtitles, rotation metadata, cover art.

A film is a list of :class:`Scene` s. ``"shapes"`` scenes look vaguely like cel animation: a flat
background and outlined shapes drifting at a few pixels per frame, so consecutive frames are alike
(no false cuts) while frames a second apart differ (not near-duplicates), and the outlines give the
detail filter something to find. The same seed renders the same frames, which makes a repeated
scene. ``"black"``, ``"white"`` and ``"flat"`` (one plain colour) scenes are what the quality
filters must reject.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

SCENE_KINDS = ("shapes", "black", "white", "flat")
AUDIO_RATE = 48_000
AAC_FRAME = 1024  # samples per AAC packet
TONE_HZ = 440
SUBTITLE_EVERY = 5  # frames between two subtitle cues
SUBTITLE_MS = 100
# Near-lossless and fast: the films test the extractor, not compression.
NEAR_LOSSLESS_X264 = {"preset": "ultrafast", "crf": "12"}


@dataclass(frozen=True)
class Scene:
    """One shot of a synthetic film: ``seconds`` long, drawn as ``kind`` from ``seed``."""

    kind: str
    seconds: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCENE_KINDS:
            raise ValueError(f"unknown scene kind {self.kind!r}; expected one of {SCENE_KINDS}")
        if self.seconds <= 0:
            raise ValueError("a scene must last more than 0 seconds")


@dataclass(frozen=True)
class _Shape:
    is_circle: bool
    x: float
    y: float
    radius: float
    vx: float
    vy: float
    fill: tuple[int, int, int]


def _hue_to_rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    import cv2

    hsv = np.array([[[hue * 180.0, saturation * 255.0, value * 255.0]]], dtype=np.float32)
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _shapes(seed: int, width: int, height: int) -> tuple[tuple[int, int, int], list[_Shape]]:
    rng = np.random.default_rng(seed)
    hue = rng.random()
    background = _hue_to_rgb(hue, 0.35, 0.85)
    shapes = []
    for _ in range(14):
        radius = rng.uniform(0.06, 0.16) * height
        speed = rng.uniform(1.0, 2.5)
        angle = rng.uniform(0, 2 * np.pi)
        shapes.append(
            _Shape(
                is_circle=bool(rng.random() < 0.5),
                x=rng.uniform(0, width),
                y=rng.uniform(0, height),
                radius=radius,
                vx=speed * np.cos(angle),
                vy=speed * np.sin(angle),
                fill=_hue_to_rgb((hue + rng.uniform(0.15, 0.85)) % 1.0, rng.uniform(0.4, 0.9), rng.uniform(0.4, 1.0)),
            )
        )
    return background, shapes


def render_frame(scene: Scene, frame_in_scene: int, width: int, height: int) -> np.ndarray:
    """Frame ``frame_in_scene`` of ``scene`` as an RGB uint8 array of shape (height, width, 3)."""
    import cv2

    if scene.kind == "black":
        return np.zeros((height, width, 3), np.uint8)
    if scene.kind == "white":
        return np.full((height, width, 3), 255, np.uint8)
    background, shapes = _shapes(scene.seed, width, height)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    if scene.kind == "flat":
        return image
    for shape in shapes:
        # Shapes wrap around the frame so the picture keeps changing without emptying out.
        x = int(round((shape.x + shape.vx * frame_in_scene) % width))
        y = int(round((shape.y + shape.vy * frame_in_scene) % height))
        r = int(round(shape.radius))
        if shape.is_circle:
            cv2.circle(image, (x, y), r, shape.fill, -1, cv2.LINE_AA)
            cv2.circle(image, (x, y), r, (20, 20, 30), 2, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (x - r, y - r), (x + r, y + r), shape.fill, -1)
            cv2.rectangle(image, (x - r, y - r), (x + r, y + r), (20, 20, 30), 2)
    return image


def film_frames(scenes: Sequence[Scene], width: int, height: int, fps: int) -> Iterator[np.ndarray]:
    """Every frame of the film, scene after scene, as RGB (height, width, 3)."""
    for scene in scenes:
        for frame_in_scene in range(int(round(scene.seconds * fps))):
            yield render_frame(scene, frame_in_scene, width, height)


def scene_starts(scenes: Sequence[Scene], fps: int) -> list[int]:
    """The frame index at which each scene starts (the first is 0): the true hard cuts."""
    lengths = [int(round(scene.seconds * fps)) for scene in scenes]
    return list(itertools.accumulate([0, *lengths[:-1]]))


def write_synthetic_film(
    path: str | Path,
    scenes: list[Scene],
    *,
    width: int = 256,
    height: int = 144,
    fps: int = 12,
    codec: str = "libx264",
) -> list[int]:
    """Encode ``scenes`` back to back into ``path`` (any container PyAV can write, e.g. .mkv, .mp4).

    Returns the frame index at which each scene starts (the first is 0): the true hard cuts.
    """
    options = NEAR_LOSSLESS_X264 if codec == "libx264" else None
    write_clip(path, film_frames(scenes, width, height, fps), fps=fps, codec=codec, encoder_options=options)
    return scene_starts(scenes, fps)


def write_clip(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int = 24,
    codec: str = "libx264",
    encoder_options: dict[str, str] | None = None,
    pixel_format: str = "yuv420p",
    durations_ms: Sequence[int] | None = None,
    audio: str | None = None,
    audio_seconds: float | None = None,
    audio_codec: str = "aac",
    subtitles: str | None = None,
    rotation: int | None = None,
    cover: np.ndarray | None = None,
    faststart: bool = False,
) -> int:
    """Encode RGB uint8 ``frames`` (all of one size) into ``path``; returns how many were written.

    * ``durations_ms`` (cycled): a variable frame rate, in a 1/1000 time base; else 1/``fps``.
    * ``audio``: "mono" or "stereo": a 440 Hz tone, interleaved with the video and as long as
      it (or ``audio_seconds``; with no frames at all, the file holds the audio alone), encoded
      with ``audio_codec`` (AAC; e.g. "pcm_s24le" as editors write into .mkv).
    * ``subtitles``: a subtitle codec ("subrip", "mov_text"): a 100 ms cue "line N" at every 5th frame N.
    * ``rotation``: display-matrix rotation, degrees counter-clockwise (the pixels are stored as given).
    * ``cover``: an RGB picture stored as cover art (a PNG attached picture).
    * ``faststart``: the mp4/mov index before the frames.
    """
    import av

    frames = iter(frames)
    first = next(frames, None)
    time_base = Fraction(1, 1000) if durations_ms else Fraction(1, fps)
    container_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=container_options) as out:
        cover_stream = _add_picture_stream(out, cover) if cover is not None else None
        video = None
        if first is not None:
            video = out.add_stream(codec, rate=fps, options=encoder_options or {})
            video.height, video.width = first.shape[:2]
            video.pix_fmt = pixel_format
            video.codec_context.time_base = time_base
            if rotation is not None:
                video.set_display_rotation(rotation)
        tone = _Tone(out, audio, audio_codec) if audio else None
        text = out.add_mux_stream(subtitles, time_base=Fraction(1, 1000)) if subtitles else None
        if cover_stream is not None:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(cover), format="rgb24")
            out.mux(cover_stream.encode(picture) + cover_stream.encode())
        pts = count = 0
        for rgb in itertools.chain([first], frames) if first is not None else ():
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            out.mux(video.encode(frame))
            if text is not None and count % SUBTITLE_EVERY == 0:
                cue = av.Packet(f"line {count}".encode())
                cue.stream, cue.time_base = text, Fraction(1, 1000)
                cue.pts = cue.dts = round(pts * time_base * 1000)
                cue.duration = SUBTITLE_MS
                out.mux(cue)
            pts += durations_ms[count % len(durations_ms)] if durations_ms else 1
            count += 1
            if tone is not None:
                tone.write_until(pts * time_base)
        if video is not None:
            out.mux(video.encode())
        if tone is not None:
            tone.write_until(pts * time_base if audio_seconds is None else Fraction(audio_seconds), last=True)
    return count


def _add_picture_stream(out, picture: np.ndarray):
    import av

    stream = out.add_stream("png")
    stream.height, stream.width = picture.shape[:2]
    stream.pix_fmt = "rgb24"
    stream.disposition = av.stream.Disposition.attached_pic
    return stream


class _Tone:
    """A sine tone, written in frames of an AAC packet's samples up to a time (the last may be shorter)."""

    def __init__(self, out, layout: str, codec: str = "aac") -> None:
        self.out = out
        self.stream = out.add_stream(codec, rate=AUDIO_RATE, layout=layout)
        self.channels = {"mono": 1, "stereo": 2}[layout]
        self.layout = layout
        self.samples = 0  # written so far

    def write_until(self, seconds: Fraction, *, last: bool = False) -> None:
        import av

        target = int(seconds * AUDIO_RATE)
        while self.samples + (1 if last else AAC_FRAME) <= target:
            count = min(AAC_FRAME, target - self.samples)
            t = np.arange(self.samples, self.samples + count) / AUDIO_RATE
            wave = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
            planes = np.tile(wave, (self.channels, 1))  # (channels, samples)
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=self.layout)
            frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, self.samples, Fraction(1, AUDIO_RATE)
            self.out.mux(self.stream.encode(frame))
            self.samples += count
        if last:
            self.out.mux(self.stream.encode())
