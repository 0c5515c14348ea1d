"""The peers' generators, re-typed for the engines benchmark: what a user of the simplest PyTorch port runs.

Nothing here is imported from, or vendored with, the peers: each class is a re-typing of the peer's
generator (same layers, same order, same padding, norms and resizes), so that its eager fp32 forward
costs what the peer's does. The peers are random-initialized (torch's default initialization): their
parameter layouts differ from ours, and the speed of a forward does not depend on the values (the
same FLOPs either way).

* :class:`BryandleeGeneratorV2`: bryandlee/animegan2-pytorch ``model.py`` ``Generator`` — the
  AnimeGANv2 port most users meet (torch.hub, the face-paint styles). Layer norm as
  ``GroupNorm(1, C)``, bilinear resizes with ``align_corners=True`` (its default forward).
* :class:`Ptran1203GeneratorV1`: ptran1203/pytorch-animeGAN ``models/anime_gan.py`` ``GeneratorV1``
  with its ``models/conv_blocks.py`` blocks — the AnimeGAN (v1) PyTorch port. Instance norms without
  affine parameters (its default ``norm_type="instance"``), bilinear resizes by 0.5 and 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# -- bryandlee/animegan2-pytorch, model.py -------------------------------------------------------------


class _V2ConvNormLReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, padding=1, groups: int = 1, bias: bool = False):
        super().__init__(
            nn.ReflectionPad2d(padding),
            nn.Conv2d(in_ch, out_ch, kernel_size=kernel_size, stride=stride, padding=0, groups=groups, bias=bias),
            nn.GroupNorm(num_groups=1, num_channels=out_ch, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
        )


class _V2InvertedResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expansion_ratio: int = 2):
        super().__init__()
        self.use_res_connect = in_ch == out_ch
        bottleneck = int(round(in_ch * expansion_ratio))
        layers: list[nn.Module] = []
        if expansion_ratio != 1:
            layers.append(_V2ConvNormLReLU(in_ch, bottleneck, kernel_size=1, padding=0))
        layers.append(_V2ConvNormLReLU(bottleneck, bottleneck, groups=bottleneck, bias=True))  # depthwise
        layers.append(nn.Conv2d(bottleneck, out_ch, kernel_size=1, padding=0, bias=False))  # pointwise
        layers.append(nn.GroupNorm(num_groups=1, num_channels=out_ch, affine=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.use_res_connect else out


class BryandleeGeneratorV2(nn.Module):
    """bryandlee/animegan2-pytorch's ``Generator``, re-typed."""

    def __init__(self) -> None:
        super().__init__()
        self.block_a = nn.Sequential(
            _V2ConvNormLReLU(3, 32, kernel_size=7, padding=3),
            _V2ConvNormLReLU(32, 64, stride=2, padding=(0, 1, 0, 1)),
            _V2ConvNormLReLU(64, 64),
        )
        self.block_b = nn.Sequential(_V2ConvNormLReLU(64, 128, stride=2, padding=(0, 1, 0, 1)), _V2ConvNormLReLU(128, 128))
        self.block_c = nn.Sequential(
            _V2ConvNormLReLU(128, 128),
            _V2InvertedResBlock(128, 256, 2),
            _V2InvertedResBlock(256, 256, 2),
            _V2InvertedResBlock(256, 256, 2),
            _V2InvertedResBlock(256, 256, 2),
            _V2ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(_V2ConvNormLReLU(128, 128), _V2ConvNormLReLU(128, 128))
        self.block_e = nn.Sequential(
            _V2ConvNormLReLU(128, 64), _V2ConvNormLReLU(64, 64), _V2ConvNormLReLU(64, 32, kernel_size=7, padding=3)
        )
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
        out = self.block_a(x)
        half_size = out.size()[-2:]
        out = self.block_b(out)
        out = self.block_c(out)
        if align_corners:
            out = F.interpolate(out, half_size, mode="bilinear", align_corners=True)
        else:
            out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.block_d(out)
        if align_corners:
            out = F.interpolate(out, x.size()[-2:], mode="bilinear", align_corners=True)
        else:
            out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False)
        out = self.block_e(out)
        return self.out_layer(out)


# -- ptran1203/pytorch-animeGAN, models/anime_gan.py and models/conv_blocks.py ---------------------------


