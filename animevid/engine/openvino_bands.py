"""AnimeGAN and AnimeGANv2 band by band on OpenVINO: the whole-image function in bounded memory, fast.

:mod:`animevid.models.animegan_bands` and :mod:`animevid.models.animegan_v2_bands` compute the
generators band by band in torch: every layer is local except the norms, so each layer runs on bands
of rows and each norm's statistics are summed over the bands before it is applied. This module runs
the same plan (the same layers held whole or recomputed, the same statistics) with every layer one
small OpenVINO model, which does in one pass what the torch bands did in many:

    source rows (held raw) ─ norm scale/shift ─ LeakyReLU ─ rows picked (reflect padding at the image
    borders, the ×2 or aligned resize as a gather and a lerp) ─ columns resized ─ reflect pad ─ conv
    (─ pointwise conv, or tanh)

In bf16 the held tensors are bf16 (as OpenVINO's whole bf16 graph keeps its activations), half the
memory, so full-resolution layers the fp32 plan computes twice are held and computed once.
A held layer is kept as its raw convolution output with the affine its norm computed from the
statistics (``x * scale + shift``, then LeakyReLU): the next layer's model applies it to the rows it
reads, so no pass over a whole full-resolution tensor is spent normalizing it. Only sums (the
inverted residual blocks' adds, v1's Down-Conv branches) are made final in torch, at half or quarter
resolution. Each model has dynamic rows and a fixed width: one compilation per layer and image width
serves every band and every frame of a video; between layers their buffers are released.

The row indices of a band are computed here from global coordinates (:func:`_rows_for`), so a band's
output rows are the whole forward's rows; the column resizes and pads are constants of the width.
In float32 the output equals the whole-image forward's within a level (``tests/engine/test_openvino_bands.py``);
in bfloat16 each model rounds as OpenVINO's whole-image bf16 graph does, only not at the same places.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..models.animegan import AnimeGANGenerator, DownConv, SeparableConv
from ..models.animegan import InvertedResBlock as InvertedResBlockV1
from ..models.animegan_bands import BAND_PIXELS, LRELU_SLOPE, NormStatistics, Whole, bands
from ..models.animegan_v2 import AnimeGANv2Generator
from ..models.animegan_v2 import ConvNormLReLU as ConvNormLReLUv2
from ..models.animegan_v2 import InvertedResBlock as InvertedResBlockV2
from ..models.animegan_v2_bands import _aligned_weights
from ..models.padding import pad_to_multiple
from ..models.resize import _axis_weights
from .openvino import PRECISIONS, cpu_has_native_bf16, import_openvino, openvino_core
from .resources import usable_cpus

# How a layer reads its source's rows and columns.
AS_IS = "as-is"
EVERY_OTHER = "every-other"  # v1 Down-Conv's TF1 resize to half size: even rows and columns
TF1_DOUBLED = "tf1-doubled"  # TF1's bilinear ×2 (no half-pixel centres)
ALIGNED = "aligned"  # bryandlee's F.interpolate(align_corners=True) to a recorded size


# Storage types of the held tensors and bands, as OpenVINO names them.
OPENVINO_TYPES = {torch.float32: lambda ov: ov.Type.f32, torch.bfloat16: lambda ov: ov.Type.bf16}


def to_openvino(tensor: torch.Tensor):
    """A contiguous CPU tensor as what an inference request takes, sharing its memory (numpy has no bf16)."""
    if tensor.dtype == torch.float32:
        return tensor.numpy()
    ov = import_openvino()
    return ov.Tensor(tensor.view(torch.int16).numpy(), list(tensor.shape), OPENVINO_TYPES[tensor.dtype](ov))


def to_torch(tensor) -> torch.Tensor:
    """An ``openvino.Tensor`` (f32 or bf16) as a torch tensor sharing its memory."""
    array = tensor.data
    if tensor.element_type == import_openvino().Type.bf16:
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


# -- sources: what a layer reads ----------------------------------------------------------------------


@dataclass
class Held(Whole):
    """A layer's output held whole (1, C, H, W), fp32 or bf16: raw, with the affine of its norm still to apply
    (``scale``/``shift``, then LeakyReLU when ``activation``), or final (``scale`` None, no activation)."""

    scale: np.ndarray | None = None
    shift: np.ndarray | None = None
    activation: bool = False

    @property
    def dtype(self) -> torch.dtype:
        return self.tensor.dtype

    def window(self, start: int, stop: int):
        # A contiguous copy of the rows: handed the whole tensor and a gather instead, OpenVINO's
        # bf16 graph converted all of it to bf16 at every call.
        return to_openvino(self.tensor[:, :, start:stop].contiguous())

    def final_rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) with the pending affine and activation applied, in float32."""
        # A copy: .float() of fp32 rows is the rows themselves, and the held tensor must stay as it is.
        return _final(self.tensor[:, :, start:stop].to(torch.float32, copy=True), self)


