"""Temporal consistency for frame-by-frame stylization: a causal, flow-guided deflicker stage.

A GAN generator answers tiny changes of its input (sensor noise, compression, a one-pixel pan)
with visibly different strokes and colours, so a video stylized one frame at a time shimmers.
This stage (in the spirit of Bonneel et al. 2015, "Blind video temporal consistency", and of the
recursive blending used in practice) pulls every output frame towards the previous output,
moved along the motion of the **source** frames, wherever that motion can be trusted:

    O_t = P_t + β · c_t · (warp(O_{t−1}) − P_t)

``P_t`` is the generator's frame, β the strength, ``c_t`` a per-pixel confidence in [0, 1]: soft
from the source frames' own warp error, zero where the forward and backward flows disagree
(occlusions, disocclusions), across motion boundaries and where the motion comes from outside
the frame. When too few pixels can be trusted (a scene cut, a flash) the state starts afresh
and the output is the generator's frame itself: nothing of the previous shot survives.

The work is split in two so that a pipeline can overlap it with the generator:
:class:`MotionEstimator` depends on the source frames only (run it ahead, e.g. on the decoder's
thread), :class:`Blender` holds the one previous output frame (the only sequential part).
:class:`Deflicker` is the two together, for any per-frame stylization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UsageError
from ..options import DEFAULT_DEFLICKER_STRENGTH as DEFAULT_STRENGTH
from ..options import check_deflicker_strength as check_strength

# The flow runs on half-size frames and is scaled up, with DIS's ultrafast preset. Measured by
# benchmarks/temporal.py at 960x540 on a 2-core AMD EPYC shared with other jobs (load ~10,
# benchmarks/results/cpu-2026-12-05-213416.json): the motion took 74 ms a frame at half size with
# ultrafast, 115 ms with fast, 597 ms at full size with ultrafast; the deflickered warping error
# was no lower at full size (pan: 13.51 either way; still shot: 14.15 at full size, 13.37 at half)
# and 0-3 % lower with fast. On the quiet machine (cpu-2026-12-05-224228.json) fast cost about the same
# as ultrafast (22.4 against 21.7 ms, 1-4 % lower error) and full size 76.5 ms: the loaded figures
# decided, and fast is the candidate to compare again. Generator frames are smoother than the source's
# fine texture: sub-pixel flow detail is not what limits the blend, and the decoder thread must keep up
# with a GPU generator.
FLOW_SCALE = 0.5
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
# Confidence from the source warp error, exp(-(err/σ)²) with err the RMS over R, G, B in 8-bit levels: noise and
# compression (a few levels) keep most of it, a wrong match (tens of levels) none.
ERROR_SIGMA = 12.0
# A new shot: fewer than this fraction of pixels with a confidence above one half.
MIN_CONFIDENT_FRACTION = 0.4


def warmup_frames(strength: float) -> int:
    """Frames a segment worker runs before its segment so that its state is the single process's there.

    The state forgets what came before by a factor of at most β a frame (the blend weight is
    β·c ≤ β): after n frames a difference of 255 levels is below β^n·255, kept under a quarter
    level so that rounding then agrees. At least 8 (rounding flips die out too), at most 64: near
    β = 1 the state forgets almost nothing, and no bounded warm-up can promise a seamless join.
    """
    if strength <= 0:
        return 0
    if strength >= 1:
        return 64
    return min(64, max(8, math.ceil(math.log(0.25 / 255) / math.log(strength))))


@dataclass(frozen=True)
class Motion:
    """How frame t comes from frame t−1, at the flow's (reduced) resolution.

    ``flow[y, x]`` is where the pixel (x, y) of frame t was in frame t−1, as an offset in small
    pixels; ``confidence`` says how much to trust it. ``cut``: start afresh (first frame, new shot).
    """

    flow: np.ndarray | None  # (h, w, 2) float32, backward t -> t-1
    confidence: np.ndarray | None  # (h, w) float32 in [0, 1]
    cut: bool
    confident_fraction: float = 0.0

    @staticmethod
    def start() -> "Motion":
        return Motion(None, None, True)


class MotionEstimator:
    """Backward optical flow (t → t−1) and its confidence, from the source frames only.

    One previous (small) source frame of state. Call with every source frame in order.
    """

    def __init__(
        self, *, scale: float = FLOW_SCALE, preset: int = FLOW_PRESET, sigma: float = ERROR_SIGMA,
        min_confident: float = MIN_CONFIDENT_FRACTION,
    ) -> None:  # fmt: skip
        self.scale, self.sigma, self.min_confident = scale, sigma, min_confident
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, source_rgb: np.ndarray) -> Motion:
        small = self._small(source_rgb)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        previous, self._previous = self._previous, (small, grey)
        if previous is None or previous[0].shape != small.shape:
            return Motion.start()
        previous_small, previous_grey = previous
        backward = self._dis.calc(grey, previous_grey, None)  # grey(x) ≈ previous_grey(x + backward(x))
        forward = self._dis.calc(previous_grey, grey, None)
        confidence = source_confidence(small, previous_small, backward, forward, self.sigma)
        fraction = float(np.count_nonzero(confidence > 0.5)) / confidence.size
        if fraction < self.min_confident:
            return Motion(None, None, True, fraction)
        return Motion(backward, confidence, False, fraction)

    def _small(self, rgb: np.ndarray) -> np.ndarray:
        if self.scale == 1.0:
            return np.array(rgb, copy=True)  # kept as the next frame's previous: the caller may reuse its buffer
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[:2]
        size = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute (map_x, map_y) for cv2.remap: x + flow."""
    height, width = flow.shape[:2]
    xs = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1]
    return xs, ys


