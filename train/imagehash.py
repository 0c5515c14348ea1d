"""Perceptual hashes (pHash) to find near-duplicate frames, and an index of the hashes kept so far.

The hash is the classic DCT pHash: the grayscale image shrunk to 32x32, its 2-D DCT, and one bit per
coefficient of the 8x8 lowest frequencies, set when that coefficient is above their median. Frames
that look alike (a repeated shot, a static shot sampled twice, a re-encode) differ in few bits; the
Hamming distance between two hashes is the number of differing bits (0 to 64).
"""

from __future__ import annotations

import numpy as np

HASH_BITS = 64


def phash(gray: np.ndarray) -> int:
    """64-bit perceptual hash of a 2-D uint8 (or float) grayscale image, as a Python int."""
    import cv2

    if gray.ndim != 2:
        raise ValueError(f"phash expects a 2-D grayscale image, got shape {gray.shape}")
    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming_distance(a: int, b: int) -> int:
    """Number of bits in which two hashes differ."""
    return (a ^ b).bit_count()


def format_hash(value: int) -> str:
    """The hash as 16 hex digits, as stored in manifests."""
    return f"{value:016x}"


class HashIndex:
    """The hashes of the images kept so far, answering "how close is the nearest one?".

    A linear scan over a packed uint64 array: a film gives a few thousand images, for which this
    takes microseconds per query and needs no tuning.
    """

    def __init__(self) -> None:
        self._hashes = np.empty(1024, dtype=np.uint64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, value: int) -> None:
        if self._count == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.empty_like(self._hashes)])
        self._hashes[self._count] = np.uint64(value)
        self._count += 1

    def nearest_distance(self, value: int) -> int:
        """Hamming distance to the closest stored hash (``HASH_BITS + 1`` when the index is empty)."""
        if self._count == 0:
            return HASH_BITS + 1
        differing = np.bitwise_xor(self._hashes[: self._count], np.uint64(value))
        return int(np.bitwise_count(differing).min())
