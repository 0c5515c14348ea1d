"""Map the official AnimeGAN v1 TensorFlow checkpoint onto :class:`AnimeGANGenerator`.

The table below pairs every torch parameter with exactly one TF variable. Layouts change as
follows: conv kernels HWIO → OIHW; depthwise kernels (H, W, C, 1) → (C, 1, H, W); instance-norm
gamma/beta map to weight/bias unchanged.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .errors import CheckpointError
from .models.animegan import AnimeGANGenerator
from .tf_checkpoint import read_checkpoint

TF_SCOPE = "generator/G_MODEL/"


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


def _inverted_res_block(index: int) -> dict[str, str]:
    torch_prefix, tf_scope = f"m.blocks.{index}", f"m/r{index + 1}"
    return {
        **_conv_block(f"{torch_prefix}.expand", f"{tf_scope}/Conv", f"{tf_scope}/InstanceNorm"),
        f"{torch_prefix}.depthwise.weight": f"{tf_scope}/r{index + 1}/w",
        f"{torch_prefix}.depthwise_norm.weight": f"{tf_scope}/1/gamma",
        f"{torch_prefix}.depthwise_norm.bias": f"{tf_scope}/1/beta",
        f"{torch_prefix}.project.weight": f"{tf_scope}/Conv_1/weights",
        f"{torch_prefix}.project_norm.weight": f"{tf_scope}/2/gamma",
        f"{torch_prefix}.project_norm.bias": f"{tf_scope}/2/beta",
    }


def official_variable_names() -> dict[str, str]:
    """``{torch parameter name: official TF variable name}`` for all 129 generator variables.

    TF numbers sibling scopes in creation order (``Conv``, ``Conv_1``, ...); the order was checked
    against the exported graph (e.g. ``b1/SeparableConv2d`` is the stride-2 branch of Down-Conv,
    ``b1/SeparableConv2d_1`` the branch after the resize).
    """
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
        names.update(_inverted_res_block(index))
    return {torch_name: TF_SCOPE + tf_name for torch_name, tf_name in names.items()}


def tf_to_torch_layout(torch_name: str, array: np.ndarray) -> np.ndarray:
    """Convert one TF variable to the layout of the torch parameter it maps to."""
    if array.ndim == 1:  # instance-norm gamma / beta
        return array
    if array.ndim != 4:
        raise CheckpointError(f"unexpected rank {array.ndim} for {torch_name}")
    if torch_name.endswith("depthwise.weight"):
        height, width, channels, multiplier = array.shape
        # (H, W, C, M) -> (C*M, 1, H, W); TF orders depthwise outputs channel-major, multiplier-minor
        return array.reshape(height, width, channels * multiplier, 1).transpose(2, 3, 0, 1)
    return array.transpose(3, 2, 0, 1)  # HWIO -> OIHW


def state_dict_from_tf(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Build a generator state dict from official TF tensors, checking names and shapes strictly."""
    reference = AnimeGANGenerator().state_dict()
    mapping = official_variable_names()
    expected_tf = set(mapping.values())
    missing = sorted(expected_tf - tensors.keys())
    extra = sorted(name for name in tensors.keys() - expected_tf if not name.endswith("global_step"))
    if missing or extra:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            details.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        raise CheckpointError("checkpoint is not an AnimeGAN v1 generator: " + ", ".join(details))
    state: dict[str, torch.Tensor] = {}
    for torch_name, tf_name in mapping.items():
        array = tensors[tf_name]
        converted = tf_to_torch_layout(torch_name, array)
        if tuple(converted.shape) != tuple(reference[torch_name].shape):
            raise CheckpointError(
                f"variable {tf_name} has shape {tuple(array.shape)}, which does not fit "
                f"{torch_name} {tuple(reference[torch_name].shape)}"
            )
        state[torch_name] = torch.from_numpy(np.ascontiguousarray(converted, dtype=np.float32))
    return state


def load_tf_checkpoint(prefix: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official AnimeGAN v1 checkpoint (prefix, ``.index`` or ``.data-*`` path) as a state dict."""
    return state_dict_from_tf(read_checkpoint(prefix))