def _final(band: torch.Tensor, source) -> torch.Tensor:
    if source.scale is not None:
        band.mul_(torch.from_numpy(source.scale).view(1, -1, 1, 1)).add_(torch.from_numpy(source.shift).view(1, -1, 1, 1))
    if source.activation:
        torch.nn.functional.leaky_relu(band, LRELU_SLOPE, inplace=True)
    return band


@dataclass
class Recomputed:
    """A layer's output never held: its statistics summed in a first pass, its rows computed again
    (raw) whenever the next layer reads them."""

    layer: "Layer"
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None
    activation: bool = False

    dtype = torch.float32  # the model's output, as it comes

    @property
    def channels(self) -> int:
        return self.layer.channels

    @property
    def height(self) -> int:
        return self.layer.height

    @property
    def width(self) -> int:
        return self.layer.width

    def window(self, start: int, stop: int):
        # The request's own output tensor, read by the next model before this one runs again.
        return self.layer.run(start, stop)

    def final_rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) normalized and activated, in float32."""
        return _final(to_torch(self.window(start, stop)).float(), self)


Source = Held | Recomputed


# -- one layer: its OpenVINO model and the rows each band reads -------------------------------------------


@dataclass
class Layer:
    """One layer as an OpenVINO model: source → (affine, LeakyReLU) → resample → reflect pad → conv
    (→ pointwise conv) (→ tanh). ``run(start, stop)`` gives output rows [start, stop), before the norm."""

    name: str
    source: Source
    resample: str
    resampled: tuple[int, int]  # the source's size after resampling (what the conv pads and reads)
    spatial: nn.Conv2d
    padding: tuple[int, int, int, int]  # reflect (left, right, top, bottom)
    pointwise: nn.Conv2d | None
    tanh: bool
    norm: nn.Module | None
    activation: bool
    storage: torch.dtype  # how its output is held: the precision it runs in (float32 for the last layer)
    runner: "Runner"
    _row_maps: dict = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> int:
        return (self.pointwise or self.spatial).out_channels

    @property
    def height(self) -> int:
        kernel, stride = self.spatial.kernel_size[0], self.spatial.stride[0]
        return (self.resampled[0] + self.padding[2] + self.padding[3] - kernel) // stride + 1

    @property
    def width(self) -> int:
        kernel, stride = self.spatial.kernel_size[1], self.spatial.stride[1]
        return (self.resampled[1] + self.padding[0] + self.padding[1] - kernel) // stride + 1

    def run(self, start: int, stop: int):
        """Output rows [start, stop) before the norm: the request's output tensor (a float32
        ``openvino.Tensor``, valid until the layer runs again; held layers store it as ``storage``)."""
        lo, hi, row_feeds = _rows_for(self, start, stop)
        feeds = [self.source.window(lo, hi)]
        if self.source.scale is not None:
            feeds += [self.source.scale, self.source.shift]
        return self.runner.infer(self, feeds + row_feeds)


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    index = np.abs(index)
    return np.where(index >= size, 2 * (size - 1) - index, index)


def _rows_for(layer: Layer, start: int, stop: int) -> tuple[int, int, list[np.ndarray]]:
    """The source rows output rows [start, stop) read: the window [lo, hi) to hand over, and the
    model's row inputs relative to it (a gather, or the lower/upper rows and weights of a resize).

    Output row i of a k×k, stride-s conv reads padded rows s·i .. s·i + k - 1, i.e. resampled rows
    from s·i - top, mirrored at both borders (reflect padding, the stride-2 bottom pad included)."""
    kernel, stride = layer.spatial.kernel_size[0], layer.spatial.stride[0]
    top = layer.padding[2]
    rows = _reflect(np.arange(stride * start - top, stride * (stop - 1) - top + kernel), layer.resampled[0])
    if layer.resample in (AS_IS, EVERY_OTHER):
        source_rows = 2 * rows if layer.resample == EVERY_OTHER else rows
        lo, hi = int(source_rows.min()), int(source_rows.max()) + 1
        return lo, hi, [(source_rows - lo).astype(np.int64)]
    lower, upper, frac = _row_weights(layer)
    lower, upper, frac = lower[rows], upper[rows], frac[rows]
    lo, hi = int(lower.min()), int(upper.max()) + 1
    return lo, hi, [(lower - lo).astype(np.int64), (upper - lo).astype(np.int64), frac]


def _row_weights(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if "rows" not in layer._row_maps:
        layer._row_maps["rows"] = _resize_weights(layer.resample, layer.source.height, layer.resampled[0])
    return layer._row_maps["rows"]


def _resize_weights(kind: str, in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of one axis, from the torch bands' own definitions of the resizes."""
    weights = _axis_weights if kind == TF1_DOUBLED else _aligned_weights
    lower, upper, frac = weights(in_size, out_size, torch.device("cpu"))
    return lower.numpy(), upper.numpy(), frac.numpy().astype(np.float32)


