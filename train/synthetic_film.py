"""Small synthetic "films" with known hard cuts, for tests and benchmarks of the frame extractor.

A film is a list of :class:`Scene` s. ``"shapes"`` scenes look vaguely like cel animation: a flat
background and outlined shapes drifting at a few pixels per frame, so consecutive frames are alike
(no false cuts) while frames a second apart differ (not near-duplicates), and the outlines give the
detail filter something to find. The same seed renders the same frames, which makes a repeated
scene. ``"black"``, ``"white"`` and ``"flat"`` (one plain colour) scenes are what the quality
filters must reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCENE_KINDS = ("shapes", "black", "white", "flat")


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
    import av

    starts = []
    index = 0
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # Near-lossless and fast: the tests are about the extractor, not about compression.
            stream.options = {"preset": "ultrafast", "crf": "12"}
        for scene in scenes:
            starts.append(index)
            for frame_in_scene in range(int(round(scene.seconds * fps))):
                rgb = render_frame(scene, frame_in_scene, width, height)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                index += 1
        for packet in stream.encode():
            container.mux(packet)
    return starts
