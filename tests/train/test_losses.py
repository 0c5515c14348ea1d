"""Each AnimeGAN loss against values computed by hand, and gan_step's sum against eq. 1 and 6."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from animevid.models.animegan import AnimeGANGenerator
from animevid.models.discriminator import Discriminator
from tests.train_helpers import one_thread  # noqa: F401
from animevid.train.data import TrainBatch
from animevid.train.loop import Amp, gan_step, init_step
from animevid.train.losses import LossWeights, color_loss, content_loss, discriminator_loss, generator_adversarial_loss, gram, gram_loss, rgb_to_yuv
from animevid.train.vgg import VGG19Features


def _features(values: list[list[float]]) -> torch.Tensor:
    """(1, C, 1, W) features from a C×W table."""
    return torch.tensor(values, dtype=torch.float32)[None, :, None, :]


def test_gram_is_normalized_by_h_w_c():
    # F = [[1, 2], [3, 4]] (C = 2 channels, H·W = 2 positions): F Fᵀ = [[5, 11], [11, 25]], / (2·2)
    expected = torch.tensor([[[1.25, 2.75], [2.75, 6.25]]])
    torch.testing.assert_close(gram(_features([[1, 2], [3, 4]])), expected)


def test_content_loss_is_mean_absolute_difference():
    photo = _features([[1, 2], [3, 4]])
    fake = _features([[0, 4], [3, 0]])
    # |1-0| + |2-4| + |3-3| + |4-0| = 7 over 4 elements
    assert content_loss(photo, fake).item() == pytest.approx(1.75)


def test_gram_loss_compares_gram_matrices():
    fake = _features([[1, 2], [3, 4]])
    gray = torch.zeros_like(fake)
    # |Gram(fake) - 0| averaged: (1.25 + 2.75 + 2.75 + 6.25) / 4
    assert gram_loss(fake, gray).item() == pytest.approx(3.25)
    assert gram_loss(fake, fake).item() == 0.0


def _image(rgb: tuple[float, float, float]) -> torch.Tensor:
    """A 2×2 image of one colour given in [-1, 1]."""
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()


def test_rgb_to_yuv_matches_tf_image_rgb_to_yuv():
    red = rgb_to_yuv(_image((1, -1, -1)))[0, :, 0, 0]
    torch.testing.assert_close(red, torch.tensor([0.299, -0.14714119, 0.61497538]))
    white = rgb_to_yuv(_image((1, 1, 1)))[0, :, 0, 0]
    torch.testing.assert_close(white, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    mid_gray = rgb_to_yuv(_image((0, 0, 0)))[0, :, 0, 0]  # 0 in [-1, 1] is 0.5 in [0, 1]
    torch.testing.assert_close(mid_gray, torch.tensor([0.5, 0.0, 0.0]), atol=1e-6, rtol=0)


def test_color_loss_is_l1_on_y_and_huber_on_u_v():
    red, cyan = _image((1, -1, -1)), _image((-1, 1, 1))
    # red (1,0,0):  Y .299, U -.14714119, V  .61497538
    # cyan (0,1,1): Y .701, U  .14714119, V -.61497538
    y = 0.701 - 0.299  # L1
    u = 2 * 0.14714119  # |d| < 1: Huber = d²/2
    v = 2 * 0.61497538  # |d| > 1: Huber = |d| - 1/2
    expected = y + u**2 / 2 + (v - 0.5)
    assert color_loss(red, cyan).item() == pytest.approx(expected, rel=1e-5)
    assert color_loss(cyan, red).item() == pytest.approx(expected, rel=1e-5)
    assert color_loss(red, red).item() == 0.0


def test_generator_adversarial_loss_is_lsgan():
    logits = torch.tensor([0.0, 2.0, 1.0, 1.5]).view(1, 1, 2, 2)
    # (0-1)² + (2-1)² + 0 + 0.5² over 4
    assert generator_adversarial_loss(logits).item() == pytest.approx(2.25 / 4)


def test_discriminator_loss_weights_smooth_term_by_a_tenth():
    shape = (2, 1, 3, 3)
    anime, fake, gray, smooth = (torch.full(shape, value) for value in (0.5, 1.0, 2.0, 3.0))
    # (0.5-1)² + 1² + 2² + 0.1·3²
    assert discriminator_loss(anime, fake, gray, smooth).item() == pytest.approx(0.25 + 1 + 4 + 0.9)
    assert discriminator_loss(anime, fake, gray, smooth, smooth_weight=1.0).item() == pytest.approx(0.25 + 1 + 4 + 9)
    perfect = discriminator_loss(torch.ones(shape), torch.zeros(shape), torch.zeros(shape), torch.zeros(shape))
    assert perfect.item() == 0.0


@pytest.fixture
def tiny_setup():
    torch.manual_seed(0)
    generator, discriminator = AnimeGANGenerator(), Discriminator()
    vgg = VGG19Features("caffe").eval().requires_grad_(False)
    batch = TrainBatch(*(torch.rand(2, 3, 16, 16) * 2 - 1 for _ in range(4)))
    batch = batch._replace(anime_gray=batch.anime_gray[:, :1].expand(-1, 3, -1, -1), smooth_gray=batch.smooth_gray[:, :1].expand(-1, 3, -1, -1))
    return generator, discriminator, vgg, batch


def test_gan_step_optimizes_exactly_eq_1_and_eq_6(tiny_setup):
    generator, discriminator, vgg, batch = tiny_setup
    weights = LossWeights()
    generator_before, discriminator_before = copy.deepcopy(generator), copy.deepcopy(discriminator)
    g_opt = torch.optim.Adam(generator.parameters(), lr=8e-5, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1.6e-4, betas=(0.5, 0.999))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = gan_step(generator, discriminator, vgg, batch, g_opt, d_opt, weights, Amp("cpu", None), scaler)

    with torch.no_grad():
        fake = generator_before(batch.photo)
        # eq. 6 with the discriminator as it was before its step
        d_terms = [discriminator_before(images) for images in (batch.anime, fake, batch.anime_gray, batch.smooth_gray)]
    # D's spectral norm does one power iteration per forward: the step batched its four inputs in
    # one forward, the check above ran four, so the values agree to rounding, not bit for bit.
    expected_d = 300 * ((d_terms[0] - 1).square().mean() + d_terms[1].square().mean() + d_terms[2].square().mean() + 0.1 * d_terms[3].square().mean())
    assert losses["loss_d"].item() == pytest.approx(expected_d.item(), rel=2e-2)

    with torch.no_grad():
        # eq. 1 with the updated discriminator (eval: reuse the power iteration the G step did)
        adv = (discriminator.eval()(fake) - 1).square().mean()
        photo_features, fake_features, gray_features = vgg(batch.photo), vgg(fake), vgg(batch.anime_gray)
        con = (photo_features - fake_features).abs().mean()
        gra = (gram(fake_features) - gram(gray_features)).abs().mean()
        col = color_loss(batch.photo, fake)
    for key, value in (("adv", adv), ("con", con), ("gra", gra), ("col", col)):
        assert losses[key].item() == pytest.approx(value.item(), rel=1e-4, abs=1e-7), key
    total = 300 * losses["adv"] + 1.5 * losses["con"] + 3 * losses["gra"] + 10 * losses["col"]
    assert losses["loss_g"].item() == pytest.approx(total.item(), rel=1e-5)
    assert all(math.isfinite(value.item()) for value in losses.values())


def test_init_step_minimizes_weighted_content_loss(tiny_setup):
    generator, _, vgg, batch = tiny_setup
    generator_before = copy.deepcopy(generator)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    losses = init_step(generator, vgg, batch.photo, optimizer, LossWeights(con=1.5), Amp("cpu", None), torch.amp.GradScaler("cpu", enabled=False))
    with torch.no_grad():
        expected = 1.5 * (vgg(batch.photo) - vgg(generator_before(batch.photo))).abs().mean()
    assert losses["loss_init"].item() == pytest.approx(expected.item(), rel=1e-5)
