"""Multi-process training with torchrun and DistributedDataParallel (torch's own engine).

``torchrun`` starts one process per device and sets RANK, WORLD_SIZE and LOCAL_RANK (and
MASTER_ADDR/PORT); without them training runs in a single process. The process group uses NCCL
on CUDA and gloo on the CPU. Only rank 0 writes files and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from animevid.errors import UsageError
from animevid.engine.stylizer import resolve_device as resolve_inference_device


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> DistributedContext:
    """The torchrun variables of this process, or a single-process context when they are absent."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return DistributedContext()
    try:
        world_size = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError as exc:
        raise UsageError(f"malformed torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"malformed torchrun environment: RANK {rank}, WORLD_SIZE {world_size}")
    return DistributedContext(rank=rank, local_rank=local_rank, world_size=world_size)


def resolve_device(requested: str, context: DistributedContext) -> torch.device:
    """Like :func:`animevid.engine.stylizer.resolve_device`, but under torchrun a plain ``cuda`` (or
    ``auto`` on a GPU machine) means this process's GPU, ``cuda:LOCAL_RANK``."""
    device = resolve_inference_device(requested)
    if device.type == "cuda" and device.index is None:
        index = context.local_rank if context.enabled else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device cuda:{index}: only {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", index)
    return device


def init_process_group(context: DistributedContext, device: torch.device) -> None:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU); nothing for one process."""
    if not context.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=context.rank, world_size=context.world_size)
    else:
        dist.init_process_group("gloo", rank=context.rank, world_size=context.world_size)


def destroy_process_group(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes, else itself."""
    if not context.enabled:
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def all_reduce_mean(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """The mean of ``values`` over all processes (itself for one process)."""
    if context.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= context.world_size
    return values


def new_host_group(context: DistributedContext, device: torch.device) -> dist.ProcessGroup | None:
    """A process group for the small agreements between ranks that must not wait for the device
    (the stop flag, checked every step): CPU tensors over gloo. On the CPU that is the default
    group; next to NCCL it is a second, gloo, group. ``None`` for one process."""
    if not context.enabled:
        return None
    return dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD


def any_rank(flag: bool, context: DistributedContext, group: dist.ProcessGroup | None) -> bool:
    """True on every rank when ``flag`` is true on any (a collective: every rank must call it)."""
    if not context.enabled:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=group)
    return bool(value.item())


def wait_for_all(context: DistributedContext, group: dist.ProcessGroup | None) -> None:
    """Return when every rank has called it (nothing for one process)."""
    if context.enabled:
        dist.barrier(group=group)
