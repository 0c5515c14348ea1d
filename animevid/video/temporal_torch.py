"""The blend of :mod:`animevid.video.temporal` with torch ops, for frames that live on a device (CUDA).

The motion (flow and confidence) still comes from :class:`~animevid.video.temporal.MotionEstimator`
on the host: it depends on the source frames only and runs ahead of the generator. What this
twin moves to the device is the per-frame, sequential part: scaling the flow up, warping the
previous output (``grid_sample``, bilinear, borders repeated as ``cv2.remap`` with
BORDER_REPLICATE), and the blend. Its frames are those of :class:`~animevid.video.temporal.Blender`
within 1–2 levels (OpenCV interpolates uint8 images in fixed point).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..options import DEFAULT_DEFLICKER_STRENGTH, check_deflicker_strength
from .temporal import Motion


class TorchBlender:
    """:class:`animevid.video.temporal.Blender` on (H, W, 3) uint8 tensors of any device; one previous output of state."""

    def __init__(self, strength: float = DEFAULT_DEFLICKER_STRENGTH) -> None:
        self.strength = check_deflicker_strength(strength)
        self._previous: torch.Tensor | None = None

    def reset(self) -> None:
        self._previous = None

    @torch.inference_mode()
    def __call__(self, stylized: torch.Tensor, motion: Motion) -> torch.Tensor:
        previous = self._previous
        if motion.cut or previous is None or previous.shape != stylized.shape or self.strength == 0:
            output = stylized.clone()
        else:
            warped, weight = warp_previous(previous, motion)
            frame = stylized.float()
            output = torch.round(frame + (self.strength * weight).unsqueeze(-1) * (warped - frame)).to(torch.uint8)
        self._previous = output
        return output


def warp_previous(previous: torch.Tensor, motion: Motion) -> tuple[torch.Tensor, torch.Tensor]:
    """``previous`` (H, W, 3) uint8 moved to frame t, as float, and the full-size confidence."""
    device = previous.device
    height, width = previous.shape[:2]
    flow = torch.from_numpy(motion.flow).to(device).permute(2, 0, 1)[None]  # (1, 2, h, w)
    confidence = torch.from_numpy(motion.confidence).to(device)[None, None]
    small_h, small_w = flow.shape[-2:]
    if (small_h, small_w) != (height, width):
        # align_corners=False is cv2.resize's INTER_LINEAR (pixel centres at half-pixel offsets)
        flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([width / small_w, height / small_h], device=device).view(1, 2, 1, 1)
        confidence = F.interpolate(confidence, size=(height, width), mode="bilinear", align_corners=False)
    xs = torch.arange(width, device=device, dtype=torch.float32).view(1, width) + flow[0, 0]
    ys = torch.arange(height, device=device, dtype=torch.float32).view(height, 1) + flow[0, 1]
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    grid = torch.stack((2 * xs / (width - 1) - 1, 2 * ys / (height - 1) - 1), dim=-1)[None]  # align_corners=True
    image = previous.permute(2, 0, 1)[None].float()
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)[0].permute(1, 2, 0)
    return warped, confidence[0, 0].clamp(0, 1) * inside
