"""ONNX export of a generator: dynamic batch, height and width, the network's own float interface.

The exported graph is the generator's forward and nothing else:

* input ``image``: float32 (B, 3, H, W), RGB in [-1, 1] (``pixel / 127.5 - 1``), H and W at least
  the generator's ``MIN_SIZE`` (8 for AnimeGAN); any batch, any size, odd sizes included;
* output ``anime``: float32 (B, 3, H, W), RGB in [-1, 1] (``(y + 1) * 127.5``, rounded, for pixels).

No uint8 conversion and no resizing to a maximum side are baked in: callers (browsers, mobile
runtimes, ONNX Runtime, OpenVINO) do those as they see fit. TF1's bilinear resizes become ONNX
``Resize`` nodes (``linear``, ``asymmetric``), which compute the same mapping at every size (see
:mod:`animevid.models.resize`), and the bottom/right reflect padding to a multiple of 4 is computed
from the input's shape inside the graph.

The exporter is torch's dynamo-based one (``torch.onnx.export(dynamo=True)``, which needs the
``onnx`` and ``onnxscript`` packages): the TorchScript exporter is deprecated.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import UsageError
from ..fileio import check_destination, write_bytes_atomic


INPUT_NAME = "image"
OUTPUT_NAME = "anime"
OPSET = 18  # Resize with "asymmetric" exists since opset 11; 18 is what torch's exporter targets
# The example the graph is traced with: odd sides, so that no size-dependent branch can be taken
# for "already a multiple of 4", and a batch above 1, which torch.export would specialize.
_EXAMPLE_SHAPE = (2, 3, 67, 93)
# Bumped whenever the exported graph changes for the same network and code, so that cached conversions
# keyed by function_digest are made again. 2: v2's layer norms as their plain formula (fused into
# OpenVINO's MVN), the exporter's ONNX optimizer off.
EXPORT_FORMAT = 2


def weights_digest(generator: nn.Module) -> str:
    """SHA-256 of the generator's class and tensors (names, shapes, dtypes, values), hex.

    The tensors only: the same tensors can compute different functions (an AnimeGANv2 network
    under ``tf1`` or ``pytorch`` semantics), so this names weights, never a conversion; cached
    conversions are keyed by :func:`function_digest`.
    """
    digest = hashlib.sha256(f"{type(generator).__module__}.{type(generator).__qualname__}".encode())
    _update_with_tensors(digest, generator)
    return digest.hexdigest()


def function_digest(generator: nn.Module) -> str:
    """SHA-256 of everything that defines the function ``generator`` computes, and its export, hex.

    Same digest, same function, by construction: it covers what a forward can read and what
    turns it into a graph —

    * every submodule's name, class and plain attributes (a v2 network's ``semantics``, each norm's
      epsilon, each convolution's stride, padding and groups), whatever the architecture;
    * every tensor (parameters and buffers: names, shapes, dtypes, values);
    * the code: the source files defining those classes and the functions their modules call from
      the same package (the resizes, the padding), and this exporter's, with the torch version
      that traces it and the opset.

    The key of every cached conversion of a network (the OpenVINO engine's IR).
    """
    digest = hashlib.sha256(f"torch {torch.__version__}; opset {OPSET}; format {EXPORT_FORMAT};".encode())
    sources: set[str] = {__file__}
    for name, module in generator.named_modules():
        cls = type(module)
        digest.update(f"[{name}] {cls.__module__}.{cls.__qualname__} {_plain_attributes(module)};".encode())
        sources.update(_source_files(cls))
    for path in sorted(sources):
        digest.update(path.encode() if not os.path.isfile(path) else Path(path).read_bytes())
    _update_with_tensors(digest, generator)
    return digest.hexdigest()


def _update_with_tensors(digest, generator: nn.Module) -> None:
    for name, tensor in sorted(generator.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())


# nn.Module's own bookkeeping (hooks, flags): the tensors and children are digested as such, the rest is not the function.
_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def _plain_attributes(module: nn.Module) -> str:
    """The module's own attributes and its class's (``MIN_SIZE``, ...), other than tensors, children,
    methods and torch's bookkeeping, as a stable string."""
    attributes = {}
    for cls in reversed(type(module).__mro__[: type(module).__mro__.index(nn.Module)]):
        attributes.update({k: v for k, v in vars(cls).items() if not k.startswith("__") and not callable(v) and not isinstance(v, (property, staticmethod, classmethod))})
    attributes.update({k: v for k, v in vars(module).items() if k not in _MODULE_INTERNALS})
    return ",".join(
        f"{key}={value!r}" if isinstance(value, (int, float, str, bool, tuple, frozenset, type(None))) else f"{key}:{type(value).__qualname__}"
        for key, value in sorted(attributes.items())
    )


def _source_files(cls: type) -> set[str]:
    """The file defining ``cls``, and those of the functions and classes its module uses from the same package."""
    module = sys.modules.get(cls.__module__)
    files: set[str] = set()
    if module is None:
        return files
    package = cls.__module__.rpartition(".")[0] or cls.__module__
    for value in [cls, *vars(module).values()]:
        if (inspect.isfunction(value) or inspect.isclass(value)) and (getattr(value, "__module__", "") or "").startswith(package):
            with contextlib.suppress(TypeError, OSError):
                files.add(inspect.getsourcefile(value) or "")
    files.discard("")
    return files


def onnx_model_bytes(generator: nn.Module) -> bytes:
    """The generator as a serialized ONNX model (see the module docstring for its interface)."""
    try:
        import onnx  # noqa: F401  (the exporter imports it lazily; fail here with a clear message)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"ONNX export needs the onnx and onnxscript packages ({exc.name} is missing: pip install onnx onnxscript)") from None
    if not hasattr(torch.onnx, "ops"):
        raise UsageError(f"ONNX export needs torch.onnx.ops, which torch {torch.__version__} lacks: install a newer torch (2.13 is tested)")
    generator = generator.eval()
    minimum = getattr(generator, "MIN_SIZE", 1)
    example = torch.zeros(_EXAMPLE_SHAPE).uniform_(-1, 1)
    dims = {
        0: torch.export.Dim("batch", min=1),
        2: torch.export.Dim("height", min=max(2, minimum)),
        3: torch.export.Dim("width", min=max(2, minimum)),
    }
    with _quiet_exporter():
        program = torch.onnx.export(
            generator, (example,), dynamo=True, dynamic_shapes=(dims,), input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], opset_version=OPSET, external_data=False, verbose=False,
            # onnxscript's optimizer folds ``x + 1e-12`` into ``x`` (a tf1 layer norm's epsilon): the
            # norm then divides by zero on a flat image and OpenVINO no longer recognizes it as MVN.
            # Runtimes fold constants themselves.
            optimize=False,
        )  # fmt: skip
    model = program.model_proto
    model.doc_string = (
        f"{type(generator).__name__}: {INPUT_NAME} float32 (B, 3, H, W) RGB in [-1, 1] -> {OUTPUT_NAME} float32 "
        f"(B, 3, H, W) RGB in [-1, 1]; H, W >= {minimum}"
    )
    for key, value in {"producer": "animevid", "architecture": type(generator).__name__, "weights_sha256": weights_digest(generator),
                       "input_range": "[-1, 1]", "min_size": str(minimum)}.items():  # fmt: skip
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def export_onnx(generator: nn.Module, destination: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``generator`` as an ONNX model to ``destination`` (``.onnx``), atomically."""
    destination = _checked_destination(destination, overwrite)
    write_bytes_atomic(destination, onnx_model_bytes(generator))
    return destination


def export(
    destination: str | os.PathLike,
    *,
    style: str | None = None,
    weights: str | os.PathLike | None = None,
    overwrite: bool = False,
    mirror: str | None = None,
) -> Path:
    """``animevid export``: the generator of exactly one of ``style`` or ``weights`` as ONNX."""
    from ..weights.styles import weights_source
    from ..weights.formats import load_generator

    _checked_destination(destination, overwrite)  # before loading (or fetching) any weights
    return export_onnx(load_generator(weights_source(style, weights, mirror=mirror)), destination, overwrite=overwrite)


def _checked_destination(destination: str | os.PathLike, overwrite: bool) -> Path:
    destination = Path(destination)
    if destination.suffix.lower() != ".onnx":
        raise UsageError(f"output {destination} must be an .onnx file")
    check_destination(destination, overwrite)
    return destination


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch's exporter prints its progress (with emoji) to stdout and warns about its own internals."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        onnx_logger = logging.getLogger("torch.onnx")
        level = onnx_logger.level
        onnx_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            onnx_logger.setLevel(level)
