"""CPU cores and memory as a container limits them."""

from __future__ import annotations

import os

import pytest

from animevid.engine import resources


@pytest.fixture
def cgroup(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "_CGROUP_ROOT", tmp_path)
    return tmp_path


def test_cpu_quota_caps_the_affinity(cgroup, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    (cgroup / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs' worth of time
    assert resources.usable_cpus() == 2
    (cgroup / "cpu.max").write_text("max 100000\n")
    assert resources.usable_cpus() == 4


def test_affinity_caps_a_larger_quota(cgroup, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    (cgroup / "cpu.max").write_text("800000 100000\n")
    assert resources.usable_cpus() == 1


def test_cgroup_v1_quota(cgroup, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    (cgroup / "cpu").mkdir()
    (cgroup / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (cgroup / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert resources.usable_cpus() == 3
    (cgroup / "cpu" / "cpu.cfs_quota_us").write_text("-1")  # no quota
    assert resources.usable_cpus() == 8


def test_cgroup_memory_limit_counts_reclaimable_cache_as_free(cgroup, monkeypatch):
    monkeypatch.setattr(resources, "_meminfo_available", lambda: 64 * 2**30)
    (cgroup / "memory.max").write_text(str(4 * 2**30))
    (cgroup / "memory.current").write_text(str(3 * 2**30))
    (cgroup / "memory.stat").write_text(f"anon 123\ninactive_file {2**29}\nactive_file 7\n")
    assert resources.available_memory() == 2**30 + 2**29  # limit - usage + inactive file cache
    (cgroup / "memory.max").write_text("max\n")
    assert resources.available_memory() == 64 * 2**30  # no limit: the host's MemAvailable


def test_this_machine_reports_something():
    assert resources.usable_cpus() >= 1
    available = resources.available_memory()
    assert available is None or available > 0
