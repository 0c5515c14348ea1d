"""Plain re-derivations of the foreign generators, for tests: the authors' TF1 graphs (AnimeGAN v1
and v2) and bryandlee/animegan2-pytorch's ``model.py``, written from their code, not from ours.

Each is a functional forward (float64 torch) over a :class:`Params` that either looks tensors up by
their foreign names or, when it has none, creates random ones. Running a forward once in creating
mode yields the full name list with shapes, named by the same scope rules the foreign code follows
(TF's ``Conv``, ``Conv_1``, ... default scopes; ``nn.Sequential`` indices), so tests can check our
name tables, layouts and forward passes against something written independently.
"""

from __future__ import annotations

import collections
import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tests.tf_writer import write_checkpoint

TF_LAYER_NORM_EPS = 1e-12  # tf.contrib.layers.layer_norm: variance_epsilon = 1e-12, not an argument
TF_CONTRIB_INSTANCE_NORM_EPS = 1e-6  # tf.contrib.layers.instance_norm's default
OPS_INSTANCE_NORM_EPS = 1e-5  # AnimeGAN v1 tools/ops.py instance_norm(epsilon=1e-05)
TORCH_GROUP_NORM_EPS = 1e-5  # nn.GroupNorm's default


class Params:
    """Foreign tensors by name: looked up in ``values``, or created (random, seeded) when it is None."""

    def __init__(self, values: dict[str, np.ndarray] | None = None, seed: int = 0) -> None:
        self.creating = values is None
        self.values: dict[str, np.ndarray] = {} if values is None else values
        self.rng = np.random.default_rng(seed)
        self.used: list[str] = []

    def get(self, name: str, shape: tuple[int, ...], fan_in: int = 1) -> torch.Tensor:
        if self.creating:
            leaf = name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
            if leaf == "gamma" or (leaf == "weight" and len(shape) == 1):
                array = self.rng.uniform(0.5, 1.5, shape)
            elif leaf in ("beta", "bias"):
                array = self.rng.uniform(-0.2, 0.2, shape)
            else:
                array = self.rng.standard_normal(shape) * (1.5 / fan_in) ** 0.5
            self.values[name] = array.astype(np.float32)
        array = self.values[name]
        assert array.shape == tuple(shape), f"{name}: {array.shape} != {shape}"
        self.used.append(name)
        return torch.from_numpy(np.asarray(array, dtype=np.float64))


# -- TF1 ops ----------------------------------------------------------------------------------------


class Scope:
    """A TF1 variable scope: explicit child names, and layer default names made unique (Conv, Conv_1)."""

    def __init__(self, params: Params, prefix: str) -> None:
        self.params, self.prefix = params, prefix
        self.counts: collections.Counter[str] = collections.Counter()

    def child(self, name: str) -> "Scope":
        return Scope(self.params, f"{self.prefix}{name}/")

    def default_child(self, default_name: str) -> "Scope":
        count = self.counts[default_name]
        self.counts[default_name] += 1
        return self.child(default_name if count == 0 else f"{default_name}_{count}")

    def variable(self, name: str, shape: tuple[int, ...], fan_in: int = 1) -> torch.Tensor:
        return self.params.get(self.prefix + name, shape, fan_in)


