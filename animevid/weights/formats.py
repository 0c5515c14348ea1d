"""Generator weights: one on-disk format (safetensors with metadata) and importers for the others.

:func:`save_weights` writes ``.safetensors`` files whose metadata records the architecture
(``animegan-v1`` or ``animegan-v2``), the weight semantics (``tf1`` or ``pytorch``: the code the
weights were trained under, see :mod:`animevid.models.animegan_v2`), the style, the source and the
training settings. :func:`load_weights` accepts:

* ``.safetensors`` (ours, or any file holding a generator's tensors under our names);
* the authors' TensorFlow checkpoints, v1 or v2: the prefix (``Hayao-60.ckpt``) or its
  ``.index``/``.data`` file, every tensor checked against the CRC32C its index records;
* a torch state dict (``.pt``/``.pth``/``.bin``/``.ckpt``) under our names or under
  bryandlee/animegan2-pytorch's (``block_a.0.1.weight``, ...), read with ``weights_only=True``:
  pickled code in a file someone handed you is never executed.

The architecture is told by the tensor names. The semantics is ``tf1`` for TF checkpoints and for
v1 (its only one), recorded in our files, and for v2 weights in a torch file given by the caller
(``semantics=``, the CLI's ``--semantics``) or, for bryandlee's published files, told by the file
name (:data:`animevid.weights.convert.BRYANDLEE_FILE_SEMANTICS`). Otherwise the load fails and says how
to give it: running weights under the wrong semantics gives plausible but wrong pictures.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .convert import best_match, bryandlee_file_semantics, bryandlee_names, describe_mismatch, load_tf_checkpoint, reference_shapes, state_dict_from_bryandlee
from ..errors import UsageError, WeightsError
from ..fileio import atomic_path
from ..models import GENERATORS
from ..models.animegan_v2 import SEMANTICS
from .tf_checkpoint import checkpoint_paths, is_checkpoint_prefix

FORMAT = "animevid"
LEGACY_ARCHITECTURE = "animegan-v1-generator"  # files written before v2 existed: v1, tf1, no semantics key
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# Keys under which training scripts commonly nest the generator's state dict.
_NESTED_KEYS = ("generator", "G", "netG", "g", "state_dict", "model")
_UNKNOWN_SEMANTICS_HINT = (
    "pass --semantics tf1 (weights converted from the authors' TensorFlow checkpoints, like paprika.pt) "
    "or --semantics pytorch (weights trained with bryandlee/animegan2-pytorch, like face_paint_512_v2.pt)"
)


@dataclass(frozen=True)
class GeneratorWeights:
    """A generator's tensors and what running them takes: the architecture id and the semantics.

    Checked when made: a known architecture, a semantics it runs, and exactly its names and shapes.
    """

    state_dict: dict[str, torch.Tensor]
    architecture: str
    semantics: str

    def __post_init__(self) -> None:
        _check_architecture(self.architecture, self.semantics)
        actual = {name: tuple(tensor.shape) for name, tensor in self.state_dict.items()}
        problems = describe_mismatch(actual, reference_shapes(self.architecture))
        if problems:
            raise WeightsError(f"weights do not fit the {self.architecture} generator: {problems}")

    def generator(self) -> nn.Module:
        """The generator with these weights, under their semantics, in eval mode (on the CPU), without grad."""
        model = build_generator(self.architecture, self.semantics)
        model.load_state_dict(self.state_dict)
        return model.eval().requires_grad_(False)


def _check_architecture(architecture: str, semantics: str) -> None:
    if architecture not in GENERATORS:
        raise WeightsError(f"unknown generator architecture {architecture!r} (known: {', '.join(GENERATORS)})")
    supported = GENERATORS[architecture].SEMANTICS
    if semantics not in supported:
        raise WeightsError(f"{architecture} weights run with {' or '.join(supported)} semantics, not {semantics!r}")


def build_generator(architecture: str, semantics: str) -> nn.Module:
    """A freshly initialized generator of ``architecture`` computing under ``semantics``."""
    _check_architecture(architecture, semantics)
    return GENERATORS[architecture](semantics)


def random_weights(architecture: str = "animegan-v1", semantics: str = "tf1", *, seed: int = 0) -> GeneratorWeights:
    """Seeded random weights in the official layout, for tests and benchmarks (no trained weights needed).

    The norm layers' scales and shifts are drawn like trained ones' (0.5 to 1.5, -0.2 to 0.2)
    instead of PyTorch's 1 and 0: with those, a norm layer wired wrongly would change nothing,
    and the outputs of different seeds would hardly differ. The same seed gives the same tensors.
    """
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        model = build_generator(architecture, semantics)  # PyTorch's initializers, from the seed
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith("norm.weight"):
                    param.uniform_(0.5, 1.5)
                elif name.endswith("norm.bias"):
                    param.uniform_(-0.2, 0.2)
    return GeneratorWeights(model.state_dict(), architecture, semantics)


def save_weights(
    weights: GeneratorWeights,
    path: str | os.PathLike,
    *,
    style: str = "",
    source: str = "",
    training: dict | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write ``weights`` as safetensors with metadata, atomically. Returns the path.

    ``extra`` adds string metadata (a checksum of the source, ...); it may not replace the keys
    this function writes.
    """
    if not isinstance(weights, GeneratorWeights):
        raise TypeError(f"save_weights takes GeneratorWeights, not {type(weights).__name__}")
    metadata = {
        "format": FORMAT,
        "architecture": weights.architecture,
        "semantics": weights.semantics,
        "style": style,
        "source": source,
        "training": json.dumps(training or {}, sort_keys=True),
    }
    clashes = sorted(metadata.keys() & (extra or {}).keys())
    if clashes:
        raise ValueError(f"extra metadata may not replace {', '.join(clashes)}")
    metadata.update(extra or {})
    tensors = {name: tensor.detach().to("cpu", torch.float32).contiguous() for name, tensor in weights.state_dict.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors weights file (``{}`` if it has none)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc


def _semantics(path: Path, architecture: str, requested: str | None, *, fixed: str | None = None, default: str | None = None) -> str:
    """The semantics to run ``path``'s weights with: ``fixed`` (by format or recorded) cannot be
    overridden, ``default`` (told by a file name) can; with neither, the caller must say."""
    supported = GENERATORS[architecture].SEMANTICS
    fixed = fixed or (supported[0] if len(supported) == 1 else None)
    if fixed is not None:
        if requested not in (None, fixed):
            raise UsageError(f"{path} holds {architecture} weights with {fixed} semantics; --semantics {requested} contradicts it")
        return fixed
    semantics = requested or default
    if semantics is None:
        raise WeightsError(f"{path}: unknown semantics for these {architecture} weights: {_UNKNOWN_SEMANTICS_HINT}")
    return semantics


def _identify(state: dict[str, torch.Tensor], path: Path) -> tuple[str, dict[str, torch.Tensor], str | None]:
    """``(architecture, state dict under our names, semantics told by the file name)`` from tensor names."""
    namings = {(architecture, "ours"): reference_shapes(architecture).keys() for architecture in GENERATORS}
    namings["animegan-v2", "bryandlee"] = bryandlee_names().values()
    match = best_match(state, namings)
    if match is None:
        raise WeightsError(f"{path} does not hold AnimeGAN v1 or v2 generator weights (it has e.g. {min(state, default='nothing')})")
    if match[1] == "bryandlee":
        return "animegan-v2", state_dict_from_bryandlee(state), bryandlee_file_semantics(path)
    return match[0], state, None


def _unwrap_torch_object(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), dict):
                return _unwrap_torch_object(obj[key], path)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in obj.items()}
    raise WeightsError(f"{path} does not hold a generator state dict")


