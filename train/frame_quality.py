"""Measures that decide whether a crop is worth keeping as a style image.

* brightness: mean gray level (0-255); nearly black (fades, night-time title cards) or nearly white
  (flashes) crops teach the discriminator nothing about the artist's palette.
* detail: variance of the Laplacian of the gray image; low for flat colour, blur and fades.
* perceptual hash (:mod:`animevid.train.imagehash`), compared to the crops already kept, to drop repeated
  and near-identical shots.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .imagehash import HashIndex, phash

# Names of the reasons a crop is rejected, as counted in results and manifests.
DARK = "dark"
BRIGHT = "bright"
LOW_DETAIL = "low_detail"
DUPLICATE = "duplicate"
REJECTION_REASONS = (DARK, BRIGHT, LOW_DETAIL, DUPLICATE)


@dataclass(frozen=True)
class QualityThresholds:
    min_brightness: float
    max_brightness: float
    min_detail: float
    max_duplicate_distance: int | None  # None: keep near-duplicates


@dataclass(frozen=True)
class CropQuality:
    brightness: float
    detail: float
    phash: int
    duplicate_distance: int  # to the nearest kept crop; 65 when none is kept yet


def measure(bgr: np.ndarray, kept: HashIndex) -> CropQuality:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    hash_value = phash(gray)
    return CropQuality(
        brightness=float(gray.mean()),
        detail=float(cv2.Laplacian(gray, cv2.CV_64F).var()),
        phash=hash_value,
        duplicate_distance=kept.nearest_distance(hash_value),
    )


def rejection(quality: CropQuality, thresholds: QualityThresholds) -> str | None:
    """Why the crop is rejected (one of :data:`REJECTION_REASONS`), or None to keep it."""
    if quality.brightness < thresholds.min_brightness:
        return DARK
    if quality.brightness > thresholds.max_brightness:
        return BRIGHT
    if quality.detail < thresholds.min_detail:
        return LOW_DETAIL
    limit = thresholds.max_duplicate_distance
    if limit is not None and quality.duplicate_distance <= limit:
        return DUPLICATE
    return None
