"""Padding an input to a size a generator can run, and cropping the result back."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int) -> tuple[torch.Tensor, int, int]:
    """Pad (B, C, H, W) bottom/right to sides that are multiples of ``multiple`` and at least ``minimum``.

    Returns the padded tensor and the original height and width, to crop the output back to.
    """
    height, width = x.shape[2], x.shape[3]
    if height < minimum or width < minimum:
        pad_h = max(-height % multiple, minimum - height)
        pad_w = max(-width % multiple, minimum - width)
        # Reflect needs the pad to be smaller than the side; tiny images fall back to replicate.
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), height, width
    # Padded even when the pads are 0 (a copy of the 3-channel input): no branch on the size, so
    # that an exported graph (dynamic height and width) pads every size correctly.
    return F.pad(x, (0, -width % multiple, 0, -height % multiple), mode="reflect"), height, width