# -- building and running the models ------------------------------------------------------------------------


def _model(layer: Layer):
    """The OpenVINO model of ``layer`` for its source's width and form (see :class:`Layer`)."""
    ov = import_openvino()
    import openvino.opset13 as ops

    source = layer.source
    channels, width = source.channels, source.width
    window = ops.parameter([1, channels, -1, width], OPENVINO_TYPES[source.dtype](ov), name="window")
    inputs = [window]
    x = window if source.dtype == torch.float32 else ops.convert(window, ov.Type.f32)
    if source.scale is not None:
        scale = ops.parameter([channels], np.float32, name="scale")
        shift = ops.parameter([channels], np.float32, name="shift")
        inputs += [scale, shift]
        per_channel = ops.constant(np.array([1, -1, 1, 1], dtype=np.int64))
        x = ops.add(ops.multiply(x, ops.reshape(scale, per_channel, False)), ops.reshape(shift, per_channel, False))
    if source.activation:
        x = ops.prelu(x, ops.constant(np.array([LRELU_SLOPE], dtype=np.float32)))
    rows_axis, columns_axis = ops.constant(np.int64(2)), ops.constant(np.int64(3))
    # rows
    if layer.resample in (AS_IS, EVERY_OTHER):
        rows = ops.parameter([-1], np.int64, name="rows")
        inputs.append(rows)
        x = ops.gather(x, rows, rows_axis)
    else:
        lower = ops.parameter([-1], np.int64, name="lower")
        upper = ops.parameter([-1], np.int64, name="upper")
        frac = ops.parameter([-1], np.float32, name="frac")
        inputs += [lower, upper, frac]
        top, bottom = ops.gather(x, lower, rows_axis), ops.gather(x, upper, rows_axis)
        weight = ops.reshape(frac, ops.constant(np.array([1, 1, -1, 1], dtype=np.int64)), False)
        x = ops.add(top, ops.multiply(ops.subtract(bottom, top), weight))  # as the torch bands: rows first
    # columns
    if layer.resample == EVERY_OTHER:
        x = ops.gather(x, ops.constant(np.arange(0, 2 * (width // 2), 2, dtype=np.int64)), columns_axis)
    elif layer.resample in (TF1_DOUBLED, ALIGNED):
        lower, upper, frac = _resize_weights(layer.resample, width, layer.resampled[1])
        left = ops.gather(x, ops.constant(lower.astype(np.int64)), columns_axis)
        right = ops.gather(x, ops.constant(upper.astype(np.int64)), columns_axis)
        x = ops.add(left, ops.multiply(ops.subtract(right, left), ops.constant(frac.reshape(1, 1, 1, -1))))
    left, right = layer.padding[0], layer.padding[1]
    if left or right:
        x = ops.pad(x, ops.constant(np.array([0, 0, 0, left], np.int64)), ops.constant(np.array([0, 0, 0, right], np.int64)), "reflect")
    x = _conv(ops, x, layer.spatial)
    if layer.pointwise is not None:
        x = _conv(ops, x, layer.pointwise)
    if layer.tanh:
        x = ops.tanh(x)
    return ov.Model([x], inputs, layer.name)


def _conv(ops, x, conv: nn.Conv2d):
    weight = conv.weight.detach().float().cpu().numpy()
    stride = list(conv.stride)
    if conv.groups > 1:
        out_channels, per_group = weight.shape[0], weight.shape[1]
        grouped = weight.reshape(conv.groups, out_channels // conv.groups, per_group, *weight.shape[2:])
        x = ops.group_convolution(x, ops.constant(grouped), stride, [0, 0], [0, 0], [1, 1])
    else:
        x = ops.convolution(x, ops.constant(weight), stride, [0, 0], [0, 0], [1, 1])
    if conv.bias is not None:
        x = ops.add(x, ops.constant(conv.bias.detach().float().cpu().numpy().reshape(1, -1, 1, 1)))
    return x


class Runner:
    """Compiles each layer's model once per form (its name, source width and whether the source has an
    affine and an activation) and keeps one inference request per model."""

    def __init__(self, dtype: torch.dtype, threads: int | None) -> None:
        self.config = {
            "INFERENCE_PRECISION_HINT": PRECISIONS[dtype],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": threads or usable_cpus(),
        }
        self._requests: dict[tuple, object] = {}
        self._compiled: dict[str, list] = {}

    def infer(self, layer: Layer, feeds: list[np.ndarray]) -> np.ndarray:
        source = layer.source
        key = (layer.name, source.width, source.dtype, source.scale is not None, source.activation, layer.resampled[1])
        request = self._requests.get(key)
        if request is None:
            compiled = openvino_core().compile_model(_model(layer), "CPU", self.config)
            self._compiled.setdefault(layer.name, []).append(compiled)
            request = self._requests[key] = compiled.create_infer_request()
        request.infer(feeds, share_inputs=True)
        # The request's own tensor, valid until its next inference (or release).
        return request.get_output_tensor(0)

    def release(self, layer: Layer) -> None:
        """Free the buffers ``layer``'s models hold between inferences (kept compiled, for the next
        frame): each request keeps buffers for its largest band, and forty of them at 12 MP held
        about as much as the tensors held whole."""
        for compiled in self._compiled.get(layer.name, ()):
            compiled.release_memory()
        _return_freed_heap()


@functools.cache
def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to return
        return None


def _return_freed_heap() -> None:
    """Give the heap's freed pages back to the system (glibc keeps the band buffers' pages otherwise:
    v1 fp32 at 3 MP peaked 0.6 GiB lower with this, 4.36 → 3.75 GiB)."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


# -- the networks ---------------------------------------------------------------------------------------------


class OpenVINOBands:
    """An AnimeGAN (v1) or AnimeGANv2 generator's forward, band by band on OpenVINO.

    >>> banded = OpenVINOBands(generator, torch.bfloat16)
    >>> y = banded(x)  # (B, 3, H, W) fp32 in [-1, 1]: generator(x) at that precision, in bounded memory

    Held whole at once, in fp32 as in the torch bands: at most 384 bytes per pixel (a 64-channel
    full-resolution tensor and a half-resolution 128-channel one); in bf16 at most two 64-channel
    full-resolution tensors, 256 bytes. Plus one layer's band buffers at a time.
    """

    def __init__(self, generator: nn.Module, dtype: torch.dtype = torch.float32, *, threads: int | None = None,
                 band_pixels: int = BAND_PIXELS) -> None:  # fmt: skip
        if not isinstance(generator, (AnimeGANGenerator, AnimeGANv2Generator)):
            raise TypeError(f"band-by-band OpenVINO runs AnimeGAN generators, not {type(generator).__name__}")
        if dtype == torch.bfloat16 and not cpu_has_native_bf16():
            raise ValueError("OpenVINO bf16 needs a CPU that computes it natively")
        self.generator = generator
        self.dtype = dtype
        self.band_pixels = band_pixels
        self.runner = Runner(dtype, threads)
        # In bf16 the held tensors take half the memory, so full-resolution layers the fp32 plan
        # computes twice are held instead: v2's Unsample to 64 channels, v1's last Conv-Block. v1's
        # Up-Conv (128 channels) stays recomputed: held too, a 12 MP photo took 105.7 s instead of
        # 118.3 s but 7.0 GiB instead of 4.8 (AMD EPYC, 2026-12-06).
        self._full_resolution = self._held if dtype == torch.bfloat16 else self._recomputed

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().cpu()
        forward = self._v2 if isinstance(self.generator, AnimeGANv2Generator) else self._v1
        return torch.cat([forward(image[None].contiguous()) for image in x])

    # -- the plans, as the torch bands' (animevid/models/animegan_bands.py, animegan_v2_bands.py) -------------

    def _v2(self, x: torch.Tensor) -> torch.Tensor:
        g = self.generator
        x, height, width = pad_to_multiple(x, 4 if g.semantics == "tf1" else 1, g.MIN_SIZE)
        full_size = (x.shape[2], x.shape[3])
        y: Source = Held(x.contiguous())
        del x
        # A: (1, 3, H, W) → (1, 64, H/2, W/2); the 32-channel full-resolution map is recomputed.
        y = self._recomputed(self._block("a.conv1", g.a.conv1, y))
        y = self._held(self._block("a.down", g.a.down, y))
        y = self._held(self._block("a.conv2", g.a.conv2, y))
        half_size = (y.height, y.width)
        # B: → (1, 128, H/4, W/4)
        y = self._held(self._block("b.down", g.b.down, y))
        y = self._held(self._block("b.conv", g.b.conv, y))
        # C
        y = self._held(self._block("c.conv_in", g.c.conv_in, y))
        for index, block in enumerate(g.c.blocks):
            y = self._inverted_residual(f"c.blocks.{index}", block, y)
        y = self._held(self._block("c.conv_out", g.c.conv_out, y))
        # D: → (1, 128, H/2, W/2)
        y = self._held(self._block("d.up", g.d.up, y, *self._upsample(half_size)))
        y = self._held(self._block("d.conv", g.d.conv, y))
        # E: → (1, 32, H, W); Unsample's 64-channel full-resolution output is recomputed when read.
        y = self._full_resolution(self._block("e.up", g.e.up, y, *self._upsample(full_size)))
        y = self._held(self._block("e.conv1", g.e.conv1, y))
        y = self._held(self._block("e.conv2", g.e.conv2, y))
        out = self._held(self._layer("out", y, g.out, (0, 0, 0, 0), tanh=True))
        return out.tensor[:, :, :height, :width]

    def _v1(self, x: torch.Tensor) -> torch.Tensor:
        g = self.generator
        x, height, width = pad_to_multiple(x, g.SIZE_MULTIPLE, g.MIN_SIZE)
        y: Source = Held(x.contiguous())
        del x
        # b1: (1, 64, H, W) → (1, 128, H/2, W/2); the first Conv-Block is recomputed.
        y = self._recomputed(self._block("b1.conv1", g.b1.conv1, y))
        y = self._held(self._block("b1.conv2", g.b1.conv2, y))
        y = self._down("b1.down", g.b1.down, y)
        # b2: → (1, 256, H/4, W/4)
        y = self._held(self._block("b2.conv", g.b2.conv, y))
        y = self._held(self._separable("b2.dsconv", g.b2.dsconv, y))
        y = self._down("b2.down", g.b2.down, y)
        # m
        y = self._held(self._block("m.conv_in", g.m.conv_in, y))
        for index, block in enumerate(g.m.blocks):
            y = self._inverted_residual(f"m.blocks.{index}", block, y)
        y = self._held(self._block("m.conv_out", g.m.conv_out, y))
        # u2: → (1, 128, H/2, W/2)
        y = self._held(self._separable("u2.up", g.u2.up.conv, y, TF1_DOUBLED, (2 * y.height, 2 * y.width)))
        y = self._held(self._separable("u2.dsconv", g.u2.dsconv, y))
        y = self._held(self._block("u2.conv", g.u2.conv, y))
        # u1: → (1, 64, H, W); the 128-channel full-resolution Up-Conv output is recomputed.
        y = self._recomputed(self._separable("u1.up", g.u1.up.conv, y, TF1_DOUBLED, (2 * y.height, 2 * y.width)))
        y = self._held(self._block("u1.conv1", g.u1.conv1, y))
        y = self._full_resolution(self._block("u1.conv2", g.u1.conv2, y))
        out = self._held(self._layer("out", y, g.out, (0, 0, 0, 0), tanh=True))
        return out.tensor[:, :, :height, :width]

    # -- layers -------------------------------------------------------------------------------------------

    def _layer(self, name: str, source: Source, spatial: nn.Conv2d, padding: tuple[int, int, int, int], *,
               resample: str = AS_IS, resampled: tuple[int, int] | None = None, pointwise: nn.Conv2d | None = None,
               norm: nn.Module | None = None, activation: bool = False, tanh: bool = False) -> Layer:  # fmt: skip
        if resampled is None:
            factor = {AS_IS: 1.0, EVERY_OTHER: 0.5, TF1_DOUBLED: 2.0}[resample]
            resampled = (int(source.height * factor), int(source.width * factor))
        storage = torch.float32 if tanh else self.dtype  # the output image in fp32
        return Layer(name, source, resample, resampled, spatial, padding, pointwise, tanh, norm, activation, storage, self.runner)

    def _block(self, name: str, block, source: Source, resample: str = AS_IS, resampled=None) -> Layer:
        """A Conv-Block (v1 or v2): reflect pad → conv → norm → LeakyReLU."""
        if isinstance(block, ConvNormLReLUv2):
            padding = block.padding
        else:
            padding = (block.pad,) * 4
        return self._layer(name, source, block.conv, padding, resample=resample, resampled=resampled, norm=block.norm,
                           activation=True)  # fmt: skip

    def _separable(self, name: str, conv: SeparableConv, source: Source, resample: str = AS_IS, resampled=None) -> Layer:
        """v1's DSConv: reflect pad → depthwise 3×3 → pointwise → instance norm → LeakyReLU."""
        return self._layer(name, source, conv.depthwise, conv.padding, resample=resample, resampled=resampled,
                           pointwise=conv.pointwise, norm=conv.norm, activation=True)  # fmt: skip

    def _upsample(self, recorded_size: tuple[int, int]) -> tuple[str, tuple[int, int] | None]:
        return (TF1_DOUBLED, None) if self.generator.semantics == "tf1" else (ALIGNED, recorded_size)

    def _statistics(self, layer: Layer, output: Callable[[int, int, torch.Tensor], None] | None = None) -> tuple:
        """Run every band of ``layer`` (handing each to ``output``) and sum its norm's statistics:
        the norm's (scale, shift) per channel, or (None, None) without a norm."""
        statistics = NormStatistics.for_norm(layer.norm, layer.channels, torch.device("cpu")) if layer.norm is not None else None
        for start, stop in bands(layer.height, layer.width, self.band_pixels, layer.channels):
            band = to_torch(layer.run(start, stop))
            if statistics is not None:
                statistics.add(band)
            if output is not None:
                output(start, stop, band)
        self.runner.release(layer)
        if isinstance(layer.source, Recomputed):  # read by this layer only
            self.runner.release(layer.source.layer)
        if statistics is None:
            return None, None
        scale, shift = statistics.affine(layer.norm)
        return scale.flatten().numpy(), shift.flatten().numpy()

    def _held(self, layer: Layer) -> Held:
        out = torch.empty((1, layer.channels, layer.height, layer.width), dtype=layer.storage)

        def store(start: int, stop: int, band: torch.Tensor) -> None:
            out[:, :, start:stop] = band

        scale, shift = self._statistics(layer, store)
        return Held(out, scale, shift, layer.activation)

    def _recomputed(self, layer: Layer) -> Recomputed:
        scale, shift = self._statistics(layer)
        return Recomputed(layer, scale, shift, layer.activation)

    def _down(self, name: str, down: DownConv, source: Held) -> Held:
        """v1's Down-Conv: stride-2 DSConv + (resize to half → DSConv), each normalized and activated, summed."""
        half = (source.height // 2, source.width // 2)
        resized = self._recomputed(self._separable(f"{name}.resized", down.resized, source, EVERY_OTHER, half))
        return _sum(self._held(self._separable(f"{name}.strided", down.strided, source)), resized)

    def _inverted_residual(self, name: str, block: InvertedResBlockV1 | InvertedResBlockV2, source: Held) -> Held:
        """IRB: 1×1 expand Conv-Block → depthwise 3×3 (v2: with bias), norm, LReLU → 1×1 project, norm →
        + input (v1 always; v2 where the channels match)."""
        expanded = self._held(self._block(f"{name}.expand", block.expand, source))
        depthwise = self._recomputed(self._layer(f"{name}.depthwise", expanded, block.depthwise, (1, 1, 1, 1),
                                                 norm=block.depthwise_norm, activation=True))  # fmt: skip
        out = self._held(self._layer(f"{name}.project", depthwise, block.project, (0, 0, 0, 0), norm=block.project_norm))
        del depthwise, expanded
        return _sum(out, source) if getattr(block, "residual", True) else out


def _sum(out: Held, other: Held | Recomputed) -> Held:
    """``out`` and ``other`` normalized and activated, summed band by band in float32 and stored
    rounded once: the inverted residual blocks' adds and v1's Down-Conv branches."""
    for start, stop in bands(out.height, out.width, BAND_PIXELS, out.channels):
        out.tensor[:, :, start:stop] = out.final_rows(start, stop) + other.final_rows(start, stop)
    if isinstance(other, Recomputed):
        other.layer.runner.release(other.layer)
    return Held(out.tensor)
