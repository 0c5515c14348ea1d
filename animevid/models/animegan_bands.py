"""The AnimeGAN generator computed band by band: the same function as its forward, in bounded memory.

The plain forward holds several full-resolution tensors of 64 and 128 channels at once, and
oneDNN adds reordered copies and the resizes their temporaries: about 2 GB per megapixel in fp32,
so a 12 MP photo does not fit in 24 GB. Every layer of the network is local (convolutions, pads,
resizes, activations) except the instance norms, whose per-channel mean and variance cover the
whole image. So each layer is computed here on bands of rows (full width), reading only the input
rows it needs (with the layer's own reflect padding at the image borders), and every norm's
statistics are summed band by band in float64 before the norm is applied. Nothing is
approximated: the output equals the plain forward's up to float rounding.

A layer's output is either held whole (:class:`Whole`), or, where holding it would set the peak,
*virtual* (:class:`Recomputed`): a first pass over the bands only sums its norm statistics, and
its rows are computed again, normalized, whenever the next layer reads them. Virtual are the
first Conv-Block (3→64 channels: cheap to recompute), the Down-Convs' resize branches (added band
by band into the strided branch) and, at full resolution, the last Up-Conv (128 channels) and the
last Conv-Block. What is held at once is then at most one 64-channel full-resolution tensor and
one 128-channel half-resolution tensor: 384 bytes per pixel in fp32 (:data:`HELD_BYTES_PER_PIXEL`),
plus the bands. The recomputation costs about 13 % more arithmetic than the plain forward (counted at 256×256).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .animegan import LRELU_SLOPE, AnimeGANGenerator, ConvNormLReLU, DownConv, InvertedResBlock, SeparableConv, UpConv
from .padding import pad_to_multiple
from .resize import _axis_weights, _resize_axis

# Pixels per band of rows: a band of the widest layer (128 channels, fp32) is then 128 MiB, big
# enough that convolutions run at full speed, small next to the tensors held whole.
BAND_PIXELS = 1 << 18
# Bytes per (padded) input pixel held whole at the peak, in fp32: a 64-channel full-resolution
# tensor (256 B) plus a 128-channel half-resolution one (128 channels / 4 pixels * 4 B = 128 B).
HELD_BYTES_PER_PIXEL = 384
# Bytes per band of one layer's output: below glibc's largest mmap threshold (32 MiB), the band
# temporaries are then reused from the heap instead of being mapped afresh and page-faulted in for
# every band (at 12 MP those faults cost as much CPU time as the arithmetic), while a band of the
# widest full-resolution layer (64 channels, 4032 pixels) still has 24 rows.
BAND_BYTES = 24 << 20


class Rows(Protocol):
    """A (1, C, H, W) tensor that can be read by bands of rows."""

    channels: int
    height: int
    width: int

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) as a (1, C, stop - start, W) tensor, 0 <= start < stop <= height."""
        ...


@dataclass
class Whole:
    """A tensor held in memory."""

    tensor: torch.Tensor

    @property
    def channels(self) -> int:
        return self.tensor.shape[1]

    @property
    def height(self) -> int:
        return self.tensor.shape[2]

    @property
    def width(self) -> int:
        return self.tensor.shape[3]

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self.tensor[:, :, start:stop]


class EveryOther:
    """The Down-Conv's TF1 resize to half size: at an exact factor of 2 it picks even rows and columns."""

    def __init__(self, source: Rows) -> None:
        self.source = source
        self.channels, self.height, self.width = source.channels, source.height // 2, source.width // 2

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return self.source.rows(2 * start, 2 * stop - 1)[:, :, ::2, : 2 * self.width : 2]