class _V1SeparableConv2D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, bias: bool = False):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=stride, padding=1, groups=in_channels, bias=bias)
        self.pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=bias)
        self.ins_norm1 = nn.InstanceNorm2d(in_channels)
        self.activation1 = nn.LeakyReLU(0.2, True)
        self.ins_norm2 = nn.InstanceNorm2d(out_channels)
        self.activation2 = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation1(self.ins_norm1(self.depthwise(x)))
        return self.activation2(self.ins_norm2(self.pointwise(out)))


class _V1DownConv(nn.Module):
    def __init__(self, channels: int, bias: bool = False):
        super().__init__()
        self.conv1 = _V1SeparableConv2D(channels, channels, stride=2, bias=bias)
        self.conv2 = _V1SeparableConv2D(channels, channels, stride=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x) + self.conv2(F.interpolate(x, scale_factor=0.5, mode="bilinear"))


class _V1UpConv(nn.Module):
    def __init__(self, channels: int, bias: bool = False):
        super().__init__()
        self.conv = _V1SeparableConv2D(channels, channels, stride=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="bilinear"))


class _V1ConvBlock(nn.Module):
    def __init__(self, channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding="valid", bias: bool = False):
        super().__init__()
        if kernel_size == 3 and stride == 1:
            self.pad = nn.ReflectionPad2d((1, 1, 1, 1))
        elif kernel_size == 7 and stride == 1:
            self.pad = nn.ReflectionPad2d((3, 3, 3, 3))
        elif stride == 2:
            self.pad = nn.ReflectionPad2d((0, 1, 1, 0))
        else:
            self.pad = None
        self.conv = nn.Conv2d(channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding, bias=bias)
        self.ins_norm = nn.InstanceNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = self.pad(x)
        return self.activation(self.ins_norm(self.conv(x)))


class _V1InvertedResBlock(nn.Module):
    def __init__(self, channels: int = 256, out_channels: int = 256, expand_ratio: int = 2, bias: bool = False):
        super().__init__()
        bottleneck_dim = round(expand_ratio * channels)
        self.conv_block = _V1ConvBlock(channels, bottleneck_dim, kernel_size=1, stride=1, padding=0, bias=bias)
        self.depthwise_conv = nn.Conv2d(bottleneck_dim, bottleneck_dim, kernel_size=3, groups=bottleneck_dim, stride=1, padding=1, bias=bias)
        self.conv = nn.Conv2d(bottleneck_dim, out_channels, kernel_size=1, stride=1, bias=bias)
        self.ins_norm1 = nn.InstanceNorm2d(out_channels)  # sic: sized for out_channels; without affine it normalizes any channel count
        self.ins_norm2 = nn.InstanceNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.ins_norm1(self.depthwise_conv(self.conv_block(x))))
        out = self.ins_norm2(self.conv(out))
        return out if out.shape[1] != x.shape[1] else out + x


class Ptran1203GeneratorV1(nn.Module):
    """ptran1203/pytorch-animeGAN's ``GeneratorV1``, re-typed."""

    def __init__(self) -> None:
        super().__init__()
        self.encode_blocks = nn.Sequential(
            _V1ConvBlock(3, 64),
            _V1ConvBlock(64, 128),
            _V1DownConv(128),
            _V1ConvBlock(128, 128),
            _V1SeparableConv2D(128, 256),
            _V1DownConv(256),
            _V1ConvBlock(256, 256),
        )
        self.res_blocks = nn.Sequential(*[_V1InvertedResBlock(256, 256) for _ in range(8)])
        self.decode_blocks = nn.Sequential(
            _V1ConvBlock(256, 128),
            _V1UpConv(128),
            _V1SeparableConv2D(128, 128),
            _V1ConvBlock(128, 128),
            _V1UpConv(128),
            _V1ConvBlock(128, 64),
            _V1ConvBlock(64, 64),
            nn.Conv2d(64, 3, kernel_size=1, stride=1, padding=0, bias=False),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_blocks(self.res_blocks(self.encode_blocks(x)))


PEERS = {"v2": ("bryandlee/animegan2-pytorch model.py Generator", BryandleeGeneratorV2),
         "v1": ("ptran1203/pytorch-animeGAN GeneratorV1", Ptran1203GeneratorV1)}  # fmt: skip


def peer(network: str) -> tuple[str, nn.Module]:
    """The peer of ``network`` ("v1" or "v2"): its description and a seeded random-initialized generator, for inference."""
    name, cls = PEERS[network]
    torch.manual_seed(0)
    return name, cls().eval().requires_grad_(False)
