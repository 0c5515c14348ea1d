"""Choosing which frames of a shot to try, with memory bounded whatever the shot's length.

A shot's length is only known at its end (the next cut), so its frames cannot be placed "evenly" as
they stream past. :class:`ShotCandidates` keeps every ``stride``-th frame of the current shot and
doubles ``stride`` (dropping every other frame kept) whenever more than ``capacity`` are held: at
the cut it holds between ``capacity / 2`` and ``capacity`` frames evenly spread over the shot, for
a 10-frame shot as for a 10-minute one.

:func:`target_pools` then spreads ``count`` targets over the shot's interior (``margin`` frames
away from either end, where cuts, fades and dissolves are) and lists, for each target, the
candidates of its own slice of the shot nearest first: the extractor keeps the first one that
passes the quality filters, so a dark or blurred frame is replaced by a neighbour, and two targets
never pick the same frame.

:class:`TimeGrid` is the ``--every SECONDS`` alternative: one frame at each multiple of a period.
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

Item = TypeVar("Item")


class ShotCandidates(Generic[Item]):
    """Evenly spaced frames of the current shot, at most ``capacity`` at a time (see module doc)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.reset()

    def reset(self) -> None:
        self._origin: int | None = None
        self.stride = 1
        self._items: list[tuple[int, Item]] = []

    def wants(self, index: int) -> bool:
        """Whether frame ``index`` falls on the current stride (and would be kept by :meth:`add`)."""
        return self._origin is None or (index - self._origin) % self.stride == 0

    def add(self, index: int, item: Item) -> None:
        if self._origin is None:
            self._origin = index
        elif not self.wants(index):
            return
        self._items.append((index, item))
        while len(self._items) > self.capacity:
            self.stride *= 2
            self._items = [(i, it) for i, it in self._items if (i - self._origin) % self.stride == 0]

    @property
    def first_index(self) -> int | None:
        return self._origin

    @property
    def items(self) -> list[tuple[int, Item]]:
        return list(self._items)


def target_pools(indices: list[int], first: int, end: int, margin: int, count: int) -> list[list[int]]:
    """For ``count`` targets spread over the frames ``[first + margin, end - margin)``, the positions
    in ``indices`` (sorted frame numbers of the candidates) to try for each target, nearest first.

    The interior is cut into ``count`` equal slices; a target is the middle of its slice and only
    candidates inside the slice are listed. Empty when the interior is empty (a shot shorter than
    ``2 * margin`` frames).
    """
    low, high = first + margin, end - margin
    if high <= low or count < 1:
        return []
    length = high - low
    pools = []
    for slot in range(count):
        slice_start = low + slot * length / count
        slice_end = low + (slot + 1) * length / count
        middle = (slice_start + slice_end - 1) / 2
        members = [pos for pos, index in enumerate(indices) if slice_start <= index < slice_end]
        members.sort(key=lambda pos: (abs(indices[pos] - middle), indices[pos]))
        pools.append(members)
    return pools


class TimeGrid:
    """Frame times due for sampling: the first frame at or after each ``origin + k * period``."""

    def __init__(self, origin: float, period: float) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.origin = origin
        self.period = period
        self.next_time = origin

    def due(self, time: float) -> bool:
        """Whether the frame at ``time`` is the first at or after the next grid time (then advance)."""
        if time < self.next_time:
            return False
        # Skip every grid time this frame covers, so a low frame rate never samples a frame twice.
        steps = math.floor((time - self.origin) / self.period + 1e-9) + 1
        self.next_time = self.origin + steps * self.period
        return True
