"""Training checkpoints: everything a run is at a step boundary, written atomically.

``checkpoints/last.pt`` holds G and D, the three Adam states, the AMP scaler, every RNG state, the
position in the data, the losses summed since the last metrics line, and the settings. It is read
with ``weights_only=True``: only tensors and plain Python values, no pickled code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from animevid.errors import InputError
from animevid.fileio import atomic_path

from .config import TrainConfig

CHECKPOINT_FORMAT = "animevid-train-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class TrainState:
    """What the steps change: the bare networks (not their DDP wrappers) and their optimization state."""

    generator: nn.Module
    discriminator: nn.Module
    init_optimizer: torch.optim.Optimizer  # G's, during the initialization epochs
    generator_optimizer: torch.optim.Optimizer
    discriminator_optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


@dataclass
class Position:
    """Where a run is: steps done, and the batch of the epoch to continue at. ``epoch`` counts
    every epoch of the schedule from 0, initialization included: it also seeds that epoch's data."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG the process has, in types ``torch.load(weights_only=True)`` accepts."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(
    path: Path,
    state: TrainState,
    position: Position,
    *,
    loss_window: dict[str, Any],
    steps_per_epoch: int,
    config: TrainConfig,
    world_size: int,
) -> None:
    """Write the whole training state atomically: an interruption mid-write leaves the previous
    checkpoint in place. ``loss_window`` is :meth:`LossWindow.state_dict`."""
    device = next(state.generator.parameters()).device
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "generator": state.generator.state_dict(),
        "discriminator": state.discriminator.state_dict(),
        "init_optimizer": state.init_optimizer.state_dict(),
        "generator_optimizer": state.generator_optimizer.state_dict(),
        "discriminator_optimizer": state.discriminator_optimizer.state_dict(),
        "scaler": state.scaler.state_dict() if state.scaler.is_enabled() else {},
        "rng": rng_state(device),
        "step": position.step,
        "epoch": position.epoch,
        "batch": position.batch,
        "loss_window": loss_window,
        "steps_per_epoch": steps_per_epoch,
        "world_size": world_size,
        "config": config.to_json(),
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (read with ``weights_only=True``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # torch raises many types for damaged files
        raise InputError(f"cannot read checkpoint {path}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an animevid training checkpoint")
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"{path} is a version {checkpoint.get('version')} checkpoint; this animevid reads version {CHECKPOINT_VERSION}")
    return checkpoint


def restore_checkpoint(checkpoint: dict[str, Any], state: TrainState, device: torch.device) -> Position:
    """Load ``checkpoint`` into ``state`` and the process's RNGs; return where to continue."""
    state.generator.load_state_dict(checkpoint["generator"])
    state.discriminator.load_state_dict(checkpoint["discriminator"])
    state.init_optimizer.load_state_dict(checkpoint["init_optimizer"])
    state.generator_optimizer.load_state_dict(checkpoint["generator_optimizer"])
    state.discriminator_optimizer.load_state_dict(checkpoint["discriminator_optimizer"])
    if checkpoint["scaler"] and state.scaler.is_enabled():
        state.scaler.load_state_dict(checkpoint["scaler"])
    set_rng_state(checkpoint["rng"], device)
    return Position(checkpoint["step"], checkpoint["epoch"], checkpoint["batch"])
