"""TensorFlow 1 ``tf.image.resize_images`` (bilinear) in PyTorch.

TF1's ``ResizeBilinear`` with ``align_corners=False, half_pixel_centers=False`` (the defaults in
TF 1.15, confirmed on every resize op of the official AnimeGAN graph) maps output pixel ``d`` to
source coordinate ``d * in_size / out_size``: no half-pixel offset, unlike
``torch.nn.functional.interpolate(mode="bilinear")``. Halving an even size therefore *picks* every
other pixel instead of averaging pairs, and doubling repeats pixel ``i`` at ``2i`` and averages
``i, i+1`` at ``2i+1`` (the last one clamped). The official weights were trained through exactly
this, so a faithful import must resize the same way.

The same mapping is exactly ONNX ``Resize`` with ``mode="linear"`` and
``coordinate_transformation_mode="asymmetric"`` (``x_original = x_resized / scale``, edges clamped):
under ``torch.onnx.export`` the resize is emitted as that one node, with its output size computed
from the input's shape, so that an exported generator stays size-independent.
"""

from __future__ import annotations

import numpy as np
import torch


def _axis_weights(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Built where they are used: creating them on the host and copying them over would be a
    # blocking host-to-device copy in every Up-Conv, which stalls the pipeline's overlap.
    # TF computes the scale and source coordinate in float32: the scale is rounded to float32
    # here (a Python float holding a float32 value, exact in both), the product is a float32 mul.
    scale = float(np.float32(in_size / out_size))
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    lower = src.floor().to(torch.int64).clamp_(max=in_size - 1)
    upper = (lower + 1).clamp_(max=in_size - 1)
    frac = src - lower.to(torch.float32)
    return lower, upper, frac


def _resize_axis(x: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    in_size = x.shape[dim]
    if in_size == out_size:
        return x
    if in_size % out_size == 0:
        # Integer shrink (Down-Conv on the padded, even sizes): sources d * k are whole pixels, so
        # it is a strided pick. Decided from the sizes alone: no device sync, no graph break.
        every_kth = [slice(None)] * x.dim()
        every_kth[dim] = slice(None, None, in_size // out_size)
        return x[tuple(every_kth)]
    lower, upper, frac = _axis_weights(in_size, out_size, x.device)
    x_lower = x.index_select(dim, lower)
    x_upper = x.index_select(dim, upper)
    shape = [1] * x.dim()
    shape[dim] = out_size
    frac = frac.to(x.dtype).view(shape)
    return x_lower + (x_upper - x_lower) * frac


def _onnx_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # Sizes, not scales: they may be symbolic (dynamic height and width), and ONNX then derives
    # the scale as out / in, which is TF1's in / out mapping inverted.
    sizes = torch.tensor([x.shape[0], x.shape[1], size[0], size[1]], dtype=torch.int64)
    attributes = {"mode": "linear", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return torch.onnx.ops.symbolic(
        "::Resize", (x, None, None, sizes), attributes, dtype=x.dtype, shape=(x.shape[0], x.shape[1], *size), version=18
    )


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``x`` (B, C, H, W) to ``size`` = (H', W') exactly as TF1's default bilinear resize."""
    if torch.onnx.is_in_onnx_export():
        return _onnx_resize(x, size)
    out_h, out_w = size
    return _resize_axis(_resize_axis(x, out_h, 2), out_w, 3)
