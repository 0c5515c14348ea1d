"""The AnimeGANv2 generator, as the authors' TensorFlow code builds it, under either weight semantics.

Every layer follows TachibanaYoshino/AnimeGANv2, ``net/generator.py`` (``G_net``):

* Conv-Block (``Conv2DNormLReLU``): reflect pad (3 for 7×7, 1 for 3×3 stride 1, [0, 1] bottom/right
  only before stride 2, none for 1×1), a "VALID" conv without bias, layer norm, LeakyReLU(0.2);
* ``tf.contrib.layers.layer_norm`` (``begin_norm_axis=1``, ``begin_params_axis=-1``) normalizes each
  sample over H, W and C together, with one scale and offset per channel: a GroupNorm with one
  group. Its epsilon is not an argument: tf.contrib fixes ``variance_epsilon=1e-12``;
* inverted residual blocks: 1×1 Conv-Block expanding to 2× the channels, depthwise 3×3 **with a
  bias** (``dwise_conv(bias=True)``, where v1 had none), layer norm, LeakyReLU, 1×1 linear conv,
  layer norm, and the residual add only where the input has the output's channels (so not in the
  first block, 128 → 256);
* Unsample (blocks D and E): resize, then a Conv-Block;
* out_layer: a 1×1 conv to 3 channels without bias, then tanh.

2,143,552 parameters in 77 tensors (8.18 MiB in fp32; the authors' README says "8.17 Mb").

Weights carry the semantics of the code they were trained in, and must run under it:

* ``tf1``: the authors' graph, for their checkpoints and their conversions (bryandlee's
  ``paprika.pt``): layer-norm epsilon 1e-12; Unsample resizes to twice the current size
  (``2 * tf.shape(inputs)``) with TF1's bilinear resize (no half-pixel centres).
* ``pytorch``: bryandlee/animegan2-pytorch's ``model.py``, in which ``face_paint_512_v1/v2`` and
  ``celeba_distill`` were trained: ``nn.GroupNorm(1, C)`` with its default epsilon 1e-5, and
  Unsample is ``F.interpolate(mode="bilinear", align_corners=True)`` to the sizes recorded on the
  way down (the output of block A, then the input's).

Module names mirror the TensorFlow scopes (a, b, c, d, e, out) so the checkpoint mapping in
:mod:`animevid.weights.convert` reads as a table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..options import GENERATOR_MIN_SIDE
from .padding import pad_to_multiple
from .resize import tf1_resize_bilinear

SEMANTICS = ("tf1", "pytorch")
NORM_EPS = {"tf1": 1e-12, "pytorch": 1e-5}  # tf.contrib layer_norm's fixed epsilon; nn.GroupNorm's default
LRELU_SLOPE = 0.2


class LayerNorm(nn.GroupNorm):
    """The v2 layer norm: over (C, H, W) of each sample, one scale and offset per channel (a GroupNorm
    with one group, which is how torch runs it fastest).

    In an ONNX export it is written as its plain formula instead, ``(x - mean) / sqrt(var + eps)`` with
    mean and biased variance over (C, H, W), then the per-channel affine: OpenVINO fuses that pattern,
    affine and following LeakyReLU included, into one ``MVN`` on its blocked layout, while the
    ``GroupNormalization`` node torch emits for a GroupNorm is decomposed into reshapes to a flat
    (1, 1, C·H·W) view, each forcing layout reorders (``python -m benchmarks.v2graph``).
    """

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__(1, channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export():
            return super().forward(x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        centred = x - mean
        variance = centred.pow(2).mean(dim=(1, 2, 3), keepdim=True)
        normalized = centred / torch.sqrt(variance + self.eps)
        return normalized * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ConvNormLReLU(nn.Module):
    """Conv-Block: reflect pad → conv without bias → layer norm → LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, norm_eps: float, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        # TF's Conv2D pads (3, 3) for 7×7, (1, 1) for 3×3 stride 1, and (0, 1) bottom/right for stride 2.
        half = kernel_size // 2
        self.padding = (0, 1, 0, 1) if stride == 2 else (half,) * 4
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, bias=False)
        self.norm = LayerNorm(out_ch, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.padding):
            x = F.pad(x, self.padding, mode="reflect")
        return F.leaky_relu(self.norm(self.conv(x)), LRELU_SLOPE)


class InvertedResBlock(nn.Module):
    """IRB: 1×1 expand Conv-Block → depthwise 3×3 with bias, LN, LReLU → 1×1 project, LN → residual add.

    Like v1 it ends linearly; the add happens only when ``in_ch == out_ch`` (the official condition).
    """

    def __init__(self, in_ch: int, out_ch: int, norm_eps: float, expansion: int = 2) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.residual = in_ch == out_ch
        # pw
        self.expand = ConvNormLReLU(in_ch, hidden, norm_eps, kernel_size=1)
        # dw
        self.depthwise = nn.Conv2d(hidden, hidden, 3, groups=hidden, bias=True)
        self.depthwise_norm = LayerNorm(hidden, norm_eps)
        # pw-linear
        self.project = nn.Conv2d(hidden, out_ch, 1, bias=False)
        self.project_norm = LayerNorm(out_ch, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x)
        out = self.depthwise(F.pad(out, (1, 1, 1, 1), mode="reflect"))
        out = F.leaky_relu(self.depthwise_norm(out), LRELU_SLOPE)
        out = self.project_norm(self.project(out))
        return x + out if self.residual else out


