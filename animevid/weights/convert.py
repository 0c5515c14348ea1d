"""Foreign weight names mapped onto our generators: the authors' TensorFlow checkpoints (v1 and v2)
and bryandlee/animegan2-pytorch's state dicts (v2).

The tables below pair every torch parameter with exactly one foreign tensor. TF layouts change as
follows: conv kernels HWIO → OIHW; depthwise kernels (H, W, C, 1) → (C, 1, H, W); norm gamma/beta
and biases map unchanged. bryandlee's tensors are already in torch layouts: only names change.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ..errors import CheckpointError, WeightsError
from ..models import GENERATORS
from .tf_checkpoint import read_checkpoint

TF_SCOPE = "generator/G_MODEL/"
K = TypeVar("K")


@functools.cache
def reference_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """``{parameter name: shape}`` of a generator (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        generator = GENERATORS[architecture]()
    return {name: tuple(tensor.shape) for name, tensor in generator.state_dict().items()}


def describe_mismatch(actual: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]]) -> str | None:
    """One line naming what is missing, unexpected or misshapen in ``actual``; None when it all fits."""
    missing = sorted(expected.keys() - actual.keys())
    unexpected = sorted(actual.keys() - expected.keys())
    wrong = sorted(name for name in expected.keys() & actual.keys() if tuple(actual[name]) != tuple(expected[name]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        name = wrong[0]
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {name}: {tuple(actual[name])}, expected {tuple(expected[name])})")
    return ", ".join(problems) or None


def best_match(names: Collection[str], candidates: Mapping[K, Collection[str]]) -> K | None:
    """The candidate sharing the most names with ``names`` (None when none shares any)."""
    present = set(names)
    best = max(candidates, key=lambda key: len(present.intersection(candidates[key])))
    return best if present.intersection(candidates[best]) else None


# -- the authors' TensorFlow scopes -----------------------------------------------------------------


def _conv_block(torch_prefix: str, tf_conv: str, tf_norm: str) -> dict[str, str]:
    return {
        f"{torch_prefix}.conv.weight": f"{tf_conv}/weights",
        f"{torch_prefix}.norm.weight": f"{tf_norm}/gamma",
        f"{torch_prefix}.norm.bias": f"{tf_norm}/beta",
    }


def _separable(torch_prefix: str, tf_scope: str) -> dict[str, str]:
    return {
        f"{torch_prefix}.depthwise.weight": f"{tf_scope}/depthwise_weights",
        f"{torch_prefix}.pointwise.weight": f"{tf_scope}/pointwise_weights",
        f"{torch_prefix}.norm.weight": f"{tf_scope}/InstanceNorm/gamma",
        f"{torch_prefix}.norm.bias": f"{tf_scope}/InstanceNorm/beta",
    }


def _inverted_res_block(torch_prefix: str, tf_scope: str, tf_norm: str, depthwise_bias: bool) -> dict[str, str]:
    # InvertedRes_block(name='rN') opens scope rN, and its dwise_conv opens a scope named rN again.
    block = tf_scope.rsplit("/", 1)[-1]
    names = {
        **_conv_block(f"{torch_prefix}.expand", f"{tf_scope}/Conv", f"{tf_scope}/{tf_norm}"),
        f"{torch_prefix}.depthwise.weight": f"{tf_scope}/{block}/w",
        f"{torch_prefix}.depthwise_norm.weight": f"{tf_scope}/1/gamma",
        f"{torch_prefix}.depthwise_norm.bias": f"{tf_scope}/1/beta",
        f"{torch_prefix}.project.weight": f"{tf_scope}/Conv_1/weights",
        f"{torch_prefix}.project_norm.weight": f"{tf_scope}/2/gamma",
        f"{torch_prefix}.project_norm.bias": f"{tf_scope}/2/beta",
    }
    if depthwise_bias:
        names[f"{torch_prefix}.depthwise.bias"] = f"{tf_scope}/{block}/bias"
    return names


def _v1_variable_names() -> dict[str, str]:
    # TF numbers sibling scopes in creation order (``Conv``, ``Conv_1``, ...); the order was checked
    # against the exported graph (e.g. ``b1/SeparableConv2d`` is the stride-2 branch of Down-Conv,
    # ``b1/SeparableConv2d_1`` the branch after the resize).
    names: dict[str, str] = {
        **_conv_block("b1.conv1", "b1/Conv", "b1/InstanceNorm"),
        **_conv_block("b1.conv2", "b1/Conv_1", "b1/InstanceNorm_1"),
        **_separable("b1.down.strided", "b1/SeparableConv2d"),
        **_separable("b1.down.resized", "b1/SeparableConv2d_1"),
        **_conv_block("b2.conv", "b2/Conv", "b2/InstanceNorm"),
        **_separable("b2.dsconv", "b2/SeparableConv2d"),
        **_separable("b2.down.strided", "b2/SeparableConv2d_1"),
        **_separable("b2.down.resized", "b2/SeparableConv2d_2"),
        **_conv_block("m.conv_in", "m/Conv", "m/InstanceNorm"),
        **_conv_block("m.conv_out", "m/Conv_1", "m/InstanceNorm_1"),
        **_separable("u2.up.conv", "u2/SeparableConv2d"),
        **_separable("u2.dsconv", "u2/SeparableConv2d_1"),
        **_conv_block("u2.conv", "u2/Conv", "u2/InstanceNorm"),
        **_separable("u1.up.conv", "u1/SeparableConv2d"),
        **_conv_block("u1.conv1", "u1/Conv", "u1/InstanceNorm"),
        **_conv_block("u1.conv2", "u1/Conv_1", "u1/InstanceNorm_1"),
        "out.weight": "Conv/weights",
    }
    for index in range(8):
        names.update(_inverted_res_block(f"m.blocks.{index}", f"m/r{index + 1}", "InstanceNorm", depthwise_bias=False))
    return names


def _v2_variable_names() -> dict[str, str]:
    # Each scope (A ... E) numbers its Conv2DNormLReLU's ``Conv``/``LayerNorm`` pairs in creation
    # order; Unsample's Conv-Block is the first of D and of E.
    names: dict[str, str] = {
        **_conv_block("a.conv1", "A/Conv", "A/LayerNorm"),
        **_conv_block("a.down", "A/Conv_1", "A/LayerNorm_1"),
        **_conv_block("a.conv2", "A/Conv_2", "A/LayerNorm_2"),
        **_conv_block("b.down", "B/Conv", "B/LayerNorm"),
        **_conv_block("b.conv", "B/Conv_1", "B/LayerNorm_1"),
        **_conv_block("c.conv_in", "C/Conv", "C/LayerNorm"),
        **_conv_block("c.conv_out", "C/Conv_1", "C/LayerNorm_1"),
        **_conv_block("d.up", "D/Conv", "D/LayerNorm"),
        **_conv_block("d.conv", "D/Conv_1", "D/LayerNorm_1"),
        **_conv_block("e.up", "E/Conv", "E/LayerNorm"),
        **_conv_block("e.conv1", "E/Conv_1", "E/LayerNorm_1"),
        **_conv_block("e.conv2", "E/Conv_2", "E/LayerNorm_2"),
        "out.weight": "out_layer/Conv/weights",
    }
    for index in range(4):
        names.update(_inverted_res_block(f"c.blocks.{index}", f"C/r{index + 1}", "LayerNorm", depthwise_bias=True))
    return names


def tf_variable_names(architecture: str) -> dict[str, str]:
    """``{torch parameter name: official TF variable name}``: 129 for animegan-v1, 77 for animegan-v2."""
    names = _v1_variable_names() if architecture == "animegan-v1" else _v2_variable_names()
    return {torch_name: TF_SCOPE + tf_name for torch_name, tf_name in names.items()}


def tf_to_torch_layout(torch_name: str, array: np.ndarray) -> np.ndarray:
    """Convert one TF variable to the layout of the torch parameter it maps to."""
    if array.ndim == 1:  # norm gamma / beta, depthwise bias
        return array
    if array.ndim != 4:
        raise CheckpointError(f"unexpected rank {array.ndim} for {torch_name}")
    if torch_name.endswith("depthwise.weight"):
        height, width, channels, multiplier = array.shape
        # (H, W, C, M) -> (C*M, 1, H, W); TF orders depthwise outputs channel-major, multiplier-minor
        return array.reshape(height, width, channels * multiplier, 1).transpose(2, 3, 0, 1)
    return array.transpose(3, 2, 0, 1)  # HWIO -> OIHW


def _tf_shape(torch_name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The TF variable shape that :func:`tf_to_torch_layout` turns into ``shape``."""
    if len(shape) == 1:
        return shape
    if torch_name.endswith("depthwise.weight"):
        channels, multiplier, height, width = shape
        return (height, width, channels * multiplier, 1)  # (C, 1, H, W) <- (H, W, C, 1)
    out_ch, in_ch, height, width = shape
    return (height, width, in_ch, out_ch)  # OIHW <- HWIO


def state_dict_from_tf(tensors: dict[str, np.ndarray]) -> tuple[str, dict[str, torch.Tensor]]:
    """``(architecture, state dict)`` from official TF tensors, checking names and shapes strictly."""
    tensors = {name: array for name, array in tensors.items() if not name.endswith("global_step")}
    mappings = {architecture: tf_variable_names(architecture) for architecture in GENERATORS}
    architecture = best_match(tensors, {arch: mapping.values() for arch, mapping in mappings.items()})
    if architecture is None:
        raise CheckpointError(f"checkpoint is not an AnimeGAN v1 or v2 generator (it holds e.g. {min(tensors)})")
    mapping, reference = mappings[architecture], reference_shapes(architecture)
    expected = {tf_name: _tf_shape(torch_name, reference[torch_name]) for torch_name, tf_name in mapping.items()}
    problems = describe_mismatch({name: array.shape for name, array in tensors.items()}, expected)
    if problems:
        raise CheckpointError(f"checkpoint does not fit the {architecture} generator: {problems}")
    state = {
        torch_name: torch.from_numpy(np.ascontiguousarray(tf_to_torch_layout(torch_name, tensors[tf_name]), dtype=np.float32))
        for torch_name, tf_name in mapping.items()
    }
    return architecture, state


def load_tf_checkpoint(prefix: str | os.PathLike) -> tuple[str, dict[str, torch.Tensor]]:
    """Read an official v1 or v2 checkpoint (prefix, ``.index`` or ``.data-*`` path), CRC32C-checked,
    as ``(architecture, state dict)``."""
    return state_dict_from_tf(read_checkpoint(prefix))


# -- bryandlee/animegan2-pytorch's model.py ---------------------------------------------------------

# Its published files and the code their weights come from. Converted from the authors' TF
# checkpoints by its convert_weights.py (whose default output is pytorch_generator_Paprika.pt):
# tf1. Trained with its model.py (README: "Trained on 512x512 face images", "Distilled from ..."):
# pytorch.
BRYANDLEE_FILE_SEMANTICS = {
    "paprika.pt": "tf1",
    "face_paint_512_v1.pt": "pytorch",
    "face_paint_512_v2.pt": "pytorch",
    "celeba_distill.pt": "pytorch",
}
BRYANDLEE_CONVERTED_PREFIX = "pytorch_generator_"  # convert_weights.py's naming: pytorch_generator_<Style>.pt


def _bryandlee_conv_block(torch_prefix: str, theirs: str) -> dict[str, str]:
    # Their ConvNormLReLU is nn.Sequential(pad, conv, norm, lrelu): the conv is item 1, the norm item 2.
    return {
        f"{torch_prefix}.conv.weight": f"{theirs}.1.weight",
        f"{torch_prefix}.norm.weight": f"{theirs}.2.weight",
        f"{torch_prefix}.norm.bias": f"{theirs}.2.bias",
    }


def bryandlee_names() -> dict[str, str]:
    """``{our animegan-v2 parameter name: bryandlee's name}`` for all 77 tensors."""
    names: dict[str, str] = {
        **_bryandlee_conv_block("a.conv1", "block_a.0"),
        **_bryandlee_conv_block("a.down", "block_a.1"),
        **_bryandlee_conv_block("a.conv2", "block_a.2"),
        **_bryandlee_conv_block("b.down", "block_b.0"),
        **_bryandlee_conv_block("b.conv", "block_b.1"),
        **_bryandlee_conv_block("c.conv_in", "block_c.0"),
        **_bryandlee_conv_block("c.conv_out", "block_c.5"),
        **_bryandlee_conv_block("d.up", "block_d.0"),
        **_bryandlee_conv_block("d.conv", "block_d.1"),
        **_bryandlee_conv_block("e.up", "block_e.0"),
        **_bryandlee_conv_block("e.conv1", "block_e.1"),
        **_bryandlee_conv_block("e.conv2", "block_e.2"),
        "out.weight": "out_layer.0.weight",
    }
    for index in range(4):
        ours, theirs = f"c.blocks.{index}", f"block_c.{index + 1}.layers"  # [expand, dw block, pw conv, norm]
        names.update(_bryandlee_conv_block(f"{ours}.expand", f"{theirs}.0"))
        names[f"{ours}.depthwise.weight"] = f"{theirs}.1.1.weight"
        names[f"{ours}.depthwise.bias"] = f"{theirs}.1.1.bias"
        names[f"{ours}.depthwise_norm.weight"] = f"{theirs}.1.2.weight"
        names[f"{ours}.depthwise_norm.bias"] = f"{theirs}.1.2.bias"
        names[f"{ours}.project.weight"] = f"{theirs}.2.weight"
        names[f"{ours}.project_norm.weight"] = f"{theirs}.3.weight"
        names[f"{ours}.project_norm.bias"] = f"{theirs}.3.bias"
    return names


def bryandlee_file_semantics(path: str | os.PathLike) -> str | None:
    """The semantics of one of bryandlee's files told by its name, or None for a name we do not know."""
    name = Path(path).name.lower()
    if name in BRYANDLEE_FILE_SEMANTICS:
        return BRYANDLEE_FILE_SEMANTICS[name]
    if name.startswith(BRYANDLEE_CONVERTED_PREFIX):
        return "tf1"
    return None


def state_dict_from_bryandlee(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our animegan-v2 state dict from bryandlee's, checking names and shapes strictly."""
    names = bryandlee_names()
    reference = reference_shapes("animegan-v2")
    expected = {theirs: reference[ours] for ours, theirs in names.items()}
    problems = describe_mismatch({name: tuple(tensor.shape) for name, tensor in state.items()}, expected)
    if problems:
        raise WeightsError(f"weights do not fit bryandlee's animegan2-pytorch generator: {problems}")
    return {ours: state[theirs] for ours, theirs in names.items()}