def source_confidence(
    current: np.ndarray, previous: np.ndarray, backward: np.ndarray, forward: np.ndarray, sigma: float = ERROR_SIGMA
) -> np.ndarray:
    """Per-pixel trust in ``backward`` (``current``, ``previous``: the small RGB frames): soft photometric term × forward–backward, motion-boundary and in-frame masks.

    The consistency and boundary tests are those of Sundaram et al. (2010) as used by Ruder et al.
    (2016): |b + f(x + b)|² ≤ 0.01 (|b|² + |f(x + b)|²) + 0.5, and |∇b|² ≤ 0.01 |b|² + 0.002.
    """
    height, width = current.shape[:2]
    map_x, map_y = sample_grid(backward)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    forward_there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = np.sum((backward + forward_there) ** 2, axis=-1)
    magnitudes = np.sum(backward**2, axis=-1) + np.sum(forward_there**2, axis=-1)
    consistent = round_trip <= 0.01 * magnitudes + 0.5
    gradients = sum(np.sum(np.stack(np.gradient(backward[..., k]), axis=-1) ** 2, axis=-1) for k in range(2))
    smooth = gradients <= 0.01 * np.sum(backward**2, axis=-1) + 0.002
    warped = cv2.remap(previous, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # In colour: a grey test cannot tell a saturated object from a background of the same luma.
    squared = np.mean((current.astype(np.float32) - warped.astype(np.float32)) ** 2, axis=-1)
    photometric = np.exp(-squared / sigma**2)
    return (photometric * (inside & consistent & smooth)).astype(np.float32)


class Blender:
    """The sequential half: blends each stylized frame with the previous output moved along the motion.

    One previous output frame of state (uint8, as written).
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        self.strength = check_strength(strength)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, stylized_rgb: np.ndarray, motion: Motion) -> np.ndarray:
        """The consistent frame for ``stylized_rgb`` (H, W, 3) uint8; a new array."""
        previous = self._previous
        if motion.cut or previous is None or previous.shape != stylized_rgb.shape or self.strength == 0:
            output = np.array(stylized_rgb, dtype=np.uint8, copy=True)
        else:
            warped, weight = warp_previous(previous, motion)
            stylized = stylized_rgb.astype(np.float32)
            weight *= self.strength
            output = stylized + weight[..., None] * (warped.astype(np.float32) - stylized)
            output = np.rint(output, out=output).astype(np.uint8)
        self._previous = output
        return output


def full_size_motion(motion: Motion, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The flow (in full-size pixels) and the confidence, scaled up to (height, width)."""
    small_h, small_w = motion.flow.shape[:2]
    if (small_h, small_w) == (height, width):
        return motion.flow, motion.confidence
    flow = cv2.resize(motion.flow, (width, height), interpolation=cv2.INTER_LINEAR)
    flow[..., 0] *= width / small_w
    flow[..., 1] *= height / small_h
    confidence = cv2.resize(motion.confidence, (width, height), interpolation=cv2.INTER_LINEAR)
    return flow, confidence


def warp_previous(previous: np.ndarray, motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """``previous`` moved to frame t (bilinear), and the full-size confidence (a new float32 array)."""
    height, width = previous.shape[:2]
    flow, confidence = full_size_motion(motion, height, width)
    map_x, map_y = sample_grid(flow)
    warped = cv2.remap(previous, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # The confidence is bilinear at the small size; where the full-size sample leaves the frame, none.
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return warped, np.clip(confidence, 0.0, 1.0) * inside


class Deflicker:
    """Temporal consistency for any per-frame stylization: call with each source frame and its stylized frame.

        >>> deflicker = animevid.Deflicker(strength=0.3)
        >>> for source, stylized in frames:
        ...     out = deflicker(source, stylized)   # (H, W, 3) uint8 RGB in, and out

    Frames must come in order; call :meth:`reset` between unrelated videos (a scene cut within
    one is detected). ``strength`` β in [0, 1]: 0 returns the stylized frames unchanged.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH, *, flow_scale: float = FLOW_SCALE, preset: int = FLOW_PRESET) -> None:
        self.strength = check_strength(strength)
        self.motion = MotionEstimator(scale=flow_scale, preset=preset)
        self.blender = Blender(self.strength)

    def reset(self) -> None:
        self.motion.reset()
        self.blender.reset()

    def __call__(self, source_rgb: np.ndarray, stylized_rgb: np.ndarray) -> np.ndarray:
        _check_frame(source_rgb, "source")
        _check_frame(stylized_rgb, "stylized")
        if source_rgb.shape != stylized_rgb.shape:
            raise UsageError(f"the source frame is {source_rgb.shape} and the stylized frame {stylized_rgb.shape}: they must match")
        return self.blender(stylized_rgb, self.motion(source_rgb))


def _check_frame(frame: np.ndarray, what: str) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise UsageError(f"the {what} frame must be an (H, W, 3) uint8 RGB array")