class BlockA(nn.Module):
    """A: 7×7 Conv-Block to 32, stride-2 Conv-Block to 64 (1/2 resolution), Conv-Block."""

    def __init__(self, norm_eps: float) -> None:
        super().__init__()
        self.conv1 = ConvNormLReLU(3, 32, norm_eps, kernel_size=7)
        self.down = ConvNormLReLU(32, 64, norm_eps, stride=2)
        self.conv2 = ConvNormLReLU(64, 64, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.down(self.conv1(x)))


class BlockB(nn.Module):
    """B: stride-2 Conv-Block to 128 (1/4 resolution), Conv-Block."""

    def __init__(self, norm_eps: float) -> None:
        super().__init__()
        self.down = ConvNormLReLU(64, 128, norm_eps, stride=2)
        self.conv = ConvNormLReLU(128, 128, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.down(x))


class BlockC(nn.Module):
    """C: Conv-Block, four IRBs (128 → 256, then 256 → 256 three times), Conv-Block back to 128."""

    def __init__(self, norm_eps: float) -> None:
        super().__init__()
        self.conv_in = ConvNormLReLU(128, 128, norm_eps)
        self.blocks = nn.Sequential(
            InvertedResBlock(128, 256, norm_eps), *(InvertedResBlock(256, 256, norm_eps) for _ in range(3))
        )
        self.conv_out = ConvNormLReLU(256, 128, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.blocks(self.conv_in(x)))


class BlockD(nn.Module):
    """D: Unsample's Conv-Block at 128 (on the input the generator resized), Conv-Block."""

    def __init__(self, norm_eps: float) -> None:
        super().__init__()
        self.up = ConvNormLReLU(128, 128, norm_eps)
        self.conv = ConvNormLReLU(128, 128, norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class BlockE(nn.Module):
    """E: Unsample's Conv-Block to 64 (full resolution), Conv-Block, 7×7 Conv-Block to 32."""

    def __init__(self, norm_eps: float) -> None:
        super().__init__()
        self.up = ConvNormLReLU(128, 64, norm_eps)
        self.conv1 = ConvNormLReLU(64, 64, norm_eps)
        self.conv2 = ConvNormLReLU(64, 32, norm_eps, kernel_size=7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self.up(x)))


def upsample(x: torch.Tensor, semantics: str, recorded_size: tuple[int, int]) -> torch.Tensor:
    """Unsample's resize of (B, C, h, w) under ``semantics``; ``recorded_size`` is the size of the
    matching map on the way down (block A's output, or the input), which only ``pytorch`` uses."""
    if semantics == "tf1":
        # tf.image.resize_images(inputs, [2 * tf.shape(inputs)[1], 2 * tf.shape(inputs)[2]]), TF1 bilinear
        return tf1_resize_bilinear(x, (2 * x.shape[2], 2 * x.shape[3]))
    return F.interpolate(x, size=recorded_size, mode="bilinear", align_corners=True)


class AnimeGANv2Generator(nn.Module):
    """Photo → anime generator v2. Input and output are RGB in [-1, 1], (B, 3, H, W), any H and W.

    Under ``tf1`` inputs are reflect-padded (bottom/right) to a multiple of 4 and the result is
    cropped back, as in v1: the two stride-2 convs floor the size to ``H // 2`` and ``H // 4``, and
    TF's 2× Unsample comes back to ``4 * (H // 4)``, so TF itself returns a smaller, shifted image
    for other sizes. At multiples of 4 nothing is padded and the result is TF's. Under ``pytorch``
    the resizes go to the recorded sizes, so every size runs unpadded, as in bryandlee's code.
    Both pad tiny inputs up to :attr:`MIN_SIZE` (the 1/4-resolution map needs 2×2 for its pads).
    """

    MIN_SIZE = GENERATOR_MIN_SIDE
    SEMANTICS = SEMANTICS

    def __init__(self, semantics: str = "tf1") -> None:
        if semantics not in SEMANTICS:
            raise ValueError(f"unknown AnimeGANv2 semantics {semantics!r} (use {' or '.join(SEMANTICS)})")
        super().__init__()
        self.semantics = semantics
        norm_eps = NORM_EPS[semantics]
        self.a = BlockA(norm_eps)
        self.b = BlockB(norm_eps)
        self.c = BlockC(norm_eps)
        self.d = BlockD(norm_eps)
        self.e = BlockE(norm_eps)
        self.out = nn.Conv2d(32, 3, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 4 if self.semantics == "tf1" else 1
        x, height, width = pad_to_multiple(x, multiple, self.MIN_SIZE)
        full_size = (x.shape[2], x.shape[3])
        half = self.a(x)  # (B, 64, H/2, W/2)
        x = self.c(self.b(half))  # (B, 128, H/4, W/4)
        x = self.d(upsample(x, self.semantics, (half.shape[2], half.shape[3])))  # (B, 128, H/2, W/2)
        x = self.e(upsample(x, self.semantics, full_size))  # (B, 32, H, W)
        x = torch.tanh(self.out(x))
        return x[:, :, :height, :width]