def _load_torch(path: Path, requested: str | None) -> GeneratorWeights:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or malicious pickles
        raise WeightsError(f"cannot load {path} as a torch state dict (weights only): {str(exc).splitlines()[0]}") from exc
    architecture, state, default = _identify(_unwrap_torch_object(obj, path), path)
    return _weights(state, architecture, _semantics(path, architecture, requested, default=default))


def _load_safetensors(path: Path, requested: str | None) -> GeneratorWeights:
    metadata = read_metadata(path)
    recorded = metadata.get("architecture")
    if recorded is not None and recorded not in (LEGACY_ARCHITECTURE, *GENERATORS):
        raise WeightsError(f"{path} holds weights for {recorded!r}, not an AnimeGAN generator ({', '.join(GENERATORS)})")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    if recorded is None:  # someone else's file: told by its names, like a torch file
        architecture, state, default = _identify(state, path)
        return _weights(state, architecture, _semantics(path, architecture, requested, default=default))
    architecture = "animegan-v1" if recorded == LEGACY_ARCHITECTURE else recorded
    fixed = metadata.get("semantics")
    if fixed is not None and fixed not in SEMANTICS:
        raise WeightsError(f"{path} records unknown semantics {fixed!r}")
    return _weights(state, architecture, _semantics(path, architecture, requested, fixed=fixed))


def _weights(state: dict[str, torch.Tensor], architecture: str, semantics: str) -> GeneratorWeights:
    return GeneratorWeights({name: tensor.to(torch.float32) for name, tensor in state.items()}, architecture, semantics)


def load_weights(source: str | os.PathLike, *, semantics: str | None = None) -> GeneratorWeights:
    """Load generator weights from any supported format (see the module doc), validated.

    ``semantics`` (``tf1`` or ``pytorch``) says how v2 weights in a torch file were trained; it
    must agree with what a file records or its format fixes.
    """
    if semantics is not None and semantics not in SEMANTICS:
        raise UsageError(f"unknown semantics {semantics!r} (use {' or '.join(SEMANTICS)})")
    path = Path(source)
    if is_checkpoint_prefix(path):
        architecture, state = load_tf_checkpoint(path)
        return _weights(state, architecture, _semantics(path, architecture, semantics, fixed="tf1"))
    if not path.exists():
        index, data = checkpoint_paths(path)
        if index.exists() and not data.exists():
            raise WeightsError(f"TensorFlow checkpoint {index} has no data file {data.name} beside it")
        raise WeightsError(f"weights file {path} does not exist")
    if path.is_dir():
        raise WeightsError(f"{path} is a directory, not a weights file")
    if path.suffix == ".safetensors":
        return _load_safetensors(path, semantics)
    if path.suffix in TORCH_SUFFIXES:
        return _load_torch(path, semantics)
    raise WeightsError(
        f"{path}: unknown weights format (expected .safetensors, a TensorFlow checkpoint, or {'/'.join(TORCH_SUFFIXES)})"
    )


def load_generator(source: str | os.PathLike, *, semantics: str | None = None) -> nn.Module:
    """The generator of ``source``'s weights, under their semantics, in eval mode (on the CPU), without grad."""
    return load_weights(source, semantics=semantics).generator()
