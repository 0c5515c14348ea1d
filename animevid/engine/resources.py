"""What this process may use of the machine: CPU cores and memory, as Linux containers limit them.

``os.cpu_count()`` and ``/proc/meminfo`` describe the host; a container (cgroup CPU quota, memory
limit) or a CPU affinity mask (``taskset``) may allow much less, and a thread pool or a memory
plan sized for the host then oversubscribes the cores or gets the process OOM-killed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus() -> int:
    """Cores this process can run on at once: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota is not None else max(1, cpus)


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping or being OOM-killed; None if unknown.

    The smaller of the host's ``MemAvailable`` and what the cgroup memory limit leaves (the
    cgroup's reclaimable file cache counted as free, as the kernel reclaims it before killing).
    """
    candidates = [value for value in (_meminfo_available(), _cgroup_memory_left()) if value is not None]
    return min(candidates) if candidates else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_cpu_quota() -> float | None:
    """CPUs' worth of time per period allowed by the cgroup (v2 ``cpu.max``, v1 CFS quota)."""
    v2 = _read(_CGROUP_ROOT / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100_000)
    quota_us, period_us = _read(_CGROUP_ROOT / "cpu" / "cpu.cfs_quota_us"), _read(_CGROUP_ROOT / "cpu" / "cpu.cfs_period_us")
    if quota_us is None or period_us is None or int(quota_us) <= 0:
        return None
    return int(quota_us) / int(period_us)


def _meminfo_available() -> int | None:
    text = _read(Path("/proc/meminfo"))
    if text is None:
        return _sysconf_memory()
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return _sysconf_memory()


def _sysconf_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_memory_left() -> int | None:
    limit, usage = _read(_CGROUP_ROOT / "memory.max"), _read(_CGROUP_ROOT / "memory.current")
    stat_name, cache_key = "memory.stat", "inactive_file"
    if limit is None:  # cgroup v1
        limit = _read(_CGROUP_ROOT / "memory" / "memory.limit_in_bytes")
        usage = _read(_CGROUP_ROOT / "memory" / "memory.usage_in_bytes")
        stat_name, cache_key = "memory/memory.stat", "total_inactive_file"
    if limit is None or usage is None or limit == "max" or int(limit) >= 1 << 60:  # v1 "unlimited" is ~2^63
        return None
    reclaimable = 0
    for line in (_read(_CGROUP_ROOT / stat_name) or "").splitlines():
        key, _, value = line.partition(" ")
        if key == cache_key:
            reclaimable = int(value)
    return max(0, int(limit) - int(usage) + reclaimable)
