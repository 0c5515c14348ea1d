"""Temporal consistency: the warping error (Lai et al., ECCV 2018) of per-frame and deflickered output.

For consecutive frames t, t+1 of an output O (RGB in [0, 1]):

    E_t = Σ_x M(x)·‖O_{t+1}(x + F(x)) − O_t(x)‖² / (3·Σ_x M(x))

with F the flow from t to t+1 computed on the **source** frames by a stronger estimator than the
stage's own (DIS *medium* at full size, the stage runs DIS *ultrafast* at half size: otherwise
the score would reward the stage's own flow errors), and M the non-occlusion mask from the
forward–backward and motion-boundary tests. E is averaged over the pairs whose mask keeps at
least a tenth of the frame (a scene cut's pair keeps none and is left out).

Clips are generated in code (no data to download): a camera pan, moving objects over a still
background, a scene cut, a still shot; each with a little sensor noise, as real footage has.
They run through two stylizers:

* a stand-in with the instability real GANs have: a cartoon filter with a colour palette fitted
  by k-means afresh on every frame (from random starts, on a random sample of pixels) and edge
  lines from a Canny detector that answers the sensor noise;
* AnimeGAN with seeded random weights: its low-contrast output says little about flicker.

Rows per clip: the source's own warping error (the floor), per-frame output, deflickered output
at each strength, and beside it the fidelity, PSNR of deflickered against per-frame output (a
frozen or blurred video would score a low warping error). Cost: ms per frame of the stage
(flow, blend) at the product's flow settings and two alternatives, next to the generator's ms
per frame at the same size, as the product runs it on this device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from animevid.options import DEFAULT_DEFLICKER_STRENGTH

from .common import fmt, markdown_table
from .engines import _empty_cache

FLOW_VARIANTS = {  # name: (scale, DIS preset)
    "half, ultrafast (the stage)": (0.5, cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
    "half, fast": (0.5, cv2.DISOPTICAL_FLOW_PRESET_FAST),
    "full, ultrafast": (1.0, cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
}
MIN_MASKED_FRACTION = 0.1


@dataclass(frozen=True)
class TemporalSettings:
    size: tuple[int, int] = (540, 960)  # (height, width): clips, stage cost and generator cost
    frames: int = 24
    strengths: tuple[float, ...] = (0.2, 0.22, 0.25, 0.3, 0.5)
    generator_size: tuple[int, int] = (270, 480)  # the random-weight runs (the generator is slow on a CPU)
    generator_frames: int = 12
    timing_repeats: int = 3  # generator frames timed at ``size`` after a warm-up


def default_settings(device: torch.device, quick: bool) -> TemporalSettings:
    """CPU: 960x540, 24 frames, four strengths. CUDA: whether the flow (host, decoder thread) keeps up with
    the generator at 1080p: 8 frames, the default strength only (about a minute of host work)."""
    if quick:
        return TemporalSettings((96, 128), 4, (DEFAULT_DEFLICKER_STRENGTH,), (96, 128), 3, 1)  # one generator size: one OpenVINO compilation
    if device.type == "cuda":
        return TemporalSettings((1080, 1920), 8, (DEFAULT_DEFLICKER_STRENGTH,), (540, 960), 8, 5)
    return TemporalSettings()


# -- clips ------------------------------------------------------------------------------------------


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Colour texture at several scales with a few hard-edged shapes: what DIS and a cartoon filter both see."""
    noise = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    layers = [cv2.GaussianBlur(noise, (0, 0), sigma) for sigma in (2, 8, 32)]
    mixed = sum(weight * (layer - layer.mean()) for weight, layer in zip((1.5, 3.0, 6.0), layers)) + 128
    image = np.clip(mixed, 0, 255).astype(np.uint8)
    for _ in range(max(4, width * height // 20000)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, int(rng.integers(height // 30 + 2, height // 8 + 3)), colour, -1)
    return image


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(frame.astype(np.float32) + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def make_clips(height: int, width: int, frames: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    step = max(1, width // 240)  # 4 px a frame at 960 wide
    world = _texture(height, width + step * frames, rng)
    pan = [_noisy(world[:, step * t : step * t + width], rng) for t in range(frames)]
    background = _texture(height, width, rng)
    sprite = _texture(height // 4, width // 6, rng)
    objects = []
    for t in range(frames):
        frame = background.copy()
        for k, (y, speed) in enumerate(((height // 5, 2 * step), (height // 2, -3 * step))):
            x = (width // 3 + k * width // 3 + speed * t) % (width - sprite.shape[1])
            frame[y : y + sprite.shape[0], x : x + sprite.shape[1]] = sprite
        objects.append(_noisy(frame, rng))
    other = _texture(height, width + step * frames, rng)
    half = frames // 2
    cut = pan[:half] + [_noisy(other[:, step * t : step * t + width], rng) for t in range(frames - half)]
    still = [_noisy(background, rng) for _ in range(frames)]
    return {"camera pan": pan, "moving objects": objects, "scene cut": cut, "still": still}


# -- stylizers ---------------------------------------------------------------------------------------


class CartoonStandIn:
    """A cartoon filter as unstable as a GAN: a k-means palette fitted afresh each frame, noise-sensitive edges."""

    def __init__(self, colours: int = 8, seed: int = 0) -> None:
        self.colours = colours
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        smooth = cv2.GaussianBlur(frame, (0, 0), 1.5)
        pixels = smooth.reshape(-1, 3).astype(np.float32)
        sample = pixels[self.rng.choice(len(pixels), min(len(pixels), 3000), replace=False)]
        cv2.setRNGSeed(int(self.rng.integers(1 << 30)))
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 5, 1.0)
        _, _, centres = cv2.kmeans(sample, self.colours, None, criteria, 1, cv2.KMEANS_RANDOM_CENTERS)
        distances = ((pixels[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        cartoon = centres[distances.argmin(1)].reshape(frame.shape)
        edges = cv2.Canny(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 30, 60) > 0  # on the raw frame: noise moves them
        cartoon[edges] *= 0.3
        return np.clip(cartoon, 0, 255).astype(np.uint8)


def generator_stylizer(device: torch.device):
    """AnimeGAN (v1) with seeded random weights, as the product runs it on ``device`` (engine auto)."""
    from animevid.engine.stylizer import Stylizer
    from animevid.options import InferenceOptions

    from .engines import seeded_generator

    stylizer = Stylizer(seeded_generator(), InferenceOptions(device=str(device), compile=False))

    def stylize(frame: np.ndarray) -> np.ndarray:
        return stylizer.frames(torch.from_numpy(frame[None].copy()))[0].cpu().numpy()

    return stylize, stylizer


# -- the metric -------------------------------------------------------------------------------------


class WarpingError:
    """Lai et al.'s warping error over a clip, with DIS medium at full size on the source frames."""

    def __init__(self, sources: list[np.ndarray]) -> None:
        from animevid.video.temporal import sample_grid

        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        greys = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in sources]
        self.pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = []
        for earlier, later in zip(greys, greys[1:]):
            forward = dis.calc(earlier, later, None)  # earlier(x) ≈ later(x + forward(x))
            backward = dis.calc(later, earlier, None)
            map_x, map_y = sample_grid(forward)
            height, width = earlier.shape
            inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
            back_there = cv2.remap(backward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            round_trip = np.sum((forward + back_there) ** 2, -1)
            consistent = round_trip <= 0.01 * (np.sum(forward**2, -1) + np.sum(back_there**2, -1)) + 0.5
            gradient = sum(np.sum(np.stack(np.gradient(forward[..., k]), -1) ** 2, -1) for k in range(2))
            smooth = gradient <= 0.01 * np.sum(forward**2, -1) + 0.002
            mask = inside & consistent & smooth
            self.pairs.append((map_x, map_y, mask) if mask.mean() >= MIN_MASKED_FRACTION else None)

    def __call__(self, outputs: list[np.ndarray]) -> float:
        errors = []
        for (earlier, later), pair in zip(zip(outputs, outputs[1:]), self.pairs):
            if pair is None:
                continue
            map_x, map_y, mask = pair
            warped = cv2.remap(later.astype(np.float32) / 255, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            squared = np.sum((warped - earlier.astype(np.float32) / 255) ** 2, -1)
            errors.append(float(np.sum(squared * mask) / (3 * np.sum(mask))))
        return float(np.mean(errors)) if errors else float("nan")


def psnr(outputs: list[np.ndarray], references: list[np.ndarray]) -> float:
    mse = np.mean([np.mean((a.astype(np.float64) - b) ** 2) for a, b in zip(outputs, references)])
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def deflickered(sources: list[np.ndarray], stylized: list[np.ndarray], strength: float, **flow) -> list[np.ndarray]:
    from animevid.video.temporal import Deflicker

    deflicker = Deflicker(strength, **flow)
    return [deflicker(source, frame) for source, frame in zip(sources, stylized)]


# -- cost ------------------------------------------------------------------------------------------


def stage_cost(sources: list[np.ndarray], stylized: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Median ms per frame of the motion estimate (decoder side) and of the blend, per flow variant."""
    from animevid.video.temporal import Blender, MotionEstimator

    costs = {}
    for name, (scale, preset) in FLOW_VARIANTS.items():
        motion, blender = MotionEstimator(scale=scale, preset=preset), Blender(DEFAULT_DEFLICKER_STRENGTH)
        flow_ms, blend_ms = [], []
        for source, frame in zip(sources, stylized):
            started = time.perf_counter()
            estimate = motion(source)
            middle = time.perf_counter()
            blender(frame, estimate)
            ended = time.perf_counter()
            if not estimate.cut:
                flow_ms.append(1000 * (middle - started))
                blend_ms.append(1000 * (ended - middle))
        costs[name] = {"flow_ms": float(np.median(flow_ms)), "blend_ms": float(np.median(blend_ms))}
    return costs


def generator_ms(stylize: Callable[[np.ndarray], np.ndarray], frame: np.ndarray, repeats: int) -> float:
    stylize(frame)  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        stylize(frame)
        samples.append(time.perf_counter() - started)
    return 1000 * float(np.median(samples))


# -- the part ---------------------------------------------------------------------------------------


def _rows(sources: list[np.ndarray], stylized: list[np.ndarray], strengths, metric: WarpingError) -> dict[str, object]:
    per_frame = metric(stylized)
    rows = {"per_frame": per_frame, "deflickered": {}}
    for strength in strengths:
        out = deflickered(sources, stylized, strength)
        error = metric(out)
        rows["deflickered"][f"{strength:g}"] = {
            "warping_error": error, "reduction": 1 - error / per_frame if per_frame > 0 else float("nan"),
            "psnr_vs_per_frame_db": psnr(out, stylized),
        }  # fmt: skip
    return rows


def run(device: torch.device, settings: TemporalSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    height, width = settings.size
    clips = make_clips(height, width, settings.frames)
    stand_in = CartoonStandIn()
    result: dict[str, object] = {"status": "ok", "size": f"{width}x{height}", "frames": settings.frames, "clips": {}}
    flow_quality: dict[str, dict[str, float]] = {}
    for name, sources in clips.items():
        log(f"temporal: {name} ({width}x{height}, {len(sources)} frames), stand-in stylizer")
        metric = WarpingError(sources)
        stylized = [stand_in(frame) for frame in sources]
        rows = _rows(sources, stylized, settings.strengths, metric)
        rows["source_floor"] = metric(sources)
        result["clips"][name] = {"stand_in": rows}
        flow_quality[name] = {
            variant: metric(deflickered(sources, stylized, DEFAULT_DEFLICKER_STRENGTH, flow_scale=scale, preset=preset))
            for variant, (scale, preset) in FLOW_VARIANTS.items()
        }  # fmt: skip
        if name == "camera pan":
            result["stage_ms"] = stage_cost(sources, stylized)
    result["flow_variants_warping_error"] = flow_quality

    with _empty_cache():  # OpenVINO's compiled models go to a temporary cache, not the user's
        stylize, stylizer = generator_stylizer(device)
        result["generator_engine"] = stylizer.engine_for(height, width)
        result["generator_ms"] = generator_ms(stylize, clips["camera pan"][0], settings.timing_repeats)
        small_h, small_w = settings.generator_size
        result["generator_size"] = f"{small_w}x{small_h}"
        for name, sources in make_clips(small_h, small_w, settings.generator_frames, seed=1).items():
            log(f"temporal: {name} ({small_w}x{small_h}), random-weight generator")
            metric = WarpingError(sources)
            stylized = [stylize(frame) for frame in sources]
            rows = _rows(sources, stylized, (DEFAULT_DEFLICKER_STRENGTH,), metric)
            rows["source_floor"] = metric(sources)
            result["clips"][name]["random_generator"] = rows
    stage = result["stage_ms"]["half, ultrafast (the stage)"]
    result["stage_fraction_of_generator"] = (stage["flow_ms"] + stage["blend_ms"]) / result["generator_ms"]
    result["default_strength"] = DEFAULT_DEFLICKER_STRENGTH
    return result


def markdown(result: dict[str, object], device_label: str) -> str:
    clips = result["clips"]
    strengths = list(next(iter(clips.values()))["stand_in"]["deflickered"])
    headers = ["clip", "source (floor)", "per-frame", *(f"β={s}: error (−%, PSNR dB)" for s in strengths)]
    rows = []
    for name, clip in clips.items():
        data = clip["stand_in"]
        rows.append([
            name, _e(data["source_floor"]), _e(data["per_frame"]),
            *(_cell(data["deflickered"][s]) for s in strengths),
        ])  # fmt: skip
    generator_rows = []
    for name, clip in clips.items():
        data = clip.get("random_generator")
        if data:
            (strength, cell), = data["deflickered"].items()
            generator_rows.append([name, _e(data["source_floor"]), _e(data["per_frame"]), f"β={strength}: {_cell(cell)}"])
    cost_rows = [[name, fmt(c["flow_ms"], 1), fmt(c["blend_ms"], 1), fmt(c["flow_ms"] + c["blend_ms"], 1)] for name, c in result["stage_ms"].items()]
    flow_rows = [[clip, *(_e(v) for v in variants.values())] for clip, variants in result["flow_variants_warping_error"].items()]
    flow_headers = ["clip", *next(iter(result["flow_variants_warping_error"].values()))]
    return "\n".join([
        f"### Temporal consistency: warping error (Lai et al.), ×10⁻³, lower is steadier ({device_label})",
        "",
        f"Stand-in cartoon stylizer (per-frame k-means palette, noise-sensitive edges), {result['size']}, {result['frames']} frames:",
        "",
        markdown_table(headers, rows),
        "",
        f"AnimeGAN with random weights ({result['generator_size']}): low-contrast output, little flicker to remove:",
        "",
        markdown_table(["clip", "source (floor)", "per-frame", "deflickered"], generator_rows),
        "",
        f"Cost at {result['size']}, ms per frame (median): the generator {fmt(result['generator_ms'], 0)} ms "
        f"({result['generator_engine']}); the stage {fmt(100 * result['stage_fraction_of_generator'], 1)} % of it",
        "",
        markdown_table(["flow", "flow ms", "blend ms", "total ms"], cost_rows),
        "",
        "Warping error of the stand-in deflickered at the default strength, by the stage's flow:",
        "",
        markdown_table(flow_headers, flow_rows),
        "",
    ])  # fmt: skip


def _e(value: float) -> str:
    return fmt(1000 * value, 2) if math.isfinite(value) else "–"


def _cell(cell: dict[str, float]) -> str:
    return f"{_e(cell['warping_error'])} (−{100 * cell['reduction']:.0f} %, {cell['psnr_vs_per_frame_db']:.1f})"
