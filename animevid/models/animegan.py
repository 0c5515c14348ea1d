"""The AnimeGAN generator (Chen, Liu, Hu 2019, Fig. 1-2), as the authors' TensorFlow code builds it.

Every layer follows the official graph (TachibanaYoshino/AnimeGAN, ``net/generator.py``, checked
against the exported ``Hayao-60.ckpt.meta``), so that official weights compute the same function:

* convolutions have no bias; 3×3 ones reflect-pad by 1 and convolve "VALID";
* stride-2 separable convs reflect-pad by [0, 1] (bottom/right only) before a VALID 3×3 conv;
* Conv-Block norms use epsilon 1e-5 (``ops.instance_norm``), but the norms inside
  ``tf.contrib.layers.separable_conv2d`` keep that function's default epsilon 1e-6;
* Down-Conv and Up-Conv resize with TF1's bilinear resize (no half-pixel centres);
* the second Up-Conv keeps 128 channels where the paper's figure says 64.

The parameter count is 3,956,096 (paper Table 1; 15.09 MiB in fp32).

Module names mirror the TensorFlow scopes (b1, b2, m, u2, u1) so the checkpoint mapping in
:mod:`animevid.weights.convert` reads as a table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..options import GENERATOR_MIN_SIDE
from .padding import pad_to_multiple
from .resize import tf1_resize_bilinear

CONV_NORM_EPS = 1e-5  # ops.instance_norm
SEPARABLE_NORM_EPS = 1e-6  # tf.contrib.layers.instance_norm default, used by separable_conv2d
LRELU_SLOPE = 0.2


class ConvNormLReLU(nn.Module):
    """Conv-Block: (reflect pad) → conv without bias → instance norm → LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.pad = kernel_size // 2  # 1 for 3×3, 0 for the 1×1 expansion in the IRB
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, bias=False)
        self.norm = nn.InstanceNorm2d(out_ch, eps=CONV_NORM_EPS, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.leaky_relu(self.norm(self.conv(x)), LRELU_SLOPE)


class SeparableConv(nn.Module):
    """DSConv: depthwise 3×3 → pointwise 1×1 → instance norm (eps 1e-6) → LeakyReLU(0.2)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        # TF pads [1, 1] for stride 1 but [0, 1] (bottom/right only) for stride 2.
        self.padding = (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1)
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, stride=stride, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.norm = nn.InstanceNorm2d(out_ch, eps=SEPARABLE_NORM_EPS, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="reflect")
        x = self.pointwise(self.depthwise(x))
        return F.leaky_relu(self.norm(x), LRELU_SLOPE)


class DownConv(nn.Module):
    """Down-Conv: stride-2 DSConv + (resize to half → DSConv), summed."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.strided = SeparableConv(in_ch, out_ch, stride=2)
        self.resized = SeparableConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = tf1_resize_bilinear(x, (x.shape[2] // 2, x.shape[3] // 2))
        return self.strided(x) + self.resized(half)


class UpConv(nn.Module):
    """Up-Conv: resize ×2 → DSConv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = SeparableConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(tf1_resize_bilinear(x, (x.shape[2] * 2, x.shape[3] * 2)))


class InvertedResBlock(nn.Module):
    """IRB: 1×1 expand Conv-Block → depthwise 3×3, IN, LReLU → 1×1 project, IN → residual add.

    The block ends linearly (no activation after the add), as in MobileNetV2 and the official code.
    """

    def __init__(self, channels: int = 256, expansion: int = 2) -> None:
        super().__init__()
        hidden = channels * expansion
        # pw
        self.expand = ConvNormLReLU(channels, hidden, kernel_size=1)
        # dw
        self.depthwise = nn.Conv2d(hidden, hidden, 3, groups=hidden, bias=False)
        self.depthwise_norm = nn.InstanceNorm2d(hidden, eps=CONV_NORM_EPS, affine=True)
        # pw-linear
        self.project = nn.Conv2d(hidden, channels, 1, bias=False)
        self.project_norm = nn.InstanceNorm2d(channels, eps=CONV_NORM_EPS, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x)
        out = self.depthwise(F.pad(out, (1, 1, 1, 1), mode="reflect"))
        out = F.leaky_relu(self.depthwise_norm(out), LRELU_SLOPE)
        out = self.project_norm(self.project(out))
        return x + out


class Block1(nn.Module):
    """b1: two 64-channel Conv-Blocks, then Down-Conv to 128 (1/2 resolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvNormLReLU(3, 64)
        self.conv2 = ConvNormLReLU(64, 64)
        self.down = DownConv(64, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.conv2(self.conv1(x)))


class Block2(nn.Module):
    """b2: Conv-Block and DSConv at 128, then Down-Conv to 256 (1/4 resolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = ConvNormLReLU(128, 128)
        self.dsconv = SeparableConv(128, 128)
        self.down = DownConv(128, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dsconv(self.conv(x)))


class Middle(nn.Module):
    """m: Conv-Block, eight IRBs, Conv-Block, all at 256 channels."""

    def __init__(self, num_blocks: int = 8) -> None:
        super().__init__()
        self.conv_in = ConvNormLReLU(256, 256)
        self.blocks = nn.Sequential(*(InvertedResBlock(256) for _ in range(num_blocks)))
        self.conv_out = ConvNormLReLU(256, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.blocks(self.conv_in(x)))


class Up2(nn.Module):
    """u2: Up-Conv 256→128 (1/2 resolution), DSConv, Conv-Block."""

    def __init__(self) -> None:
        super().__init__()
        self.up = UpConv(256, 128)
        self.dsconv = SeparableConv(128, 128)
        self.conv = ConvNormLReLU(128, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.dsconv(self.up(x)))


class Up1(nn.Module):
    """u1: Up-Conv keeping 128 channels (full resolution), two 64-channel Conv-Blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.up = UpConv(128, 128)  # 128, not the figure's 64: as in the official code
        self.conv1 = ConvNormLReLU(128, 64)
        self.conv2 = ConvNormLReLU(64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(self.up(x)))


class AnimeGANGenerator(nn.Module):
    """Photo → anime generator. Input and output are RGB in [-1, 1], (B, 3, H, W), any H and W.

    Inputs are reflect-padded (bottom/right) to a multiple of 4, because the two Down-Convs halve
    the size twice and the Up-Convs must land back on it, and the result is cropped back, so the
    output has the input's size.
    """

    SIZE_MULTIPLE = 4
    MIN_SIZE = GENERATOR_MIN_SIDE  # the 1/4-resolution feature map must be at least 2×2 for its reflect pads
    # The weight semantics it runs (see animegan_v2.py): only the authors' TF1 graph; the training
    # code trains this very module, so weights trained here share those semantics.
    SEMANTICS = ("tf1",)

    def __init__(self, semantics: str = "tf1") -> None:
        if semantics not in self.SEMANTICS:
            raise ValueError(f"the AnimeGAN v1 generator runs only {self.SEMANTICS} semantics, not {semantics!r}")
        super().__init__()
        self.semantics = semantics
        self.b1 = Block1()
        self.b2 = Block2()
        self.m = Middle()
        self.u2 = Up2()
        self.u1 = Up1()
        self.out = nn.Conv2d(64, 3, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, height, width = pad_to_multiple(x, self.SIZE_MULTIPLE, self.MIN_SIZE)
        x = self.b1(x)  # (B, 128, H/2, W/2)
        x = self.b2(x)  # (B, 256, H/4, W/4)
        x = self.m(x)
        x = self.u2(x)  # (B, 128, H/2, W/2)
        x = self.u1(x)  # (B, 64, H, W)
        x = torch.tanh(self.out(x))
        return x[:, :, :height, :width]
