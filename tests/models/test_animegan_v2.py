import numpy as np
import pytest
import torch
import torch.nn.functional as F

from animevid.models import GENERATORS, AnimeGANGenerator, AnimeGANv2Generator
from animevid.models.animegan_v2 import upsample


def conv_block(kernel: int, in_ch: int, out_ch: int) -> tuple[int, int]:
    """(parameters, tensors) of a Conv2DNormLReLU: a bias-free conv, then layer norm's gamma and beta."""
    return kernel * kernel * in_ch * out_ch + 2 * out_ch, 3


def inverted_res_block(in_ch: int, out_ch: int) -> tuple[int, int]:
    hidden = 2 * in_ch
    expand, expand_tensors = conv_block(1, in_ch, hidden)
    depthwise = 3 * 3 * hidden + hidden  # dwise_conv: w and bias
    return expand + depthwise + 2 * hidden + hidden * out_ch + 2 * out_ch, expand_tensors + 2 + 2 + 1 + 2


def test_parameter_and_tensor_counts_follow_the_authors_layers():
    layers = [
        conv_block(7, 3, 32), conv_block(3, 32, 64), conv_block(3, 64, 64),  # A
        conv_block(3, 64, 128), conv_block(3, 128, 128),  # B
        conv_block(3, 128, 128), inverted_res_block(128, 256), *[inverted_res_block(256, 256)] * 3,
        conv_block(3, 256, 128),  # C
        conv_block(3, 128, 128), conv_block(3, 128, 128),  # D
        conv_block(3, 128, 64), conv_block(3, 64, 64), conv_block(7, 64, 32),  # E
        (32 * 3, 1),  # out_layer: 1×1 conv, no bias
    ]  # fmt: skip
    parameters, tensors = sum(p for p, _ in layers), sum(t for _, t in layers)
    assert (parameters, tensors) == (2_143_552, 77)
    for semantics in ("tf1", "pytorch"):
        state = AnimeGANv2Generator(semantics).state_dict()
        assert len(state) == tensors
        assert sum(t.numel() for t in state.values()) == parameters
    assert round(parameters * 4 / 2**20, 2) == 8.18  # MiB in fp32; the authors' README says 8.17 Mb


def test_generators_are_listed_by_architecture_id():
    assert GENERATORS == {"animegan-v1": AnimeGANGenerator, "animegan-v2": AnimeGANv2Generator}
    with pytest.raises(ValueError, match="semantics"):
        AnimeGANv2Generator("tf2")
    with pytest.raises(ValueError, match="semantics"):
        AnimeGANGenerator("pytorch")


def numpy_layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """tf.contrib.layers.layer_norm on (B, C, H, W): moments over C, H, W of each sample, per-channel affine."""
    x = x.astype(np.float64)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma[None, :, None, None] + beta[None, :, None, None]


@pytest.mark.parametrize("semantics, eps, scale", [("tf1", 1e-12, 1e-6), ("pytorch", 1e-5, 3e-3)])
def test_layer_norm_matches_a_hand_computed_case(semantics, eps, scale):
    # Inputs whose variance is about eps itself, so that another epsilon gives another result.
    norm = AnimeGANv2Generator(semantics).a.down.norm
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 64, 3, 2)) * scale * np.array([1.0, 0.5]).reshape(2, 1, 1, 1)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, 64).astype(np.float32), rng.uniform(-0.2, 0.2, 64).astype(np.float32)
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(gamma))
        norm.bias.copy_(torch.from_numpy(beta))
        ours = norm(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(ours, numpy_layer_norm(x, gamma, beta, eps), rtol=1e-4, atol=1e-6)
    other_eps = 1e-5 if eps == 1e-12 else 1e-12
    assert not np.allclose(ours, numpy_layer_norm(x, gamma, beta, other_eps), rtol=1e-2, atol=1e-3)


def test_every_norm_of_one_generator_shares_its_epsilon():
    for semantics, eps in (("tf1", 1e-12), ("pytorch", 1e-5)):
        norms = [m for m in AnimeGANv2Generator(semantics).modules() if isinstance(m, torch.nn.GroupNorm)]
        assert len(norms) == 24 and {(m.num_groups, m.eps) for m in norms} == {(1, eps)}


def test_tf1_unsample_doubles_the_current_size_without_half_pixel_centres():
    x = torch.tensor([[0.0, 2.0, 4.0], [3.0, 5.0, 7.0]]).view(1, 1, 2, 3)
    # source coordinate d / 2; odd d average their neighbours; past the last pixel it clamps
    expected = torch.tensor(
        [
            [0.0, 1.0, 2.0, 3.0, 4.0, 4.0],
            [1.5, 2.5, 3.5, 4.5, 5.5, 5.5],
            [3.0, 4.0, 5.0, 6.0, 7.0, 7.0],
            [3.0, 4.0, 5.0, 6.0, 7.0, 7.0],
        ]
    ).view(1, 1, 4, 6)
    assert torch.equal(upsample(x, "tf1", (5, 5)), expected)  # the recorded size plays no part


def test_pytorch_unsample_aligns_corners_on_the_recorded_size():
    x = torch.tensor([[0.0, 2.0, 4.0], [3.0, 5.0, 7.0]]).view(1, 1, 2, 3)
    # align_corners=True: source coordinate d * (in - 1) / (out - 1); rows 0, 1/3, 2/3, 1, columns 0, 1/2, ...
    expected = torch.tensor(
        [[0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0], [3.0, 4.0, 5.0, 6.0, 7.0]]
    ).view(1, 1, 4, 5)
    torch.testing.assert_close(upsample(x, "pytorch", (4, 5)), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("semantics", ["tf1", "pytorch"])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8), (9, 13), (37, 53), (30, 31)])
def test_any_input_size_comes_back(semantics, size):
    generator = AnimeGANv2Generator(semantics).eval()
    with torch.no_grad():
        assert generator(torch.rand(1, 3, *size) * 2 - 1).shape == (1, 3, *size)


def test_tf1_pads_to_a_multiple_of_4_and_crops_back():
    generator = AnimeGANv2Generator("tf1").eval()
    x = torch.rand(1, 3, 30, 41) * 2 - 1
    padded = F.pad(x, (0, 3, 0, 2), mode="reflect")
    with torch.no_grad():
        assert torch.equal(generator(x), generator(padded)[:, :, :30, :41])

