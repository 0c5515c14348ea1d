"""How the pipeline runs on CUDA: every default that a measurement on a GPU decides, in one place.

None of these has been measured on a GPU yet (no device was lent when they were written): they
are the design's first guesses, to be set from the device run (``benchmarks/gpu_check.sh``, whose
summary names the figure behind each field). Change them here and nowhere else: the stylizer
(batch size, memory format, colour conversion), the compile policy, the video encoder (preset)
and the worker processes per GPU (animevid.jobs.parallel) read them from :data:`CUDA`.

This module imports neither torch nor PyAV, so the command line can read it for ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import DEFAULT_PRESET


@dataclass(frozen=True)
class CudaTuning:
    """The CUDA defaults; ``measured`` names the results file they were set from (None: not yet)."""

    # A batch holds about this many pixels (8 frames of 720p, 3 of 1080p, 1 of 4K): the
    # generator's full-resolution 128-channel activations (about 0.5 GB per 1080p frame in fp16)
    # dominate memory, and past saturation a larger batch adds memory, not throughput.
    pixels_per_batch: int = 8 * 1280 * 720
    max_batch_size: int = 16
    # channels_last suits cuDNN's tensor-core kernels, but ATen's instance norm makes its input
    # contiguous (pytorch issue 59168), so NHWC may pay a layout copy around every norm:
    # benchmarks/cuda.py measures both, eager and compiled.
    channels_last: bool = True
    compile: bool = False  # the compile=None (auto) choice on CUDA
    colour_on_device: bool = True  # the colour_on_device=None (auto) choice on CUDA (animevid.video.colour)
    # Worker processes per GPU with --devices (animevid.jobs.parallel): each has its own decoder and
    # libx264 on consecutive segments (chunked encoding), for when one encoder cannot keep up.
    workers_per_gpu: int = 1
    preset: str = DEFAULT_PRESET  # libx264/libx265 preset when --preset is not given
    measured: str | None = None


CUDA = CudaTuning()
