"""The AnimeGAN discriminator (§3.1): CartoonGAN's patch discriminator with spectral normalization.

Follows ``D_net`` of the authors' code with its defaults (ch 64, n_dis 3, sn True):

    conv_0      3→32    3×3 s1, LReLU
    conv_s2_1   32→64   3×3 s2, LReLU
    conv_s1_1   64→128  3×3 s1, IN, LReLU
    conv_s2_2   128→128 3×3 s2, LReLU
    conv_s1_2   128→256 3×3 s1, IN, LReLU
    last_conv   256→256 3×3 s1, IN, LReLU
    D_logit     256→1   3×3 s1            → (B, 1, H/4, W/4) patch logits

No biases, zero padding. TF's ``ops.conv`` pads stride-2 3×3 convs asymmetrically, one row/column
on the top/left and none on the bottom/right, which is kept here. Spectral normalization uses
torch's own parametrization (one power iteration per training forward, like the TF code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

LRELU_SLOPE = 0.2
NORM_EPS = 1e-5


class _Conv(nn.Module):
    """3×3 conv without bias, TF padding for its stride, optional spectral norm."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, use_spectral_norm: bool) -> None:
        super().__init__()
        # (left, right, top, bottom): symmetric for stride 1, top/left only for stride 2.
        self.padding = (1, 1, 1, 1) if stride == 1 else (1, 0, 1, 0)
        conv = nn.Conv2d(in_ch, out_ch, 3, stride=stride, bias=False)
        nn.init.normal_(conv.weight, 0.0, 0.02)  # the TF code's weight_init
        self.conv = _spectral_norm(conv) if use_spectral_norm else conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class Discriminator(nn.Module):
    """Patch discriminator; input RGB in [-1, 1] (B, 3, H, W), output logits (B, 1, H/4, W/4)."""

    def __init__(self, channels: int = 64, n_dis: int = 3, use_spectral_norm: bool = True) -> None:
        super().__init__()
        width = channels // 2
        layers: list[nn.Module] = [_Conv(3, width, 1, use_spectral_norm), nn.LeakyReLU(LRELU_SLOPE)]
        in_ch = width
        for _ in range(1, n_dis):
            layers += [
                _Conv(in_ch, width * 2, 2, use_spectral_norm),
                nn.LeakyReLU(LRELU_SLOPE),
                _Conv(width * 2, width * 4, 1, use_spectral_norm),
                nn.InstanceNorm2d(width * 4, eps=NORM_EPS, affine=True),
                nn.LeakyReLU(LRELU_SLOPE),
            ]
            in_ch = width * 4
            width *= 2
        layers += [
            _Conv(in_ch, width * 2, 1, use_spectral_norm),
            nn.InstanceNorm2d(width * 2, eps=NORM_EPS, affine=True),
            nn.LeakyReLU(LRELU_SLOPE),
            _Conv(width * 2, 1, 1, use_spectral_norm),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
