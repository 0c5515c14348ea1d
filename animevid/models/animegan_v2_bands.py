"""The AnimeGANv2 generator computed band by band: the same function as its forward, in bounded memory.

As for v1 (:mod:`animevid.models.animegan_bands`, whose building blocks this reuses): every layer is
local except the norms, so each layer is computed on bands of rows (full width) with its own reflect
padding at the image borders, and every norm's statistics are summed band by band in float64 before
it is applied. v2's norm is a layer norm: one mean and variance over (C, H, W) per sample, with a
scale and offset per channel, so its sums run over the channels too. Both weight semantics are
covered: ``tf1`` (TF1's 2× bilinear resize, input padded to a multiple of 4) and ``pytorch``
(``align_corners=True`` resizes to the sizes recorded on the way down, no padding).

Held whole at once is at most one 64-channel full-resolution tensor plus one 32-channel one, or
one 64-channel one plus a 128-channel half-resolution one: 384 bytes per input pixel in fp32, as
for v1. Never held (recomputed when read): the first Conv-Block (3→32 channels, 7×7: cheap), each
inverted residual block's depthwise output, and E's Unsample Conv-Block (128→64 channels at full
resolution, about 18 % more arithmetic than the plain forward).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .animegan_bands import BAND_PIXELS, Doubled, Layer, Recomputed, Rows, Whole, held, reflected_rows
from .animegan_v2 import AnimeGANv2Generator, ConvNormLReLU, InvertedResBlock
from .padding import pad_to_multiple


def _conv_rows(conv: torch.nn.Conv2d, source: Rows, start: int, stop: int, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Output rows [start, stop) of a VALID k×k convolution (stride s) after reflect padding
    ``(left, right, top, bottom)``: output row i reads padded rows s·i .. s·i + k - 1, i.e. source
    rows from s·i - top, rows past either border mirrored (the bottom pad included)."""
    left, right, top, _ = padding
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    band = reflected_rows(source, stride * start - top, stride * (stop - 1) - top + kernel)
    if left or right:
        band = F.pad(band, (left, right, 0, 0), mode="reflect")
    return conv(band)


def conv_block(block: ConvNormLReLU, source: Rows) -> Layer:
    """Conv-Block: reflect pad → conv → layer norm → LeakyReLU(0.2)."""
    left, right, top, bottom = block.padding
    kernel, stride = block.conv.kernel_size[0], block.conv.stride[0]
    height = (source.height + top + bottom - kernel) // stride + 1
    width = (source.width + left + right - kernel) // stride + 1
    return Layer(lambda start, stop: _conv_rows(block.conv, source, start, stop, block.padding), block.conv.out_channels,
                 height, width, block.norm, True)  # fmt: skip


def _aligned_weights(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of ``F.interpolate(mode="bilinear", align_corners=True)`` on one axis:
    output d reads d · (in - 1) / (out - 1), the scale in float32 as torch computes it."""
    scale = float(np.float32((in_size - 1) / (out_size - 1))) if out_size > 1 else 0.0
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    lower = src.floor().to(torch.int64).clamp_(max=in_size - 1)
    upper = (lower + 1).clamp_(max=in_size - 1)
    return lower, upper, src - lower.to(torch.float32)


class AlignedResized:
    """bryandlee's Unsample resize (``pytorch`` semantics) to a given size, read by bands of rows."""

    def __init__(self, source: Rows, height: int, width: int, device: torch.device) -> None:
        self.source = source
        self.channels, self.height, self.width = source.channels, height, width
        self._rows = _aligned_weights(source.height, height, device)
        self._columns = _aligned_weights(source.width, width, device)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        lower, upper, frac = (weights[start:stop] for weights in self._rows)
        first, last = int(lower[0]), int(upper[-1]) + 1
        band = self.source.rows(first, last)
        top, bottom = band.index_select(2, lower - first), band.index_select(2, upper - first)
        rows = top + (bottom - top) * frac.to(band.dtype).view(1, 1, -1, 1)
        left, right, frac = self._columns
        left, right = rows.index_select(3, left), rows.index_select(3, right)
        return left + (right - left) * frac.to(rows.dtype).view(1, 1, 1, -1)


class BandedAnimeGANv2:
    """:class:`AnimeGANv2Generator`'s forward in bounded memory (see the module docstring).

    >>> banded = BandedAnimeGANv2(generator)
    >>> y = banded(x)  # (B, 3, H, W) in [-1, 1], equal to generator(x) up to float rounding
    """

    def __init__(self, generator: AnimeGANv2Generator, band_pixels: int = BAND_PIXELS) -> None:
        self.generator = generator
        self.band_pixels = band_pixels
        self.device = generator.out.weight.device

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._one(image[None]) for image in x])

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        g = self.generator
        x, height, width = pad_to_multiple(x, 4 if g.semantics == "tf1" else 1, g.MIN_SIZE)
        full_size = (x.shape[2], x.shape[3])
        # A: (1, 3, H, W) → (1, 64, H/2, W/2); the 32-channel full-resolution map is never held.
        y: Rows = self._recomputed(conv_block(g.a.conv1, Whole(x)))
        del x
        y = self._held(conv_block(g.a.down, y))
        y = self._held(conv_block(g.a.conv2, y))
        half_size = (y.height, y.width)
        # B: → (1, 128, H/4, W/4)
        y = self._held(conv_block(g.b.down, y))
        y = self._held(conv_block(g.b.conv, y))
        # C
        y = self._held(conv_block(g.c.conv_in, y))
        for block in g.c.blocks:
            y = self._inverted_residual(block, y)
        y = self._held(conv_block(g.c.conv_out, y))
        # D: → (1, 128, H/2, W/2)
        y = self._held(conv_block(g.d.up, self._upsampled(y, half_size)))
        y = self._held(conv_block(g.d.conv, y))
        # E: → (1, 32, H, W); Unsample's 64-channel full-resolution output is recomputed when read.
        y = self._held(conv_block(g.e.conv1, self._recomputed(conv_block(g.e.up, self._upsampled(y, full_size)))))
        y = self._held(conv_block(g.e.conv2, y))
        source = y
        out = self._held(Layer(lambda start, stop: torch.tanh(g.out(source.rows(start, stop))), 3, y.height, y.width, None, False))
        return out.tensor[:, :, :height, :width]

    def _held(self, layer: Layer) -> Whole:
        return held(layer, self.band_pixels, self.generator.out.weight)

    def _recomputed(self, layer: Layer) -> Recomputed:
        return Recomputed(layer, self.band_pixels, self.device)

    def _upsampled(self, source: Rows, recorded_size: tuple[int, int]) -> Rows:
        if self.generator.semantics == "tf1":
            return Doubled(source, self.device)
        return AlignedResized(source, *recorded_size, self.device)

    def _inverted_residual(self, block: InvertedResBlock, source: Whole) -> Whole:
        """IRB: 1×1 expand Conv-Block → depthwise 3×3 with bias, LN, LReLU → 1×1 project, LN → (+ input)."""
        expanded = self._held(conv_block(block.expand, source))
        depthwise = self._recomputed(
            Layer(lambda start, stop: _conv_rows(block.depthwise, expanded, start, stop, (1, 1, 1, 1)),
                  expanded.channels, expanded.height, expanded.width, block.depthwise_norm, True)
        )  # fmt: skip
        out = self._held(
            Layer(lambda start, stop: block.project(depthwise.rows(start, stop)), block.project.out_channels, source.height,
                  source.width, block.project_norm, False)
        )  # fmt: skip
        del depthwise, expanded
        if block.residual:
            out.tensor += source.tensor
        return out