def tf_pad_reflect(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    return F.pad(x, (left, right, top, bottom), mode="reflect")


def tf_conv(x: torch.Tensor, kernel_hwio: torch.Tensor, stride: int = 1) -> torch.Tensor:
    return F.conv2d(x, kernel_hwio.permute(3, 2, 0, 1), stride=stride)  # "VALID"


def tf_depthwise(x: torch.Tensor, kernel_hwc1: torch.Tensor, stride: int = 1) -> torch.Tensor:
    return F.conv2d(x, kernel_hwc1.permute(2, 3, 0, 1), stride=stride, groups=x.shape[1])


def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """Moments over C, H, W of each sample; one gamma/beta per channel."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def instance_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """Moments over H, W of each sample and channel."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x, 0.2 * x)


def _bilinear(x: torch.Tensor, out_h: int, out_w: int, source) -> torch.Tensor:
    """Separable bilinear resize, pixel by pixel: output ``d`` samples input coordinate ``source(d, in, out)``."""
    for dim, out_size in ((2, out_h), (3, out_w)):
        in_size = x.shape[dim]
        rows = []
        for d in range(out_size):
            src = source(d, in_size, out_size)
            lower = min(int(np.floor(src)), in_size - 1)
            upper = min(lower + 1, in_size - 1)
            frac = src - lower
            rows.append(x.select(dim, lower) * (1 - frac) + x.select(dim, upper) * frac)
        x = torch.stack(rows, dim=dim)
    return x


def tf1_resize_bilinear(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """TF1 ResizeBilinear, align_corners=False, half_pixel_centers=False: source = d * in / out (float32)."""
    return _bilinear(x, out_h, out_w, lambda d, i, o: float(np.float32(d) * np.float32(i / o)))


def align_corners_resize(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Bilinear with align_corners=True: source = d * (in - 1) / (out - 1)."""
    return _bilinear(x, out_h, out_w, lambda d, i, o: d * (i - 1) / (o - 1) if o > 1 else 0.0)


# -- AnimeGAN v2 (TachibanaYoshino/AnimeGANv2, net/generator.py) -----------------------------------


def _v2_conv2d(scope: Scope, x: torch.Tensor, filters: int, kernel: int = 3, stride: int = 1) -> torch.Tensor:
    if kernel == 3 and stride == 1:
        x = tf_pad_reflect(x, 1, 1, 1, 1)
    if kernel == 7 and stride == 1:
        x = tf_pad_reflect(x, 3, 3, 3, 3)
    if stride == 2:
        x = tf_pad_reflect(x, 0, 1, 0, 1)
    in_ch = x.shape[1]
    conv = scope.default_child("Conv")  # tf.contrib.layers.conv2d, no biases
    return tf_conv(x, conv.variable("weights", (kernel, kernel, in_ch, filters), kernel * kernel * in_ch), stride)


def _v2_layer_norm(scope: Scope, x: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    return layer_norm(x, scope.variable("gamma", (channels,)), scope.variable("beta", (channels,)), TF_LAYER_NORM_EPS)


def _v2_conv_norm_lrelu(scope: Scope, x: torch.Tensor, filters: int, kernel: int = 3, stride: int = 1) -> torch.Tensor:
    x = _v2_conv2d(scope, x, filters, kernel, stride)
    return lrelu(_v2_layer_norm(scope.default_child("LayerNorm"), x))


def _v2_inverted_res_block(scope: Scope, x: torch.Tensor, output_dim: int, name: str) -> torch.Tensor:
    block = scope.child(name)
    bottleneck = 2 * x.shape[1]
    net = _v2_conv_norm_lrelu(block, x, bottleneck, kernel=1)
    dwise = block.child(name)  # dwise_conv(name=name): w and bias
    padded = tf_pad_reflect(net, 1, 1, 1, 1)
    net = tf_depthwise(padded, dwise.variable("w", (3, 3, bottleneck, 1), 9)) + dwise.variable("bias", (bottleneck,)).view(1, -1, 1, 1)
    net = lrelu(_v2_layer_norm(block.child("1"), net))
    net = _v2_conv2d(block, net, output_dim, kernel=1)
    net = _v2_layer_norm(block.child("2"), net)
    return x + net if x.shape[1] == output_dim else net


def _v2_unsample(scope: Scope, x: torch.Tensor, filters: int) -> torch.Tensor:
    x = tf1_resize_bilinear(x, 2 * x.shape[2], 2 * x.shape[3])
    return _v2_conv_norm_lrelu(scope, x, filters)


def animegan_v2_tf(params: Params, x: torch.Tensor) -> torch.Tensor:
    """G_net under ``generator/``: (B, 3, H, W) in [-1, 1] → (B, 3, H', W'), H' = 4 * (H // 4)."""
    g = Scope(params, "generator/G_MODEL/")
    a = g.child("A")
    x = _v2_conv_norm_lrelu(a, x, 32, 7)
    x = _v2_conv_norm_lrelu(a, x, 64, stride=2)
    x = _v2_conv_norm_lrelu(a, x, 64)
    b = g.child("B")
    x = _v2_conv_norm_lrelu(b, x, 128, stride=2)
    x = _v2_conv_norm_lrelu(b, x, 128)
    c = g.child("C")
    x = _v2_conv_norm_lrelu(c, x, 128)
    for name in ("r1", "r2", "r3", "r4"):
        x = _v2_inverted_res_block(c, x, 256, name)
    x = _v2_conv_norm_lrelu(c, x, 128)
    d = g.child("D")
    x = _v2_unsample(d, x, 128)
    x = _v2_conv_norm_lrelu(d, x, 128)
    e = g.child("E")
    x = _v2_unsample(e, x, 64)
    x = _v2_conv_norm_lrelu(e, x, 64)
    x = _v2_conv_norm_lrelu(e, x, 32, 7)
    return torch.tanh(_v2_conv2d(g.child("out_layer"), x, 3, kernel=1))


# -- AnimeGAN v1 (TachibanaYoshino/AnimeGAN, net/generator.py) -------------------------------------


def _v1_conv2d(scope: Scope, x: torch.Tensor, filters: int, kernel: int = 3) -> torch.Tensor:
    if kernel == 3:
        x = tf_pad_reflect(x, 1, 1, 1, 1)
    in_ch = x.shape[1]
    conv = scope.default_child("Conv")
    return tf_conv(x, conv.variable("weights", (kernel, kernel, in_ch, filters), kernel * kernel * in_ch))


def _v1_instance_norm(scope: Scope, x: torch.Tensor, eps: float) -> torch.Tensor:
    channels = x.shape[1]
    return instance_norm(x, scope.variable("gamma", (channels,)), scope.variable("beta", (channels,)), eps)


def _v1_conv_norm_lrelu(scope: Scope, x: torch.Tensor, filters: int, kernel: int = 3) -> torch.Tensor:
    x = _v1_conv2d(scope, x, filters, kernel)
    return lrelu(_v1_instance_norm(scope.default_child("InstanceNorm"), x, OPS_INSTANCE_NORM_EPS))


def _v1_separable(scope: Scope, x: torch.Tensor, filters: int, stride: int = 1) -> torch.Tensor:
    x = tf_pad_reflect(x, 1, 1, 1, 1) if stride == 1 else tf_pad_reflect(x, 0, 1, 0, 1)
    in_ch = x.shape[1]
    sep = scope.default_child("SeparableConv2d")  # depthwise, pointwise, then its normalizer_fn inside
    x = tf_depthwise(x, sep.variable("depthwise_weights", (3, 3, in_ch, 1), 9), stride)
    x = tf_conv(x, sep.variable("pointwise_weights", (1, 1, in_ch, filters), in_ch))
    return lrelu(_v1_instance_norm(sep.default_child("InstanceNorm"), x, TF_CONTRIB_INSTANCE_NORM_EPS))


def _v1_downsample(scope: Scope, x: torch.Tensor, filters: int) -> torch.Tensor:
    x = tf1_resize_bilinear(x, x.shape[2] // 2, x.shape[3] // 2)
    return _v1_separable(scope, x, filters)


def _v1_unsample(scope: Scope, x: torch.Tensor, filters: int) -> torch.Tensor:
    x = tf1_resize_bilinear(x, 2 * x.shape[2], 2 * x.shape[3])
    return _v1_separable(scope, x, filters)


def _v1_inverted_res_block(scope: Scope, x: torch.Tensor, name: str) -> torch.Tensor:
    block = scope.child(name)
    bottleneck = 2 * x.shape[1]
    net = _v1_conv_norm_lrelu(block, x, bottleneck, kernel=1)
    dwise = block.child(name)  # dwise_conv(name=name), no bias in v1
    net = tf_depthwise(tf_pad_reflect(net, 1, 1, 1, 1), dwise.variable("w", (3, 3, bottleneck, 1), 9))
    net = lrelu(_v1_instance_norm(block.child("1"), net, OPS_INSTANCE_NORM_EPS))
    net = _v1_conv2d(block, net, x.shape[1], kernel=1)
    return x + _v1_instance_norm(block.child("2"), net, OPS_INSTANCE_NORM_EPS)


def animegan_v1_tf(params: Params, x: torch.Tensor) -> torch.Tensor:
    """G_net of v1 under ``generator/``: (B, 3, H, W), H and W multiples of 4 → the same size."""
    g = Scope(params, "generator/G_MODEL/")
    b1 = g.child("b1")
    x = _v1_conv_norm_lrelu(b1, x, 64)
    x = _v1_conv_norm_lrelu(b1, x, 64)
    x = _v1_separable(b1, x, 128, stride=2) + _v1_downsample(b1, x, 128)  # left operand first
    b2 = g.child("b2")
    x = _v1_conv_norm_lrelu(b2, x, 128)
    x = _v1_separable(b2, x, 128)
    x = _v1_separable(b2, x, 256, stride=2) + _v1_downsample(b2, x, 256)
    m = g.child("m")
    x = _v1_conv_norm_lrelu(m, x, 256)
    for index in range(1, 9):
        x = _v1_inverted_res_block(m, x, f"r{index}")
    x = _v1_conv_norm_lrelu(m, x, 256)
    u2 = g.child("u2")
    x = _v1_unsample(u2, x, 128)
    x = _v1_separable(u2, x, 128)
    x = _v1_conv_norm_lrelu(u2, x, 128)
    u1 = g.child("u1")
    x = _v1_unsample(u1, x, 128)
    x = _v1_conv_norm_lrelu(u1, x, 64)
    x = _v1_conv_norm_lrelu(u1, x, 64)
    return torch.tanh(_v1_conv2d(g, x, 3, kernel=1))


# -- bryandlee/animegan2-pytorch, model.py ---------------------------------------------------------


def _bd_conv_norm_lrelu(
    params: Params, name: str, x: torch.Tensor, out_ch: int, kernel: int = 3, stride: int = 1,
    padding: int | tuple[int, int, int, int] = 1, groups: int = 1, bias: bool = False,
) -> torch.Tensor:  # fmt: skip
    # nn.Sequential(ReflectionPad2d(padding), Conv2d, GroupNorm(1, out_ch), LeakyReLU(0.2))
    pad = (padding,) * 4 if isinstance(padding, int) else padding  # (left, right, top, bottom)
    x = F.pad(x, pad, mode="reflect") if any(pad) else x
    in_ch = x.shape[1]
    weight = params.get(f"{name}.1.weight", (out_ch, in_ch // groups, kernel, kernel), kernel * kernel * in_ch // groups)
    x = F.conv2d(x, weight, params.get(f"{name}.1.bias", (out_ch,)) if bias else None, stride=stride, groups=groups)
    x = layer_norm(x, params.get(f"{name}.2.weight", (out_ch,)), params.get(f"{name}.2.bias", (out_ch,)), TORCH_GROUP_NORM_EPS)
    return lrelu(x)


def _bd_inverted_res_block(params: Params, name: str, x: torch.Tensor, out_ch: int) -> torch.Tensor:
    in_ch, bottleneck = x.shape[1], 2 * x.shape[1]
    out = _bd_conv_norm_lrelu(params, f"{name}.layers.0", x, bottleneck, kernel=1, padding=0)
    out = _bd_conv_norm_lrelu(params, f"{name}.layers.1", out, bottleneck, groups=bottleneck, bias=True)
    out = F.conv2d(out, params.get(f"{name}.layers.2.weight", (out_ch, bottleneck, 1, 1), bottleneck))
    out = layer_norm(out, params.get(f"{name}.layers.3.weight", (out_ch,)), params.get(f"{name}.layers.3.bias", (out_ch,)), TORCH_GROUP_NORM_EPS)
    return x + out if in_ch == out_ch else out


def animegan_v2_bryandlee(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Generator.forward(input, align_corners=True): any (B, 3, H, W) → the same size."""
    out = _bd_conv_norm_lrelu(params, "block_a.0", x, 32, kernel=7, padding=3)
    out = _bd_conv_norm_lrelu(params, "block_a.1", out, 64, stride=2, padding=(0, 1, 0, 1))
    out = _bd_conv_norm_lrelu(params, "block_a.2", out, 64)
    half_size = out.shape[2:]
    out = _bd_conv_norm_lrelu(params, "block_b.0", out, 128, stride=2, padding=(0, 1, 0, 1))
    out = _bd_conv_norm_lrelu(params, "block_b.1", out, 128)
    out = _bd_conv_norm_lrelu(params, "block_c.0", out, 128)
    for index in range(1, 5):
        out = _bd_inverted_res_block(params, f"block_c.{index}", out, 256)
    out = _bd_conv_norm_lrelu(params, "block_c.5", out, 128)
    out = align_corners_resize(out, *half_size)
    out = _bd_conv_norm_lrelu(params, "block_d.0", out, 128)
    out = _bd_conv_norm_lrelu(params, "block_d.1", out, 128)
    out = align_corners_resize(out, *x.shape[2:])
    out = _bd_conv_norm_lrelu(params, "block_e.0", out, 64)
    out = _bd_conv_norm_lrelu(params, "block_e.1", out, 64)
    out = _bd_conv_norm_lrelu(params, "block_e.2", out, 32, kernel=7, padding=3)
    return torch.tanh(F.conv2d(out, params.get("out_layer.0.weight", (3, 32, 1, 1), 32)))


# -- synthetic foreign weights ----------------------------------------------------------------------


@functools.cache
def _created(forward, seed: int) -> dict[str, np.ndarray]:
    params = Params(seed=seed)
    forward(params, torch.zeros(1, 3, 8, 8, dtype=torch.float64))
    for array in params.values.values():
        array.flags.writeable = False  # shared between calls: callers get their own dict, never these arrays to edit
    return params.values


def random_v1_tf_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 tensors under every official v1 variable name, in TF layouts."""
    return dict(_created(animegan_v1_tf, seed))


def random_v2_tf_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 tensors under every official v2 variable name, in TF layouts."""
    return dict(_created(animegan_v2_tf, seed))


def write_v2_checkpoint(prefix: str | Path, seed: int = 0) -> dict[str, np.ndarray]:
    """An AnimeGANv2 TF checkpoint (``prefix.index`` + ``.data``) in the official naming, real CRCs."""
    tensors = random_v2_tf_tensors(seed)
    write_checkpoint(Path(prefix), tensors)
    return tensors


def random_bryandlee_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float32 tensors under every name of bryandlee's ``Generator().state_dict()``."""
    return {name: torch.tensor(array) for name, array in _created(animegan_v2_bryandlee, seed).items()}


def write_bryandlee_state_dict(path: str | Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """``torch.save`` a synthetic bryandlee state dict (as his ``.pt`` files hold) to ``path``."""
    state = random_bryandlee_state_dict(seed)
    torch.save(state, path)
    return state


def run_reference(forward, tensors: dict, x: torch.Tensor) -> torch.Tensor:
    """A re-derived forward over foreign ``tensors`` (numpy or torch), in float64; checks all were used."""
    values = {name: np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value) for name, value in tensors.items()}
    params = Params(values)
    out = forward(params, x.to(torch.float64))
    assert sorted(set(params.used)) == sorted(values), "the reference left tensors unused"
    return out
