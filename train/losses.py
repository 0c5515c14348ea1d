"""AnimeGAN's losses (paper eq. 1–6), with the reductions of the authors' code (``ops.py``).

Every term is a mean over all its elements, as TF's ``reduce_mean`` and ``tf.losses.huber_loss``
(SUM_BY_NONZERO_WEIGHTS with unit weights) compute them. Where the paper and the code differ:

* initialization: the paper says "only the content loss"; the code minimizes ω_con · L_con.
  The code is followed (with Adam the factor barely matters; it keeps the logged value comparable).
* ω_con: the paper's 1.5 is the default; the code's first release had 1.0 and later ones 1.5
  (1.1 for Shinkai). ω_gra: the paper's 3 (the code's first release; later ones 1.8).
* D's loss: 1·real + 1·fake + 1·gray + 0.1·smooth as in the paper and the first release (later
  releases, for AnimeGAN "+", weight them 1.5/1.5/1.5/0.8).
* S_data(y): grayscale of the edge-smoothed images (paper, later releases); the first release fed
  the colour smoothed images.

All losses are computed in float32 (inputs are cast), so bf16/fp16 autocast only affects the
networks, not gram matrices and means over millions of elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# tf.image.rgb_to_yuv's kernel: yuv = rgb @ RGB_TO_YUV (rows R, G, B; columns Y, U, V)
RGB_TO_YUV = (
    (0.299, -0.14714119, 0.61497538),
    (0.587, -0.28886916, -0.51496512),
    (0.114, 0.43601035, -0.10001026),
)
HUBER_DELTA = 1.0  # tf.losses.huber_loss default


@dataclass(frozen=True)
class LossWeights:
    """ω of eq. 1 and 6 (defaults: the paper's)."""

    adv: float = 300.0
    con: float = 1.5
    gra: float = 3.0
    col: float = 10.0
    smooth: float = 0.1  # D's weight for E[D(y)²]


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices (B, C, C) of features (B, C, H, W), divided by H·W·C as the authors' ``gram``."""
    batch, channels, height, width = features.shape
    flat = features.float().reshape(batch, channels, height * width)  # (B, C, H·W)
    return torch.bmm(flat, flat.transpose(1, 2)) / (channels * height * width)


def content_loss(photo_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """L_con = mean |VGG(p) − VGG(G(p))|."""
    return F.l1_loss(fake_features.float(), photo_features.float())


def gram_loss(fake_features: torch.Tensor, gray_features: torch.Tensor) -> torch.Tensor:
    """L_gra = mean |Gram(VGG(G(p))) − Gram(VGG(x))|."""
    return F.l1_loss(gram(fake_features), gram(gray_features))


def rgb_to_yuv(images: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] (B, 3, H, W) → YUV (B, 3, H, W) of the image mapped to [0, 1], as tf.image.rgb_to_yuv."""
    kernel = torch.tensor(RGB_TO_YUV, dtype=torch.float32, device=images.device)
    rgb = (images.float() + 1.0) / 2.0
    return torch.einsum("bchw,cd->bdhw", rgb, kernel)


def color_loss(photo: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_col = L1(Y) + Huber(U) + Huber(V) between the photo and its generated image (eq. 4)."""
    photo_yuv, fake_yuv = rgb_to_yuv(photo), rgb_to_yuv(fake)
    return (
        F.l1_loss(fake_yuv[:, 0], photo_yuv[:, 0])
        + F.huber_loss(fake_yuv[:, 1], photo_yuv[:, 1], delta=HUBER_DELTA)
        + F.huber_loss(fake_yuv[:, 2], photo_yuv[:, 2], delta=HUBER_DELTA)
    )


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN generator term E[(D(G(p)) − 1)²] (eq. 5 without ω_adv)."""
    return (fake_logits.float() - 1.0).square().mean()


def discriminator_loss(
    anime_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    gray_logits: torch.Tensor,
    smooth_logits: torch.Tensor,
    smooth_weight: float = 0.1,
) -> torch.Tensor:
    """E[(D(a) − 1)²] + E[D(G(p))²] + E[D(x)²] + 0.1·E[D(y)²] (eq. 6 without ω_adv)."""
    return (
        (anime_logits.float() - 1.0).square().mean()
        + fake_logits.float().square().mean()
        + gray_logits.float().square().mean()
        + smooth_weight * smooth_logits.float().square().mean()
    )
