"""What a run reports as it goes: the losses summed between metrics lines, and ``metrics.jsonl``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from animevid.fileio import write_bytes_atomic

from .distributed import DistributedContext, all_reduce_mean


class LossWindow:
    """The step losses summed since the last metrics line, kept on the device (no sync until read).

    A checkpoint between two metrics lines holds the window, so that the resumed run writes the
    lines the uninterrupted run would have written.
    """

    def __init__(self, sums: dict[str, torch.Tensor] | None = None, steps: int = 0, seconds: float = 0.0) -> None:
        self.sums = dict(sums or {})
        self.steps = steps
        self._seconds_before = seconds  # spent in this window before a resume
        self._started = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def first_step(self, step: int) -> int:
        """The first step of the window that ends with ``step``."""
        return step - self.steps + 1

    def means(self, context: DistributedContext) -> dict[str, float]:
        """Each loss averaged over the window's steps and over the ranks: the device sync."""
        keys = sorted(self.sums)
        values = torch.stack([self.sums[key].float() for key in keys]) / self.steps
        values = all_reduce_mean(values, context)
        return dict(zip(keys, values.tolist()))

    def steps_per_second(self) -> float:
        elapsed = self._seconds_before + time.perf_counter() - self._started
        return self.steps / elapsed if elapsed > 0 else 0.0

    def state_dict(self, context: DistributedContext) -> dict[str, Any]:
        """For a checkpoint. A collective under DDP: the sums are averaged over the ranks, since
        every rank resumes from rank 0's file (the means logged later are the same)."""
        sums = {key: all_reduce_mean(self.sums[key], context).cpu() for key in sorted(self.sums)}
        return {"sums": sums, "steps": self.steps, "seconds": self._seconds_before + time.perf_counter() - self._started}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> "LossWindow":
        return cls({key: value.to(device) for key, value in state["sums"].items()}, state["steps"], state["seconds"])


class MetricsLog:
    """metrics.jsonl. On resume, lines after the checkpoint's step are dropped: the resumed run
    writes them again, so the file reads as if the run had never stopped."""

    def __init__(self, path: Path, keep_until_step: int) -> None:
        self.path = path
        if path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= keep_until_step:
                        kept.append(line + "\n")
                except (ValueError, KeyError, TypeError):
                    continue
            write_bytes_atomic(path, "".join(kept).encode())

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def tensorboard_writer(folder: Path):
    """A TensorBoard ``SummaryWriter`` on ``folder``, or ``None`` when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))
