"""Generator weights: one on-disk format (safetensors with metadata) and importers for the others.

``save_weights`` writes ``.safetensors`` files whose metadata records the architecture, style,
source and training settings. ``load_state_dict`` accepts:

* ``.safetensors`` (ours, or any file holding the generator's tensors under our names);
* an official TensorFlow checkpoint: its prefix (``Hayao-60.ckpt``) or its ``.index``/``.data`` file;
* a torch state dict (``.pt``/``.pth``/``.bin``/``.ckpt``), read with ``weights_only=True``: pickled
  code in a file someone handed you is never executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import WeightsError
from .fileio import atomic_path
from .models.animegan import AnimeGANGenerator
from .tf_checkpoint import checkpoint_paths, is_checkpoint_prefix

ARCHITECTURE = "animegan-v1-generator"
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# Keys under which training scripts commonly nest the generator's state dict.
_NESTED_KEYS = ("generator", "G", "netG", "g", "state_dict", "model")


def save_weights(
    state_dict: dict[str, torch.Tensor],
    path: str | os.PathLike,
    *,
    style: str = "",
    source: str = "",
    training: dict | None = None,
) -> Path:
    """Write a generator state dict as safetensors with metadata, atomically. Returns the path."""
    check_state_dict(state_dict)
    metadata = {
        "format": "animevid",
        "architecture": ARCHITECTURE,
        "style": style,
        "source": source,
        "training": json.dumps(training or {}, sort_keys=True),
    }
    tensors = {name: tensor.detach().to("cpu", torch.float32).contiguous() for name, tensor in state_dict.items()}
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


def check_state_dict(state_dict: dict[str, torch.Tensor]) -> None:
    """Raise :class:`WeightsError` unless names and shapes are exactly the generator's."""
    reference = AnimeGANGenerator().state_dict()
    missing = sorted(reference.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - reference.keys())
    wrong = sorted(
        name for name in reference.keys() & state_dict.keys() if tuple(state_dict[name].shape) != tuple(reference[name].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        name = wrong[0]
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {name}: {tuple(state_dict[name].shape)}, expected {tuple(reference[name].shape)})")
    if problems:
        raise WeightsError("weights do not fit the AnimeGAN generator: " + ", ".join(problems))


def _unwrap_torch_object(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), dict):
                return _unwrap_torch_object(obj[key], path)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in obj.items()}
    raise WeightsError(f"{path} does not hold a generator state dict")


def _load_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or malicious pickles
        raise WeightsError(f"cannot load {path} as a torch state dict (weights only): {str(exc).splitlines()[0]}") from exc
    return _unwrap_torch_object(obj, path)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    architecture = read_metadata(path).get("architecture")
    if architecture not in (None, ARCHITECTURE):
        raise WeightsError(f"{path} holds weights for {architecture!r}, not {ARCHITECTURE!r}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc


def load_state_dict(source: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load generator weights from any supported format, validated against the architecture."""
    path = Path(source)
    if is_checkpoint_prefix(path):
        from .convert import load_tf_checkpoint

        state = load_tf_checkpoint(path)
    elif not path.exists():
        index, data = checkpoint_paths(path)
        if index.exists() and not data.exists():
            raise WeightsError(f"TensorFlow checkpoint {index} has no data file {data.name} beside it")
        raise WeightsError(f"weights file {path} does not exist")
    elif path.is_dir():
        raise WeightsError(f"{path} is a directory, not a weights file")
    elif path.suffix == ".safetensors":
        state = _load_safetensors(path)
    elif path.suffix in TORCH_SUFFIXES:
        state = _load_torch(path)
    else:
        raise WeightsError(
            f"{path}: unknown weights format (expected .safetensors, a TensorFlow checkpoint, or {'/'.join(TORCH_SUFFIXES)})"
        )
    check_state_dict(state)
    return {name: tensor.to(torch.float32) for name, tensor in state.items()}


def load_generator(source: str | os.PathLike) -> AnimeGANGenerator:
    """An :class:`AnimeGANGenerator` in eval mode (on the CPU) with the weights of ``source``."""
    generator = AnimeGANGenerator()
    generator.load_state_dict(load_state_dict(source))
    return generator.eval().requires_grad_(False)