class Doubled:
    """The Up-Conv's TF1 bilinear resize to twice the size, rows computed from global coordinates."""

    def __init__(self, source: Rows, device: torch.device) -> None:
        self.source = source
        self.channels, self.height, self.width = source.channels, 2 * source.height, 2 * source.width
        self._lower, self._upper, self._frac = _axis_weights(source.height, self.height, device)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        lower, upper, frac = self._lower[start:stop], self._upper[start:stop], self._frac[start:stop]
        first, last = int(lower[0]), int(upper[-1]) + 1
        band = self.source.rows(first, last)
        top, bottom = band.index_select(2, lower - first), band.index_select(2, upper - first)
        rows = top + (bottom - top) * frac.to(band.dtype).view(1, 1, -1, 1)  # as tf1_resize_bilinear: rows first
        return _resize_axis(rows, self.width, 3)


def reflected_rows(source: Rows, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of ``source``, rows outside [0, height) mirrored as reflect padding does."""
    height = source.height
    if start >= 0 and stop <= height:
        return source.rows(start, stop)
    index = torch.arange(start, stop).abs()
    index = torch.where(index >= height, 2 * (height - 1) - index, index)
    first = int(index.min())
    band = source.rows(first, int(index.max()) + 1)
    return band.index_select(2, (index - first).to(band.device))


def bands(height: int, width: int, band_pixels: int = BAND_PIXELS, channels: int = 1) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges covering ``height`` rows, about ``band_pixels`` pixels each, and a band
    of ``channels`` float32 channels at most :data:`BAND_BYTES`."""
    step = max(1, min(band_pixels, BAND_BYTES // (4 * max(1, channels))) // max(1, width))
    for start in range(0, height, step):
        yield start, min(height, start + step)


class NormStatistics:
    """Sums of a layer's output, band by band, in float64: its norm's mean and variance.

    Per channel for an instance norm; with ``across_channels`` one mean and variance over (C, H, W),
    for AnimeGANv2's layer norm (a GroupNorm with one group), whose scale and offset stay per channel.
    """

    def __init__(self, channels: int, device: torch.device, across_channels: bool = False) -> None:
        self.across_channels = across_channels
        size = 1 if across_channels else channels
        self.sum = torch.zeros(size, dtype=torch.float64, device=device)
        self.squares = torch.zeros(size, dtype=torch.float64, device=device)
        self.count = 0

    def add(self, band: torch.Tensor) -> None:
        # Each row is reduced in the band's own precision (torch sums float rows pairwise: about 1e-7
        # relative), the rows in float64. Neither makes a copy of the band: a float64 copy and its
        # square were four times the band in fresh memory per band, and at 12 MP the page faults of
        # those allocations took as much time as the arithmetic. Bands stored in bf16 (the OpenVINO
        # bands) are reduced in float32.
        reduce_in = torch.float32 if band.dtype in (torch.bfloat16, torch.float16) else band.dtype
        row_sums = band.sum(dim=3, dtype=reduce_in).double()  # (B, C, H)
        row_squares = torch.linalg.vector_norm(band, dim=3, dtype=reduce_in).double().square()
        dims = (0, 1, 2) if self.across_channels else (0, 2)
        self.sum += row_sums.sum(dim=dims)
        self.squares += row_squares.sum(dim=dims)
        self.count += band.shape[2] * band.shape[3] * (band.shape[1] if self.across_channels else 1)

    @classmethod
    def for_norm(cls, norm: nn.Module, channels: int, device: torch.device) -> "NormStatistics":
        if isinstance(norm, nn.GroupNorm) and norm.num_groups != 1:
            raise ValueError(f"band statistics cover instance norms and one-group norms, not {norm.num_groups} groups")
        return cls(channels, device, across_channels=isinstance(norm, nn.GroupNorm))

    def affine(self, norm: nn.InstanceNorm2d | nn.GroupNorm) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift), (1, C, 1, 1) each: ``norm(x) == x * scale + shift`` over the whole image."""
        mean = self.sum / self.count
        variance = (self.squares / self.count - mean.square()).clamp_(min=0.0)  # biased, as instance norm
        scale = norm.weight.double() / torch.sqrt(variance + norm.eps)
        shift = norm.bias.double() - mean * scale
        return scale.float().view(1, -1, 1, 1), shift.float().view(1, -1, 1, 1)


@dataclass
class Layer:
    """One layer as bands: ``compute(start, stop)`` gives its output rows before the norm."""

    compute: Callable[[int, int], torch.Tensor]
    channels: int
    height: int
    width: int
    norm: nn.InstanceNorm2d | nn.GroupNorm | None
    activation: bool  # LeakyReLU(0.2) after the norm


def _normalize_(band: torch.Tensor, scale: torch.Tensor | None, shift: torch.Tensor | None, activation: bool) -> torch.Tensor:
    if scale is not None:
        band.mul_(scale).add_(shift)
    if activation:
        F.leaky_relu(band, LRELU_SLOPE, inplace=True)
    return band


class Recomputed:
    """A layer's output never held whole: its statistics are summed once, its rows computed on each read."""

    def __init__(self, layer: Layer, band_pixels: int, device: torch.device) -> None:
        self.layer = layer
        self.channels, self.height, self.width = layer.channels, layer.height, layer.width
        self._scale = self._shift = None
        if layer.norm is not None:
            statistics = NormStatistics.for_norm(layer.norm, layer.channels, device)
            for start, stop in bands(layer.height, layer.width, band_pixels, layer.channels):
                statistics.add(layer.compute(start, stop))
            self._scale, self._shift = statistics.affine(layer.norm)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        return _normalize_(self.layer.compute(start, stop), self._scale, self._shift, self.layer.activation)


def held(layer: Layer, band_pixels: int, like: torch.Tensor) -> Whole:
    """Compute ``layer`` into one tensor, band by band, then normalize it in place."""
    out = like.new_empty((1, layer.channels, layer.height, layer.width))
    statistics = NormStatistics.for_norm(layer.norm, layer.channels, like.device) if layer.norm is not None else None
    for start, stop in bands(layer.height, layer.width, band_pixels, layer.channels):
        band = layer.compute(start, stop)
        out[:, :, start:stop] = band
        if statistics is not None:
            statistics.add(band)
        del band
    scale, shift = statistics.affine(layer.norm) if statistics is not None else (None, None)
    _normalize_(out, scale, shift, layer.activation)
    return Whole(out)


# -- the layers of the network, as bands ------------------------------------------------------------


def _conv3x3_rows(conv: nn.Conv2d, source: Rows, start: int, stop: int, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """A VALID 3×3 convolution (stride 1 or 2) after reflect padding ``(left, right, top, bottom)``.

    Output row i reads padded rows stride * i .. stride * i + 2, i.e. source rows from
    stride * i - top; rows past either border come mirrored (the bottom pad of a stride-2 conv
    included: source row H is row H - 2).
    """
    left, right, top, _ = padding
    stride = conv.stride[0]
    band = reflected_rows(source, stride * start - top, stride * (stop - 1) - top + 3)
    return conv(F.pad(band, (left, right, 0, 0), mode="reflect"))


def _output_size(size: int, conv: nn.Conv2d, before: int, after: int) -> int:
    return (size + before + after - conv.kernel_size[0]) // conv.stride[0] + 1


def conv_block(block: ConvNormLReLU, source: Rows) -> Layer:
    """Conv-Block: (reflect pad) → conv → instance norm → LeakyReLU."""
    if block.pad:
        pads = (block.pad,) * 4

        def compute(start: int, stop: int) -> torch.Tensor:
            return _conv3x3_rows(block.conv, source, start, stop, pads)

        height, width = _output_size(source.height, block.conv, 1, 1), _output_size(source.width, block.conv, 1, 1)
    else:

        def compute(start: int, stop: int) -> torch.Tensor:
            return block.conv(source.rows(start, stop))

        height, width = source.height, source.width
    return Layer(compute, block.conv.out_channels, height, width, block.norm, True)


def separable(conv: SeparableConv, source: Rows) -> Layer:
    """DSConv: reflect pad → depthwise 3×3 (stride 1 or 2) → pointwise → instance norm → LeakyReLU."""
    left, right, top, bottom = conv.padding

    def compute(start: int, stop: int) -> torch.Tensor:
        return conv.pointwise(_conv3x3_rows(conv.depthwise, source, start, stop, conv.padding))

    height = _output_size(source.height, conv.depthwise, top, bottom)
    width = _output_size(source.width, conv.depthwise, left, right)
    return Layer(compute, conv.pointwise.out_channels, height, width, conv.norm, True)


class BandedAnimeGAN:
    """:class:`AnimeGANGenerator`'s forward in bounded memory (see the module docstring).

    >>> banded = BandedAnimeGAN(generator)
    >>> y = banded(x)  # (B, 3, H, W) in [-1, 1], equal to generator(x) up to float rounding
    """

    def __init__(self, generator: AnimeGANGenerator, band_pixels: int = BAND_PIXELS) -> None:
        self.generator = generator
        self.band_pixels = band_pixels

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._one(image[None]) for image in x])

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        g = self.generator
        x, height, width = pad_to_multiple(x, g.SIZE_MULTIPLE, g.MIN_SIZE)
        y: Rows = Whole(x)
        del x
        # b1: (1, 64, H, W) → (1, 128, H/2, W/2)
        y = self._recomputed(conv_block(g.b1.conv1, y))
        y = self._held(conv_block(g.b1.conv2, y))
        y = self._down(g.b1.down, y)
        # b2: → (1, 256, H/4, W/4)
        y = self._held(conv_block(g.b2.conv, y))
        y = self._held(separable(g.b2.dsconv, y))
        y = self._down(g.b2.down, y)
        # m
        y = self._held(conv_block(g.m.conv_in, y))
        for block in g.m.blocks:
            y = self._inverted_residual(block, y)
        y = self._held(conv_block(g.m.conv_out, y))
        # u2: → (1, 128, H/2, W/2)
        y = self._held(self._up(g.u2.up, y))
        y = self._held(separable(g.u2.dsconv, y))
        y = self._held(conv_block(g.u2.conv, y))
        # u1: → (1, 64, H, W); the 128-channel full-resolution Up-Conv output is never held
        y = self._recomputed(self._up(g.u1.up, y))
        y = self._held(conv_block(g.u1.conv1, y))
        y = self._recomputed(conv_block(g.u1.conv2, y))
        out = self._held(Layer(lambda start, stop: torch.tanh(g.out(y.rows(start, stop))), 3, y.height, y.width, None, False))
        return out.tensor[:, :, :height, :width]

    def _held(self, layer: Layer) -> Whole:
        return held(layer, self.band_pixels, self.generator.out.weight)

    def _recomputed(self, layer: Layer) -> Recomputed:
        return Recomputed(layer, self.band_pixels, self.generator.out.weight.device)

    def _up(self, up: UpConv, source: Rows) -> Layer:
        """Up-Conv: TF1 resize ×2 → DSConv."""
        return separable(up.conv, Doubled(source, self.generator.out.weight.device))

    def _down(self, down: DownConv, source: Whole) -> Whole:
        """Down-Conv: stride-2 DSConv + (resize to half → DSConv), each normalized and activated, summed."""
        resized = self._recomputed(separable(down.resized, EveryOther(source)))
        out = self._held(separable(down.strided, source))
        for start, stop in bands(out.height, out.width, self.band_pixels, out.channels):
            out.tensor[:, :, start:stop] += resized.rows(start, stop)
        return out

    def _inverted_residual(self, block: InvertedResBlock, source: Whole) -> Whole:
        """IRB: 1×1 expand Conv-Block → depthwise 3×3, IN, LReLU → 1×1 project, IN → + input."""
        expanded = self._held(conv_block(block.expand, source))
        pads = (1, 1, 1, 1)
        depthwise = self._held(
            Layer(
                lambda start, stop: _conv3x3_rows(block.depthwise, expanded, start, stop, pads),
                expanded.channels, expanded.height, expanded.width, block.depthwise_norm, True,
            )
        )  # fmt: skip
        del expanded  # each full-size activation is freed as soon as the next one is held
        out = self._held(
            Layer(lambda start, stop: block.project(depthwise.rows(start, stop)), source.channels, source.height, source.width,
                  block.project_norm, False)
        )  # fmt: skip
        del depthwise
        out.tensor += source.tensor
        return out
