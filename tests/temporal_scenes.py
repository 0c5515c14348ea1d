"""Synthetic scenes for the deflicker tests, with their true motion known (integer shifts), and stand-in stylizers."""

from __future__ import annotations

import cv2
import numpy as np

HEIGHT, WIDTH = 64, 96


def texture(height: int, width: int, seed: int = 0, blur: float = 2.0) -> np.ndarray:
    """Smoothed colour noise: texture at several scales, as DIS needs to see motion."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    fine = cv2.GaussianBlur(noise, (0, 0), blur)
    coarse = cv2.GaussianBlur(noise, (0, 0), blur * 4)
    mixed = 0.5 * (fine - fine.mean()) * 3 + 0.5 * (coarse - coarse.mean()) * 6 + 128
    return np.clip(mixed, 0, 255).astype(np.uint8)


def pan(frames: int, step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A camera panning right by ``step`` pixels a frame: frame t is frame t-1 moved ``step`` pixels left."""
    world = texture(HEIGHT, WIDTH + step * frames, seed)
    return [np.ascontiguousarray(world[:, step * t : step * t + WIDTH]) for t in range(frames)]


def moving_square(frames: int, step: int = 8, size: int = 24, seed: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A flat square moving right over a still textured background; also the square's masks."""
    background = texture(HEIGHT, WIDTH, seed)
    shots, masks = [], []
    for t in range(frames):
        frame = background.copy()
        mask = np.zeros((HEIGHT, WIDTH), bool)
        top, left = 20, 4 + step * t
        mask[top : top + size, left : left + size] = True
        frame[mask] = (230, 40, 200)
        shots.append(frame)
        masks.append(mask)
    return shots, masks


def flickering_stylizer(seed: int = 0, noise: float = 12.0):
    """Stylizes like an unstable GAN: a fixed tone curve plus fresh noise and a colour cast every frame."""
    rng = np.random.default_rng(seed)

    def stylize(frame: np.ndarray) -> np.ndarray:
        toned = 255 * (frame.astype(np.float32) / 255) ** 0.8
        cast = rng.normal(0, noise / 2, 3).astype(np.float32)
        jitter = rng.normal(0, noise, frame.shape).astype(np.float32)
        return np.clip(toned + cast + jitter, 0, 255).astype(np.uint8)

    return stylize


def stable_stylizer(frame: np.ndarray) -> np.ndarray:
    """A deterministic per-pixel style: the same input always gives the same output."""
    return (255 - frame // 2 - frame // 4).astype(np.uint8)


def known_pan_warping_error(outputs: list[np.ndarray], step: int, margin: int = 4) -> float:
    """Lai et al.'s warping error with the true flow of :func:`pan` (frame t+1 at x is frame t at x + step), borders left out."""
    errors = []
    for earlier, later in zip(outputs, outputs[1:]):
        a = earlier[:, step + margin : WIDTH - margin].astype(np.float64) / 255
        b = later[:, margin : WIDTH - step - margin].astype(np.float64) / 255
        errors.append(np.mean((a - b) ** 2))
    return float(np.mean(errors))
