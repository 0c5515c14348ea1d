"""The CartoonGAN generator (Chen, Lai, Liu, CVPR 2018, Fig. 2), for the paper's Table 1 comparison.

    flat        7×7 conv 3→64, IN, ReLU
    down        3×3 s2 64→128, 3×3 128→128, IN, ReLU; 3×3 s2 128→256, 3×3 256→256, IN, ReLU
    res ×8      3×3 256→256, IN, ReLU, 3×3 256→256, IN, + input
    up          3×3 s½ 256→128, 3×3 128→128, IN, ReLU; 3×3 s½ 128→64, 3×3 64→64, IN, ReLU
    out         7×7 conv 64→3, tanh

Layers carry biases and the norms are affine, as in the authors' released (Torch) model. That gives
11,129,667 parameters (checked by the tests) and 108.77 GFLOPs at 256×256 counted as 2×MACs of the
convolutions, which matches the paper's 108.98 GFLOPs to 0.2 %. AnimeGAN's Table 1 quotes
12,253,152 parameters for CartoonGAN; the paper does not say how it counted. Removing biases or
norm affines only lowers our figure; adding the CartoonGAN discriminator (about 1.13 M parameters)
lands within 0.05 % of it, so the quoted figure likely counts generator and discriminator together.
The benchmarks print both numbers side by side rather than pretending they agree.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)


def _norm_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            *_norm_relu(channels),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CartoonGANGenerator(nn.Module):
    """Photo → cartoon generator; RGB in [-1, 1], (B, 3, H, W) with H, W multiples of 4."""

    def __init__(self, num_blocks: int = 8) -> None:
        super().__init__()
        self.flat = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), *_norm_relu(64))
        self.down = nn.Sequential(
            _conv(64, 128, 3, stride=2), _conv(128, 128, 3), *_norm_relu(128),
            _conv(128, 256, 3, stride=2), _conv(256, 256, 3), *_norm_relu(256),
        )  # fmt: skip
        self.res = nn.Sequential(*(ResidualBlock(256) for _ in range(num_blocks)))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(256, 128, 3, stride=2, padding=1, output_padding=1), _conv(128, 128, 3), *_norm_relu(128),
            nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1), _conv(64, 64, 3), *_norm_relu(64),
        )  # fmt: skip
        self.out = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(self.flat(x))  # (B, 256, H/4, W/4)
        x = self.up(self.res(x))  # (B, 64, H, W)
        return self.out(x)
