"""The generator on OpenVINO's CPU plugin: exported once to ONNX, converted, cached, compiled.

On the CPU OpenVINO runs this network faster than torch (eager or compiled) at the same
precision: its convolutions, instance norms and resizes are fused into fewer passes over memory
(measured side by side by ``python -m benchmarks --only engines``). AnimeGANv2's layer norms are
exported in the form OpenVINO fuses into one MVN (see :class:`animevid.models.animegan_v2.LayerNorm`
and ``python -m benchmarks.v2graph``).

* **Cache.** The converted model (OpenVINO IR, fp32 weights) is kept under
  ``<animevid home>/cache/openvino/`` (``$ANIMEVID_CACHE/openvino`` when set), keyed by
  :func:`conversion_key`: everything that defines the computed function (classes, attributes such
  as a v2 network's semantics, tensors, the code of the network and the exporter), the OpenVINO
  version and the save options. Compiled blobs go to OpenVINO's own model cache beside it (keyed by
  OpenVINO on the model, the precision and the CPU). A second run skips both the export and most
  of the compilation; anything that changes the function gets another entry.
* **Shapes.** One compilation with dynamic batch, height and width serves every size: it ran as
  fast as a compilation for the fixed size (measured at 540×960, fp32 and bf16), so a folder of
  mixed sizes and a video share it.
* **Precision.** fp32 is asked for explicitly: OpenVINO's own default on CPUs with native bf16
  (AVX512-BF16, AMX) is bf16, which is not exact. bf16 runs only where the CPU computes it natively.
* **Threads.** As many as the process may use (affinity, cgroup quota), not the host's core count.
  Pinned to cores, OpenVINO's default: beside one busy thread (what the video pipeline's decoder or
  encoder would be at worst) unpinned threads were no faster (``python -m benchmarks --only engines``,
  "contention").
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..fileio import animevid_home
from .onnx_export import function_digest, onnx_model_bytes
from .resources import usable_cpus

logger = logging.getLogger(__name__)

# torch dtype -> OpenVINO's INFERENCE_PRECISION_HINT
PRECISIONS = {torch.float32: "f32", torch.bfloat16: "bf16"}
# How the IR is saved. fp16 weight compression is OpenVINO's default for saved IR: exact fp32 it is not.
SAVE_OPTIONS = {"compress_to_fp16": False}


def conversion_key(generator: nn.Module, openvino_version: str) -> str:
    """The name of ``generator``'s cached IR: a digest of everything that defines it, by construction —
    the function and its export (:func:`~animevid.engine.onnx_export.function_digest`: classes,
    attributes such as a v2 network's semantics, tensors, code), the OpenVINO version that converts
    it and the options it is saved with. Same key, same IR."""
    digest = hashlib.sha256(f"{function_digest(generator)};openvino {openvino_version};{sorted(SAVE_OPTIONS.items())}".encode())
    return digest.hexdigest()[:32]


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def import_openvino():
    """The ``openvino`` module; :class:`UsageError` (one line) when it is not installed."""
    try:
        import openvino
    except ImportError:
        raise UsageError("--engine openvino needs the openvino package (pip install openvino), or use --engine torch") from None
    return openvino


def cache_dir() -> Path:
    """Where converted models and compiled blobs are kept: ``$ANIMEVID_CACHE/openvino`` if set."""
    override = os.environ.get("ANIMEVID_CACHE")
    return (Path(override) if override else animevid_home() / "cache") / "openvino"


@functools.cache
def openvino_core():
    """The process's one ``openvino.Core``: each Core starts its own thread pools, and processes
    holding several crashed after forking (a DataLoader's workers)."""
    return import_openvino().Core()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 natively here (AVX512-BF16 or AMX)."""
    return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVINOGenerator:
    """Runs a generator's forward on (B, 3, H, W) float32 arrays in [-1, 1] with OpenVINO.

    >>> engine = OpenVINOGenerator(generator, torch.float32)
    >>> y = engine(x)  # x: (B, 3, H, W) float32 numpy or torch (CPU), y: a new float32 tensor
    """

    def __init__(
        self, generator: nn.Module, dtype: torch.dtype = torch.float32, *, threads: int | None = None, pin_threads: bool = True
    ) -> None:
        ov = import_openvino()
        if dtype not in PRECISIONS:
            raise UsageError(f"the OpenVINO engine runs float32 or bfloat16, not {str(dtype).removeprefix('torch.')}")
        self.core = openvino_core()
        if dtype == torch.bfloat16 and not cpu_has_native_bf16():
            raise UsageError(
                "the openvino engine runs bfloat16 only where the CPU computes it natively (AVX512-BF16, AMX), "
                "and this one does not: use float32 or --engine torch"
            )
        self.dtype = dtype
        self.threads = threads or usable_cpus()
        folder = cache_dir()
        self.model_path, self.converted = self._converted_model(generator, folder, ov)
        config = {
            "INFERENCE_PRECISION_HINT": PRECISIONS[dtype],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": self.threads,
            "ENABLE_CPU_PINNING": pin_threads,  # OpenVINO's default; unpinned measured no better (module docstring)
            "CACHE_DIR": str(folder / "compiled"),
        }
        self.compiled = self.core.compile_model(str(self.model_path), "CPU", config)
        self._request = self.compiled.create_infer_request()

    @staticmethod
    def _converted_model(generator: nn.Module, folder: Path, ov) -> tuple[Path, bool]:
        """The cached IR of ``generator`` (made now if missing); True when it was made now."""
        key = conversion_key(generator, ov.__version__)
        xml = folder / f"{key}.xml"
        if xml.is_file() and xml.with_suffix(".bin").is_file():
            return xml, False
        folder.mkdir(parents=True, exist_ok=True)
        logger.info("converting the generator for OpenVINO (once per weights file)")
        with tempfile.TemporaryDirectory(dir=folder, prefix=".convert-") as work:
            onnx_path = Path(work) / "generator.onnx"
            onnx_path.write_bytes(onnx_model_bytes(generator))
            staged = Path(work) / "generator.xml"
            ov.save_model(openvino_core().read_model(str(onnx_path)), str(staged), **SAVE_OPTIONS)
            # The .bin first: an .xml present means a complete entry (another process may race us).
            os.replace(staged.with_suffix(".bin"), xml.with_suffix(".bin"))
            os.replace(staged, xml)
        return xml, True

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        array = x.numpy() if isinstance(x, torch.Tensor) else x
        array = np.ascontiguousarray(array, dtype=np.float32)
        self._request.infer({0: array}, share_inputs=True)
        # The output buffer belongs to the request and is reused by its next inference: copy.
        return torch.from_numpy(np.array(self._request.get_output_tensor(0).data, copy=True))

