import pytest
import torch
import torch.nn.functional as F

from animevid.models import AnimeGANGenerator, CartoonGANGenerator, Discriminator
from animevid.models.animegan import CONV_NORM_EPS, SEPARABLE_NORM_EPS, SeparableConv
from animevid.models.resize import tf1_resize_bilinear
from tests.reference_generators import tf1_resize_bilinear as reference_tf1_resize


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_animegan_generator_has_the_papers_parameter_count():
    generator = AnimeGANGenerator()
    assert count(generator) == 3_956_096
    assert round(count(generator) * 4 / 2**20, 2) == 15.09  # MiB in fp32
    assert all(p.dtype == torch.float32 for p in generator.parameters())


def test_cartoongan_generator_parameter_count():
    assert count(CartoonGANGenerator()) == 11_129_667  # see the module docstring for the paper's figure


def test_discriminator_shape_and_spectral_norm():
    discriminator = Discriminator()
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 7
    assert all(hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs)
    assert all(c.bias is None for c in convs)
    logits = discriminator(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 1, 16, 16)
    plain = Discriminator(use_spectral_norm=False)
    assert count(plain) == count(discriminator)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8), (37, 53), (64, 48), (30, 31)])
def test_generator_output_has_the_input_size(size):
    generator = AnimeGANGenerator().eval()
    with torch.no_grad():
        out = generator(torch.rand(1, 3, *size) * 2 - 1)
    assert out.shape == (1, 3, *size)


def test_generator_crop_matches_a_manually_padded_input():
    generator = AnimeGANGenerator().eval()
    x = torch.rand(1, 3, 30, 42) * 2 - 1
    padded = F.pad(x, (0, 2, 0, 2), mode="reflect")
    with torch.no_grad():
        assert torch.equal(generator(x), generator(padded)[:, :, :30, :42])


def test_norm_epsilons_follow_the_official_graph():
    generator = AnimeGANGenerator()
    assert generator.b1.conv1.norm.eps == CONV_NORM_EPS == 1e-5
    assert generator.b1.down.strided.norm.eps == SEPARABLE_NORM_EPS == 1e-6
    assert generator.m.blocks[0].depthwise_norm.eps == 1e-5


def test_stride2_separable_conv_pads_bottom_right_only():
    conv = SeparableConv(1, 1, stride=2)
    with torch.no_grad():
        conv.depthwise.weight.zero_()
        conv.depthwise.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
    x = torch.arange(16.0).view(1, 1, 4, 4)
    padded = F.pad(x, conv.padding, mode="reflect")
    # no top/left pad: the first window starts at the image's own (0, 0)
    assert padded[0, 0, 0, 0] == 0 and padded.shape[-2:] == (5, 5)
    assert torch.equal(conv.depthwise(padded)[0, 0], torch.tensor([[0.0, 2.0], [8.0, 10.0]]))


def test_tf1_resize_upsample_hand_computed():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]).view(1, 1, 2, 4)
    # TF1 (no half-pixel centres): out[d] = in[d/2], odd d average their neighbours, the last clamps.
    expected = torch.tensor(
        [
            [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0],
            [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.0],
            [4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.0],
            [4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.0],
        ]
    ).view(1, 1, 4, 8)
    assert torch.equal(tf1_resize_bilinear(x, (4, 8)), expected)


def test_tf1_resize_downsample_picks_every_other_pixel():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert torch.equal(tf1_resize_bilinear(x, (3, 3)), x[:, :, ::2, ::2])
    # 5 -> 2: scale 2.5, sources 0 and 2.5 -> rows 0 and the mean of rows 2 and 3
    y = torch.arange(5.0).view(1, 1, 5, 1)
    assert torch.equal(tf1_resize_bilinear(y, (2, 1)).flatten(), torch.tensor([0.0, 2.5]))


@pytest.mark.parametrize("in_size, out_size", [((5, 6), (3, 4)), ((3, 4), (7, 9)), ((6, 7), (12, 14)), ((4, 8), (2, 3))])
def test_tf1_resize_matches_the_per_pixel_formula_at_any_ratio(in_size, out_size):
    x = torch.rand(2, 3, *in_size, generator=torch.Generator().manual_seed(0))
    expected = reference_tf1_resize(x.double(), *out_size)  # source = d * in / out, written pixel by pixel
    torch.testing.assert_close(tf1_resize_bilinear(x, out_size).double(), expected, rtol=0, atol=1e-6)
