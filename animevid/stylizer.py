"""The generator wrapped for inference: device, precision, batching, resolution bound.

:class:`Stylizer` turns batches of RGB uint8 frames into stylized RGB uint8 frames. Images,
folders and videos all go through :meth:`Stylizer.frames`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UsageError
from .models.animegan import AnimeGANGenerator
from .weights import load_generator

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; ``cpu``, ``cuda`` and ``cuda:N`` are checked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} asked for, but CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif resolved.type != "cpu":
        raise UsageError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 on CUDA, fp32 on the CPU. Half precision is refused on the CPU."""
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r} (use auto, {', '.join(DTYPES)})")
    if dtype == "float16" and device.type != "cuda":
        raise UsageError("float16 (--half) needs a CUDA device; on the CPU use bfloat16 or float32")
    return DTYPES[dtype]


@dataclass(frozen=True)
class InferenceOptions:
    """How the generator runs. Validated when a :class:`Stylizer` is built."""

    device: str = "auto"
    dtype: str = "auto"
    max_side: int | None = None  # run the generator at most this size, scale back to the source size
    compile: bool = False  # torch.compile the generator (pays off on long videos)

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < AnimeGANGenerator.MIN_SIZE:
            raise UsageError(f"--max-side must be at least {AnimeGANGenerator.MIN_SIZE}, got {self.max_side}")


class Stylizer:
    """An AnimeGAN generator ready for inference on one device.

    >>> stylizer = Stylizer.from_weights("hayao.safetensors", InferenceOptions(device="cpu"))
    >>> anime = stylizer.image(photo)  # (H, W, 3) uint8 RGB in, same shape out
    """

    def __init__(self, generator: AnimeGANGenerator, options: InferenceOptions | None = None) -> None:
        self.options = options or InferenceOptions()
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.dtype, self.device)
        generator = generator.eval().requires_grad_(False)
        self.generator = generator.to(self.device, memory_format=torch.channels_last)
        self._forward = torch.compile(self.generator) if self.options.compile else self.generator
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # frame sizes are constant within a job

    @classmethod
    def from_weights(cls, weights: str | os.PathLike, options: InferenceOptions | None = None) -> "Stylizer":
        return cls(load_generator(weights), options)

    @classmethod
    def from_style(cls, style: str, options: InferenceOptions | None = None, *, mirror: str | None = None) -> "Stylizer":
        from .styles import resolve_style

        return cls(load_generator(resolve_style(style, mirror=mirror)), options)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def _inference_size(self, height: int, width: int) -> tuple[int, int]:
        max_side = self.options.max_side
        if max_side is None or max(height, width) <= max_side:
            return height, width
        scale = max_side / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    @torch.inference_mode()
    def frames(self, batch: torch.Tensor) -> torch.Tensor:
        """Stylize (B, H, W, 3) uint8 RGB frames; returns (B, H, W, 3) uint8 on the same device.

        ``batch`` may live on the CPU or on the stylizer's device; the result lives on the device,
        so a caller can overlap the download with the next batch.
        """
        if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) uint8 frames, got {tuple(batch.shape)} {batch.dtype}")
        height, width = batch.shape[1], batch.shape[2]
        # BHWC -> BCHW view: a contiguous BHWC tensor is already channels_last, no copy needed.
        x = batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        x = x.float().div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
        size = self._inference_size(height, width)
        if size != (height, width):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        if self.dtype == torch.float32:
            y = self._forward(x)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                y = self._forward(x)
        y = y.float()
        if size != (height, width):
            y = F.interpolate(y, size=(height, width), mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)
        y = y.add_(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
        return y.permute(0, 2, 3, 1).contiguous()  # (B, H, W, 3)

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """Stylize one (H, W, 3) uint8 RGB image."""
        batch = torch.from_numpy(np.ascontiguousarray(rgb))[None]
        return self.frames(batch)[0].cpu().numpy()
