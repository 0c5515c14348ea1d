"""Independent references for stylized pixels: the generator run directly, its pre- and
post-processing written out here (not the Stylizer's code), and what a lossless yuv420p encode keeps."""

from __future__ import annotations

import av
import numpy as np
import torch
import torch.nn.functional as F

from animevid.models import AnimeGANGenerator


def generator_from(state_dict: dict[str, torch.Tensor]) -> AnimeGANGenerator:
    generator = AnimeGANGenerator()
    generator.load_state_dict(state_dict)
    return generator.eval()


@torch.no_grad()
def stylize_reference(generator: AnimeGANGenerator, rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """The generator on one (H, W, 3) uint8 RGB image: [0, 255] -> [-1, 1], NCHW, the generator (at
    ``size`` = (h, w) if given: antialiased bilinear down, bicubic back up), then -> [0, 255] rounded."""
    height, width = rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1  # (1, 3, H, W)
    if size is not None:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    y = generator(x)
    if size is not None:
        y = F.interpolate(y, size=(height, width), mode="bicubic", align_corners=False).clamp(-1, 1)
    return ((y + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()  # (H, W, 3)


def yuv420_roundtrip(rgb: np.ndarray) -> np.ndarray:
    """What a lossless yuv420p video keeps of an RGB frame (FFmpeg's default BT.601 conversion both ways)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
    return frame.to_ndarray(format="rgb24")


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
